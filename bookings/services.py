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
from datetime import date as date_type
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, IntegerField, OuterRef, Q, Subquery, Value

from articles.models import Article
from bookings.models import (
    AFTERNOON_FROM_HOUR,
    EVENING_FROM_HOUR,
    OPEN_ENTRY_STATUSES,
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
    WaitingListEntry,
    WaitingListOffer,
    _keep_phone_normalised,
    hash_token,
    new_token,
    phone_contact_key,
    same_email_address,
    same_phone_key,
)
from bookings.schedule import clinic_zone, slot_fits_schedule
from clinic.prepared import SAMPLE_IDS, SAMPLE_TIMES, PreparedInsert, PreparedQuery
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


# Every change writes its history row, and every booking its appointment: the INSERTs written once per process.
# The appointment's save() keeps its normalised phone beside the phone: done here as it does
# (tests/bookings/test_booking_prepared_statements.py compares the rows the two write).
_INSERT_APPOINTMENT = PreparedInsert(
    Appointment, before_insert=lambda appointment: _keep_phone_normalised(appointment, {})
)
_INSERT_EVENT = PreparedInsert(AppointmentEvent)


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
    actor_label: str = "",
):
    """Append to the appointment's history and record the messages and webhooks the change causes, in the
    caller's transaction.

    `manage_token` (booking only) is the raw manage-link token the confirmation e-mail must carry.
    `actor_label` names a caller without an account (an API key: "api:<key name>").
    """
    _INSERT_EVENT.insert(
        _new_event(
            appointment,
            now=now,
            action=action,
            actor=actor,
            from_value=from_value,
            to_value=to_value,
            detail=detail,
            actor_label=actor_label,
        )
    )
    from bookings import notifications

    notifications.appointment_changed(
        appointment, action=action, now=now, notify_patient=notify_patient, manage_token=manage_token
    )
    from bookings import webhooks

    webhooks.appointment_changed(appointment, action=action, now=now)


def _new_event(
    appointment, *, now, action, actor=None, from_value="", to_value="", detail="", actor_label=""
) -> AppointmentEvent:
    return AppointmentEvent(
        appointment=appointment,
        at=now,
        actor=actor,
        actor_label=actor_label or (actor.get_username() if actor else "patient"),
        action=action,
        from_value=from_value,
        to_value=to_value,
        detail=detail,
    )


def _describe_slot(slot: Slot) -> str:
    local = slot.starts_at.astimezone(clinic_zone())
    return f"{local:%a %d %b %Y %H:%M} with {slot.practitioner.full_name}"


# Sample values for the statements prepared once per process (clinic.prepared): no real row has them.
SAMPLE_KEYS = (uuid.UUID(int=1), uuid.UUID(int=2))
BIGGEST_ID = 2**63 - 1

_SLOT_COLUMNS = [field.attname for field in Slot._meta.concrete_fields]
_PRACTITIONER_COLUMNS = [field.attname for field in Practitioner._meta.concrete_fields]


def _slot_with_practitioner_to_lock(slot_id):
    """The slot's row and its practitioner's, to lock the slot's alone (FOR UPDATE OF the slot)."""
    return (
        Slot.objects.filter(pk=slot_id)
        .order_by()
        .select_for_update(of=("self",))
        .values_list(*_SLOT_COLUMNS, *(f"practitioner__{name}" for name in _PRACTITIONER_COLUMNS))
    )


_LOCK_SLOT = PreparedQuery(_slot_with_practitioner_to_lock, samples={"slot_id": SAMPLE_IDS})


def _slot_facts(*, slot_id, now: datetime, submission_key: uuid.UUID | None = None, held_for=None):
    """The one read under the slot's lock: whether the slot has a live appointment, whether a waiting-list
    offer holds it, and the appointment made with the same submission key if there is one."""
    replayed = (
        Subquery(Appointment.objects.filter(submission_key=submission_key).order_by().values("pk")[:1])
        if submission_key is not None
        else Value(None, output_field=IntegerField())
    )
    return (
        Slot.objects.filter(pk=slot_id)
        .order_by()
        .values_list(
            Exists(Appointment.objects.live().filter(slot=OuterRef("pk"))),
            Exists(Slot.held_by_others(now=now, held_for=held_for, slot=OuterRef("pk"))),
            replayed,
        )
    )


# The shapes a booking without a waiting-list offer sends (with the offer: built each time, it is rare).
_SLOT_FACTS = PreparedQuery(
    lambda slot_id, now: _slot_facts(slot_id=slot_id, now=now),
    samples={"slot_id": SAMPLE_IDS, "now": SAMPLE_TIMES},
)
_SLOT_FACTS_WITH_KEY = PreparedQuery(
    lambda slot_id, now, submission_key: _slot_facts(slot_id=slot_id, now=now, submission_key=submission_key),
    samples={"slot_id": SAMPLE_IDS, "now": SAMPLE_TIMES, "submission_key": SAMPLE_KEYS},
)


def _lock_bookable_slot(
    slot_id,
    *,
    now: datetime,
    staff: bool,
    submission_key: uuid.UUID | None = None,
    held_for: WaitingListOffer | None = None,
    may_take_held: bool = True,
) -> Slot:
    """Lock the slot row, then check it may still be booked. Raises SlotUnavailable, or Replayed.

    Patients may only take slots the availability rule offers (a slot held by a waiting-list offer
    only through that offer, `held_for`); reception may also book a caller inside the minimum notice
    or into a held slot (another system with an API key may not: `may_take_held`), but never into the past,
    a blocked slot or the slot of a practitioner who has left.

    Every normal refusal is decided here, under the lock, by reading: PostgreSQL logs a
    failing statement with its values (a patient's name, e-mail and phone), so a slot just
    taken or a form sent twice must never reach the INSERT or UPDATE. The unique constraints
    stay as the backstop. With a `submission_key`, an earlier booking made with it is a replay.
    Both statements are prepared once per process (clinic.prepared), from the QuerySets above.
    """
    try:
        slot_id = int(slot_id)
    except (ValueError, TypeError):
        raise SlotUnavailable("unknown") from None
    rows = _LOCK_SLOT.rows(slot_id=slot_id) if 0 < slot_id <= BIGGEST_ID else []
    if not rows:
        raise SlotUnavailable("unknown")
    slot = Slot.from_db(connection.alias, _SLOT_COLUMNS, rows[0][: len(_SLOT_COLUMNS)])
    slot.practitioner = Practitioner.from_db(connection.alias, _PRACTITIONER_COLUMNS, rows[0][len(_SLOT_COLUMNS) :])
    # After the lock was granted, so that it sees the latest commit.
    if held_for is not None:
        facts = _slot_facts(slot_id=slot.pk, now=now, submission_key=submission_key, held_for=held_for).get()
    elif submission_key is not None:
        (facts,) = _SLOT_FACTS_WITH_KEY.rows(slot_id=slot.pk, now=now, submission_key=submission_key)
    else:
        (facts,) = _SLOT_FACTS.rows(slot_id=slot.pk, now=now)
    taken, held, earlier_id = facts
    if earlier_id is not None:
        raise Replayed(Appointment.objects.order_by().get(pk=earlier_id))
    if staff:
        # Reception may book inside the minimum notice.
        allowed = slot.state == Slot.State.OPEN and slot.starts_at > now and slot.practitioner.is_active
        if allowed and not may_take_held:
            # Read with the slot's other facts above (the offers holding it, none accepted here).
            allowed = not held
    else:
        allowed = slot.offered_to_patients(now=now, held_for=held_for, held=held)
    if taken or not allowed:
        raise SlotUnavailable("taken")
    return slot


def _lock_free_slot_at(starts_at: datetime, *, now: datetime, submission_key: uuid.UUID | None = None) -> Slot:
    """For "any practitioner": lock the slots offered at STARTS_AT, then choose one still free. Raises
    SlotUnavailable (nobody is free then) or Replayed.

    1. The candidates: every slot a patient may book at that start (open, offered online, free when read).
    2. Lock them all, in key order as everywhere else (no circle of waits), and wait for any booking
       holding one: a second "any" booking of the same time queues here, then reads the first one's commit.
    3. One read under the locks: their live appointments, and any made with this submission key (a replay).
    4. Among the slots still offered and free, the practitioner with the fewest live consultations that
       day, then that week (the clinic's local day and Monday-to-Sunday week), then a rotation that
       moves on with each consultation length of the start time, so that ties do not always fall on
       the first practitioner in list order.
    Like _lock_bookable_slot, every refusal is a read under the lock, never a failing statement.
    """
    candidate_ids = list(
        Slot.objects.bookable(now=now, start=starts_at).filter(starts_at=starts_at).values_list("pk", flat=True)
    )
    slots = list(
        Slot.objects.select_related("practitioner")
        .select_for_update(of=("self",))
        .filter(pk__in=candidate_ids)
        .order_by("pk")
    )
    clash = Q(slot__in=slots) & ~Q(status=Appointment.Status.CANCELLED)
    if submission_key is not None:
        clash |= Q(submission_key=submission_key)
    clashing = list(Appointment.objects.filter(clash).order_by())
    earlier = next((each for each in clashing if submission_key and each.submission_key == submission_key), None)
    if earlier is not None:
        raise Replayed(earlier)
    taken = {each.slot_id for each in clashing}
    # Which of them a waiting-list offer holds: one read for all, after the locks (not one per slot).
    held = set(WaitingListOffer.objects.holding(now=now).filter(slot__in=slots).values_list("slot_id", flat=True))
    free = [slot for slot in slots if slot.pk not in taken and slot.offered_to_patients(now=now, held=slot.pk in held)]
    if not free:
        raise SlotUnavailable("taken")
    return min(free, key=_share_of_the_work(free, starts_at=starts_at))


def _share_of_the_work(free: list[Slot], *, starts_at: datetime):
    """The sort key of step 4 of _lock_free_slot_at: (consultations that day, that week, rotation)."""
    zone = clinic_zone()
    day = starts_at.astimezone(zone).date()
    monday = day - timedelta(days=day.weekday())
    week_start = datetime.combine(monday, datetime.min.time(), tzinfo=zone)
    week_end = datetime.combine(monday + timedelta(days=7), datetime.min.time(), tzinfo=zone)
    day_start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    day_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    practitioner_ids = [slot.practitioner_id for slot in free]
    counts = {
        row["slot__practitioner_id"]: row
        for row in Appointment.objects.live()
        .filter(
            slot__practitioner_id__in=practitioner_ids, slot__starts_at__gte=week_start, slot__starts_at__lt=week_end
        )
        .order_by()
        .values("slot__practitioner_id")
        .annotate(
            week=Count("pk"),
            day=Count("pk", filter=Q(slot__starts_at__gte=day_start, slot__starts_at__lt=day_end)),
        )
    }
    in_order = sorted(free, key=lambda slot: (slot.practitioner.list_order, slot.practitioner_id))
    turn = int(starts_at.timestamp() // (settings.CONSULTATION_MINUTES * 60)) % len(in_order)
    rotation = {slot.pk: (index - turn) % len(in_order) for index, slot in enumerate(in_order)}

    def key(slot: Slot) -> tuple[int, int, int]:
        row = counts.get(slot.practitioner_id, {})
        return row.get("day", 0), row.get("week", 0), rotation[slot.pk]

    return key


def appointment_book(
    *,
    slot_id: int | None = None,
    patient: PatientDetails,
    now: datetime,
    safety_answers: dict | None = None,
    privacy_notice_version: str = "",
    source_article=None,
    submission_key: uuid.UUID | None = None,
    booked_by=None,
    manage_token: str | None = None,
    online_guard: OnlineBookingGuard | None = None,
    api_key_name: str = "",
    any_practitioner_at: datetime | None = None,
    waiting_list_offer: WaitingListOffer | None = None,
) -> BookingResult:
    """Book a slot for a patient (online) or a caller (reception, `booked_by` set).

    With `any_practitioner_at` instead of `slot_id` ("any practitioner" on the time page), the slot is
    chosen under lock among the practitioners free at that start (_lock_free_slot_at); SlotUnavailable
    then means nobody is free at that time.

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
    5. A booking through the API (`api_key_name`) follows the patients' rules (what the time page offers);
       the key's rate limit stands in for the online guard.
    6. A booking through a waiting-list offer (`waiting_list_offer`) may take the slot that offer holds. Any other
       booking with an e-mail address takes that address off the waiting list, in this transaction.
    """
    # Random, unless the caller derived one (bookings.models.manage_token_for_submission).
    token = manage_token or new_token()
    try:
        with transaction.atomic():
            if any_practitioner_at is not None and booked_by is None:
                slot = _lock_free_slot_at(any_practitioner_at, now=now, submission_key=submission_key)
            else:
                slot = _lock_bookable_slot(
                    slot_id,
                    now=now,
                    staff=booked_by is not None,
                    submission_key=submission_key,
                    held_for=waiting_list_offer,
                )
            if online_guard is not None and booked_by is None:
                _check_online_limits(patient, now=now, guard=online_guard)
            elif waiting_list_offer is not None and booked_by is None:
                # Accepted online from the offer's e-mail: the same limit per contact as the public form (a tester
                # booked twice online, then a third time through the list "for another person").
                _check_contact_limit(patient, now=now)
            appointment = Appointment(
                slot=slot,
                source=(
                    Appointment.Source.WAITING_LIST
                    if waiting_list_offer
                    else Appointment.Source.PHONE
                    if booked_by
                    else Appointment.Source.API
                    if api_key_name
                    else Appointment.Source.ONLINE
                ),
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
            _insert_booking(
                appointment,
                event=_new_event(
                    appointment,
                    now=now,
                    action=AppointmentEvent.Action.BOOKED,
                    actor=booked_by,
                    to_value=_describe_slot(slot),
                    actor_label=f"api:{api_key_name}" if api_key_name else "",
                ),
                now=now,
                manage_token=token,
                leave_waiting_list=bool(patient.email) and waiting_list_offer is None,
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


def _insert_booking(
    appointment: Appointment, *, event: AppointmentEvent, now: datetime, manage_token: str, leave_waiting_list: bool
) -> None:
    """Step 1 of `appointment_book` after the checks: the appointment, its history row and its messages, in one
    statement that also reads the webhook subscriptions told of it and (LEAVE_WAITING_LIST) the open waiting-list
    entries of its e-mail address. What those reads find is then recorded (deliveries) and ended (entries):
    statements only when there is something.

    1. WITH appointment AS (INSERT ... RETURNING id), event AS (INSERT ... (SELECT id FROM appointment) ...),
       messages AS (INSERT ...): the PreparedInsert statements, the children's key to the appointment taken from
       the first. Foreign keys are checked at commit (Django makes them deferrable), so their order does not matter.
    2. The SELECT after them: each part's rows tagged with its number, the keys in the order of the VALUES.
    The reads see the same rows as they did as statements of their own after the INSERTs: neither reads the rows
    inserted here. A unique violation fails the whole statement (appointment_book's backstop), as before.
    """
    from bookings import notifications, webhooks

    action = AppointmentEvent.Action.BOOKED
    messages = notifications.messages_for_change(appointment, action=action, now=now, manage_token=manage_token)
    parts = [(_INSERT_APPOINTMENT, [appointment]), (_INSERT_EVENT, [event])]
    if messages:
        parts.append((notifications._INSERT_MESSAGES, messages))
    ctes, params = [], []
    for number, (prepared, objs) in enumerate(parts):
        if number:
            sql, part_params = prepared.statement(*objs, parent=appointment, parent_cte="part_0")
        else:
            sql, part_params = prepared.statement(*objs)
        ctes.append(f"part_{number} AS ({sql})")
        params += part_params
    # Each row: (part, a receiver's flag, then the keys: the appointment's returned fields, one key for the others).
    width = len(Appointment._meta.db_returning_fields)
    pad = ", NULL" * (width - 1)
    selects = ["SELECT 0, NULL::boolean, part.* FROM part_0 AS part"]
    selects += [f"SELECT {number}, NULL, part.*{pad} FROM part_{number} AS part" for number in range(1, len(parts))]
    receiving_sql, receiving_params = webhooks.receiving_statement(action)
    selects.append(f"SELECT -1, receiver.flag, receiver.pk{pad} FROM ({receiving_sql}) AS receiver(pk, flag)")
    params += receiving_params
    if leave_waiting_list:
        entries_sql = _OPEN_ENTRIES_WITH_EMAIL.prepare()
        selects.append(f"SELECT -2, NULL, entry.pk{pad} FROM ({entries_sql}) AS entry(pk)")
        params += _OPEN_ENTRIES_WITH_EMAIL.params({"email_key": appointment.email.strip().lower()})
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(ctes)} {' UNION ALL '.join(selects)}", params)
        rows = cursor.fetchall()
    for number, (prepared, objs) in enumerate(parts):
        prepared.returned(objs, [row[2 : 2 + (width if number == 0 else 1)] for row in rows if row[0] == number])
    webhooks.appointment_changed(
        appointment,
        action=action,
        now=now,
        receivers=[webhooks.Receiver(row[2], row[1]) for row in rows if row[0] == -1],
    )
    entry_ids = [row[2] for row in rows if row[0] == -2]
    if entry_ids:
        _end_entries(entry_ids, status=WaitingListEntry.Status.BOOKED_ELSEWHERE, now=now)


# A pass lives an hour in its cookie (bookings.flow.FLOW_COOKIE_MAX_AGE); its row is kept a little longer,
# and rows past that are deleted every so many online bookings (per process).
USED_PASS_KEPT = timedelta(hours=2)
PRUNE_PASSES_EVERY = 200
_passes_used = itertools.count(1)

# The pass is consumed (ON CONFLICT DO NOTHING: a pass used before returns no row, and nothing is locked), then
# the contact's two advisory locks are taken by RETURNING, after the insert, in the order of its list: PostgreSQL
# evaluates it from left to right. One statement, in the same order as two.
CONSUME_PASS_AND_LOCK_CONTACT_SQL = f"""
    INSERT INTO {UsedSafetyCheckPass._meta.db_table} (pass_hash, used_at) VALUES (%s, %s)
    ON CONFLICT (pass_hash) DO NOTHING
    RETURNING pg_advisory_xact_lock(%s), pg_advisory_xact_lock(%s)
"""


def _check_online_limits(patient: PatientDetails, *, now: datetime, guard: OnlineBookingGuard) -> None:
    """Step 4 of `appointment_book`. Raises SafetyCheckPassUsed or BookingLimitReached.

    Refusals are decided by statements that cannot fail (ON CONFLICT DO NOTHING, counts), never by a
    constraint violation: PostgreSQL logs a failing statement with its values.
    """
    phone_key = phone_contact_key(patient.phone)
    # Two bookings for one contact at once (from two addresses) queue on the locks, so the count below is exact.
    with connection.cursor() as cursor:
        cursor.execute(
            CONSUME_PASS_AND_LOCK_CONTACT_SQL,
            [hash_token(guard.safety_pass), now, *_contact_lock_keys(email=patient.email, phone_key=phone_key)],
        )
        if cursor.fetchone() is None:
            raise SafetyCheckPassUsed
    _refuse_a_contact_at_the_limit(patient, now=now, phone_key=phone_key)
    if count_booking(guard.client_key, now=now) > settings.RATE_LIMIT_BOOKINGS_PER_HOUR:
        raise BookingLimitReached("address")


def _check_contact_limit(patient: PatientDetails, *, now: datetime) -> None:
    """The per-contact part of `_check_online_limits`, for a booking without the form's pass (a waiting-list offer)."""
    phone_key = phone_contact_key(patient.phone)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s), pg_advisory_xact_lock(%s)",
            _contact_lock_keys(email=patient.email, phone_key=phone_key),
        )
    _refuse_a_contact_at_the_limit(patient, now=now, phone_key=phone_key)


def _refuse_a_contact_at_the_limit(patient: PatientDetails, *, now: datetime, phone_key: str) -> None:
    """BookingLimitReached when the e-mail address or the phone number already has its live upcoming bookings.
    Under the contact's advisory locks, so that two bookings of one contact at once count each other."""
    ((same_email, same_phone),) = _CONTACT_COUNTS.rows(now=now, email=patient.email, phone_key=phone_key)
    if max(same_email, same_phone) >= settings.BOOKING_MAX_LIVE_PER_CONTACT:
        raise BookingLimitReached("contact")


def _contact_lock_keys(*, email: str, phone_key: str) -> list[int]:
    """The keys of the advisory locks on the e-mail address and the phone number, in one order (no deadlock)."""
    names = (f"email:{email.strip().lower()}", f"phone:{phone_key}")
    return sorted(
        int.from_bytes(hashlib.sha256(f"bookings.contact:{name}".encode()).digest()[:8], "big", signed=True)
        for name in names
    )


def _contact_counts(*, now: datetime, email: str, phone_key: str):
    """The live upcoming bookings with this e-mail address, and with this phone number (its contact key)."""
    # The condition repeated in WHERE: the two indexes (e-mail in any case, phone) find the contact's rows,
    # where the FILTERs alone would read every upcoming appointment.
    same_email, same_phone = same_email_address(email), same_phone_key(phone_key)
    return (
        Appointment.objects.upcoming(now=now)
        .filter(same_email | same_phone)
        .aggregate(same_email=Count("pk", filter=same_email), same_phone=Count("pk", filter=same_phone))
    )


_CONTACT_COUNTS = PreparedQuery(
    _contact_counts,
    samples={
        "now": SAMPLE_TIMES,
        "email": (" Sample.First@Example.ORG ", " Sample.Second@Example.NET "),
        "phone_key": (" +44 7700 900001 ", " +44 7700 900002 "),
    },
)


def _booking_with_key(submission_key: uuid.UUID | None) -> Appointment | None:
    if submission_key is None:
        return None
    # Unordered: the model's default ordering would join the slot for nothing.
    return Appointment.objects.filter(submission_key=submission_key).order_by().first()


def _lock_appointment(appointment_id) -> Appointment:
    """Lock the appointment row alone, then read it with its slot.

    Not one SELECT ... FOR UPDATE over the join: a row changed while the lock was awaited is re-checked
    against the joined slot row of the old snapshot (PostgreSQL's EvalPlanQual), so an appointment just
    moved by another transaction (a waiting-list accept racing a cancellation) would not be found at all.
    """
    Appointment.objects.select_for_update().filter(pk=appointment_id).order_by().values_list("pk", flat=True).get()
    return Appointment.objects.select_related("slot__practitioner").order_by().get(pk=appointment_id)


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


def appointment_cancel(
    *, appointment: Appointment, now: datetime, reason: str = "", actor=None, notify_patient=True, api_key_name=""
):
    """Cancel a live appointment: its slot becomes bookable again, unless the schedule no longer
    has it (then it is retired); the row stays, as history. An API key (`api_key_name`) has reception's rules."""
    with transaction.atomic():
        locked = _lock_appointment(appointment.pk)
        if actor is None and not api_key_name and not locked.patient_can_change(now=now):
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
            actor_label=f"api:{api_key_name}" if api_key_name else "",
        )
        _retire_if_unfit(locked.slot, now=now)
    return locked


def appointment_move(
    *,
    appointment: Appointment,
    new_slot_id: int,
    now: datetime,
    actor=None,
    api_key_name: str = "",
    held_for: WaitingListOffer | None = None,
) -> Appointment:
    """Move an appointment to another slot: the new one is taken and the old one freed together.
    An API key (`api_key_name`) has reception's rules, except that it may not take a time held for a
    waiting-list offer (reception may, for a caller on the phone).

    `held_for`: the waiting-list offer being accepted, which may take the slot it holds.
    """
    staff = actor is not None or bool(api_key_name)
    try:
        with transaction.atomic():
            locked = _lock_appointment(appointment.pk)
            if not locked.can_be_moved:
                raise ChangeNotAllowed("not booked")
            if not staff and not locked.patient_can_change(now=now):
                raise ChangeNotAllowed("cut-off")
            if str(locked.slot_id) == str(new_slot_id):
                raise SlotUnavailable("same slot")
            old_slot = locked.slot
            try:
                _lock_slots(old_slot.pk, int(new_slot_id))
            except (ValueError, TypeError):
                raise SlotUnavailable("unknown") from None
            new_slot = _lock_bookable_slot(
                new_slot_id, now=now, staff=staff, held_for=held_for, may_take_held=actor is not None
            )
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
                actor_label=f"api:{api_key_name}" if api_key_name else "",
            )
            _retire_if_unfit(old_slot, now=now)
    except IntegrityError:
        raise SlotUnavailable("taken") from None
    return locked


def appointment_set_status(
    *, appointment: Appointment, status: str, now: datetime, actor, api_key_name: str = ""
) -> Appointment:
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
            actor_label=f"api:{api_key_name}" if api_key_name else "",
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


def callback_request_record(*, callback, now: datetime):
    """Save a call-back request from the Contact page, with the webhooks it causes, in one transaction."""
    from bookings import webhooks

    with transaction.atomic():
        callback.created_at = now
        callback.save()
        webhooks.callback_requested(callback, now=now)
    return callback


def practitioner_calendar_token_reset(*, practitioner) -> str:
    """A new private calendar-feed token for a practitioner; the old feed URL stops working at once.

    Only the hash is stored: the returned token is shown once, to the practitioner.
    """
    token = new_token()
    practitioner.calendar_token_hash = hash_token(token)
    Practitioner.objects.filter(pk=practitioner.pk).update(calendar_token_hash=practitioner.calendar_token_hash)
    return token


# -- The waiting list ---------------------------------------------------------------------
#
# How freed times reach the list: the e-mail worker runs `waiting_list_scan` on every loop. It looks
# at every bookable slot (not held, outside the minimum notice, inside the horizon), so a cancellation,
# a move, an unblocked slot, new working hours and an expired hold are all found the same way, with no
# hook in each of the services that free a time.


class AlreadyWaiting(Exception):
    """This e-mail address already has an entry on the waiting list."""


class OfferNotPossible(Exception):
    """Reception's hand offer cannot be made: `reason` says why, in reception's words."""


@dataclass
class WaitingListRequest:
    """What a patient (or reception, for a caller) asks the waiting list for."""

    first_name: str
    last_name: str
    email: str
    phone: str
    practitioner: Practitioner | None
    weekdays: list[int]
    parts_of_day: list[str]
    wait_until: date_type


@dataclass
class ScanReport:
    expired_offers: int = 0
    ended_offers: int = 0
    expired_entries: int = 0
    offers_made: int = 0
    slots_offered: int = 0


@dataclass
class AcceptResult:
    """What accepting an offer did: `outcome` is "booked" or "moved", or why nothing changed:
    "unknown" (no such link), "used" (accepted already), "gone" (someone else got it), "expired"
    (the hold ran out), "left" (the entry is no longer waiting), "too late to move" (the booking
    to be moved is inside its change cut-off), "not earlier" (the booking to be moved is no later than the
    time offered: it was moved since) or "limit" (the contact has its live bookings already)."""

    outcome: str
    offer: WaitingListOffer | None = None
    appointment: Appointment | None = None
    manage_token: str | None = None


def _lock_waiting_list_email(email: str) -> None:
    """A transaction-level advisory lock on an address: two joins with one address queue here."""
    key = int.from_bytes(
        hashlib.sha256(f"bookings.waitlist:{email.strip().lower()}".encode()).digest()[:8], "big", signed=True
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def waiting_list_join(
    *,
    request: WaitingListRequest,
    now: datetime,
    safety_answers: dict,
    privacy_notice_version: str,
    appointment: Appointment | None = None,
    added_by=None,
) -> tuple[WaitingListEntry, str]:
    """Put a patient on the waiting list; returns the entry and the raw token of its link (only its hash is kept).

    One waiting entry per e-mail address: decided by a read under an advisory lock on the address
    (AlreadyWaiting), with the partial unique index as the backstop.
    """
    token = new_token()
    with transaction.atomic():
        _lock_waiting_list_email(request.email)
        if WaitingListEntry.objects.waiting().same_email(request.email).exists():
            raise AlreadyWaiting
        entry = _new_entry(
            request,
            token=token,
            now=now,
            safety_answers=safety_answers,
            privacy_notice_version=privacy_notice_version,
            appointment=appointment,
            added_by=added_by,
        )
    return entry, token


def _new_entry(request: WaitingListRequest, *, token: str, now: datetime, **fields) -> WaitingListEntry:
    """A waiting-list entry for REQUEST, its link's token kept only as a hash."""
    return WaitingListEntry.objects.create(
        first_name=request.first_name,
        last_name=request.last_name,
        email=request.email,
        phone=request.phone,
        practitioner=request.practitioner,
        weekdays=sorted(set(request.weekdays)),
        parts_of_day=sorted(set(request.parts_of_day)),
        wait_until=request.wait_until,
        token_hash=hash_token(token),
        created_at=now,
        **fields,
    )


# An online join waits this long for its e-mailed link to be opened; then it expires, never offered anything.
WAITING_LIST_CONFIRM_WITHIN = timedelta(days=1)


def waiting_list_ask(
    *, request: WaitingListRequest, now: datetime, safety_answers: dict, privacy_notice_version: str
) -> None:
    """Someone asks online to join with an address: only opening the e-mailed link joins (`waiting_list_confirm`).

    Nothing is returned, so the page answers the same whether or not the address is already waiting:
    1. An entry already waiting with this address gets a fresh link, e-mailed (the old link stops working).
    2. Otherwise a pending entry is made (offered nothing until confirmed), its link e-mailed; an earlier
       pending one for the address ends, so only the newest link joins.
    Both under the address's advisory lock, the e-mail through the outbox in the same transaction.
    """
    token = new_token()
    with transaction.atomic():
        _lock_waiting_list_email(request.email)
        waiting = WaitingListEntry.objects.waiting().same_email(request.email).select_for_update().first()
        if waiting is not None:
            _send_fresh_link(waiting, token=token, now=now)
            return
        earlier = list(
            WaitingListEntry.objects.filter(status=WaitingListEntry.Status.PENDING)
            .same_email(request.email)
            .values_list("pk", flat=True)
        )
        _end_entries(earlier, status=WaitingListEntry.Status.REPLACED, now=now)
        entry = _new_entry(
            request,
            token=token,
            now=now,
            safety_answers=safety_answers,
            privacy_notice_version=privacy_notice_version,
            status=WaitingListEntry.Status.PENDING,
        )
        _record_link_email(entry, token=token, now=now)


def _record_link_email(entry: WaitingListEntry, *, token: str, now: datetime) -> None:
    from bookings import notifications  # notifications imports the models this module does

    notifications.waiting_list_link(entry=entry, token=token, now=now)


def _send_fresh_link(entry: WaitingListEntry, *, token: str, now: datetime) -> None:
    WaitingListEntry.objects.filter(pk=entry.pk).update(token_hash=hash_token(token))
    entry.token_hash = hash_token(token)
    _record_link_email(entry, token=token, now=now)


def waiting_list_send_link(*, email: str, now: datetime) -> None:
    """ "Lost your link?": the entry open with this address (waiting, or not yet confirmed) gets a fresh link by
    e-mail. Nothing is returned: the page answers the same whether or not there is one."""
    token = new_token()
    with transaction.atomic():
        _lock_waiting_list_email(email)
        entry = (
            WaitingListEntry.objects.open()
            .same_email(email)
            .filter(Q(status=WaitingListEntry.Status.WAITING) | Q(created_at__gt=now - WAITING_LIST_CONFIRM_WITHIN))
            .select_for_update()
            .order_by("-created_at", "-pk")
            .first()
        )
        if entry is not None and entry.added_by_id is None:
            _send_fresh_link(entry, token=token, now=now)


def booking_to_move(*, email: str, now: datetime) -> Appointment | None:
    """The live booking ahead, with this address, that an earlier time could move: the soonest one the patient
    may still change."""
    for appointment in (
        Appointment.objects.upcoming(now=now)
        .filter(same_email_address(email), status=Appointment.Status.BOOKED)
        .select_related("slot__practitioner")
        .order_by("slot__starts_at", "pk")
    ):
        if appointment.patient_can_change(now=now):
            return appointment
    return None


def waiting_list_confirm(*, entry: WaitingListEntry, now: datetime, move_booking: bool) -> str:
    """The e-mailed link was opened and confirmed: the entry joins the list (its place counts from now).

    MOVE_BOOKING: an earlier time should move the address's live booking ahead (`booking_to_move`, read under
    the lock) rather than make another. Returns "joined", or why not: "expired" (the link was opened too
    late), "already waiting" (another entry with this address was confirmed first), "ended", or "nothing
    earlier" (none of the times asked for comes before that booking; the entry stays to be confirmed).
    """
    with transaction.atomic():
        _lock_waiting_list_email(entry.email)
        entry = WaitingListEntry.objects.select_for_update().get(pk=entry.pk)
        if entry.status == WaitingListEntry.Status.WAITING:
            return "joined"
        if entry.status != WaitingListEntry.Status.PENDING:
            return "ended"
        if entry.created_at + WAITING_LIST_CONFIRM_WITHIN <= now:
            _end_entries([entry.pk], status=WaitingListEntry.Status.LAPSED, now=now)
            return "expired"
        if WaitingListEntry.objects.waiting().same_email(entry.email).exists():
            _end_entries([entry.pk], status=WaitingListEntry.Status.REPLACED, now=now)
            return "already waiting"
        moving = booking_to_move(email=entry.email, now=now) if move_booking else None
        if moving is not None and not entry.wants_a_time_before(moving.slot.starts_at, now=now):
            # Only earlier times move a booking (MATCHING_SQL): joined so, the entry would never be offered one.
            return "nothing earlier"
        WaitingListEntry.objects.filter(pk=entry.pk).update(
            status=WaitingListEntry.Status.WAITING, appointment=moving, created_at=now
        )
    return "joined"


def _end_entries(entry_ids, *, status: str, now: datetime) -> None:
    """End open entries and withdraw their live offers (the slots they held are free again)."""
    WaitingListEntry.objects.filter(pk__in=entry_ids, status__in=OPEN_ENTRY_STATUSES).update(
        status=status, ended_at=now
    )
    WaitingListOffer.objects.filter(entry__in=entry_ids, status=WaitingListOffer.Status.OFFERED).update(
        status=WaitingListOffer.Status.WITHDRAWN, ended_at=now
    )


def waiting_list_leave(*, entry: WaitingListEntry, now: datetime, actor=None) -> None:
    """The patient leaves the list (their link), or reception removes them (`actor`)."""
    status = WaitingListEntry.Status.REMOVED if actor else WaitingListEntry.Status.LEFT
    with transaction.atomic():
        _end_entries([entry.pk], status=status, now=now)


# The argument is the address as `WaitingListQuerySet.same_email` compares it (stripped, lower case): the
# samples are too, so that the method's own normalising leaves them as given.
# Only the entries waiting for any time: one waiting to move a booking to an earlier time is not served by another
# booking (found by hand: anyone booking with a patient's address ended the patient's "something sooner" place).
_OPEN_ENTRIES_WITH_EMAIL = PreparedQuery(
    lambda email_key: (
        WaitingListEntry.objects.open().same_email(email_key).filter(appointment__isnull=True).values_list("pk")
    ),
    samples={"email_key": ("sample.first@example.org", "sample.second@example.net")},
)


# The matching: for every slot a patient could book now, the first BATCH waiting entries (by joining
# order) that want it and have not been offered it (or lost it to someone else who took it first:
# WaitingListOfferQuerySet.keeping_the_slot_from_the_entry), one query whatever the length of the list. The
# slots come from SlotQuerySet.bookable (held slots left out); the entries are walked in joining order
# through waitlist_waiting_order_idx. An entry holding a live offer is not offered another time at
# once (nobody holds several times), and an entry wanting to improve on a booking is offered only
# earlier times than it.
MATCHING_SQL = """
SELECT s.id, e.id
FROM ({bookable}) AS s
CROSS JOIN LATERAL (
    SELECT e.id, e.created_at
    FROM bookings_waitinglistentry e
    WHERE e.status = %s
      AND (e.practitioner_id IS NULL OR e.practitioner_id = s.practitioner_id)
      AND e.wait_until >= (s.starts_at AT TIME ZONE %s)::date
      AND (EXTRACT(ISODOW FROM s.starts_at AT TIME ZONE %s)::int - 1) = ANY(e.weekdays)
      AND (CASE WHEN EXTRACT(HOUR FROM s.starts_at AT TIME ZONE %s) < %s THEN %s
                WHEN EXTRACT(HOUR FROM s.starts_at AT TIME ZONE %s) < %s THEN %s
                ELSE %s END) = ANY(e.parts_of_day)
      AND NOT EXISTS (
          SELECT 1 FROM bookings_waitinglistoffer o WHERE o.entry_id = e.id AND o.slot_id = s.id AND o.status <> %s
      )
      AND NOT EXISTS (
          SELECT 1 FROM bookings_waitinglistoffer o
          WHERE o.entry_id = e.id AND o.status = %s AND o.held_until > %s
      )
      AND (e.appointment_id IS NULL OR EXISTS (
          SELECT 1 FROM bookings_appointment a JOIN bookings_slot held ON held.id = a.slot_id
          WHERE a.id = e.appointment_id AND held.starts_at > s.starts_at
      ))
    ORDER BY e.created_at, e.id
    LIMIT %s
) AS e
ORDER BY s.starts_at, s.id, e.created_at, e.id
"""


def waiting_list_matches(*, now: datetime, batch: int) -> dict[int, list[int]]:
    """{slot id: [entry ids, first joined first]}, in slot order: who each bookable slot would be offered to now."""
    from bookings.models import PartOfDay

    bookable_sql, bookable_params = (
        Slot.objects.bookable(now=now).order_by().values("id", "starts_at", "practitioner_id").query.sql_with_params()
    )
    zone = str(clinic_zone())
    params = [
        *bookable_params,
        WaitingListEntry.Status.WAITING,
        zone,
        zone,
        zone,
        AFTERNOON_FROM_HOUR,
        PartOfDay.MORNING.value,
        zone,
        EVENING_FROM_HOUR,
        PartOfDay.AFTERNOON.value,
        PartOfDay.EVENING.value,
        WaitingListOffer.Status.GONE,
        WaitingListOffer.Status.OFFERED,
        now,
        batch,
    ]
    matches: dict[int, list[int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(MATCHING_SQL.format(bookable=bookable_sql), params)
        for slot_id, entry_id in cursor.fetchall():
            matches.setdefault(slot_id, []).append(entry_id)
    return matches


# The matching fetches this many batches of candidates per slot: enough that neighbouring free times
# wanted by the same people each find a batch in one scan (the rest wait for the next loop).
CANDIDATES_PER_BATCH = 4


def waiting_list_scan(*, now: datetime) -> ScanReport:
    """What the worker does on every loop, before sending:

    1. Holds that ran out end (EXPIRED), and offers for slots booked meanwhile (reception may book a held
       slot) end as GONE: the time page shows the slot again, through the offer table's trigger.
    2. Entries past their last day end (EXPIRED), with any live offers.
    3. Each bookable slot with matching entries is offered to the first WAITING_LIST_BATCH of them,
       held for WAITING_LIST_HOLD, with one e-mail each through the outbox (`_offer_slot`).
    An entry is offered one slot at a time; the entries of one scan are offered once.
    """
    report = ScanReport()
    report.expired_offers = WaitingListOffer.objects.filter(
        status=WaitingListOffer.Status.OFFERED, held_until__lte=now
    ).update(status=WaitingListOffer.Status.EXPIRED, ended_at=now)
    report.ended_offers = WaitingListOffer.objects.filter(
        status=WaitingListOffer.Status.OFFERED, slot__appointments__in=Appointment.objects.live()
    ).update(status=WaitingListOffer.Status.GONE, ended_at=now)
    today = now.astimezone(clinic_zone()).date()
    # Links never opened: these joined nothing.
    lapsed = Q(status=WaitingListEntry.Status.PENDING, created_at__lte=now - WAITING_LIST_CONFIRM_WITHIN)
    ending = list(
        WaitingListEntry.objects.open()
        .filter(Q(wait_until__lt=today) | lapsed)
        .annotate(lapsed=ExpressionWrapper(lapsed, output_field=BooleanField()))
        .values_list("pk", "lapsed")
    )
    for status, ended_so in (
        (WaitingListEntry.Status.LAPSED, [pk for pk, was_lapsed in ending if was_lapsed]),
        (WaitingListEntry.Status.EXPIRED, [pk for pk, was_lapsed in ending if not was_lapsed]),
    ):
        if ended_so:
            _end_entries(ended_so, status=status, now=now)
    report.expired_entries = len(ending)
    offered_this_scan: set[int] = set()
    batch = settings.WAITING_LIST_BATCH
    # More candidates than a batch per slot: the first people may be offered an earlier slot in this scan.
    for slot_id, entry_ids in waiting_list_matches(now=now, batch=batch * CANDIDATES_PER_BATCH).items():
        fresh = [entry_id for entry_id in entry_ids if entry_id not in offered_this_scan][:batch]
        if not fresh:
            continue
        made = _offer_slot(slot_id=slot_id, entry_ids=fresh, now=now)
        offered_this_scan.update(made)
        report.offers_made += len(made)
        report.slots_offered += bool(made)
    return report


def _offer_slot(*, slot_id: int, entry_ids: list[int], now: datetime, actor=None) -> list[int]:
    """Offer one slot to some entries, holding it for them: one transaction, the slot locked and re-checked.

    Returns the entries offered (none when the slot was taken, held or offered to them meanwhile).
    """
    from bookings import notifications

    with transaction.atomic():
        try:
            slot = Slot.objects.select_related("practitioner").select_for_update(of=("self",)).get(pk=slot_id)
        except Slot.DoesNotExist:
            return []
        if not slot.offered_to_patients(now=now) or Appointment.objects.live().filter(slot=slot).exists():
            return []
        earlier_offers = WaitingListOffer.objects.filter(entry=OuterRef("pk"), slot=slot)
        entries = list(
            WaitingListEntry.objects.waiting()
            .filter(pk__in=entry_ids)
            .filter(~Exists(earlier_offers.keeping_the_slot_from_the_entry()))
            # What is left of an earlier offer of this slot was GONE (someone else took the time first): the
            # offer is made again in that row (one per entry and slot), its old link no longer working.
            .annotate(gone_offer_id=Subquery(earlier_offers.values("pk")[:1]))
            .select_for_update(of=("self",))
            .order_by("created_at", "pk")
        )
        batch = uuid.uuid4()
        held_until = now + settings.WAITING_LIST_HOLD
        offers, tokens = [], []
        for entry in entries:
            token = new_token()
            tokens.append(token)
            offers.append(
                WaitingListOffer(
                    pk=entry.gone_offer_id,
                    entry=entry,
                    slot=slot,
                    batch=batch,
                    offered_at=now,
                    held_until=held_until,
                    token_hash=hash_token(token),
                    offered_by=actor,
                )
            )
        made_again = [offer for offer in offers if offer.pk is not None]
        WaitingListOffer.objects.bulk_create([offer for offer in offers if offer.pk is None])
        for offer in made_again:
            WaitingListOffer.objects.filter(pk=offer.pk, status=WaitingListOffer.Status.GONE).update(
                status=WaitingListOffer.Status.OFFERED,
                batch=batch,
                offered_at=now,
                held_until=held_until,
                token_hash=offer.token_hash,
                offered_by=actor,
                ended_at=None,
            )
        notifications.waiting_list_offered(offers, tokens=tokens, now=now)
    return [entry.pk for entry in entries]


def waiting_list_offer_by_hand(*, entry: WaitingListEntry, slot_id: int, now: datetime, actor) -> WaitingListOffer:
    """Reception offers a chosen time to a chosen person (a batch of one, held as any offer is).

    The time must be one a patient could book now (the patient accepts it online); OfferNotPossible otherwise.
    """
    if entry.status != WaitingListEntry.Status.WAITING:
        raise OfferNotPossible("This person is no longer on the waiting list.")
    if WaitingListOffer.objects.filter(entry=entry, slot_id=slot_id).keeping_the_slot_from_the_entry().exists():
        raise OfferNotPossible("This time has already been offered to this person.")
    if entry.appointment_id is not None:
        _refuse_a_later_time(entry, slot_id=slot_id)
    made = _offer_slot(slot_id=slot_id, entry_ids=[entry.pk], now=now, actor=actor)
    if not made:
        raise OfferNotPossible(
            "That time cannot be offered: it is booked, held for another offer, too soon to book online, "
            "or no longer in the diary."
        )
    return WaitingListOffer.objects.get(entry=entry, slot_id=slot_id)


def _refuse_a_later_time(entry: WaitingListEntry, *, slot_id: int) -> None:
    """OfferNotPossible when ENTRY waits to move a booking and the slot is not before it (`may_move_to`)."""
    entry = WaitingListEntry.objects.select_related("appointment__slot").get(pk=entry.pk)
    slot = Slot.objects.filter(pk=slot_id).only("starts_at").first()
    if slot is not None and not entry.may_move_to(slot.starts_at):
        raise OfferNotPossible(
            "This person is waiting to move their booking to an earlier time: only times before it can be "
            "offered, and this one is not."
        )


def waiting_list_offer_accept(*, token: str, now: datetime) -> AcceptResult:
    """Accept an offer: the first to accept gets the time, through the same booking service as everyone.

    1. In one transaction, lock what the booking locks, in the same order (the appointment to move,
       then the slots, by key), then the entry and the offer; re-read both under the locks.
    2. Only a live offer (offered, held until after NOW, its entry still waiting) may book.
    3. Book a new appointment with the entry's safety answers (source: waiting list), or move the
       entry's booking (its old time is freed, and offered on by the next scan).
    4. The offer is accepted, the entry booked, the other offers of this slot are gone, the
       entry's other offers withdrawn. A time taken meanwhile marks this offer gone, and nothing else.
    """
    found = WaitingListOffer.objects.by_token(token).select_related("entry").order_by().first()
    if found is None:
        return AcceptResult("unknown")
    with transaction.atomic():
        moving = None
        if found.entry.appointment_id is not None:
            moving = _lock_appointment(found.entry.appointment_id)
            if moving.status != Appointment.Status.BOOKED:
                moving = None
        _lock_slots(found.slot_id, *([moving.slot_id] if moving else []))
        # The entry, then the offer: the order every writer of both keeps (_offer_slot, _end_entries).
        entry = WaitingListEntry.objects.select_for_update().get(pk=found.entry_id)
        offer = (
            WaitingListOffer.objects.select_for_update(of=("self",))
            .select_related("slot__practitioner")
            .get(pk=found.pk)
        )
        offer.entry = entry
        refusal = offer_refusal(offer, now=now)
        if refusal:
            return AcceptResult(refusal, offer=offer)
        try:
            if moving is not None:
                if not moving.patient_can_change(now=now):
                    return AcceptResult("too late to move", offer=offer)
                # The booking may have been moved since the offer (reception, on the phone): the promise is
                # something sooner, so an offer never moves a booking to a later time.
                entry.appointment = moving
                if not entry.may_move_to(offer.slot.starts_at):
                    return AcceptResult("not earlier", offer=offer)
                appointment = appointment_move(appointment=moving, new_slot_id=offer.slot_id, now=now, held_for=offer)
                result = AcceptResult("moved", offer=offer, appointment=appointment)
            else:
                try:
                    booking = appointment_book(
                        slot_id=offer.slot_id,
                        patient=PatientDetails(
                            first_name=entry.first_name, last_name=entry.last_name, phone=entry.phone, email=entry.email
                        ),
                        now=now,
                        safety_answers=entry.safety_answers,
                        privacy_notice_version=entry.privacy_notice_version,
                        waiting_list_offer=offer,
                    )
                except BookingLimitReached:
                    # Nothing changes: the offer stays open to the others it went to, the entry stays on the list.
                    return AcceptResult("limit", offer=offer)
                result = AcceptResult(
                    "booked", offer=offer, appointment=booking.appointment, manage_token=booking.manage_token
                )
        except SlotUnavailable:
            WaitingListOffer.objects.filter(pk=offer.pk).update(status=WaitingListOffer.Status.GONE, ended_at=now)
            return AcceptResult("gone", offer=offer)
        WaitingListOffer.objects.filter(pk=offer.pk).update(status=WaitingListOffer.Status.ACCEPTED, ended_at=now)
        WaitingListOffer.objects.filter(slot_id=offer.slot_id, status=WaitingListOffer.Status.OFFERED).update(
            status=WaitingListOffer.Status.GONE, ended_at=now
        )
        WaitingListEntry.objects.filter(pk=entry.pk).update(status=WaitingListEntry.Status.BOOKED, ended_at=now)
        WaitingListOffer.objects.filter(entry=entry, status=WaitingListOffer.Status.OFFERED).update(
            status=WaitingListOffer.Status.WITHDRAWN, ended_at=now
        )
    return result


def offer_refusal(offer: WaitingListOffer, *, now: datetime) -> str:
    """Why a locked offer cannot be accepted at NOW, or "" when it can."""
    if offer.status == WaitingListOffer.Status.ACCEPTED:
        return "used"
    if offer.status == WaitingListOffer.Status.GONE:
        return "gone"
    if offer.entry.status != WaitingListEntry.Status.WAITING or offer.status == WaitingListOffer.Status.WITHDRAWN:
        return "left"
    # Their slots can no longer be booked (Slot.objects.bookable): say so, rather than "someone else took it".
    practitioner = offer.slot.practitioner
    if not practitioner.offers_consultations_online:
        return "not taking bookings"
    if offer.status == WaitingListOffer.Status.EXPIRED or offer.held_until <= now:
        return "expired"
    return ""


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


INSIGHTS_REFRESH_LOCK_KEY = 1_605_016_021


def insights_refresh_if_due(*, now: datetime) -> bool:
    """The e-mail worker's hourly rebuild (settings.INSIGHTS_REFRESH_EVERY), so that the figures follow the
    diary without anyone pressing the button; skipped while another worker or the button is rebuilding."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [INSIGHTS_REFRESH_LOCK_KEY])
            (locked,) = cursor.fetchone()
        if (
            not locked
            or InsightsRefresh.objects.filter(refreshed_at__gt=now - settings.INSIGHTS_REFRESH_EVERY).exists()
        ):
            return False
        insights_refresh(now=now)
    return True


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
        # One rebuild at a time (the button, the command, a worker): a second DELETE would not see the
        # first one's new rows and would add its own beside them.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [INSIGHTS_REFRESH_LOCK_KEY])
        for model in (InsightsBookingDay, InsightsDiaryDay, InsightsAttendanceDay, InsightsLeadDays):
            cursor.execute(f"DELETE FROM {model._meta.db_table}")
        for statement in statements:
            cursor.execute(statement, params)
        InsightsRefresh.objects.update_or_create(pk=1, defaults={"refreshed_at": now})
