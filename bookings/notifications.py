"""E-mails caused by appointment changes, sent once each through an outbox table.

Recording happens inside the change's own transaction: `appointment_changed()` (called by
`bookings.services._record_event`) inserts `OutboundMessage` rows, so a message exists if and
only if the change committed. Nothing is sent there; no mail server is contacted.

Sending happens in a separate worker process (`manage.py send_messages`), via
`send_due_messages()`:

1. Claim: in one short transaction, `SELECT ... FOR UPDATE SKIP LOCKED` the due rows (pending
   and due, or `sending` with an expired lease), then mark them `sending` with this worker's
   id, a lease and one more attempt. Two workers never claim the same row; a row whose worker
   was killed becomes claimable again when its lease runs out.
2. Send: outside any transaction, render each message (from the slot and SEQUENCE recorded
   with it, so it describes the appointment as that change left it) and hand it to the backend.
   Before each send the worker checks its lease still has room for a full SMTP exchange;
   if not, it releases the rest instead of risking a second worker sending them too.
3. Record: mark the row `sent` at once, with a compare-and-set on (status, attempts), so a
   worker that lost its claim cannot overwrite another's result. A failure backs off
   exponentially (1, 2, 4 ... 60 minutes) up to MESSAGE_MAX_ATTEMPTS, then the row is
   `failed` and shows on the reception screen and in the admin.

The one window no mail system closes: the server has accepted a message but the worker dies
before step 3 commits. The next worker sends it again after the lease. It is kept small: the
row is marked straight after the server's reply, by primary key, in autocommit (about a
millisecond); every attempt carries the same Message-ID, so the copy is recognisably one message.

Why not django-tasks with its database backend: in django-tasks-db 0.13 a task that raises is
marked FAILED for good (no retries, no backoff) and a task whose worker is killed stays RUNNING
for ever (nothing re-claims it). Adding both on top means writing a lease and a retry schedule
anyway, and reminders need a row we can find and skip when the appointment changes. This outbox
is that row, with the lease and the schedule, in about the same amount of code.

Reminders are rows with `send_after` = start - REMINDER_HOURS_BEFORE. A move or cancellation
skips the waiting one in the same transaction (and a move records a new one), and the worker
re-checks at send time that the appointment is still booked at the same slot and SEQUENCE.

The manage link: every patient message carries one, so a patient who deleted the confirmation
can still change the booking. A confirmation carries the token the booking was made with (the
raw token exists only at booking time: the appointment stores its hash); the row keeps it until
the message is sent, skipped or failed for good, then blanks it (a retry from the admin then
issues a fresh link at send time, as the other messages do). Moved, cancelled and reminder
messages get a fresh token at send time (`ManageLinkToken`, only its hash stored, so no raw
token waits in the outbox for days): every token issued stays valid, so the link the patient
already has, and the manage page they may have just used, keep working.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlparse

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import SafeMIMEText
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse

from bookings.calendar import appointment_ics
from bookings.models import (
    OPEN_ENTRY_STATUSES,
    Appointment,
    AppointmentEvent,
    ManageLinkToken,
    OutboundMessage,
    WaitingListOffer,
    hash_token,
    offers_in_batch,
)
from bookings.schedule import clinic_zone
from clinic.logging import redact
from clinic.prepared import PreparedInsert

logger = logging.getLogger(__name__)

Kind = OutboundMessage.Kind
Status = OutboundMessage.Status

# A claimed message belongs to its worker for the lease (at least LEASE). A worker starts no
# new send once a slow SMTP exchange (several steps, each up to EMAIL_TIMEOUT) might not fit in
# what is left, and the lease is at least twice that margin: a send never outlives its claim.
LEASE = timedelta(minutes=5)
RETRY_FIRST_DELAY = timedelta(minutes=1)
RETRY_MAX_DELAY = timedelta(hours=1)

_PATIENT_KIND = {
    AppointmentEvent.Action.BOOKED: Kind.CONFIRMATION,
    AppointmentEvent.Action.MOVED: Kind.MOVED,
    AppointmentEvent.Action.CANCELLED: Kind.CANCELLED,
}
_RECEPTION_KIND = {
    AppointmentEvent.Action.BOOKED: Kind.RECEPTION_BOOKED,
    AppointmentEvent.Action.MOVED: Kind.RECEPTION_MOVED,
    AppointmentEvent.Action.CANCELLED: Kind.RECEPTION_CANCELLED,
}
# The .ics METHOD attached to each patient message (reminders and reception carry none).
_ICS_METHOD = {Kind.CONFIRMATION: "REQUEST", Kind.MOVED: "REQUEST", Kind.CANCELLED: "CANCEL"}
# The patient's messages: each carries a manage link.
_TO_PATIENT = (Kind.CONFIRMATION, Kind.MOVED, Kind.CANCELLED, Kind.REMINDER)


# -- Recording, inside the caller's transaction --------------------------------------------


def reminder_time(appointment) -> datetime | None:
    """When the reminder for this appointment goes out, or None when reminders are off."""
    if not settings.REMINDER_HOURS_BEFORE:
        return None
    return appointment.slot.starts_at - timedelta(hours=settings.REMINDER_HOURS_BEFORE)


# Written in every appointment change's transaction (a booking's too): the INSERT written once per process.
_INSERT_MESSAGES = PreparedInsert(OutboundMessage)


def appointment_changed(
    appointment, *, action: str, now: datetime, notify_patient: bool = True, manage_token: str | None = None
) -> None:
    """Record the messages this change causes. Must run in the change's transaction.

    1. A move or cancellation skips the reminder still waiting for the old time.
    2. The new messages (`messages_for_change`) go in with one INSERT.
    """
    if action in (AppointmentEvent.Action.MOVED, AppointmentEvent.Action.CANCELLED):
        OutboundMessage.objects.filter(appointment=appointment, kind=Kind.REMINDER, status=Status.PENDING).update(
            status=Status.SKIPPED, last_error=f"Not needed: the appointment was {action}.", lease_expires_at=None
        )
    messages = messages_for_change(
        appointment, action=action, now=now, notify_patient=notify_patient, manage_token=manage_token
    )
    if messages:
        _INSERT_MESSAGES.insert(*messages)


def messages_for_change(
    appointment, *, action: str, now: datetime, notify_patient: bool = True, manage_token: str | None = None
) -> list[OutboundMessage]:
    """The new messages a change causes, not saved (a booking inserts them with its appointment):

    1. The patient's message (if they gave an e-mail address and are to be told).
    2. A new reminder for a booking or a move, if its time is still ahead.
    3. Reception's copy, if RECEPTION_NOTIFY_EMAIL is set.
    """
    messages = []
    patient_kind = _PATIENT_KIND.get(action)
    if patient_kind and appointment.email and notify_patient:
        messages.append(
            _new_message(
                appointment,
                kind=patient_kind,
                recipient=appointment.email,
                now=now,
                manage_token=manage_token if patient_kind == Kind.CONFIRMATION else "",
            )
        )
    if action in (AppointmentEvent.Action.BOOKED, AppointmentEvent.Action.MOVED) and appointment.email:
        send_at = reminder_time(appointment)
        if send_at is not None and send_at > now:
            messages.append(
                _new_message(appointment, kind=Kind.REMINDER, recipient=appointment.email, now=now, send_after=send_at)
            )
    reception_kind = _RECEPTION_KIND.get(action)
    if reception_kind and settings.RECEPTION_NOTIFY_EMAIL:
        messages.append(
            _new_message(appointment, kind=reception_kind, recipient=settings.RECEPTION_NOTIFY_EMAIL, now=now)
        )
    return messages


def _new_message(appointment, *, kind, recipient, now, send_after=None, manage_token=None) -> OutboundMessage:
    send_after = send_after or now
    return OutboundMessage(
        kind=kind,
        appointment=appointment,
        recipient=recipient,
        slot_id=appointment.slot_id,
        sequence=appointment.sequence,
        manage_token=manage_token or "",
        created_at=now,
        send_after=send_after,
        next_attempt_at=send_after,
    )


def waiting_list_offered(offers, *, tokens: list[str], now: datetime) -> None:
    """Record one e-mail per waiting-list offer, in the offer's transaction. The raw accept token waits in
    the row (the offer keeps its hash) and is blanked once the message is sent or skipped."""
    OutboundMessage.objects.bulk_create(
        OutboundMessage(
            kind=Kind.WAITING_LIST_OFFER,
            waiting_list_offer=offer,
            recipient=offer.entry.email,
            slot_id=offer.slot_id,
            sequence=0,
            manage_token=token,
            created_at=now,
            send_after=now,
            next_attempt_at=now,
        )
        for offer, token in zip(offers, tokens, strict=True)
    )


def waiting_list_link(*, entry, token: str, now: datetime) -> None:
    """Record the e-mail carrying an entry's link, in the transaction that issued it: joining online is only
    confirmed by opening it (the address is theirs), and a lost link is recovered the same way. The raw token
    waits in the row (the entry keeps its hash) and is blanked once the message is sent or skipped."""
    OutboundMessage.objects.create(
        kind=Kind.WAITING_LIST_LINK,
        waiting_list_entry=entry,
        recipient=entry.email,
        slot=None,
        sequence=0,
        manage_token=token,
        created_at=now,
        send_after=now,
        next_attempt_at=now,
    )


# -- Rendering, in the worker ---------------------------------------------------------------


def _as_recorded(message: OutboundMessage) -> Appointment:
    """The appointment as the message describes it: its slot, SEQUENCE and status at the change."""
    current = message.appointment
    return Appointment(
        pk=current.pk,
        first_name=current.first_name,
        last_name=current.last_name,
        # The invitation's ATTENDEE: the address the message goes to.
        email=message.recipient if message.kind in _ICS_METHOD else "",
        source=current.source,
        slot=message.slot,
        sequence=message.sequence,
        status=Appointment.Status.CANCELLED if message.kind == Kind.CANCELLED else Appointment.Status.BOOKED,
        updated_at=message.created_at,
    )


_SUBJECTS = {
    Kind.CONFIRMATION: "Booked: your free consultation on {when}",
    Kind.MOVED: "Moved: your free consultation is now on {when}",
    Kind.CANCELLED: "Cancelled: your free consultation on {when}",
    Kind.REMINDER: "Reminder: your free consultation on {when}",
    Kind.RECEPTION_BOOKED: "New booking: {when} with {practitioner}",
    Kind.RECEPTION_MOVED: "Booking moved to {when} with {practitioner}",
    Kind.RECEPTION_CANCELLED: "Booking cancelled: {when} with {practitioner}",
}


def _clinic_context() -> dict:
    return {
        "name": settings.CLINIC_NAME,
        "address": settings.CLINIC_ADDRESS,
        "phone": settings.CLINIC_PHONE,
        "email": settings.CLINIC_EMAIL,
        "directions": settings.CLINIC_DIRECTIONS,
    }


def _email(message: OutboundMessage, *, subject: str, template: str, context: dict) -> EmailMultiAlternatives:
    """One outbox row's e-mail from bookings/email/TEMPLATE.txt and .html."""
    email = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"bookings/email/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.recipient],
        reply_to=[settings.CLINIC_EMAIL],
        # The same Message-ID on every attempt: a copy sent twice (see README) is recognisably one message.
        headers={"Message-ID": f"<outbound-{message.pk}@{_mail_domain()}>"},
    )
    email.attach_alternative(render_to_string(f"bookings/email/{template}.html", context), "text/html")
    return email


def _offered_to(message: OutboundMessage) -> int:
    """How many people the offer's time went to: annotated by the claim (counted here for one claimed otherwise)."""
    size = getattr(message, "offer_batch_size", None)
    if size is None:
        offer = message.waiting_list_offer
        size = WaitingListOffer.objects.filter(slot_id=offer.slot_id, batch=offer.batch).count()
    return size


def render_offer_message(message: OutboundMessage) -> EmailMultiAlternatives:
    """A waiting-list offer: the time, how long it is held, the accept link. Only the recipient's own name."""
    offer = message.waiting_list_offer
    zone = clinic_zone()
    starts = message.slot.starts_at.astimezone(zone)
    context = {
        "first_name": offer.entry.first_name,
        "starts": starts,
        "practitioner": message.slot.practitioner.full_name,
        "held_until": offer.held_until.astimezone(zone),
        "moving": offer.entry.appointment_id is not None,
        "offered_to": _offered_to(message),
        # Reception put them on the list by phone: they were never sent the entry's own link.
        "added_by_phone": offer.entry.added_by_id is not None,
        "accept_url": settings.SITE_URL + reverse("waiting_list_offer", args=[message.manage_token]),
        "clinic": _clinic_context(),
        "minutes": settings.CONSULTATION_MINUTES,
    }
    return _email(
        message,
        subject=f"A time has come free: {starts:%a} {starts.day} {starts:%b} at {starts:%H:%M}",
        template="waiting_list_offer",
        context=context,
    )


def render_link_message(message: OutboundMessage) -> EmailMultiAlternatives:
    """An entry's link: to confirm joining, or to see it again. No name: whoever typed the address chose it."""
    entry = message.waiting_list_entry
    context = {
        "confirming": entry.status == entry.Status.PENDING,
        "entry_url": settings.SITE_URL + reverse("waiting_list_entry", args=[message.manage_token]),
        "clinic": _clinic_context(),
    }
    subject = "Confirm joining the waiting list" if context["confirming"] else "Your link to the waiting list"
    return _email(message, subject=subject, template="waiting_list_link", context=context)


def render_message(message: OutboundMessage) -> EmailMultiAlternatives:
    """The e-mail for one outbox row: plain text, HTML, and the .ics for patient changes."""
    if message.kind == Kind.WAITING_LIST_OFFER:
        return render_offer_message(message)
    if message.kind == Kind.WAITING_LIST_LINK:
        return render_link_message(message)
    appointment = _as_recorded(message)
    starts = appointment.slot.starts_at.astimezone(clinic_zone())
    practitioner = appointment.slot.practitioner.full_name
    is_reception = message.kind.startswith("reception_")
    context = {
        "kind": message.kind,
        "appointment": appointment,
        "starts": starts,
        "ends": appointment.slot.ends_at.astimezone(clinic_zone()),
        "practitioner": practitioner,
        "manage_url": settings.SITE_URL + reverse("manage", args=[message.manage_token])
        if message.manage_token
        else "",
        "staff_url": settings.SITE_URL + reverse("staff_home"),
        "book_url": settings.SITE_URL + reverse("booking_start"),
        "site_url": settings.SITE_URL,
        "clinic": _clinic_context(),
        "minutes": settings.CONSULTATION_MINUTES,
        "cutoff_hours": int(settings.MANAGE_CUTOFF.total_seconds() // 3600),
    }
    template = "reception" if is_reception else message.kind
    when = f"{starts:%a} {starts.day} {starts:%b} at {starts:%H:%M}"
    email = _email(
        message,
        subject=_SUBJECTS[message.kind].format(when=when, practitioner=practitioner),
        template=template,
        context=context,
    )
    method = _ICS_METHOD.get(message.kind)
    if method:
        part = SafeMIMEText(appointment_ics(appointment, method=method).decode(), "calendar", "utf-8")
        part.set_param("method", method)
        part.add_header("Content-Disposition", "attachment", filename="consultation.ics")
        email.attach(part)
    return email


def _mail_domain() -> str:
    return urlparse(settings.SITE_URL).hostname or "clinic.local"


# -- Sending, in the worker -----------------------------------------------------------------


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0
    released: int = 0
    lost: list[int] = field(default_factory=list)


def claim_due_messages(*, now: datetime, worker_id: str, limit: int) -> list[OutboundMessage]:
    """Claim up to `limit` due messages for this worker, in one short transaction.

    SKIP LOCKED lets workers claim side by side without waiting; a row another worker is
    claiming is simply not seen. A message whose lease ran out MESSAGE_MAX_ATTEMPTS times
    (its worker died on it each time) is given up rather than claimed again.
    """
    with transaction.atomic():
        rows = list(
            OutboundMessage.objects.due(now=now)
            .select_for_update(skip_locked=True)
            .order_by("next_attempt_at", "pk")
            .values_list("pk", "status", "attempts")[:limit]
        )
        exhausted = {
            pk
            for pk, status, attempts in rows
            if status == Status.SENDING and attempts >= settings.MESSAGE_MAX_ATTEMPTS
        }
        claimable = [pk for pk, _, _ in rows if pk not in exhausted]
        if exhausted:
            OutboundMessage.objects.filter(pk__in=exhausted).update(
                status=Status.FAILED,
                lease_expires_at=None,
                manage_token="",
                last_error="The worker stopped while sending this message on every attempt.",
            )
        OutboundMessage.objects.filter(pk__in=claimable).update(
            status=Status.SENDING,
            attempts=F("attempts") + 1,
            claimed_by=worker_id,
            lease_expires_at=now + lease_length(),
        )
    return list(
        OutboundMessage.objects.filter(pk__in=claimable, status=Status.SENDING, claimed_by=worker_id)
        .select_related("appointment", "slot__practitioner", "waiting_list_offer__entry", "waiting_list_entry")
        # An offer's e-mail says whether the time went to this person alone or to several.
        .annotate(offer_batch_size=offers_in_batch(slot_field="slot_id", batch_field="waiting_list_offer__batch"))
        .order_by("next_attempt_at", "pk")
    )


def _send_margin() -> timedelta:
    return timedelta(seconds=6 * settings.EMAIL_TIMEOUT + 30)


def lease_length() -> timedelta:
    return max(LEASE, 2 * _send_margin())


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, 8 ... minutes after the n-th failed attempt, at most an hour."""
    return min(RETRY_FIRST_DELAY * 2 ** (attempts - 1), RETRY_MAX_DELAY)


def send_due_messages(
    *, now: datetime, worker_id: str, limit: int = 20, connection=None, should_stop=lambda: False
) -> SendReport:
    """Claim the due messages, send each outside any transaction, record each result at once.

    `now` is the time of the claim; later steps add the time that has passed since (so tests
    with a frozen or explicit `now` stay consistent). `should_stop` lets the worker command
    release the rest of a batch on SIGTERM.
    """
    started = time.monotonic()

    def clock() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    report = SendReport()
    messages = claim_due_messages(now=now, worker_id=worker_id, limit=limit)
    report.claimed = len(messages)
    if not messages:
        return report
    # One lease covers the batch: stop using it while a whole SMTP exchange still fits.
    last_safe_start = now + lease_length() - _send_margin()
    connection = connection or get_connection()
    opened = False
    # Once the server cannot be reached, the rest of the batch backs off without more waiting.
    unreachable = None
    try:
        for index, message in enumerate(messages):
            if should_stop() or clock() >= last_safe_start:
                report.released += _release(messages[index:])
                break
            reason = _skip_reason(message, now=clock())
            if reason:
                _finish(message, report, status=Status.SKIPPED, last_error=reason)
                continue
            if unreachable is not None:
                _record_failure(message, unreachable, now=clock(), report=report)
                continue
            try:
                if message.kind in _TO_PATIENT and not message.manage_token:
                    # Kept in memory only: a retry issues another, and every one issued stays valid.
                    message.manage_token = ManageLinkToken.issue(appointment_id=message.appointment_id, now=clock())
                email = render_message(message)
                if not opened:
                    try:
                        connection.open()
                    except Exception as exc:
                        unreachable = exc
                        raise
                    opened = True
                accepted = connection.send_messages([email])
                if not accepted:
                    raise smtplib.SMTPException("The mail backend did not accept the message.")
            except Exception as exc:  # any failure to send is retried or recorded
                _record_failure(message, exc, now=clock(), report=report)
                if _connection_broken(exc):
                    opened = False
                    _close_quietly(connection)
                continue
            _finish(message, report, status=Status.SENT, sent_at=clock())
    finally:
        if opened:
            _close_quietly(connection)
    return report


def _skip_reason(message: OutboundMessage, *, now: datetime) -> str:
    """A message that waited (a retry, a reminder) must not contradict what the patient already has.

    Messages normally leave in order, and each .ics carries the appointment's SEQUENCE, so
    a later one always wins in the patient's calendar. But a confirmation or move notice
    retried after a later notice already went out (say the cancellation) would arrive as
    news of a booking that no longer stands: it is skipped.
    A reminder is only for the appointment as it still is, and only before it starts.
    """
    if message.kind == Kind.WAITING_LIST_OFFER:
        offer = message.waiting_list_offer
        if offer.status != offer.Status.OFFERED or now >= offer.held_until:
            return "Not needed: the offer has ended."
        return ""
    if message.kind == Kind.WAITING_LIST_LINK:
        entry = message.waiting_list_entry
        if entry.status not in OPEN_ENTRY_STATUSES:
            return "Not needed: the entry has ended."
        # A later request gave the entry a fresh link (and its own e-mail): this one no longer opens it.
        if entry.token_hash != hash_token(message.manage_token):
            return "Not needed: a newer link was sent."
        return ""
    appointment = message.appointment
    if message.kind in (Kind.CONFIRMATION, Kind.MOVED):
        later_sent = OutboundMessage.objects.filter(
            appointment=appointment,
            kind__in=(Kind.CONFIRMATION, Kind.MOVED, Kind.CANCELLED),
            sequence__gt=message.sequence,
            status=Status.SENT,
        )
        return "Not needed: a later message about this appointment was sent first." if later_sent.exists() else ""
    if message.kind != Kind.REMINDER:
        return ""
    if appointment.status != Appointment.Status.BOOKED:
        return f"Not needed: the appointment is {appointment.get_status_display().lower()}."
    if appointment.sequence != message.sequence or appointment.slot_id != message.slot_id:
        return "Not needed: the appointment was changed after this reminder was queued."
    if now >= message.slot.starts_at:
        return "Not needed: the appointment has started."
    return ""


def _claimed(message: OutboundMessage):
    """This worker's claim on the row, as a compare-and-set guard: it fails if the lease was lost."""
    return OutboundMessage.objects.filter(pk=message.pk, status=Status.SENDING, attempts=message.attempts)


def _finish(message, report, *, status, sent_at=None, last_error=""):
    updated = _claimed(message).update(
        status=status, sent_at=sent_at, last_error=last_error, lease_expires_at=None, manage_token=""
    )
    if not updated:
        # Another worker took over after this one's lease ran out: it may send the message too.
        report.lost.append(message.pk)
        logger.warning("Outbound message %s: claim lost before its result was recorded", message.pk)
        return
    if status == Status.SENT:
        report.sent += 1
        logger.info("Outbound message %s (%s) sent", message.pk, message.kind)
    else:
        report.skipped += 1
        logger.info("Outbound message %s (%s) skipped: %s", message.pk, message.kind, last_error)


def _record_failure(message, exc: Exception, *, now: datetime, report: SendReport) -> None:
    # SMTP errors can quote the recipient; stored and logged text is redacted like every log line.
    error = redact(f"{type(exc).__name__}: {exc}")[:500]
    if _permanent(exc) or message.attempts >= settings.MESSAGE_MAX_ATTEMPTS:
        updated = _claimed(message).update(
            status=Status.FAILED, last_error=error, lease_expires_at=None, manage_token=""
        )
        if updated:
            report.failed += 1
            logger.error("Outbound message %s (%s) failed for good: %s", message.pk, message.kind, error)
        return
    updated = _claimed(message).update(
        status=Status.PENDING,
        last_error=error,
        lease_expires_at=None,
        next_attempt_at=now + retry_delay(message.attempts),
    )
    if updated:
        report.retrying += 1
        logger.warning(
            "Outbound message %s (%s) attempt %s failed, will retry: %s",
            message.pk,
            message.kind,
            message.attempts,
            error,
        )


def _permanent(exc: Exception) -> bool:
    """The server refused the recipient for good (5xx): trying again cannot help."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(500 <= code < 600 for code, _ in exc.recipients.values())
    return False


def _connection_broken(exc: Exception) -> bool:
    return isinstance(exc, (smtplib.SMTPServerDisconnected, OSError, socket.timeout))


def _close_quietly(connection) -> None:
    try:
        connection.close()
    except Exception:  # closing a broken connection may fail; nothing to do
        logger.debug("Closing the mail connection failed", exc_info=True)


def _release(messages) -> int:
    """Hand claimed, unsent messages back: the attempt did not happen, so it is not counted."""
    released = 0
    for message in messages:
        released += _claimed(message).update(
            status=Status.PENDING, attempts=F("attempts") - 1, lease_expires_at=None, claimed_by=""
        )
    return released
