"""Waiting to move a booking, only earlier times are offered: the pages say so, and wishes all after the booking
are refused at joining rather than kept on a list that could never offer them anything.

Found by hand: an entry asking only for days after the booking said "Accepting an earlier time moves your
booking on ..." and "An earlier time should move that booking", and was then never offered a time.
"""

import re
from datetime import time

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.models import Appointment, WaitingListEntry, WaitingListOffer, WorkingHours, hash_token, new_token
from bookings.notifications import send_due_messages
from bookings.services import waiting_list_scan
from tests.helpers import days_ahead, entry_link_in, local, make_slot, pass_safety_check, patient_books, waiting

pytestmark = pytest.mark.django_db

# The booking is in three days; the only day asked for is five days ahead (its weekday is none of the days
# from today to the booking), so every time asked for is after the booking.
LATER_WEEKDAY = days_ahead(5).weekday()


@pytest.fixture
def booking(dr_patel):
    for weekday in range(7):
        WorkingHours.objects.create(practitioner=dr_patel, weekday=weekday, start_time=time(8), end_time=time(20))
    return patient_books(make_slot(dr_patel, local(3, 10)), first_name="Wanda", email="wanda@example.org")


def join_form(**changes) -> dict:
    return {
        "first_name": "Wanda",
        "last_name": "Waits",
        "email": "wanda@example.org",
        "phone": "07700 900456",
        "practitioner": "",
        "weekdays": [str(LATER_WEEKDAY)],
        "parts_of_day": ["morning", "afternoon"],
        "consent": "on",
        "wait_until": days_ahead(20).isoformat(),
        **changes,
    }


def _sooner_link(booking) -> str:
    token = new_token()
    Appointment.objects.filter(pk=booking.pk).update(manage_token_hash=hash_token(token))
    return reverse("manage_sooner", args=[token])


def test_asking_for_a_sooner_time_with_only_days_after_the_booking_is_refused_and_keeps_what_was_typed(client, booking):
    response = client.post(_sooner_link(booking), join_form(first_name="Wilhelmina"))

    assert response.status_code == 400
    html = response.content.decode()
    assert "None of the days and times ticked comes before your booking on" in html
    assert "we only offer you earlier times" in html
    assert 'value="Wilhelmina"' in html
    assert re.search(rf'name="weekdays" value="{LATER_WEEKDAY}"[^>]*checked', html)
    assert not WaitingListEntry.objects.exists()


def test_asking_for_a_sooner_time_with_a_day_before_the_booking_joins(client, booking):
    response = client.post(
        _sooner_link(booking), join_form(weekdays=[str(LATER_WEEKDAY), str(days_ahead(1).weekday())])
    )

    assert response.status_code == 302
    assert WaitingListEntry.objects.get().appointment_id == booking.pk


def test_the_link_confirming_a_join_with_only_later_days_does_not_offer_to_move_the_booking(
    client, booking, mailoutbox
):
    pass_safety_check(client)
    client.post(reverse("waiting_list_join"), join_form())
    send_due_messages(now=timezone.now(), worker_id="test")
    link = entry_link_in(mailoutbox[-1])

    page = client.get(link).content.decode()

    assert "You are booked for" in page
    assert 'value="move"' not in page
    assert "the waiting list only moves a booking to an earlier time, so it could never move this one" in page
    assert '<input type="hidden" name="booking" value="another person">' in page


def test_confirming_a_move_with_only_later_days_is_refused_and_the_entry_is_left_to_confirm(
    client, booking, mailoutbox
):
    pass_safety_check(client)
    client.post(reverse("waiting_list_join"), join_form())
    send_due_messages(now=timezone.now(), worker_id="test")
    link = entry_link_in(mailoutbox[-1])

    page = client.post(link + "confirm/", {"booking": "move"}, follow=True).content.decode()

    assert "the waiting list only moves a booking to an earlier time: nothing has changed" in page
    entry = WaitingListEntry.objects.get()
    assert (entry.status, entry.appointment_id) == (WaitingListEntry.Status.PENDING, None)


def test_an_entry_moving_a_booking_says_only_times_before_it_are_offered(client, booking):
    _, token = waiting("wanda@example.org", appointment=booking)

    page = client.get(reverse("waiting_list_entry", args=[token])).content.decode()

    assert "We offer you only times before your booking on" in page
    assert "we cannot offer you any" not in page


def test_an_entry_whose_days_all_come_after_its_booking_says_it_cannot_be_offered_any_as_the_scan_shows(
    client, booking, dr_patel
):
    _, token = waiting("wanda@example.org", appointment=booking, weekdays=[LATER_WEEKDAY])
    make_slot(dr_patel, local(5, 11))
    waiting_list_scan(now=timezone.now())
    assert not WaitingListOffer.objects.exists()

    page = client.get(reverse("waiting_list_entry", args=[token])).content.decode()

    assert "None of the times you asked for comes before your booking on" in page
    assert "so we cannot offer you any" in page
    assert "We offer you only times before" not in page


@pytest.mark.parametrize(("part", "offered"), [("morning", True), ("afternoon", False)])
def test_on_the_bookings_own_day_only_a_part_of_the_day_before_it_counts_as_the_scan_does(
    booking, dr_patel, part, offered
):
    entry, _ = waiting(
        "wanda@example.org", appointment=booking, weekdays=[days_ahead(3).weekday()], parts_of_day=[part]
    )
    make_slot(dr_patel, local(3, 8, 30))
    make_slot(dr_patel, local(3, 14))
    waiting_list_scan(now=timezone.now())

    assert WaitingListOffer.objects.exists() is offered
    assert entry.wants_a_time_before(booking.slot.starts_at, now=timezone.now()) is offered
