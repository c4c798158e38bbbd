"""Joining the waiting list with wishes no working hours can meet is refused at once, keeping what was typed.

Found by hand: the list accepted Dr Patel on Monday evenings (she ends at 17:00), Friday evenings (nobody works
then) and Thursdays only with a Wednesday as the last day; none of these could ever be offered a time.
"""

from datetime import time, timedelta

import pytest
from django.utils import timezone

from bookings.models import WaitingListEntry, WorkingHours
from tests.bookings.test_waiting_list_opt_in import ask_to_join

pytestmark = pytest.mark.django_db


@pytest.fixture
def patel_weekdays_nine_to_five(dr_patel):
    for weekday in range(5):
        WorkingHours.objects.create(practitioner=dr_patel, weekday=weekday, start_time=time(9), end_time=time(17))
    return dr_patel


def _errors(response) -> str:
    return response.content.decode()


def test_a_practitioner_asked_for_at_a_time_of_day_they_never_work_is_refused_keeping_the_details(
    client, patel_weekdays_nine_to_five
):
    response = ask_to_join(
        client, practitioner=str(patel_weekdays_nine_to_five.pk), weekdays=["0"], parts_of_day=["evening"],
        first_name="Kim",
    )  # fmt: skip

    assert response.status_code == 400
    html = _errors(response)
    assert "does not work at the times of day ticked on the days ticked" in html
    assert 'value="Kim"' in html
    assert not WaitingListEntry.objects.exists()


def test_an_evening_nobody_works_is_refused_for_any_practitioner(client, patel_weekdays_nine_to_five):
    response = ask_to_join(client, weekdays=["4"], parts_of_day=["evening"])

    assert "None of our practitioners works at the times of day ticked on the days ticked" in _errors(response)
    assert not WaitingListEntry.objects.exists()


def test_days_that_do_not_come_before_the_last_day_given_are_refused(client, patel_weekdays_nine_to_five):
    today = timezone.localdate()
    # The last day is today; of the working days, tick only those that are not today.
    others = [str(day) for day in range(5) if day != today.weekday()]

    response = ask_to_join(client, weekdays=others, wait_until=today.isoformat())

    assert "None of the days ticked comes between today and" in _errors(response)
    assert not WaitingListEntry.objects.exists()


def test_wishes_someone_can_meet_still_join(client, patel_weekdays_nine_to_five):
    response = ask_to_join(
        client, practitioner=str(patel_weekdays_nine_to_five.pk), weekdays=["0"], parts_of_day=["afternoon"],
        wait_until=(timezone.localdate() + timedelta(days=8)).isoformat(),
    )  # fmt: skip

    assert response.status_code == 200
    assert WaitingListEntry.objects.count() == 1
