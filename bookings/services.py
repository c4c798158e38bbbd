"""Writes that must be atomic: booking, moving, cancelling, blocking (slot generation: schedule.py).

Transaction policy: no request-wide ATOMIC_REQUESTS. Each service below opens one short
`transaction.atomic()` block, locks the rows it consumes late (`select_for_update`),
re-checks them, writes, and returns. Nothing slow (mail, HTTP) happens inside: messages
are recorded in the outbox table in the same transaction and sent by a worker.
Every service takes `now` so that tests and callers agree on the time.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction

from bookings.models import Appointment, AppointmentEvent, Practitioner, Slot, hash_token, new_token
from bookings.schedule import clinic_zone

# -- Booking ------------------------------------------------------------------------------


class SlotUnavailable(Exception):
    """The slot cannot be booked (any more): taken, blocked, past, too soon or unknown."""

    @property
    def reason(self) -> str:
        """What the service said: "unknown", "taken" or "same slot" (a move to the time already held)."""
        return self.args[0] if self.args else "taken"


class ChangeNotAllowed(Exception):
    """The appointment can no longer be changed this way (cut-off passed, already cancelled)."""


@dataclass
class PatientDetails:
    first_name: str
    last_name: str
    phone: str
    email: str = ""
    note: str = ""


@dataclass
class BookingResult:
    appointment: Appointment
    # The raw manage-link token: only ever shown once (confirmation page, e-mail). None on a replay.
    manage_token: str | None
    replayed: bool = False


def _record_event(
    appointment,
    *,
    now,
    action,
    actor=None,
    from_value="",
    to_value="",
    detail="",
    notify_patient: bool = True,
    manage_token: str | None = None,
):
    """Append to the appointment's history and record the messages the change causes, in the caller's transaction.

    `manage_token` (booking only) is the raw manage-link token the confirmation e-mail must carry.
    """
    AppointmentEvent.objects.create(
        appointment=appointment,
        at=now,
        actor=actor,
        actor_label=actor.get_username() if actor else "patient",
        action=action,
        from_value=from_value,
        to_value=to_value,
        detail=detail,
    )
    from bookings import notifications

    notifications.appointment_changed(
        appointment, action=action, now=now, notify_patient=notify_patient, manage_token=manage_token
    )


def _describe_slot(slot: Slot) -> str:
    local = slot.starts_at.astimezone(clinic_zone())
    return f"{local:%a %d %b %Y %H:%M} with {slot.practitioner.full_name}"


def _lock_bookable_slot(slot_id, *, now: datetime, staff: bool) -> Slot:
    """Lock the slot row, then check it may still be booked. Raises SlotUnavailable.

    Patients may only take slots the availability rule offers; reception may also book
    a caller inside the minimum notice, but never into the past or a blocked slot.
    """
    slots = Slot.objects.select_related("practitioner").order_by()
    # Only for the load harness's control run (clinic/settings.py): no lock, so that it sees double bookings.
    if not settings.BOOKING_UNSAFE_SKIP_SLOT_LOCK:
        slots = slots.select_for_update(of=("self",))
    try:
        slot = slots.get(pk=slot_id)
    except (Slot.DoesNotExist, ValueError, TypeError):
        raise SlotUnavailable("unknown") from None
    if staff:
        # Reception may book inside the minimum notice; the lock is held, so this sees the latest commit.
        still_free = (
            slot.state == Slot.State.OPEN
            and slot.starts_at > now
            and not Appointment.objects.live().filter(slot=slot).exists()
        )
    else:
        # Whether it is booked already is left to the partial unique index, when the appointment is
        # inserted under this lock: one statement fewer on every booking.
        still_free = slot.offered_to_patients(now=now)
        if settings.BOOKING_UNSAFE_SKIP_SLOT_LOCK:
            # The control run has no such index: it checks, then inserts, as a naive booking would.
            still_free = still_free and not Appointment.objects.live().filter(slot=slot).exists()
    if not still_free:
        raise SlotUnavailable("taken")
    if settings.BOOKING_UNSAFE_SKIP_SLOT_LOCK:
        # Widens the window between the check and the insert, as a slow moment in production would.
        time.sleep(0.02)
    return slot


def appointment_book(
    *,
    slot_id: int,
    patient: PatientDetails,
    now: datetime,
    safety_answers: dict | None = None,
    privacy_notice_version: str = "",
    source_article=None,
    submission_key: uuid.UUID | None = None,
    booked_by=None,
    manage_token: str | None = None,
) -> BookingResult:
    """Book a slot for a patient (online) or a caller (reception, `booked_by` set).

    1. In one transaction: lock the slot, re-check it, create the appointment and its history.
    2. The unique constraints are the backstop: an IntegrityError means "just taken" (the slot's
       live appointment) or "already booked" (the submission key).
    3. A refused booking is checked against the submission key: a repeated submission (a double
       click, or the form sent again later) finds the booking the first one made and returns it.
       The first submission wins the lock; the second waits, then finds the slot taken or its key used.
    """
    # Random, unless the caller derived one (bookings.models.manage_token_for_submission).
    token = manage_token or new_token()
    try:
        with transaction.atomic():
            slot = _lock_bookable_slot(slot_id, now=now, staff=booked_by is not None)
            appointment = Appointment.objects.create(
                slot=slot,
                source=Appointment.Source.PHONE if booked_by else Appointment.Source.ONLINE,
                source_article=source_article,
                first_name=patient.first_name,
                last_name=patient.last_name,
                email=patient.email,
                phone=patient.phone,
                note=patient.note,
                safety_answers=safety_answers or {},
                privacy_notice_version=privacy_notice_version,
                manage_token_hash=hash_token(token),
                submission_key=submission_key,
                booked_by=booked_by,
                created_at=now,
                updated_at=now,
            )
            _record_event(
                appointment,
                now=now,
                action=AppointmentEvent.Action.BOOKED,
                actor=booked_by,
                to_value=_describe_slot(slot),
                manage_token=token,
            )
    except (IntegrityError, SlotUnavailable) as refusal:
        earlier = _booking_with_key(submission_key)
        if earlier is not None:
            return BookingResult(earlier, None, replayed=True)
        if isinstance(refusal, SlotUnavailable):
            raise
        raise SlotUnavailable("taken") from None
    return BookingResult(appointment, token)


def _booking_with_key(submission_key: uuid.UUID | None) -> Appointment | None:
    if submission_key is None:
        return None
    # Unordered: the model's default ordering would join the slot for nothing.
    return Appointment.objects.filter(submission_key=submission_key).order_by().first()


def _lock_appointment(appointment_id) -> Appointment:
    return (
        Appointment.objects.select_for_update(of=("self",)).select_related("slot__practitioner").get(pk=appointment_id)
    )


def appointment_cancel(*, appointment: Appointment, now: datetime, reason: str = "", actor=None, notify_patient=True):
    """Cancel a live appointment: its slot becomes bookable again; the row stays, as history."""
    with transaction.atomic():
        locked = _lock_appointment(appointment.pk)
        if actor is None and not locked.patient_can_change(now=now):
            raise ChangeNotAllowed("cut-off")
        if locked.status == Appointment.Status.CANCELLED:
            raise ChangeNotAllowed("already cancelled")
        previous_status = locked.get_status_display()
        locked.status = Appointment.Status.CANCELLED
        locked.cancelled_at = now
        locked.cancel_reason = reason[:300]
        locked.sequence += 1
        locked.updated_at = now
        locked.save(update_fields=["status", "cancelled_at", "cancel_reason", "sequence", "updated_at"])
        _record_event(
            locked,
            now=now,
            action=AppointmentEvent.Action.CANCELLED,
            actor=actor,
            from_value=previous_status,
            to_value="Cancelled",
            detail=reason[:300],
            notify_patient=notify_patient,
        )
    return locked


def appointment_move(*, appointment: Appointment, new_slot_id: int, now: datetime, actor=None) -> Appointment:
    """Move an appointment to another slot: the new one is taken and the old one freed together."""
    try:
        with transaction.atomic():
            locked = _lock_appointment(appointment.pk)
            if locked.status not in (Appointment.Status.BOOKED,):
                raise ChangeNotAllowed("not booked")
            if actor is None and not locked.patient_can_change(now=now):
                raise ChangeNotAllowed("cut-off")
            if str(locked.slot_id) == str(new_slot_id):
                raise SlotUnavailable("same slot")
            new_slot = _lock_bookable_slot(new_slot_id, now=now, staff=actor is not None)
            old_description = _describe_slot(locked.slot)
            locked.slot = new_slot
            locked.sequence += 1
            locked.updated_at = now
            locked.save(update_fields=["slot", "sequence", "updated_at"])
            _record_event(
                locked,
                now=now,
                action=AppointmentEvent.Action.MOVED,
                actor=actor,
                from_value=old_description,
                to_value=_describe_slot(new_slot),
            )
    except IntegrityError:
        raise SlotUnavailable("taken") from None
    return locked


def appointment_set_status(*, appointment: Appointment, status: str, now: datetime, actor) -> Appointment:
    """Reception marks arrived, no-show or completed (or back to booked after a mistake).

    Attendance is only recorded from the appointment's own day (clinic time): marking a
    future appointment "did not attend" by a misclick would be false clinical data.
    """
    allowed = {
        Appointment.Status.BOOKED,
        Appointment.Status.ARRIVED,
        Appointment.Status.COMPLETED,
        Appointment.Status.NO_SHOW,
    }
    if status not in allowed:
        raise ChangeNotAllowed("status")
    with transaction.atomic():
        locked = _lock_appointment(appointment.pk)
        if locked.status == Appointment.Status.CANCELLED:
            raise ChangeNotAllowed("cancelled")
        if locked.status == status:
            return locked
        if status != Appointment.Status.BOOKED and not locked.attendance_can_be_recorded(now=now):
            raise ChangeNotAllowed("not yet")
        previous = locked.get_status_display()
        locked.status = status
        locked.updated_at = now
        locked.save(update_fields=["status", "updated_at"])
        _record_event(
            locked,
            now=now,
            action=AppointmentEvent.Action.STATUS,
            actor=actor,
            from_value=previous,
            to_value=locked.get_status_display(),
        )
    return locked


def slot_block(*, slot: Slot, now: datetime, actor, reason: str) -> Slot:
    with transaction.atomic():
        locked = Slot.objects.select_for_update().get(pk=slot.pk)
        if locked.state != Slot.State.OPEN or Appointment.objects.live().filter(slot=locked).exists():
            raise SlotUnavailable("not open")
        locked.state = Slot.State.BLOCKED
        locked.blocked_by = actor
        locked.blocked_reason = reason[:200]
        locked.save(update_fields=["state", "blocked_by", "blocked_reason"])
    return locked


def slot_unblock(*, slot: Slot, now: datetime, actor) -> Slot:
    with transaction.atomic():
        locked = Slot.objects.select_for_update().get(pk=slot.pk)
        if locked.state != Slot.State.BLOCKED:
            raise SlotUnavailable("not blocked")
        locked.state = Slot.State.OPEN
        locked.blocked_by = None
        locked.blocked_reason = ""
        locked.save(update_fields=["state", "blocked_by", "blocked_reason"])
    return locked


def practitioner_calendar_token_reset(*, practitioner) -> str:
    """A new private calendar-feed token for a practitioner; the old feed URL stops working at once.

    Only the hash is stored: the returned token is shown once, to the practitioner.
    """
    token = new_token()
    practitioner.calendar_token_hash = hash_token(token)
    Practitioner.objects.filter(pk=practitioner.pk).update(calendar_token_hash=practitioner.calendar_token_hash)
    return token
