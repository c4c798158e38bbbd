"""Phone numbers: every form accepts what people type, stores it beside its normalised form, and
reception's search finds a number however it is written, and nothing else.

Issues 13 and 14: a caller stored as `+44 7700 900654` was not found by `+44 7700 900654`;
`(020) 7946 0000`, `07700.900.123` and a pasted non-breaking space were refused.
"""

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import timezone

from bookings.forms import CallbackRequestForm, PatientDetailsForm
from bookings.models import Appointment, CallbackRequest
from bookings.phones import normalise_phone, phone_search
from bookings.services import PatientDetails, appointment_book
from staff.forms import PhoneBookingForm
from tests.helpers import days_ahead, local, make_slot
from tests.staff_signin import verified_login

ACCEPTED = [
    ("(020) 7946 0000", "+442079460000"),
    ("(0161) 496 0000", "+441614960000"),
    ("07700.900.123", "+447700900123"),
    ("07700\u00a0900123", "+447700900123"),
    ("07700\u202f900\u00a0123", "+447700900123"),
    ("07700-900-123", "+447700900123"),
    ("+44 7700 900123", "+447700900123"),
    ("+447700900123", "+447700900123"),
    ("0044 7700 900123", "+447700900123"),
    ("+44 (0)20 7946 0000", "+442079460000"),
    ("+44 07700 900123", "+447700900123"),
    ("+33 1 23 45 67 89", "+33123456789"),
]
REFUSED = [
    "",
    "call me",
    "07700 900123 ext 4",
    "7700 900123",
    "0770",
    "07700 900123 900123",
    "+44 7700",
    "+0 123 456 789",
    "javascript:alert(1)",
    "+44 7700 900123; DROP TABLE",
]


@pytest.mark.parametrize(("typed", "normalised"), ACCEPTED)
def test_what_people_type_is_normalised_to_e164(typed, normalised):
    assert normalise_phone(typed) == normalised


@pytest.mark.parametrize("typed", REFUSED)
def test_what_is_not_a_phone_number_has_no_normalised_form(typed):
    assert normalise_phone(typed) is None


def _patient_form(phone):
    return PatientDetailsForm(
        {
            "submission_key": "6f1b7f39-8d0c-4c5a-9a53-8a2f3c1d2e4f",
            "slot": "1",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.org",
            "phone": phone,
            "consent": "on",
        }
    )


def _phone_booking_form(phone):
    return PhoneBookingForm(
        {
            "submission_key": "6f1b7f39-8d0c-4c5a-9a53-8a2f3c1d2e4f",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "phone": phone,
        }
    )


def _callback_form(phone):
    return CallbackRequestForm({"name": "Ada Lovelace", "phone": phone})


FORMS = [_patient_form, _phone_booking_form, _callback_form]


@pytest.mark.parametrize("make_form", FORMS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(("typed", "normalised"), ACCEPTED)
def test_every_phone_field_accepts_the_common_ways_of_writing_a_number(make_form, typed, normalised):
    form = make_form(typed)

    assert "phone" not in form.errors, form.errors
    # What was typed is kept for display, with any pasted odd space made plain.
    assert form.cleaned_data["phone"] == " ".join(typed.split())


@pytest.mark.parametrize("make_form", FORMS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("typed", [typed for typed in REFUSED if typed])
def test_every_phone_field_refuses_what_is_not_a_phone_number_in_plain_words(make_form, typed):
    form = make_form(typed)

    assert form.errors["phone"] == [
        "Please enter a phone number we can call, starting with 0 or +44 (for example 07700 900123), "
        "or with + and the country code for a number abroad."
    ]


@pytest.mark.django_db
def test_a_booking_and_a_call_back_store_the_normalised_number_beside_the_typed_one(dr_patel):
    result = appointment_book(
        slot_id=make_slot(dr_patel, local(days_ahead(3), 10)).pk,
        patient=PatientDetails("Ada", "Lovelace", "(020) 7946 0000"),
        now=timezone.now(),
    )
    callback = CallbackRequest.objects.create(name="Ada", phone="0044 7700 900654", created_at=timezone.now())

    appointment = Appointment.objects.get(pk=result.appointment.pk)
    assert (appointment.phone, appointment.phone_normalised) == ("(020) 7946 0000", "+442079460000")
    callback.refresh_from_db()
    assert (callback.phone, callback.phone_normalised) == ("0044 7700 900654", "+447700900654")


def _book(dr_patel, days, first_name, phone):
    return appointment_book(
        slot_id=make_slot(dr_patel, local(days_ahead(days), 10)).pk,
        patient=PatientDetails(first_name, "Example", phone),
        now=timezone.now(),
    ).appointment


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["+44 7700 900654", "+447700900654", "07700 900654", "0044 7700 900654"])
def test_rita_finds_the_caller_stored_in_international_form_however_she_types_it_and_nobody_else(
    client, rita, dr_patel, query
):
    ina = _book(dr_patel, 2, "Ina", "+44 7700 900654")
    _book(dr_patel, 3, "Olu", "07700 900123")
    _book(dr_patel, 4, "Sam", "07700 900655")
    _book(dr_patel, 5, "Tom", "01632 770090")
    verified_login(client, rita)

    response = client.post(reverse("reception_search"), {"q": query})

    assert [appointment.pk for appointment in response.context["results"]] == [ina.pk]


@pytest.mark.django_db
def test_searching_one_number_in_international_form_does_not_find_another(client, rita, dr_patel):
    _book(dr_patel, 3, "Olu", "07700 900123")
    verified_login(client, rita)

    response = client.post(reverse("reception_search"), {"q": "+44 7700 900124"})

    assert response.context["results"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["900654", "07700 9006", "+44 7700 9006"])
def test_rita_finds_a_caller_by_part_of_their_number(client, rita, dr_patel, query):
    ina = _book(dr_patel, 2, "Ina", "07700 900654")
    _book(dr_patel, 3, "Olu", "07800 900123")
    verified_login(client, rita)

    response = client.post(reverse("reception_search"), {"q": query})

    assert [appointment.pk for appointment in response.context["results"]] == [ina.pk]


def test_a_part_number_starting_with_0_is_looked_up_from_the_start_of_the_uk_form():
    assert phone_search("07700 9006") == ("startswith", "+4477009006")
    assert phone_search("9006 54") == ("contains", "900654")
    assert phone_search("ab") is None


@pytest.mark.django_db
def test_the_same_number_in_international_form_is_the_same_patient(dr_patel):
    _book(dr_patel, 3, "Pat", "07700 900123")
    _book(dr_patel, 4, "Pat", "+44 7700 900123")

    counts = set(
        Appointment.objects.with_upcoming_for_patient(now=timezone.now()).values_list("upcoming_for_patient", flat=True)
    )

    assert counts == {2}


@pytest.mark.django_db
def test_the_data_migration_fills_the_normalised_number_of_existing_rows(dr_patel):
    migration = __import__("bookings.migrations.0009_phone_normalised", fromlist=["fill_phone_normalised"])
    ada = _book(dr_patel, 3, "Ada", "+44 7700 900654")
    legacy = _book(dr_patel, 4, "Lee", "07700 900123")
    callback = CallbackRequest.objects.create(name="Cal", phone="(020) 7946 0000", created_at=timezone.now())
    Appointment.objects.update(phone_normalised="")
    Appointment.objects.filter(pk=legacy.pk).update(phone="7700 900123")
    CallbackRequest.objects.update(phone_normalised="")

    migration.fill_phone_normalised(apps, None)

    assert dict(Appointment.objects.values_list("pk", "phone_normalised")) == {
        ada.pk: "+447700900654",
        # Older than the validation and not a whole number: kept as its digits, found only by them.
        legacy.pk: "7700900123",
    }
    assert CallbackRequest.objects.get(pk=callback.pk).phone_normalised == "+442079460000"
