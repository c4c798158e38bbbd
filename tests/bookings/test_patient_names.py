"""A name is a name: it is printed in e-mails the clinic sends, so it cannot carry a message of Mallory's."""

import pytest
from django import forms
from django.urls import reverse

from bookings.forms import clean_person_name
from bookings.models import Appointment, CallbackRequest, OutboundMessage
from tests.helpers import details_form, local, make_slot, pass_safety_check
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db

MALLORYS_NAME = "Ann,\r\n\r\nACTION NEEDED: pay a £5 deposit at https://evil.example/pay"

NOT_NAMES = [
    MALLORYS_NAME,
    "Ann\nACTION NEEDED",
    "Ann\u2028Pay now",  # a line separator (Zl)
    "Ann\u2029Pay now",  # a paragraph separator (Zp)
    "Ann\u200bSmith",  # a zero-width space (Cf)
    "Ann\u202eevil",  # a right-to-left override (Cf)
    "Ann\x07",  # a control character (Cc)
    "Ann\tSmith",
    "evil.example",
    "Visit www evil com",
    "Ann https",
    "http://evil.example",
    "Ann: pay",
    "Ann 2",
    "£5",
    "...",
    "-",
]
NAMES = ["Zoë", "Siân", "O’Connor", "O'Connor", "Nguyễn", "Mary-Jane", "J.R.R.", "St. John", "Jean\u2010Luc", "李"]


@pytest.mark.parametrize("name", NOT_NAMES)
def test_a_name_with_a_line_break_a_hidden_character_a_web_address_or_symbols_is_refused(name):
    with pytest.raises(forms.ValidationError):
        clean_person_name(name)


@pytest.mark.parametrize("name", NAMES)
def test_names_in_any_script_with_accents_hyphens_apostrophes_and_initials_are_accepted(name):
    assert clean_person_name(name) == name


def test_a_name_typed_with_decomposed_accents_and_a_pasted_non_breaking_space_is_kept_tidy():
    assert clean_person_name("Zoe\u0308\u00a0Nguye\u0302\u0303n ") == "Zoë Nguyễn"


def test_mallorys_message_as_a_first_name_books_nothing_and_sends_nothing(client, dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)

    response = client.post("/book/details/", details_form(client, slot) | {"first_name": MALLORYS_NAME})

    assert response.status_code == 400
    assert "without a web address" in response.context["form"].errors["first_name"][0]
    assert not Appointment.objects.exists()
    assert not OutboundMessage.objects.exists()


def test_mallorys_message_as_a_last_name_is_refused_too(client, dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)

    response = client.post("/book/details/", details_form(client, slot) | {"last_name": "Smith https://evil.example"})

    assert response.status_code == 400
    assert "last_name" in response.context["form"].errors
    assert not Appointment.objects.exists()


def test_a_patient_called_siân_o_connor_books_online_with_her_curly_apostrophe(client, dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)

    form = details_form(client, slot) | {"first_name": "Siân", "last_name": "O’Connor"}
    response = client.post("/book/details/", form)

    assert response.status_code == 302
    assert Appointment.objects.get().patient_name == "Siân O’Connor"


def test_the_call_back_form_refuses_mallorys_message_as_a_name(client):
    request = {"name": MALLORYS_NAME, "phone": "07700 900999", "preferred_time": "", "message": ""}

    response = client.post(reverse("contact"), request)

    assert response.status_code == 400
    assert not CallbackRequest.objects.exists()


def test_the_call_back_form_takes_a_name_like_nguyễn_thị_zoë(client):
    request = {"name": "Nguyễn Thị Zoë", "phone": "07700 900999", "preferred_time": "", "message": ""}

    assert client.post(reverse("contact"), request).status_code == 302
    assert CallbackRequest.objects.get().name == "Nguyễn Thị Zoë"


def test_rita_cannot_book_a_caller_under_mallorys_message_either(client, rita, dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    verified_login(client, rita)
    caller = {
        "slot": slot.pk,
        "submission_key": "5f0c6a52-96c5-4a8e-8a55-0c1f8d1b8e01",
        "first_name": MALLORYS_NAME,
        "last_name": "Hopper",
        "phone": "07700 900456",
        "email": "",
        "note": "",
    }

    response = client.post(reverse("reception_book"), caller)

    assert response.status_code == 400
    assert not Appointment.objects.exists()
