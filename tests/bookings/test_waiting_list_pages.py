"""The waiting list's pages for patients: joining from the time page, the entry's own link, the offer link."""

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from bookings import views
from bookings.models import Appointment, OutboundMessage, WaitingListEntry, WaitingListOffer
from bookings.notifications import send_due_messages
from bookings.services import waiting_list_scan
from tests.helpers import (
    days_ahead,
    entry_link_in,
    local,
    make_slot,
    pass_safety_check,
    patient_books,
    time_link,
    waiting,
    works_on_weekdays,
)

pytestmark = pytest.mark.django_db

JOIN = {
    "first_name": "Wanda",
    "last_name": "Waits",
    "email": "wanda@example.org",
    "phone": "07700 900456",
    "practitioner": "",
    "weekdays": ["0", "1", "2", "3", "4"],
    "parts_of_day": ["morning", "afternoon"],
    "consent": "on",
}


def join_form(**changes) -> dict:
    return {**JOIN, "wait_until": days_ahead(20).isoformat(), **changes}


def offer_token(slot, email="wanda@example.org") -> str:
    return OutboundMessage.objects.get(
        waiting_list_offer__slot=slot, waiting_list_offer__entry__email=email
    ).manage_token


@pytest.fixture
def held_slot(dr_patel):
    """Dr Patel's 10:00 in four days, offered to Wanda and Xavier by the worker: held for them."""
    slot = make_slot(dr_patel, local(4, 10))
    waiting("wanda@example.org", joined=timezone.now() - timedelta(minutes=2))
    waiting("xavier@example.org", first_name="Xavier")
    waiting_list_scan(now=timezone.now())
    return slot


def test_the_time_page_leads_to_the_waiting_list_and_opening_the_e_mailed_link_joins_it(client, dr_patel, mailoutbox):
    works_on_weekdays(dr_patel)
    pass_safety_check(client)
    assert reverse("waiting_list_join") in client.get(reverse("booking_time")).content.decode()

    response = client.post(reverse("waiting_list_join"), join_form())

    assert "We've e-mailed a link to wanda@example.org" in response.content.decode()
    entry = WaitingListEntry.objects.get()
    assert entry.status == WaitingListEntry.Status.PENDING
    assert (entry.email, entry.weekdays, entry.parts_of_day) == (
        "wanda@example.org",
        [0, 1, 2, 3, 4],
        ["afternoon", "morning"],
    )
    assert entry.safety_answers["version"] and {a["answer"] for a in entry.safety_answers["answers"]} == {"no"}
    assert entry.privacy_notice_version

    send_due_messages(now=timezone.now(), worker_id="test")
    send_due_messages(now=timezone.now(), worker_id="test")
    [email] = mailoutbox
    assert email.to == ["wanda@example.org"] and "Wanda" not in email.body
    link = entry_link_in(email)
    assert "Confirm and join the list" in client.get(link).content.decode()

    response = client.post(link + "confirm/", follow=True)

    entry.refresh_from_db()
    assert entry.status == WaitingListEntry.Status.WAITING
    assert "You are on the waiting list" in response.content.decode()


def test_without_the_safety_check_nobody_joins(client, db):
    response = client.post(reverse("waiting_list_join"), join_form())
    assert response.status_code == 302
    assert not WaitingListEntry.objects.exists()


def test_bad_input_on_the_join_form_is_explained_and_kept(client, db):
    pass_safety_check(client)
    response = client.post(
        reverse("waiting_list_join"),
        join_form(email="not an address", weekdays=[], wait_until=(days_ahead(0) - timedelta(days=1)).isoformat()),
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "Please tick at least one day." in html
    assert "Please choose today or a later day." in html
    assert 'value="not an address"' in html
    assert not WaitingListEntry.objects.exists()


def test_joining_with_an_address_already_waiting_answers_as_any_join_and_e_mails_that_entry_a_fresh_link(
    client, dr_patel, mailoutbox
):
    works_on_weekdays(dr_patel)
    entry, old_token = waiting("wanda@example.org")
    pass_safety_check(client)
    fresh = client.post(reverse("waiting_list_join"), join_form(email="fresh@example.org"))
    pass_safety_check(client)

    again = client.post(reverse("waiting_list_join"), join_form(email="Wanda@Example.org", first_name="Mallory"))

    assert again.status_code == fresh.status_code == 200
    assert again.content.decode().replace("Wanda@Example.org", "X") == fresh.content.decode().replace(
        "fresh@example.org", "X"
    )
    assert WaitingListEntry.objects.waiting().get() == entry
    send_due_messages(now=timezone.now(), worker_id="test")
    [to_wanda] = [email for email in mailoutbox if email.to == ["wanda@example.org"]]
    assert "Mallory" not in to_wanda.body and to_wanda.subject == "Your link to the waiting list"
    assert client.get(reverse("waiting_list_entry", args=[old_token])).status_code == 404
    assert "Your place on the waiting list" in client.get(entry_link_in(to_wanda)).content.decode()


def test_the_entry_link_shows_the_entry_and_lets_the_patient_leave(client, db):
    entry, token = waiting("wanda@example.org")
    page = client.get(reverse("waiting_list_entry", args=[token]))
    assert "Your place on the waiting list" in page.content.decode()

    client.post(reverse("waiting_list_leave", args=[token]))

    entry.refresh_from_db()
    assert entry.status == WaitingListEntry.Status.LEFT
    assert client.get(reverse("waiting_list_entry", args=["forged-token"])).status_code == 404


def test_the_offer_e_mail_is_sent_once_by_the_worker_and_shows_nobody_else(held_slot, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    now = timezone.now()
    token = offer_token(held_slot)

    send_due_messages(now=now, worker_id="worker")
    send_due_messages(now=now + timedelta(minutes=1), worker_id="worker")

    to_wanda = [message for message in mail.outbox if message.to == ["wanda@example.org"]]
    assert len(to_wanda) == 1 and len(mail.outbox) == 2
    body = to_wanda[0].body + to_wanda[0].alternatives[0][0]
    assert reverse("waiting_list_offer", args=[token]) in body
    assert "Xavier" not in body and "xavier@example.org" not in body
    # Sent: the raw token no longer waits in the outbox.
    assert not OutboundMessage.objects.exclude(manage_token="").exists()


def test_an_offer_whose_hold_ended_is_not_sent(held_slot, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    report = send_due_messages(now=timezone.now() + timedelta(minutes=16), worker_id="worker")
    assert (report.sent, report.skipped) == (0, 2)
    assert mail.outbox == []


def test_opening_the_offer_link_books_nothing_and_accepting_books_the_time(client, held_slot):
    token = offer_token(held_slot)
    page = client.get(reverse("waiting_list_offer", args=[token]))
    assert page.status_code == 200 and "Accept this time" in page.content.decode()
    assert not Appointment.objects.exists()

    response = client.post(reverse("waiting_list_offer", args=[token]))

    assert response.status_code == 200
    assert "Your consultation is booked" in response.content.decode()
    assert Appointment.objects.live().get(slot=held_slot).source == Appointment.Source.WAITING_LIST


def test_the_second_to_accept_is_told_the_time_has_gone_and_stays_on_the_list(client, held_slot):
    client.post(reverse("waiting_list_offer", args=[offer_token(held_slot)]))

    response = client.post(reverse("waiting_list_offer", args=[offer_token(held_slot, "xavier@example.org")]))

    assert response.status_code == 409
    html = response.content.decode()
    assert "this time has gone" in html and "you are still on the waiting list" in html
    assert WaitingListEntry.objects.get(email="xavier@example.org").status == WaitingListEntry.Status.WAITING


@pytest.mark.parametrize("how", ["forged", "reused", "expired"])
def test_forged_reused_or_expired_accept_links_give_a_clear_page_and_change_nothing(client, held_slot, how, caplog):
    token = offer_token(held_slot)
    expected = {
        "forged": (404, "This link does not work"),
        "reused": (409, "already accepted"),
        "expired": (410, "This offer has ended"),
    }[how]
    if how == "reused":
        client.post(reverse("waiting_list_offer", args=[token]))
    if how == "forged":
        token = token[:-4] + "AAAA"
    if how == "expired":
        # Offered 20 minutes ago: the 15-minute hold has run out (the worker has not been by yet).
        ago = timezone.now() - timedelta(minutes=20)
        WaitingListOffer.objects.update(offered_at=ago, held_until=ago + timedelta(minutes=15))
    before = (
        list(Appointment.objects.values_list("pk", "status", "slot_id")),
        list(WaitingListOffer.objects.order_by("pk").values_list("status", flat=True)),
        list(WaitingListEntry.objects.order_by("pk").values_list("status", flat=True)),
    )

    with caplog.at_level(logging.DEBUG):
        response = client.post(reverse("waiting_list_offer", args=[token]))

    assert (response.status_code, expected[1] in response.content.decode()) == (expected[0], True)
    after = (
        list(Appointment.objects.values_list("pk", "status", "slot_id")),
        list(WaitingListOffer.objects.order_by("pk").values_list("status", flat=True)),
        list(WaitingListEntry.objects.order_by("pk").values_list("status", flat=True)),
    )
    assert after == before
    assert token not in caplog.text


# Outside a test transaction, as a server runs: inside one the page cache stays out of the way.
@pytest.mark.django_db(transaction=True)
def test_a_held_time_leaves_the_kept_time_page_at_once_and_comes_back_when_the_worker_ends_the_hold(client, dr_patel):
    slot = make_slot(dr_patel, local(4, 10))
    pass_safety_check(client)
    url = reverse("booking_time")
    assert time_link(slot) in client.get(url).content.decode()
    hits = views._time_pages.hits
    assert time_link(slot) in client.get(url).content.decode()
    assert views._time_pages.hits == hits + 1  # the kept page

    waiting("wanda@example.org")
    waiting_list_scan(now=timezone.now())

    # The offer's trigger moved the version: the kept page is not served again.
    assert time_link(slot) not in client.get(url).content.decode()

    WaitingListEntry.objects.update(status=WaitingListEntry.Status.LEFT, ended_at=timezone.now())
    waiting_list_scan(now=timezone.now() + timedelta(minutes=15))
    assert WaitingListOffer.objects.get().status == WaitingListOffer.Status.EXPIRED
    assert time_link(slot) in client.get(url).content.decode()


def test_a_patient_with_a_booking_waits_for_a_sooner_time_from_the_manage_link(client, dr_patel):
    works_on_weekdays(dr_patel)
    later = make_slot(dr_patel, local(9, 10))
    booking = patient_books(later, email="wanda@example.org")
    from bookings.models import hash_token, new_token

    token = new_token()
    Appointment.objects.filter(pk=booking.pk).update(manage_token_hash=hash_token(token))
    assert reverse("manage_sooner", args=[token]) in client.get(reverse("manage", args=[token])).content.decode()

    client.post(reverse("manage_sooner", args=[token]), join_form())

    entry = WaitingListEntry.objects.get()
    assert entry.appointment_id == booking.pk
    assert entry.safety_answers == booking.safety_answers


# Transactional: the command closes stale connections between rounds, as a long-running worker must.
@pytest.mark.django_db(transaction=True)
def test_the_e_mail_worker_offers_a_freed_time_and_the_next_batch_when_the_hold_ends_without_any_request(
    dr_patel, mailoutbox, time_machine, settings
):
    settings.WAITING_LIST_BATCH = 1
    time_machine.move_to(timezone.now(), tick=False)
    slot = make_slot(dr_patel, local(4, 10))
    waiting("wanda@example.org", joined=timezone.now() - timedelta(minutes=1))
    waiting("xavier@example.org", first_name="Xavier")

    call_command("send_messages", "--once", stdout=StringIO())
    assert [message.to for message in mailoutbox] == [["wanda@example.org"]]

    time_machine.move_to(timezone.now() + timedelta(minutes=15, seconds=1), tick=False)
    call_command("send_messages", "--once", stdout=StringIO())

    assert [message.to for message in mailoutbox] == [["wanda@example.org"], ["xavier@example.org"]]
    assert sorted(WaitingListOffer.objects.filter(slot=slot).values_list("status", flat=True)) == [
        "expired",
        "offered",
    ]


def test_the_join_page_says_how_long_the_details_are_kept_as_the_purge_does(client, dr_patel, settings):
    pass_safety_check(client)

    page = client.get(reverse("waiting_list_join")).content.decode()
    assert "erase them 30 days after you leave the list" in page

    settings.RETENTION = {**settings.RETENTION, "waiting_list": timedelta(days=61)}
    refused = client.post(reverse("waiting_list_join"), join_form(first_name=""))
    assert refused.status_code == 400 and "erase them 2 months after you leave the list" in refused.content.decode()
