"""Rita asks a caller the same red-flag question as the online check, and records their answers and the notice told."""

import pytest
from django.urls import reverse

from bookings.forms import SAFETY_EMPTY, SAFETY_NONE_WITH_FLAG, SAFETY_QUESTIONS, SAFETY_QUESTIONS_VERSION
from bookings.models import Appointment
from tests.helpers import SAFE_ANSWERS, local, make_slot
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db

GRACE = {
    "submission_key": "5f0c6a52-96c5-4a8e-8a55-0c1f8d1b8e77",
    "first_name": "Grace",
    "last_name": "Hopper",
    "phone": "07700 900456",
    "email": "grace@example.org",
    "note": "",
    "privacy_notice_told": "on",
}


@pytest.fixture
def slot(dr_patel):
    return make_slot(dr_patel, local(3, 10))


def _book(client, slot, **changes):
    return client.post(reverse("reception_book"), {"slot": slot.pk, **GRACE, **SAFE_ANSWERS, **changes})


def test_the_phone_booking_form_asks_every_safety_question_of_the_online_check(client, rita, slot):
    verified_login(client, rita)

    page = client.get(reverse("reception_book"), {"slot": slot.pk}).content.decode()

    assert "Do any of these apply to you?" in page
    for key, question in SAFETY_QUESTIONS:
        assert question.replace("'", "&#x27;") in page
        assert f'name="red_flags" value="{key}"' in page
    assert 'name="red_flags" value="none"' in page
    assert "privacy notice, version 2026-12" in page


def test_a_phone_booking_records_the_callers_answers_and_the_privacy_notice_version(client, rita, slot, settings):
    settings.PRIVACY_NOTICE_VERSION = "2027-01"
    verified_login(client, rita)

    assert _book(client, slot).status_code == 302

    appointment = Appointment.objects.get()
    assert appointment.privacy_notice_version == "2027-01"
    assert appointment.safety_answers["version"] == SAFETY_QUESTIONS_VERSION
    assert [
        (answer["key"], answer["question"], answer["answer"]) for answer in appointment.safety_answers["answers"]
    ] == [(key, question, "no") for key, question in SAFETY_QUESTIONS]


@pytest.mark.parametrize("key", [key for key, _ in SAFETY_QUESTIONS])
def test_any_red_flag_ticked_books_nothing_and_shows_rita_the_urgent_advice_to_read_out(
    client, rita, slot, settings, key
):
    settings.CLINIC_EMERGENCY_GUIDANCE = "Call 999 now, or NHS 111 if unsure."
    verified_login(client, rita)

    response = _book(client, slot, red_flags=key)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing was booked. Read this to the caller now" in page
    assert "Call 999 now, or NHS 111 if unsure." in page
    assert not Appointment.objects.exists()


def test_a_red_flag_shows_the_advice_even_when_the_callers_details_are_not_complete(client, rita, slot):
    verified_login(client, rita)

    response = _book(client, slot, red_flags="trauma", first_name="", phone="")

    assert "Read this to the caller now" in response.content.decode()
    assert not Appointment.objects.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"red_flags": []}, SAFETY_EMPTY),
        ({"red_flags": ["none", "systemic"]}, SAFETY_NONE_WITH_FLAG),
        ({"privacy_notice_told": ""}, "Please tell the caller how we use their details, then tick this."),
    ],
)
def test_an_empty_answer_none_with_a_flag_or_an_unticked_notice_is_a_clear_400_and_books_nothing(
    client, rita, slot, change, message
):
    verified_login(client, rita)

    response = _book(client, slot, **change)

    assert response.status_code == 400
    assert message.replace('"', "&quot;") in response.content.decode()
    assert "Read this to the caller now" not in response.content.decode()
    assert not Appointment.objects.exists()
