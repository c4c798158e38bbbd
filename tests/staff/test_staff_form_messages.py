"""Every constraint a staff form can hit answers in the clinic's words, never with the constraint's name."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from bookings.models import Slot, TimeOff, WorkingHours
from tests.helpers import days_ahead, local, make_slot
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db

CONSTRAINT_NAMES = [
    "working_hours_end_after_start",
    "working_hours_weekday_valid",
    "working_hours_valid_range",
    "time_off_end_after_start",
    "slot_end_after_start",
    "slot_no_overlap_per_practitioner",
    "slot_state_valid",
]


def assert_in_the_clinics_words(response, message):
    html = response.content.decode()
    assert response.status_code in (200, 400), response.status_code
    assert message in html
    assert "is violated" not in html
    assert not [name for name in CONSTRAINT_NAMES if name in html]


def _one_period(weekday="0", start="12:00", end="09:00", valid_from="", valid_until=""):
    return {
        "hours-TOTAL_FORMS": "1",
        "hours-INITIAL_FORMS": "0",
        "hours-MIN_NUM_FORMS": "0",
        "hours-MAX_NUM_FORMS": "1000",
        "hours-0-weekday": weekday,
        "hours-0-start_time": start,
        "hours-0-end_time": end,
        "hours-0-valid_from": valid_from,
        "hours-0-valid_until": valid_until,
    }


def test_rita_is_told_a_period_must_end_after_it_starts(client, rita, dr_patel):
    verified_login(client, rita)

    response = client.post(reverse("reception_practitioner_hours", args=[dr_patel.pk]), _one_period())

    assert_in_the_clinics_words(response, "The period must end after it starts.")
    assert not WorkingHours.objects.exists()


def test_rita_is_told_valid_until_is_before_valid_from(client, rita, dr_patel):
    verified_login(client, rita)
    period = _one_period(start="09:00", end="12:00", valid_from="2027-03-10", valid_until="2027-03-01")

    response = client.post(reverse("reception_practitioner_hours", args=[dr_patel.pk]), period)

    assert_in_the_clinics_words(response, "&#x27;Valid until&#x27; is before &#x27;valid from&#x27;.")
    assert not WorkingHours.objects.exists()


def test_rita_is_told_to_choose_a_day_of_the_week(client, rita, dr_patel):
    verified_login(client, rita)

    response = client.post(
        reverse("reception_practitioner_hours", args=[dr_patel.pk]), _one_period(weekday="9", start="09:00")
    )

    assert_in_the_clinics_words(response, "Select a valid choice.")
    assert not WorkingHours.objects.exists()


def test_rita_is_told_time_off_must_end_after_it_starts(client, rita, dr_patel):
    day = days_ahead(3)
    verified_login(client, rita)

    response = client.post(
        reverse("reception_time_off_add", args=[dr_patel.pk]),
        {"off-starts_at": f"{day}T12:00", "off-ends_at": f"{day}T09:00"},
    )

    assert_in_the_clinics_words(response, "It must end after it starts: check the dates and times.")
    assert not TimeOff.objects.exists()


def test_rita_is_told_a_clinic_closure_must_end_after_it_starts(client, rita):
    day = days_ahead(3)
    verified_login(client, rita)

    response = client.post(
        reverse("reception_hours"), {"closure-starts_at": f"{day}T12:00", "closure-ends_at": f"{day}T09:00"}
    )

    assert_in_the_clinics_words(response, "It must end after it starts: check the dates and times.")
    assert not TimeOff.objects.exists()


def test_the_admin_says_working_hours_must_end_after_they_start(admin_client, dr_patel):
    response = admin_client.post(
        "/admin/bookings/workinghours/add/",
        {"practitioner": dr_patel.pk, "weekday": "0", "start_time": "12:00", "end_time": "09:00"},
    )

    assert_in_the_clinics_words(response, "The period must end after it starts.")
    assert not WorkingHours.objects.exists()


def test_the_admin_says_time_off_must_end_after_it_starts(admin_client, dr_patel):
    day = days_ahead(3)
    response = admin_client.post(
        "/admin/bookings/timeoff/add/",
        {
            "practitioner": dr_patel.pk,
            "starts_at_0": f"{day}",
            "starts_at_1": "12:00",
            "ends_at_0": f"{day}",
            "ends_at_1": "09:00",
        },
    )

    assert_in_the_clinics_words(response, "It must end after it starts: check the dates and times.")
    assert not TimeOff.objects.exists()


@pytest.mark.parametrize(
    ("starts", "ends", "state", "message"),
    [
        (60, 40, "open", "The slot must end after it starts."),
        (10, 30, "open", "This practitioner already has a slot that overlaps this time."),
        (60, 80, "gone", "Choose open, blocked or retired."),
    ],
)
def test_a_slot_form_would_say_what_is_wrong_with_a_slot(dr_patel, starts, ends, state, message):
    """What any form for a slot (the admin's) shows: a ModelForm checks the constraints this way."""
    nine = local(days_ahead(3), 9)
    make_slot(dr_patel, nine)
    slot = Slot(
        practitioner=dr_patel,
        starts_at=nine + timedelta(minutes=starts),
        ends_at=nine + timedelta(minutes=ends),
        state=state,
    )

    with pytest.raises(ValidationError) as error:
        slot.validate_constraints()

    assert message in error.value.messages
    assert not [text for text in error.value.messages if "is violated" in text]


def test_rita_is_told_a_closure_already_over_changes_nothing(client, rita):
    verified_login(client, rita)

    response = client.post(
        reverse("reception_hours"), {"closure-starts_at": "2020-01-01T13:00", "closure-ends_at": "2020-01-01T14:00"}
    )

    assert "That time is over already" in response.content.decode()
    assert not TimeOff.objects.exists()
