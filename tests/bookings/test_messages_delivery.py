"""Delivery through the outbox: bookings never wait for the mail server, and nothing is lost."""

import logging
import smtplib
import socket
import time
from datetime import datetime, timedelta
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.db import connection
from django.template.loader import render_to_string

from bookings.models import OutboundMessage, Slot
from bookings.notifications import LEASE, claim_due_messages, send_due_messages
from bookings.services import PatientDetails, appointment_book

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=LONDON)
MONDAY_NINE = datetime(2026, 6, 8, 9, 0, tzinfo=LONDON)
Status = OutboundMessage.Status
Kind = OutboundMessage.Kind


@pytest.fixture(autouse=True)
def _mail_settings(settings):
    settings.RECEPTION_NOTIFY_EMAIL = ""
    settings.REMINDER_HOURS_BEFORE = 24
    settings.MESSAGE_MAX_ATTEMPTS = 10


def _slot(practitioner, start=MONDAY_NINE):
    return Slot.objects.create(practitioner=practitioner, starts_at=start, ends_at=start + timedelta(minutes=20))


def _book(slot, *, now=NOW, email="pat.ient@example.com"):
    patient = PatientDetails(first_name="Pat", last_name="Ient", phone="07700 900123", email=email)
    return appointment_book(slot_id=slot.pk, patient=patient, now=now)


def _confirmation():
    return OutboundMessage.objects.get(kind=Kind.CONFIRMATION)


def _closed_port() -> int:
    """A local port nobody listens on: connecting is refused at once, like a mail server that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _use_smtp(settings, port, timeout=10):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_TIMEOUT = timeout


class RaisingBackend(BaseEmailBackend):
    """A mail backend whose every send fails with the given error."""

    def __init__(self, error, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def send_messages(self, email_messages):
        raise self.error


def test_a_booking_succeeds_while_the_mail_server_is_down_and_a_later_worker_sends_its_message(
    dr_patel, settings, mailoutbox
):
    _use_smtp(settings, _closed_port())

    result = _book(_slot(dr_patel))
    report = send_due_messages(now=NOW, worker_id="first")

    assert result.appointment.pk is not None
    assert (report.sent, report.retrying) == (0, 1)
    message = _confirmation()
    assert message.status == Status.PENDING
    assert message.attempts == 1
    # A minute after the failure (the worker's clock runs on from the `now` it was given).
    assert NOW + timedelta(minutes=1) <= message.next_attempt_at < NOW + timedelta(minutes=1, seconds=5)
    assert "ConnectionRefusedError" in message.last_error

    # The server is back (the test backend stands in for it); the retry is due a minute later.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert send_due_messages(now=NOW + timedelta(seconds=59), worker_id="second").claimed == 0
    report = send_due_messages(now=message.next_attempt_at, worker_id="second")

    assert report.sent == 1
    assert [sent.to for sent in mailoutbox] == [["pat.ient@example.com"]]
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (Status.SENT, 2, "")


def test_a_mail_server_that_never_answers_delays_the_worker_not_the_booking(dr_patel, settings):
    # A server that accepts the connection but never says hello: smtplib waits for EMAIL_TIMEOUT.
    with socket.socket() as silent_server:
        silent_server.bind(("127.0.0.1", 0))
        silent_server.listen()
        _use_smtp(settings, silent_server.getsockname()[1], timeout=1)

        started = time.monotonic()
        _book(_slot(dr_patel))
        booking_seconds = time.monotonic() - started
        report = send_due_messages(now=NOW, worker_id="worker")

    assert booking_seconds < 0.5
    assert report.retrying == 1
    assert "timed out" in _confirmation().last_error


@pytest.mark.django_db(transaction=True)
def test_no_smtp_connection_is_opened_inside_the_booking_transaction(dr_patel, settings, monkeypatch):
    opened = []

    class RecordingSMTP:
        """Stands in for smtplib.SMTP: notes whether a transaction was open when it connected."""

        def __init__(self, host, port, **kwargs):
            opened.append(connection.in_atomic_block)

        def sendmail(self, from_addr, to_addrs, message):
            return {}

        def quit(self):
            pass

        def close(self):
            pass

    monkeypatch.setattr(smtplib, "SMTP", RecordingSMTP)
    _use_smtp(settings, 2525)

    _book(_slot(dr_patel))
    assert opened == []

    report = send_due_messages(now=NOW, worker_id="worker")
    assert report.sent == 1
    assert opened == [False]


def test_a_message_that_keeps_failing_backs_off_then_is_shown_to_staff(dr_patel, settings):
    settings.MESSAGE_MAX_ATTEMPTS = 5
    backend = RaisingBackend(smtplib.SMTPServerDisconnected("Connection unexpectedly closed"))
    _book(_slot(dr_patel))

    delays = []
    now = NOW
    for _ in range(5):
        send_due_messages(now=now, worker_id="worker", connection=backend)
        message = _confirmation()
        if message.status == Status.PENDING:
            delays.append(message.next_attempt_at - now)
            now = message.next_attempt_at

    assert [round(delay.total_seconds() / 60) for delay in delays] == [1, 2, 4, 8]
    assert message.status == Status.FAILED
    assert message.attempts == 5
    assert list(OutboundMessage.objects.needs_attention(now=NOW)) == [message]
    panel = render_to_string(
        "bookings/_failed_messages.html", {"failed_messages": OutboundMessage.objects.needs_attention(now=NOW)}
    )
    assert "E-mails not delivered" in panel
    assert "Confirmation" in panel and "Pat Ient" in panel
    assert "gave up after 5 attempts" in panel


def test_the_retry_delay_doubles_up_to_an_hour(dr_patel, settings):
    from bookings.notifications import retry_delay

    minutes = [retry_delay(attempt).total_seconds() / 60 for attempt in range(1, 11)]

    assert minutes == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]


def test_reception_sees_a_message_still_retrying_after_three_attempts(dr_patel):
    backend = RaisingBackend(ConnectionRefusedError(111, "Connection refused"))
    _book(_slot(dr_patel))
    now = NOW
    for _ in range(3):
        assert not OutboundMessage.objects.needs_attention(now=now).exists()
        send_due_messages(now=now, worker_id="worker", connection=backend)
        now = _confirmation().next_attempt_at

    panel = render_to_string(
        "bookings/_failed_messages.html", {"failed_messages": OutboundMessage.objects.needs_attention(now=now)}
    )
    assert "still retrying (3 attempts so far" in panel


def test_the_failed_messages_panel_shows_nothing_when_all_is_well(dr_patel):
    _book(_slot(dr_patel))

    panel = render_to_string(
        "bookings/_failed_messages.html", {"failed_messages": OutboundMessage.objects.needs_attention(now=NOW)}
    )

    assert panel.strip() == ""


def test_a_recipient_the_server_refuses_for_good_is_not_retried_and_its_address_is_not_stored(dr_patel):
    refused = smtplib.SMTPRecipientsRefused({"pat.ient@example.com": (550, b"5.1.1 pat.ient@example.com unknown")})
    _book(_slot(dr_patel))

    report = send_due_messages(now=NOW, worker_id="worker", connection=RaisingBackend(refused))

    message = _confirmation()
    assert report.failed == 1
    assert (message.status, message.attempts) == (Status.FAILED, 1)
    assert "SMTPRecipientsRefused" in message.last_error
    assert "pat.ient@example.com" not in message.last_error


def test_a_message_whose_worker_died_is_sent_by_the_next_worker_once_the_lease_runs_out(dr_patel, mailoutbox):
    _book(_slot(dr_patel))
    # A worker claims the message and is killed before it sends anything.
    (claimed,) = claim_due_messages(now=NOW, worker_id="killed", limit=10)
    assert claimed.status == Status.SENDING and claimed.lease_expires_at == NOW + LEASE

    assert send_due_messages(now=NOW + LEASE - timedelta(seconds=1), worker_id="next").claimed == 0
    report = send_due_messages(now=NOW + LEASE, worker_id="next")

    assert report.sent == 1
    assert len(mailoutbox) == 1
    message = _confirmation()
    assert (message.status, message.attempts, message.claimed_by) == (Status.SENT, 2, "next")


def test_a_message_that_kills_its_worker_every_time_is_given_up(dr_patel, settings):
    settings.MESSAGE_MAX_ATTEMPTS = 2
    _book(_slot(dr_patel))
    now = NOW
    for worker in ("killed-1", "killed-2"):
        assert claim_due_messages(now=now, worker_id=worker, limit=10)
        now += LEASE

    assert claim_due_messages(now=now, worker_id="next", limit=10) == []
    message = _confirmation()
    assert message.status == Status.FAILED
    assert "stopped while sending" in message.last_error


def test_a_worker_whose_claim_was_taken_over_does_not_overwrite_the_new_claim(dr_patel, mailoutbox):
    _book(_slot(dr_patel))

    class SlowBackend(BaseEmailBackend):
        """While this send hangs past the lease, another worker takes the message over."""

        def send_messages(self, email_messages):
            claim_due_messages(now=NOW + LEASE, worker_id="successor", limit=10)
            return len(email_messages)

    report = send_due_messages(now=NOW, worker_id="slow", connection=SlowBackend())

    assert report.sent == 0
    assert report.lost == [_confirmation().pk]
    message = _confirmation()
    assert (message.status, message.claimed_by, message.attempts) == (Status.SENDING, "successor", 2)


def test_a_worker_asked_to_stop_hands_back_the_rest_of_its_batch_uncounted(dr_patel, mailoutbox):
    for hour in (9, 10, 11):
        _book(_slot(dr_patel, MONDAY_NINE.replace(hour=hour)))
    sends = []

    report = send_due_messages(now=NOW, worker_id="worker", should_stop=lambda: len(mailoutbox) >= 1)
    sends.append(report)

    assert (report.claimed, report.sent, report.released) == (3, 1, 2)
    waiting = OutboundMessage.objects.filter(kind=Kind.CONFIRMATION, status=Status.PENDING)
    assert [message.attempts for message in waiting] == [0, 0]
    assert send_due_messages(now=NOW, worker_id="next").sent == 2


# Transactional: the command closes stale connections between batches, as a long-running worker must.
@pytest.mark.django_db(transaction=True)
def test_the_worker_command_sends_what_is_due_and_exits_when_run_once(dr_patel, mailoutbox, time_machine):
    time_machine.move_to(NOW, tick=False)
    for hour in (9, 10, 11):
        _book(_slot(dr_patel, MONDAY_NINE.replace(hour=hour)))

    call_command("send_messages", "--once", "--batch", "2", stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert len(mailoutbox) == 3
    assert not OutboundMessage.objects.filter(kind=Kind.CONFIRMATION).exclude(status=Status.SENT).exists()


def test_log_lines_name_no_recipient_and_no_manage_token(dr_patel, caplog):
    caplog.set_level(logging.DEBUG)
    result = _book(_slot(dr_patel))
    refused = smtplib.SMTPRecipientsRefused({"pat.ient@example.com": (450, b"try later pat.ient@example.com")})
    send_due_messages(now=NOW, worker_id="worker", connection=RaisingBackend(refused))
    send_due_messages(now=_confirmation().next_attempt_at, worker_id="worker")

    assert _confirmation().status == Status.SENT
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Outbound message" in logged
    assert "pat.ient" not in logged
    assert result.manage_token not in logged


def test_staff_see_the_outbox_in_the_admin_read_only_and_never_the_manage_token(dr_patel, admin_client):
    result = _book(_slot(dr_patel))
    message = _confirmation()

    listing = admin_client.get("/admin/bookings/outboundmessage/?status__exact=pending")
    detail = admin_client.get(f"/admin/bookings/outboundmessage/{message.pk}/change/")

    assert listing.status_code == 200 and detail.status_code == 200
    assert "Confirmation" in listing.content.decode()
    assert result.manage_token not in detail.content.decode()
    assert not detail.context["has_change_permission"]
    assert admin_client.get("/admin/bookings/outboundmessage/add/").status_code == 403


def test_staff_can_send_a_failed_message_again_from_the_admin(dr_patel, admin_client, mailoutbox):
    _book(_slot(dr_patel))
    refused = smtplib.SMTPRecipientsRefused({"pat.ient@example.com": (550, b"unknown")})
    send_due_messages(now=NOW, worker_id="worker", connection=RaisingBackend(refused))
    message = _confirmation()
    assert message.status == Status.FAILED

    admin_client.post(
        "/admin/bookings/outboundmessage/", {"action": "retry_now", "_selected_action": [message.pk]}, follow=True
    )
    message.refresh_from_db()
    send_due_messages(now=message.next_attempt_at, worker_id="worker")

    message.refresh_from_db()
    assert (message.status, message.attempts) == (Status.SENT, 1)
    assert len(mailoutbox) == 1


@pytest.mark.parametrize("failures", [1, 3])
def test_the_failed_messages_panel_costs_one_query_however_many_failed(dr_patel, failures, django_assert_num_queries):
    refused = smtplib.SMTPRecipientsRefused({"pat.ient@example.com": (550, b"unknown")})
    for hour in range(9, 9 + failures):
        _book(_slot(dr_patel, MONDAY_NINE.replace(hour=hour)))
    send_due_messages(now=NOW, worker_id="worker", connection=RaisingBackend(refused))

    # 1. the messages with their appointment, slot and practitioner
    with django_assert_num_queries(1):
        panel = render_to_string(
            "bookings/_failed_messages.html", {"failed_messages": OutboundMessage.objects.needs_attention(now=NOW)}
        )

    assert panel.count("<li") == failures


def test_a_long_smtp_timeout_lengthens_the_lease_so_a_slow_send_never_outlives_its_claim(settings):
    from bookings.notifications import lease_length

    settings.EMAIL_TIMEOUT = 10
    assert lease_length() == LEASE
    settings.EMAIL_TIMEOUT = 120
    assert lease_length() == timedelta(seconds=2 * (6 * 120 + 30))


def test_reception_sees_messages_long_overdue_when_no_worker_is_running(dr_patel):
    _book(_slot(dr_patel))
    assert not OutboundMessage.objects.needs_attention(now=NOW + timedelta(minutes=14)).exists()

    overdue = OutboundMessage.objects.needs_attention(now=NOW + timedelta(minutes=15))

    assert [message.kind for message in overdue] == [Kind.CONFIRMATION]
    panel = render_to_string("bookings/_failed_messages.html", {"failed_messages": overdue})
    assert "waiting since Mon 1 Jun 09:00: is the e-mail worker running?" in panel


def test_a_confirmation_that_failed_for_good_forgets_its_manage_token_and_a_retry_carries_a_fresh_link(
    dr_patel, admin_client, mailoutbox, client
):
    result = _book(_slot(dr_patel))
    refused = smtplib.SMTPRecipientsRefused({"pat.ient@example.com": (550, b"unknown")})
    send_due_messages(now=NOW, worker_id="worker", connection=RaisingBackend(refused))
    message = _confirmation()
    assert message.status == Status.FAILED
    assert message.manage_token == ""
    assert not OutboundMessage.objects.filter(manage_token=result.manage_token).exists()

    admin_client.post(
        "/admin/bookings/outboundmessage/", {"action": "retry_now", "_selected_action": [message.pk]}, follow=True
    )
    message.refresh_from_db()
    send_due_messages(now=message.next_attempt_at, worker_id="worker")

    (sent,) = mailoutbox
    link = next(word for word in sent.body.split() if "/manage/" in word)
    with time_machine.travel(NOW, tick=False):
        response = client.get(urlparse(link).path)
    assert response.status_code == 200
    assert response.context["appointment"].pk == result.appointment.pk
