"""Reminders: one, before the appointment as it stands, never for a time that no longer holds."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from bookings.models import Appointment, OutboundMessage, Slot
from bookings.notifications import LEASE, claim_due_messages, send_due_messages
from bookings.services import PatientDetails, appointment_book, appointment_cancel, appointment_move

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=LONDON)
MONDAY_NINE = datetime(2026, 6, 8, 9, 0, tzinfo=LONDON)
WEDNESDAY_TEN = datetime(2026, 6, 10, 10, 0, tzinfo=LONDON)
Kind = OutboundMessage.Kind
Status = OutboundMessage.Status

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _mail_settings(settings):
    settings.RECEPTION_NOTIFY_EMAIL = ""
    settings.REMINDER_HOURS_BEFORE = 24


def _slot(practitioner, start):
    return Slot.objects.create(practitioner=practitioner, starts_at=start, ends_at=start + timedelta(minutes=20))


def _book(slot, *, now=NOW):
    patient = PatientDetails(first_name="Pat", last_name="Ient", phone="07700 900123", email="pat.ient@example.com")
    return appointment_book(slot_id=slot.pk, patient=patient, now=now)


def _send(now):
    return send_due_messages(now=now, worker_id="worker")


def _reminders(mailoutbox):
    return [sent.subject for sent in mailoutbox if sent.subject.startswith("Reminder")]


def test_the_reminder_goes_out_24_hours_before_and_not_earlier(dr_patel, mailoutbox):
    _book(_slot(dr_patel, MONDAY_NINE))

    _send(NOW)
    _send(MONDAY_NINE - timedelta(hours=24, seconds=1))
    assert _reminders(mailoutbox) == []

    _send(MONDAY_NINE - timedelta(hours=24))
    assert _reminders(mailoutbox) == ["Reminder: your free consultation on Mon 8 Jun at 09:00"]

    _send(MONDAY_NINE - timedelta(hours=1))
    assert len(_reminders(mailoutbox)) == 1


# Transactional: the command closes stale connections between batches, as a long-running worker must.
@pytest.mark.django_db(transaction=True)
def test_the_worker_command_sends_the_reminder_when_the_clock_reaches_it(dr_patel, mailoutbox, time_machine):
    time_machine.move_to(NOW, tick=False)
    _book(_slot(dr_patel, MONDAY_NINE), now=NOW)
    mailoutbox.clear()
    OutboundMessage.objects.filter(kind=Kind.CONFIRMATION).update(status=Status.SENT, sent_at=NOW)

    time_machine.move_to(MONDAY_NINE - timedelta(hours=24, minutes=1), tick=False)
    call_command("send_messages", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert mailoutbox == []

    time_machine.move_to(MONDAY_NINE - timedelta(hours=23, minutes=59), tick=False)
    call_command("send_messages", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert _reminders(mailoutbox) == ["Reminder: your free consultation on Mon 8 Jun at 09:00"]


def test_a_cancelled_appointment_gets_no_reminder(dr_patel, mailoutbox):
    result = _book(_slot(dr_patel, MONDAY_NINE))
    _send(NOW)

    appointment_cancel(appointment=result.appointment, now=NOW + timedelta(days=1))
    _send(MONDAY_NINE - timedelta(hours=24))

    assert _reminders(mailoutbox) == []
    reminder = OutboundMessage.objects.get(kind=Kind.REMINDER)
    assert reminder.status == Status.SKIPPED
    assert reminder.last_error == "Not needed: the appointment was cancelled."


def test_a_moved_appointment_gets_its_reminder_at_the_new_time_only(dr_patel, mailoutbox):
    result = _book(_slot(dr_patel, MONDAY_NINE))
    appointment_move(appointment=result.appointment, new_slot_id=_slot(dr_patel, WEDNESDAY_TEN).pk, now=NOW)

    _send(MONDAY_NINE - timedelta(hours=24))
    assert _reminders(mailoutbox) == []

    _send(WEDNESDAY_TEN - timedelta(hours=24))
    assert _reminders(mailoutbox) == ["Reminder: your free consultation on Wed 10 Jun at 10:00"]
    reminders = OutboundMessage.objects.filter(kind=Kind.REMINDER).order_by("pk")
    assert [(reminder.status, reminder.send_after) for reminder in reminders] == [
        (Status.SKIPPED, MONDAY_NINE - timedelta(hours=24)),
        (Status.SENT, WEDNESDAY_TEN - timedelta(hours=24)),
    ]


def test_a_reminder_already_claimed_when_the_appointment_moved_is_not_sent_for_the_old_time(dr_patel, mailoutbox):
    """The move cannot skip a reminder a worker holds; the re-check at send time catches it."""
    result = _book(_slot(dr_patel, MONDAY_NINE))
    _send(NOW)
    reminder_time = MONDAY_NINE - timedelta(hours=24)
    # A worker claims the reminder, then dies; meanwhile reception moves the appointment.
    claim_due_messages(now=reminder_time, worker_id="killed", limit=10)
    appointment_move(appointment=result.appointment, new_slot_id=_slot(dr_patel, WEDNESDAY_TEN).pk, now=reminder_time)

    _send(reminder_time + LEASE)

    old_reminder = OutboundMessage.objects.filter(kind=Kind.REMINDER).order_by("pk").first()
    assert old_reminder.status == Status.SKIPPED
    assert old_reminder.last_error == "Not needed: the appointment was changed after this reminder was queued."
    assert _reminders(mailoutbox) == []


def test_no_reminder_goes_to_an_appointment_marked_did_not_attend_or_already_started(dr_patel, mailoutbox):
    first = _book(_slot(dr_patel, MONDAY_NINE))
    _book(_slot(dr_patel, WEDNESDAY_TEN))
    Appointment.objects.filter(pk=first.appointment.pk).update(status=Appointment.Status.NO_SHOW)

    # The worker was down for days: both reminders come due only after their appointments started.
    _send(WEDNESDAY_TEN + timedelta(minutes=1))

    assert _reminders(mailoutbox) == []
    assert sorted(OutboundMessage.objects.filter(kind=Kind.REMINDER).values_list("last_error", flat=True)) == [
        "Not needed: the appointment has started.",
        "Not needed: the appointment is did not attend.",
    ]


def test_no_reminder_is_queued_for_a_booking_made_within_the_reminder_window(dr_patel):
    _book(_slot(dr_patel, MONDAY_NINE), now=MONDAY_NINE - timedelta(hours=23))

    assert list(OutboundMessage.objects.values_list("kind", flat=True)) == [Kind.CONFIRMATION]


def test_the_reminder_time_follows_the_setting(dr_patel, settings):
    settings.REMINDER_HOURS_BEFORE = 48

    _book(_slot(dr_patel, MONDAY_NINE))

    assert OutboundMessage.objects.get(kind=Kind.REMINDER).send_after == MONDAY_NINE - timedelta(hours=48)


def test_no_reminders_are_queued_when_the_setting_is_zero(dr_patel, settings):
    settings.REMINDER_HOURS_BEFORE = 0

    _book(_slot(dr_patel, MONDAY_NINE))

    assert not OutboundMessage.objects.filter(kind=Kind.REMINDER).exists()


def test_a_confirmation_retried_after_the_cancellation_went_out_is_not_sent(dr_patel, mailoutbox):
    result = _book(_slot(dr_patel, MONDAY_NINE))
    # The mail server refused the confirmation; its retry is due in 20 minutes.
    OutboundMessage.objects.filter(kind=Kind.CONFIRMATION).update(
        attempts=2, next_attempt_at=NOW + timedelta(minutes=20)
    )
    appointment_cancel(appointment=result.appointment, now=NOW + timedelta(minutes=5), reason="")
    _send(NOW + timedelta(minutes=10))
    _send(NOW + timedelta(minutes=30))
    subjects = [sent.subject for sent in mailoutbox]
    assert [subject.split(":")[0] for subject in subjects] == ["Cancelled"], subjects
    assert OutboundMessage.objects.get(kind=Kind.CONFIRMATION).status == Status.SKIPPED


def test_a_move_notice_retried_after_a_later_move_went_out_is_not_sent(dr_patel, mailoutbox):
    result = _book(_slot(dr_patel, MONDAY_NINE))
    _send(NOW)
    first, second = _slot(dr_patel, WEDNESDAY_TEN), _slot(dr_patel, WEDNESDAY_TEN + timedelta(hours=2))
    appointment_move(appointment=result.appointment, new_slot_id=first.pk, now=NOW + timedelta(minutes=1))
    OutboundMessage.objects.filter(kind=Kind.MOVED).update(attempts=1, next_attempt_at=NOW + timedelta(minutes=20))
    appointment_move(appointment=result.appointment, new_slot_id=second.pk, now=NOW + timedelta(minutes=2))
    _send(NOW + timedelta(minutes=3))
    _send(NOW + timedelta(minutes=30))
    moved = OutboundMessage.objects.filter(kind=Kind.MOVED).order_by("sequence")
    assert [message.status for message in moved] == [Status.SKIPPED, Status.SENT]
