"""Rita books a caller by phone: the same service and constraint as the online booking."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.models import Appointment, AppointmentEvent, Slot
from tests.helpers import SAFE_ANSWERS, days_ahead, local, make_slot, patient_books
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db

CALLER = {
    "submission_key": "5f0c6a52-96c5-4a8e-8a55-0c1f8d1b8e01",
    "first_name": "Grace",
    "last_name": "Hopper",
    "phone": "07700 900456",
    "email": "",
    "note": "Left hip, worse on stairs.",
    **SAFE_ANSWERS,
    "privacy_notice_told": "on",
}


def _book(client, slot, **changes):
    return client.post(reverse("reception_book"), {"slot": slot.pk, **CALLER, **changes})


def test_rita_books_a_caller_into_an_open_slot_as_a_phone_booking(client, rita, dr_patel):
    slot = make_slot(dr_patel, local(days_ahead(2), 10))
    verified_login(client, rita)

    response = _book(client, slot)

    appointment = Appointment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("reception_appointment", args=[appointment.pk])
    assert (appointment.slot, appointment.source, appointment.booked_by) == (slot, "phone", rita)
    assert (appointment.first_name, appointment.phone, appointment.email) == ("Grace", "07700 900456", "")
    assert appointment.note == "Left hip, worse on stairs."
    [event] = appointment.events.all()
    assert (event.action, event.actor, event.actor_label) == (AppointmentEvent.Action.BOOKED, rita, "rita")


def test_rita_sees_the_form_with_the_slot_she_chose(client, rita, dr_patel):
    slot = make_slot(dr_patel, local(days_ahead(2), 10))
    verified_login(client, rita)

    response = client.get(reverse("reception_book"), {"slot": slot.pk})

    assert response.status_code == 200
    assert "Book this slot" in response.content.decode()
    assert "Dr Priya Patel" in response.content.decode()


def test_rita_may_book_a_caller_inside_the_online_notice_period(client, rita, dr_patel):
    slot = make_slot(dr_patel, timezone.now() + timedelta(minutes=30))
    assert not Slot.objects.bookable(now=timezone.now()).filter(pk=slot.pk).exists()
    verified_login(client, rita)

    assert _book(client, slot).status_code == 302
    assert Appointment.objects.filter(slot=slot).exists()


def test_rita_cannot_book_a_caller_into_the_past(client, rita, dr_patel):
    slot = make_slot(dr_patel, timezone.now() - timedelta(hours=1))
    verified_login(client, rita)

    response = _book(client, slot)

    assert response.status_code == 409
    assert not Appointment.objects.exists()


def test_rita_cannot_book_a_caller_into_a_blocked_slot(client, rita, dr_patel):
    slot = make_slot(dr_patel, local(days_ahead(2), 10), state=Slot.State.BLOCKED, blocked_reason="Training")
    verified_login(client, rita)

    response = _book(client, slot)

    assert response.status_code == 409
    assert not Appointment.objects.exists()


def test_rita_loses_the_race_to_a_patient_and_nothing_changes(client, rita, dr_patel, dr_okafor):
    day = days_ahead(2)
    slot = make_slot(dr_patel, local(day, 10))
    other = make_slot(dr_okafor, local(day, 10, 20))
    verified_login(client, rita)
    assert client.get(reverse("reception_book"), {"slot": slot.pk}).status_code == 200
    # While Rita types, a patient books the same slot online.
    patient_books(slot, first_name="Ada", last_name="Lovelace")

    response = _book(client, slot)

    assert response.status_code == 409
    html = response.content.decode()
    assert "Sorry, that slot was just taken by someone else. Nothing was booked." in html
    assert 'value="Grace"' in html  # the caller's details are kept
    assert f'name="slot" value="{other.pk}"' in html  # and the nearest free time is one click away
    [appointment] = Appointment.objects.all()
    assert appointment.first_name == "Ada"
    assert appointment.source == "online"


def test_a_double_click_books_the_caller_once(client, rita, dr_patel):
    slot = make_slot(dr_patel, local(days_ahead(2), 10))
    verified_login(client, rita)

    first = _book(client, slot)
    second = _book(client, slot)

    assert first["Location"] == second["Location"]
    assert Appointment.objects.count() == 1


def test_rita_is_asked_again_for_a_phone_number_we_cannot_call(client, rita, dr_patel):
    slot = make_slot(dr_patel, local(days_ahead(2), 10))
    verified_login(client, rita)

    response = _book(client, slot, phone="call me")

    assert response.status_code == 400
    assert "Please enter a phone number we can call" in response.content.decode()
    assert not Appointment.objects.exists()


def test_the_next_free_slots_are_the_soonest_across_all_practitioners(client, rita, dr_patel, dr_okafor):
    day = days_ahead(1)
    taken = make_slot(dr_patel, local(day, 9))
    patient_books(taken)
    make_slot(dr_patel, local(day, 9, 20), state=Slot.State.BLOCKED)
    past = make_slot(dr_patel, timezone.now() - timedelta(hours=2))
    soonest = make_slot(dr_okafor, local(day, 9, 10))
    later = make_slot(dr_patel, local(day, 11))
    verified_login(client, rita)

    response = client.get(reverse("reception_next_free"))

    assert [slot.pk for slot in response.context["slots"]] == [soonest.pk, later.pk]
    assert past.pk not in [slot.pk for slot in response.context["slots"]]
    assert f"{reverse('reception_book')}?slot={soonest.pk}" in response.content.decode()


def test_booking_a_practitioner_who_has_left_says_so_rather_than_just_taken(client, rita, dr_patel, dr_okafor):
    slot = make_slot(dr_patel, local(days_ahead(2), 10))
    make_slot(dr_okafor, local(days_ahead(2), 10, 20))
    verified_login(client, rita)
    dr_patel.is_active = False
    dr_patel.save(update_fields=["is_active"])

    response = _book(client, slot)

    html = response.content.decode()
    assert response.status_code == 409
    assert "Dr Priya Patel no longer works at the clinic" in html
    assert "just taken" not in html
    assert Appointment.objects.count() == 0
