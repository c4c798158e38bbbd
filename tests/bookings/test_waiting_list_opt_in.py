"""Joining the waiting list online is confirmed by the e-mailed link: what a stranger can and cannot learn or
do with someone else's address, a lost link, the booking an earlier time moves, and the days offered."""

from datetime import time, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bookings.models import Appointment, OutboundMessage, WaitingListEntry, WaitingListOffer, WorkingHours
from bookings.notifications import send_due_messages
from bookings.privacy import expired_data_purge, patient_data_erase, patient_records_for
from bookings.services import WAITING_LIST_CONFIRM_WITHIN, waiting_list_confirm, waiting_list_scan
from tests.helpers import (
    days_ahead,
    entry_link_in,
    local,
    make_slot,
    pass_safety_check,
    patient_books,
    waiting,
    works_on_weekdays,
)
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


def every_day(practitioner) -> None:
    for weekday in range(7):
        WorkingHours.objects.create(practitioner=practitioner, weekday=weekday, start_time=time(8), end_time=time(20))


def join_form(**changes) -> dict:
    return {
        "first_name": "Wanda",
        "last_name": "Waits",
        "email": "wanda@example.org",
        "phone": "07700 900456",
        "practitioner": "",
        "weekdays": [str(day) for day in range(7)],
        "parts_of_day": ["morning", "afternoon", "evening"],
        "consent": "on",
        "wait_until": days_ahead(20).isoformat(),
        **changes,
    }


def ask_to_join(client, **changes):
    pass_safety_check(client)
    return client.post(reverse("waiting_list_join"), join_form(**changes))


def link_e_mailed(mailoutbox, email="wanda@example.org") -> str:
    send_due_messages(now=timezone.now(), worker_id="test")
    return entry_link_in([message for message in mailoutbox if message.to == [email]][-1])


def accept_offer_of(client, slot):
    token = OutboundMessage.objects.get(waiting_list_offer__slot=slot).manage_token
    return client.post(reverse("waiting_list_offer", args=[token]))


def test_an_entry_whose_link_was_not_opened_is_offered_nothing_and_expires_after_a_day(client, dr_patel, mailoutbox):
    every_day(dr_patel)
    ask_to_join(client)
    entry = WaitingListEntry.objects.get()
    make_slot(dr_patel, local(4, 10))

    waiting_list_scan(now=timezone.now())
    assert not WaitingListOffer.objects.exists()

    waiting_list_scan(now=timezone.now() + WAITING_LIST_CONFIRM_WITHIN)
    entry.refresh_from_db()
    assert entry.status == WaitingListEntry.Status.LAPSED
    # The link of an entry that ended before the worker reached it is not sent.
    send_due_messages(now=timezone.now() + WAITING_LIST_CONFIRM_WITHIN, worker_id="test")
    assert mailoutbox == []
    assert OutboundMessage.objects.get(waiting_list_entry=entry).status == OutboundMessage.Status.SKIPPED


def test_a_link_opened_after_a_day_joins_nothing(dr_patel):
    every_day(dr_patel)
    entry, _ = waiting("wanda@example.org")
    WaitingListEntry.objects.filter(pk=entry.pk).update(status=WaitingListEntry.Status.PENDING)
    entry.refresh_from_db()

    outcome = waiting_list_confirm(entry=entry, now=entry.created_at + WAITING_LIST_CONFIRM_WITHIN, move_booking=True)

    assert outcome == "expired"
    assert WaitingListEntry.objects.get().status == WaitingListEntry.Status.LAPSED


def test_joining_from_the_time_page_with_a_booking_ahead_moves_it_by_default_when_an_offer_is_accepted(
    client, dr_patel, mailoutbox
):
    every_day(dr_patel)
    booking = patient_books(make_slot(dr_patel, local(9, 10)), first_name="Wanda", email="wanda@example.org")
    ask_to_join(client, email="WANDA@example.org")
    link = link_e_mailed(mailoutbox, "WANDA@example.org")

    page = client.get(link).content.decode()
    assert "You are booked for" in page and 'value="move" id="booking-move" checked' in page
    client.post(link + "confirm/", {"booking": "move"})
    assert WaitingListEntry.objects.get().appointment_id == booking.pk

    sooner = make_slot(dr_patel, local(3, 10))
    waiting_list_scan(now=timezone.now())
    accept_offer_of(client, sooner)

    booking.refresh_from_db()
    assert booking.slot_id == sooner.pk
    assert Appointment.objects.live().count() == 1


def test_joining_for_another_person_books_a_second_time_when_an_offer_is_accepted(client, dr_patel, mailoutbox):
    every_day(dr_patel)
    booking = patient_books(make_slot(dr_patel, local(9, 10)), first_name="Wanda", email="wanda@example.org")
    ask_to_join(client, first_name="Will")
    link = link_e_mailed(mailoutbox)

    client.post(link + "confirm/", {"booking": "another person"})
    assert WaitingListEntry.objects.get().appointment_id is None
    sooner = make_slot(dr_patel, local(3, 10))
    waiting_list_scan(now=timezone.now())
    accept_offer_of(client, sooner)

    assert sorted(Appointment.objects.live().values_list("first_name", flat=True)) == ["Wanda", "Will"]
    assert Appointment.objects.get(pk=booking.pk).slot.starts_at == local(9, 10)


def test_mallory_cannot_join_with_someone_else_s_address_nor_learn_or_block_it(client, dr_patel, mailoutbox):
    every_day(dr_patel)
    ask_to_join(client, first_name="Mallory")
    send_due_messages(now=timezone.now(), worker_id="test")
    assert not WaitingListEntry.objects.waiting().exists()
    [email] = mailoutbox
    assert "Mallory" not in email.body

    # Wanda, who owns the address, joins anyway: her own link is the one that counts.
    ask_to_join(client)
    link = link_e_mailed(mailoutbox)
    client.post(link + "confirm/")

    entry = WaitingListEntry.objects.waiting().get()
    assert entry.first_name == "Wanda"
    assert WaitingListEntry.objects.exclude(pk=entry.pk).get().status == WaitingListEntry.Status.REPLACED


def test_the_lost_link_form_answers_the_same_for_any_address_and_e_mails_a_fresh_link_only_to_one_waiting(
    client, dr_patel, mailoutbox
):
    entry, old_token = waiting("wanda@example.org")

    known = client.post(reverse("waiting_list_lost_link"), {"email": "Wanda@example.org"})
    unknown = client.post(reverse("waiting_list_lost_link"), {"email": "nobody@example.org"})

    assert known.status_code == unknown.status_code == 200
    assert known.content.decode().replace("Wanda@example.org", "X") == unknown.content.decode().replace(
        "nobody@example.org", "X"
    )
    link = link_e_mailed(mailoutbox)
    assert [message.to for message in mailoutbox] == [["wanda@example.org"]]
    assert client.get(reverse("waiting_list_entry", args=[old_token])).status_code == 404
    assert "Your place on the waiting list" in client.get(link).content.decode()


def test_the_lost_link_form_explains_a_bad_address_and_keeps_it(client, db):
    response = client.post(reverse("waiting_list_lost_link"), {"email": "not an address"})
    assert response.status_code == 400
    assert 'value="not an address"' in response.content.decode()


def test_the_join_form_offers_only_the_days_someone_works_and_refuses_a_day_off(client, dr_patel, dr_okafor):
    works_on_weekdays(dr_patel)
    WorkingHours.objects.create(practitioner=dr_okafor, weekday=0, start_time=time(9), end_time=time(12))
    pass_safety_check(client)

    page = client.get(reverse("waiting_list_join")).content.decode()
    assert "Friday" in page and "Saturday" not in page and "Sunday" not in page

    weekend = client.post(reverse("waiting_list_join"), join_form(weekdays=["5", "6"]))
    assert weekend.status_code == 400
    assert "The clinic has no hours on one of the days ticked" in weekend.content.decode()

    okafor_on_friday = client.post(
        reverse("waiting_list_join"), join_form(practitioner=str(dr_okafor.pk), weekdays=["4"])
    )
    assert okafor_on_friday.status_code == 400
    assert "Chidi Okafor does not work on the days ticked: they work on Monday." in okafor_on_friday.content.decode()
    assert not WaitingListEntry.objects.exists()


def test_erasure_and_the_purge_include_an_entry_whose_link_was_not_opened(client, dr_patel, mailoutbox, rita):
    every_day(dr_patel)
    booking = patient_books(make_slot(dr_patel, local(9, 10)), first_name="Wanda", email="wanda@example.org")
    ask_to_join(client)
    pending = WaitingListEntry.objects.get()
    assert pending in patient_records_for(booking).waiting_list_entries

    patient_data_erase(appointment=booking, reference="REF-1", actor=rita, now=timezone.now())

    pending.refresh_from_db()
    assert pending.anonymised_at and pending.email == "" and pending.status != WaitingListEntry.Status.PENDING
    assert OutboundMessage.objects.get(waiting_list_entry=pending).recipient == ""

    ask_to_join(client, email="other@example.org")
    other = WaitingListEntry.objects.get(email="other@example.org")
    later = timezone.now() + WAITING_LIST_CONFIRM_WITHIN + timedelta(days=400)
    waiting_list_scan(now=timezone.now() + WAITING_LIST_CONFIRM_WITHIN)
    expired_data_purge(now=later)
    other.refresh_from_db()
    assert other.anonymised_at and other.email == ""


def test_the_join_link_keeps_the_practitioner_and_week_of_the_time_page_and_leads_back_to_them(client, dr_patel):
    works_on_weekdays(dr_patel)
    monday = days_ahead(14) - timedelta(days=days_ahead(14).weekday())
    times = f"?week={monday.isoformat()}&practitioner={dr_patel.pk}"
    pass_safety_check(client)

    time_page = client.get(reverse("booking_time") + times).content.decode()
    join_url = reverse("waiting_list_join") + times.replace("&", "&amp;")
    assert f'href="{join_url}"' in time_page

    join_page = client.get(reverse("waiting_list_join") + times)
    assert join_page.context["form"]["practitioner"].value() == dr_patel.pk
    assert f'href="{reverse("booking_time")}{times.replace("&", "&amp;")}"' in join_page.content.decode()


def test_reception_s_list_shows_no_request_whose_link_is_unopened(client, dr_patel, rita):
    every_day(dr_patel)
    ask_to_join(Client(), first_name="Mallory", email="mallory@example.org")
    waiting("wanda@example.org")
    verified_login(client, rita)

    html = client.get(reverse("reception_waiting_list")).content.decode()

    assert "Wanda Waits" in html and "Mallory" not in html


def test_a_request_replaced_before_its_link_was_opened_says_so_not_that_it_waited_until_its_date(client, dr_patel):
    """Found by hand: asking to join again before confirming ended the first request as "Waited until the date
    given", on reception's screens and on its old link, though that date was still ahead."""
    every_day(dr_patel)
    ask_to_join(client, first_name="Wanda")
    first = WaitingListEntry.objects.get()

    ask_to_join(client, first_name="Wanda")

    first.refresh_from_db()
    assert first.status == WaitingListEntry.Status.REPLACED
    assert first.get_status_display() == "Replaced by a newer request"
    assert first.wait_until >= timezone.localdate()
    assert WaitingListEntry.objects.exclude(pk=first.pk).get().status == WaitingListEntry.Status.PENDING


def test_the_scan_ends_an_unopened_link_as_lapsed_and_a_past_last_day_as_expired(dr_patel):
    unopened, _ = waiting("una@example.org")
    WaitingListEntry.objects.filter(pk=unopened.pk).update(status=WaitingListEntry.Status.PENDING)
    past, _ = waiting("pat@example.org", wait_until=timezone.localdate())
    later = timezone.now() + max(WAITING_LIST_CONFIRM_WITHIN, timedelta(days=2))

    report = waiting_list_scan(now=later)

    statuses = dict(WaitingListEntry.objects.values_list("email", "status"))
    assert statuses == {"una@example.org": "lapsed", "pat@example.org": "expired"}
    assert report.expired_entries == 2
