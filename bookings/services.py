"""Writes that must be atomic: booking, moving, cancelling, blocking (slot generation: schedule.py).

Transaction policy: no request-wide ATOMIC_REQUESTS. Each service below opens one short
`transaction.atomic()` block, locks the rows it consumes late (`select_for_update`),
re-checks them, writes, and returns. Nothing slow (mail, HTTP) happens inside: messages
are recorded in the outbox table in the same transaction and sent by a worker.
Every service takes `now` so that tests and callers agree on the time.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q

from articles.models import Article
from bookings.models import (
    Appointment,
    AppointmentEvent,
    BookingStartCount,
    InsightsAttendanceDay,
    InsightsBookingDay,
    InsightsDiaryDay,
    InsightsLeadDays,
    InsightsRefresh,
    Practitioner,
    Slot,
    UrgentCareCount,
    UsedSafetyCheckPass,
    hash_token,
    new_token,
    phone_contact_key,
    same_email_address,
    same_phone_number,
)
from bookings.schedule import clinic_zone, slot_fits_schedule
from clinic.ratelimit import count_booking

# -- Booking ------------------------------------------------------------------------------


class SlotUnavailable(Exception):
    """The slot cannot be booked (any more): taken, blocked, past, too soon or unknown."""

    @property
    def reason(self) -> str:
        """What the service said: "unknown", "taken" or "same slot" (a move to the time already held)."""
        return self.args[0] if self.args else "taken"


class Replayed(Exception):
    """The form was sent before and booked: `appointment` is that booking."""

    def __init__(self, appointment: Appointment):
        super().__init__("replayed")
        self.appointment = appointment


class ChangeNotAllowed(Exception):
    """The appointment can no longer be changed this way (cut-off passed, already cancelled)."""


class SafetyCheckPassUsed(Exception):
    """The safety-check pass has made its one booking already: a second tab, or a copied or replayed cookie."""


class BookingLimitReached(Exception):
    """An online booking beyond a limit: `reason` is "contact" (live bookings for the e-mail or phone) or "address"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class PatientDetails:
    first_name: str
    last_name: str
    phone: str
    email: str = ""
    note: str = ""


@dataclass(frozen=True)
class OnlineBookingGuard:
    """What a booking from the public form brings for its checks (appointment_book, step 4)."""

    # The random id of the safety-check pass in the patient's cookie: one pass, one booking.
    safety_pass: str
    # A keyed hash of the client's address (clinic.ratelimit.client_address_key), never the address.
    client_key: str


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


def _lock_bookable_slot(slot_id, *, now: datetime, staff: bool, submission_key: uuid.UUID | None = None) -> Slot:
    """Lock the slot row, then check it may still be booked. Raises SlotUnavailable, or Replayed.

    Patients may only take slots the availability rule offers; reception may also book
    a caller inside the minimum notice, but never into the past, a blocked slot or the
    slot of a practitioner who has left.

    Every normal refusal is decided here, under the lock, by reading: PostgreSQL logs a
    failing statement with its values (a patient's name, e-mail and phone), so a slot just
    taken or a form sent twice must never reach the INSERT or UPDATE. The unique constraints
    stay as the backstop. With a `submission_key`, an earlier booking made with it is a replay.
    """
    try:
        slot = Slot.objects.select_related("practitioner").order_by().select_for_update(of=("self",)).get(pk=slot_id)
    except (Slot.DoesNotExist, ValueError, TypeError):
        raise SlotUnavailable("unknown") from None
    if staff:
        # Reception may book inside the minimum notice.
        allowed = slot.state == Slot.State.OPEN and slot.starts_at > now and slot.practitioner.is_active
    else:
        allowed = slot.offered_to_patients(now=now)
    # One read, after the lock was granted, so that it sees the latest commit: this slot's
    # live appointment, and any appointment made with the same submission key.
    clash = Q(slot=slot) & ~Q(status=Appointment.Status.CANCELLED)
    if submission_key is not None:
        clash |= Q(submission_key=submission_key)
    clashing = list(Appointment.objects.filter(clash).order_by()[:2])
    earlier = next((each for each in clashing if submission_key and each.submission_key == submission_key), None)
    if earlier is not None:
        raise Replayed(earlier)
    if clashing or not allowed:
        raise SlotUnavailable("taken")
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
    online_guard: OnlineBookingGuard | None = None,
) -> BookingResult:
    """Book a slot for a patient (online) or a caller (reception, `booked_by` set).

    1. In one transaction: lock the slot, re-check it, create the appointment and its history.
    2. Under the lock, a repeated submission (a double click, or the form sent again later)
       finds the booking the first one made and returns it; a slot taken meanwhile raises
       SlotUnavailable. The first submission wins the lock; the second waits, then reads
       its commit. Neither refusal is a failing statement (see _lock_bookable_slot).
    3. The unique constraints are the backstop: an IntegrityError (one form sent for two
       slots at the same instant) still means "already booked" or "just taken".
    4. A booking from the public form (`online_guard`; never reception's) is checked under the slot's lock
       and in the same transaction, so that a refusal or a failure leaves nothing used: its safety-check
       pass is consumed (one pass, one booking); the live upcoming bookings of the e-mail address and of
       the phone number are counted against BOOKING_MAX_LIVE_PER_CONTACT; the booking is counted against
       its address's RATE_LIMIT_BOOKINGS_PER_HOUR. The address's keyed hash is stored for reception's burst flag.
    """
    # Random, unless the caller derived one (bookings.models.manage_token_for_submission).
    token = manage_token or new_token()
    try:
        with transaction.atomic():
            slot = _lock_bookable_slot(slot_id, now=now, staff=booked_by is not None, submission_key=submission_key)
            if online_guard is not None and booked_by is None:
                _check_online_limits(patient, now=now, guard=online_guard)
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
                client_key=online_guard.client_key if online_guard and booked_by is None else "",
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
    except Replayed as replay:
        return BookingResult(replay.appointment, None, replayed=True)
    except IntegrityError:
        earlier = _booking_with_key(submission_key)
        if earlier is not None:
            return BookingResult(earlier, None, replayed=True)
        raise SlotUnavailable("taken") from None
    if online_guard is not None and next(_passes_used) % PRUNE_PASSES_EVERY == 0:
        UsedSafetyCheckPass.objects.filter(used_at__lt=now - USED_PASS_KEPT).delete()
    return BookingResult(appointment, token)


# A pass lives an hour in its cookie (bookings.flow.FLOW_COOKIE_MAX_AGE); its row is kept a little longer,
# and rows past that are deleted every so many online bookings (per process).
USED_PASS_KEPT = timedelta(hours=2)
PRUNE_PASSES_EVERY = 200
_passes_used = itertools.count(1)

CONSUME_PASS_SQL = f"""
    INSERT INTO {UsedSafetyCheckPass._meta.db_table} (pass_hash, used_at) VALUES (%s, %s)
    ON CONFLICT (pass_hash) DO NOTHING
    RETURNING pass_hash
"""


def _check_online_limits(patient: PatientDetails, *, now: datetime, guard: OnlineBookingGuard) -> None:
    """Step 4 of `appointment_book`. Raises SafetyCheckPassUsed or BookingLimitReached.

    Refusals are decided by statements that cannot fail (ON CONFLICT DO NOTHING, counts), never by a
    constraint violation: PostgreSQL logs a failing statement with its values.
    """
    with connection.cursor() as cursor:
        cursor.execute(CONSUME_PASS_SQL, [hash_token(guard.safety_pass), now])
        if cursor.fetchone() is None:
            raise SafetyCheckPassUsed
    # Two bookings for one contact at once (from two addresses) queue here, so the count below is exact.
    _lock_contact(patient)
    counts = Appointment.objects.upcoming(now=now).aggregate(
        same_email=Count("pk", filter=same_email_address(patient.email)),
        same_phone=Count("pk", filter=same_phone_number(patient.phone)),
    )
    if max(counts["same_email"], counts["same_phone"]) >= settings.BOOKING_MAX_LIVE_PER_CONTACT:
        raise BookingLimitReached("contact")
    if count_booking(guard.client_key, now=now) > settings.RATE_LIMIT_BOOKINGS_PER_HOUR:
        raise BookingLimitReached("address")


def _lock_contact(patient: PatientDetails) -> None:
    """Transaction-level advisory locks on the e-mail address and the phone number, in one order (no deadlock)."""
    names = {f"email:{patient.email.strip().lower()}", f"phone:{phone_contact_key(patient.phone)}"}
    keys = sorted(
        int.from_bytes(hashlib.sha256(f"bookings.contact:{name}".encode()).digest()[:8], "big", signed=True)
        for name in names
    )
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _booking_with_key(submission_key: uuid.UUID | None) -> Appointment | None:
    if submission_key is None:
        return None
    # Unordered: the model's default ordering would join the slot for nothing.
    return Appointment.objects.filter(submission_key=submission_key).order_by().first()


def _lock_appointment(appointment_id) -> Appointment:
    return (
        Appointment.objects.select_for_update(of=("self",)).select_related("slot__practitioner").get(pk=appointment_id)
    )


def _lock_slots(*slot_ids) -> None:
    """Lock slot rows in key order, as generation does, so that the two never wait on each other in a circle."""
    list(Slot.objects.select_for_update().filter(pk__in=slot_ids).order_by("pk").values_list("pk", flat=True))


def _retire_if_unfit(slot: Slot, *, now: datetime) -> None:
    """Retire a slot just freed that the schedule no longer asks for, in the caller's transaction.

    A booking kept through time off or a change of hours holds its slot; once it is cancelled or
    moved (or a block is lifted) that time must not become bookable online. The caller holds the
    slot's lock, so no booking can take it between the check and the write.
    """
    if slot.state == Slot.State.OPEN and slot.starts_at > now and not slot_fits_schedule(slot):
        Slot.objects.filter(pk=slot.pk, state=Slot.State.OPEN).update(state=Slot.State.RETIRED)
        slot.state = Slot.State.RETIRED


def appointment_cancel(*, appointment: Appointment, now: datetime, reason: str = "", actor=None, notify_patient=True):
    """Cancel a live appointment: its slot becomes bookable again, unless the schedule no longer
    has it (then it is retired); the row stays, as history."""
    with transaction.atomic():
        locked = _lock_appointment(appointment.pk)
        if actor is None and not locked.patient_can_change(now=now):
            raise ChangeNotAllowed("cut-off")
        if locked.status == Appointment.Status.CANCELLED:
            raise ChangeNotAllowed("already cancelled")
        if locked.status != Appointment.Status.BOOKED:
            # Arrived, completed or did not attend: what happened is not overwritten by a cancellation.
            raise ChangeNotAllowed("attendance recorded")
        # Before the appointment changes: a booking waiting on this slot's lock then finds it as we leave it.
        _lock_slots(locked.slot_id)
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
        _retire_if_unfit(locked.slot, now=now)
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
            old_slot = locked.slot
            try:
                _lock_slots(old_slot.pk, int(new_slot_id))
            except (ValueError, TypeError):
                raise SlotUnavailable("unknown") from None
            new_slot = _lock_bookable_slot(new_slot_id, now=now, staff=actor is not None)
            old_description = _describe_slot(old_slot)
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
            _retire_if_unfit(old_slot, now=now)
    except IntegrityError:
        raise SlotUnavailable("taken") from None
    return locked


def appointment_set_status(*, appointment: Appointment, status: str, now: datetime, actor) -> Appointment:
    """Reception marks arrived, no-show or completed (or back to booked after a mistake).

    Attendance is not recorded ahead of time (`Appointment.attendance_can_be_recorded`): a 15:00
    appointment marked "did not attend" at 14:40 would be false clinical data.
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
        if status != Appointment.Status.BOOKED and not locked.attendance_can_be_recorded(now=now, status=status):
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
        # Blocked in time off, or before its hours were removed: lifting the block must not offer it.
        fits = locked.starts_at <= now or slot_fits_schedule(locked)
        locked.state = Slot.State.OPEN if fits else Slot.State.RETIRED
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


# -- Counts for the Insights page -------------------------------------------------------------
# One statement each, no lock and no read before it: the safety-check page stays as cheap as it was.
# Two patients opening the page at once both add one (ON CONFLICT DO UPDATE takes the row lock).


def booking_start_count(*, article_slug: str, now: datetime) -> None:
    """Add one to today's count of booking starts from this article, if it is a published article.

    The slug comes from the URL: anything that is not a published article's slug adds nothing, so a
    stranger cannot fill the table with made-up names.
    """
    if not article_slug:
        return
    table = BookingStartCount._meta.db_table
    article_sql, article_params = (
        Article.objects.published(now=now)
        .filter(slug=article_slug[:200])
        .order_by()
        .values("pk")
        .query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (article_id, day, count) SELECT found.pk, %s, 1 FROM ({article_sql}) AS found "
            f"ON CONFLICT (article_id, day) DO UPDATE SET count = {table}.count + 1",
            [now.astimezone(clinic_zone()).date(), *article_params],
        )


def urgent_care_count(*, now: datetime) -> None:
    """Add one to today's count of people the red-flag check sent to urgent care (nothing about who)."""
    table = UrgentCareCount._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (day, count) VALUES (%s, 1) "
            f"ON CONFLICT (day) DO UPDATE SET count = {table}.count + 1",
            [now.astimezone(clinic_zone()).date()],
        )


def insights_refresh(*, now: datetime) -> None:
    """Rebuild the Insights page's daily summaries (bookings.models Insights*) from the appointments and slots.

    One transaction: the page reads either the old summaries or the new ones, never half of each. Days are
    clinic days (date in the clinic's zone). A cancellation is the patient's when its event has no staff actor.
    """
    zone = clinic_zone().key
    appointment, slot, event = Appointment._meta.db_table, Slot._meta.db_table, AppointmentEvent._meta.db_table
    local_day = "({} AT TIME ZONE %(zone)s)::date"
    seconds = "extract(epoch FROM s.ends_at - s.starts_at)"
    params = {
        "zone": zone,
        "open": Slot.State.OPEN,
        "blocked": Slot.State.BLOCKED,
        "retired": Slot.State.RETIRED,
        "cancelled": Appointment.Status.CANCELLED,
        "completed": Appointment.Status.COMPLETED,
        "no_show": Appointment.Status.NO_SHOW,
        "cancel_action": AppointmentEvent.Action.CANCELLED,
    }
    statements = [
        f"""INSERT INTO {InsightsBookingDay._meta.db_table} (day, source, article_id, count)
            SELECT {local_day.format("created_at")}, source, source_article_id, count(*) FROM {appointment}
            GROUP BY 1, 2, 3""",
        f"""INSERT INTO {InsightsDiaryDay._meta.db_table}
                (practitioner_id, day, offered_seconds, booked_seconds, blocked_seconds)
            SELECT s.practitioner_id, {local_day.format("s.starts_at")},
                   coalesce(sum({seconds}) FILTER (WHERE s.state = %(open)s), 0),
                   coalesce(sum({seconds}) FILTER (WHERE s.state = %(open)s AND live.id IS NOT NULL), 0),
                   coalesce(sum({seconds}) FILTER (WHERE s.state = %(blocked)s), 0)
            FROM {slot} s LEFT JOIN {appointment} live ON live.slot_id = s.id AND live.status <> %(cancelled)s
            WHERE s.state <> %(retired)s
            GROUP BY 1, 2""",
        f"""INSERT INTO {InsightsAttendanceDay._meta.db_table} (day, outcome, count)
            SELECT {local_day.format("s.starts_at")},
                   CASE WHEN a.status = %(completed)s THEN 'completed'
                        WHEN a.status = %(no_show)s THEN 'no_show'
                        WHEN a.status = %(cancelled)s AND EXISTS (
                            SELECT 1 FROM {event} e WHERE e.appointment_id = a.id AND e.action = %(cancel_action)s
                            AND e.actor_id IS NULL AND e.actor_label = 'patient') THEN 'cancelled_by_patient'
                        WHEN a.status = %(cancelled)s THEN 'cancelled_by_clinic'
                        ELSE 'not_recorded' END,
                   count(*)
            FROM {appointment} a JOIN {slot} s ON s.id = a.slot_id
            GROUP BY 1, 2""",
        f"""INSERT INTO {InsightsLeadDays._meta.db_table} (practitioner_id, day, lead_days, count)
            SELECT s.practitioner_id, {local_day.format("a.created_at")},
                   {local_day.format("s.starts_at")} - {local_day.format("a.created_at")}, count(*)
            FROM {appointment} a JOIN {slot} s ON s.id = a.slot_id
            WHERE a.status <> %(cancelled)s
            GROUP BY 1, 2, 3""",
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        for model in (InsightsBookingDay, InsightsDiaryDay, InsightsAttendanceDay, InsightsLeadDays):
            cursor.execute(f"DELETE FROM {model._meta.db_table}")
        for statement in statements:
            cursor.execute(statement, params)
        InsightsRefresh.objects.update_or_create(pk=1, defaults={"refreshed_at": now})
