"""Patients' personal data for its lifetime (UK GDPR): who looked, access on request, erasure, retention.

- `patient_data_access_record`: the one way a staff page records that it showed patients' details.
- `patient_records_for` / `patient_data_export`: everything held about the patient of one appointment,
  found by reception's own rule of "the same patient" (AppointmentQuerySet.same_patient_as), their call-back
  requests and waiting-list entries (with the offers made and their e-mails) included.
- `patient_data_anonymise`: erase the details of given records, keeping the rows (appointments and their
  history are PROTECT-ed: the diary, counts and the slot's history stay). Idempotent and safe to run twice
  at once: each UPDATE is guarded by `anonymised_at IS NULL` on rows locked in primary-key order, so a
  second run waits, then finds nothing left to do.
- `patient_data_erase`: erasure on request (cancel what is ahead through the booking service, take them off the
  waiting list through its service, then anonymise).
- `expired_data_purge` / `purge_if_due`: the daily purge by settings.RETENTION.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField, Prefetch, Q, Value
from django.db.models.functions import Cast, Concat, Lower

from bookings.models import (
    OPEN_ENTRY_STATUSES,
    Appointment,
    AppointmentEvent,
    CallbackRequest,
    ManageLinkToken,
    OutboundMessage,
    PatientDataAccess,
    PatientDataErasure,
    PurgeRun,
    WaitingListEntry,
    WaitingListOffer,
    WebhookDelivery,
)
from clinic.ratelimit import client_address

# The one message an erasure waits for: the cancellation it sends when reception leaves "tell the patient"
# ticked (it needs the name and address). Any other message still waiting is news of a booking that is being
# erased (a confirmation, a move, a reminder, reception's copy): it is skipped instead.
PATIENT_MESSAGE_KINDS = (OutboundMessage.Kind.CANCELLED,)
WAITING = (OutboundMessage.Status.PENDING, OutboundMessage.Status.SENDING)
# A constant key for pg_try_advisory_xact_lock: one daily purge at a time across every machine.
PURGE_LOCK_KEY = 1_605_016_016
PURGE_EVERY = timedelta(days=1)


# -- Who looked ---------------------------------------------------------------------------------


def _ids(records) -> list[int]:
    return sorted({record if isinstance(record, int) else record.pk for record in records})


def patient_data_access_record(
    request, *, page: str, appointments=(), callbacks=(), waiting_list_entries=(), api_key_name: str = ""
) -> PatientDataAccess:
    """Record one staff page view that showed patients' details (appointments, call-back requests and
    waiting-list entries, as rows or ids). Every staff page showing patient data calls this once per view, even
    when the list is empty: the record says the page was opened. An API call that returns patient data is recorded under
    its key's name."""
    user = request.user
    signed_in = user.is_authenticated and not api_key_name
    address = client_address(request)
    return PatientDataAccess.objects.create(
        at=_now(),
        user=user if signed_in else None,
        username=user.get_username() if signed_in else (f"API key: {api_key_name}"[:150] if api_key_name else ""),
        page=page[:80],
        appointment_ids=_ids(appointments),
        callback_ids=_ids(callbacks),
        waiting_list_entry_ids=_ids(waiting_list_entries),
        client_address=address if address != "unknown" else None,
    )


def _now() -> datetime:
    from django.utils import timezone

    return timezone.now()


# -- Access on request ---------------------------------------------------------------------------


@dataclass
class PatientRecords:
    appointments: list[Appointment]
    callbacks: list[CallbackRequest]
    waiting_list_entries: list[WaitingListEntry] = field(default_factory=list)
    accesses: list[PatientDataAccess] = field(default_factory=list)

    @property
    def appointment_ids(self) -> list[int]:
        return [appointment.pk for appointment in self.appointments]

    @property
    def callback_ids(self) -> list[int]:
        return [callback.pk for callback in self.callbacks]

    @property
    def waiting_list_entry_ids(self) -> list[int]:
        return [entry.pk for entry in self.waiting_list_entries]


def patient_records_for(appointment: Appointment) -> PatientRecords:
    """Everything held about the patient of APPOINTMENT, by reception's rule of the same patient.

    Call-back requests carry no e-mail: one is theirs when it has one of their phone numbers and their full name.
    A waiting-list entry is theirs by the same rule as an appointment (one of their e-mails in any case, or one
    of their phone numbers with their full name), or when it waits to move one of their appointments.
    """
    appointments = list(
        Appointment.objects.same_patient_as(appointment)
        .select_related("slot__practitioner", "booked_by")
        .prefetch_related("events", "messages")
        .order_by("slot__starts_at", "pk")
    )
    phones_and_names = {(a.phone_normalised, f"{a.first_name} {a.last_name}".lower()) for a in appointments}
    callback_match = Q(pk__in=[])
    for phone, name in phones_and_names:
        if phone:
            callback_match |= Q(phone_normalised=phone, name_key=name)
    callbacks = list(
        CallbackRequest.objects.annotate(name_key=Lower("name")).filter(callback_match).order_by("created_at")
    )
    ids, callback_ids = [a.pk for a in appointments], [c.pk for c in callbacks]
    emails = {a.email.strip().lower() for a in appointments if a.email.strip()}
    entry_match = Q(email_key__in=sorted(emails)) | Q(appointment_id__in=ids)
    for phone, name in phones_and_names:
        if phone:
            entry_match |= Q(phone_normalised=phone, name_key=name)
    offers = Prefetch(
        "offers",
        queryset=WaitingListOffer.objects.select_related("slot__practitioner")
        .prefetch_related(Prefetch("messages", queryset=OutboundMessage.objects.order_by("created_at", "pk")))
        .order_by("offered_at", "pk"),
    )
    entries = list(
        WaitingListEntry.objects.annotate(
            email_key=Lower("email"), name_key=Lower(Concat("first_name", Value(" "), "last_name"))
        )
        .filter(entry_match)
        .select_related("practitioner")
        .prefetch_related(offers)
        .order_by("created_at", "pk")
    )
    entry_ids = [e.pk for e in entries]
    accesses = list(
        PatientDataAccess.objects.filter(
            Q(appointment_ids__overlap=ids)
            | Q(callback_ids__overlap=callback_ids)
            | Q(waiting_list_entry_ids__overlap=entry_ids)
        ).order_by("at", "pk")
    )
    return PatientRecords(
        appointments=appointments, callbacks=callbacks, waiting_list_entries=entries, accesses=accesses
    )


def _when(value):
    return value.isoformat() if value else None


def _email_record(message) -> dict:
    """An e-mail the clinic sent (or tried to) about a record, as the download gives it."""
    return {
        "kind": message.get_kind_display(),
        "to": message.recipient,
        "status": message.get_status_display(),
        "created_at": _when(message.created_at),
        "sent_at": _when(message.sent_at),
    }


def patient_data_export(records: PatientRecords) -> dict:
    """The subject-access file: every record held about the patient, machine-readable (json.dumps-able)."""
    return {
        "appointments": [
            {
                "id": a.pk,
                "starts_at": _when(a.slot.starts_at),
                "practitioner": a.slot.practitioner.full_name,
                "status": a.get_status_display(),
                "source": a.get_source_display(),
                "first_name": a.first_name,
                "last_name": a.last_name,
                "email": a.email,
                "phone": a.phone,
                "note": a.note,
                "safety_answers": a.safety_answers,
                "privacy_notice_version": a.privacy_notice_version,
                "booked_at": _when(a.created_at),
                "booked_by_staff": a.booked_by.get_username() if a.booked_by else None,
                "cancelled_at": _when(a.cancelled_at),
                "cancel_reason": a.cancel_reason,
                "anonymised_at": _when(a.anonymised_at),
                "history": [
                    {
                        "at": _when(e.at),
                        "by": e.actor_label,
                        "action": e.get_action_display(),
                        "from": e.from_value,
                        "to": e.to_value,
                        "detail": e.detail,
                    }
                    for e in a.events.all()
                ],
                "emails": [_email_record(m) for m in sorted(a.messages.all(), key=lambda m: (m.created_at, m.pk))],
            }
            for a in records.appointments
        ],
        "callback_requests": [
            {
                "id": c.pk,
                "name": c.name,
                "phone": c.phone,
                "preferred_time": c.preferred_time,
                "message": c.message,
                "requested_at": _when(c.created_at),
                "done_at": _when(c.done_at),
            }
            for c in records.callbacks
        ],
        "waiting_list_entries": [
            {
                "id": e.pk,
                "status": e.get_status_display(),
                "first_name": e.first_name,
                "last_name": e.last_name,
                "email": e.email,
                "phone": e.phone,
                "practitioner": e.practitioner.full_name if e.practitioner else "Any",
                "weekdays": e.weekday_labels(),
                "parts_of_day": e.part_of_day_labels(),
                "wait_until": _when(e.wait_until),
                "to_move_appointment": e.appointment_id,
                "safety_answers": e.safety_answers,
                "privacy_notice_version": e.privacy_notice_version,
                "joined_at": _when(e.created_at),
                "ended_at": _when(e.ended_at),
                "anonymised_at": _when(e.anonymised_at),
                "offers": [
                    {
                        "starts_at": _when(o.slot.starts_at),
                        "practitioner": o.slot.practitioner.full_name,
                        "status": o.get_status_display(),
                        "offered_at": _when(o.offered_at),
                        "held_until": _when(o.held_until),
                        "ended_at": _when(o.ended_at),
                        "emails": [_email_record(m) for m in o.messages.all()],
                    }
                    for o in e.offers.all()
                ],
            }
            for e in records.waiting_list_entries
        ],
        "staff_views_of_these_records": [
            {"at": _when(v.at), "staff": v.username, "page": v.page} for v in records.accesses
        ],
    }


# -- Anonymising ---------------------------------------------------------------------------------


def patient_data_anonymise(
    *, appointment_ids=(), callback_ids=(), waiting_list_entry_ids=(), now: datetime
) -> dict[str, int]:
    """Erase the personal details of these appointments (and their history's free text and e-mails),
    call-back requests and waiting-list entries (and their offers' e-mails), keeping every row. Returns how
    many of each were anonymised by this call.

    An appointment with a message to the patient still waiting (the cancellation an erasure just sent)
    is only marked `erasure_requested_at`: the purge finishes it once the message has left.
    """
    with transaction.atomic():
        # Locked in primary-key order and re-read under the lock: a concurrent run waits here, then
        # finds the rows anonymised and counts nothing.
        candidates = list(
            Appointment.objects.filter(pk__in=list(appointment_ids), anonymised_at__isnull=True)
            .select_for_update(of=("self",))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        waiting = set(
            OutboundMessage.objects.filter(
                appointment_id__in=candidates, kind__in=PATIENT_MESSAGE_KINDS, status__in=WAITING
            ).values_list("appointment_id", flat=True)
        )
        deferred = Appointment.objects.filter(pk__in=waiting, erasure_requested_at__isnull=True).update(
            erasure_requested_at=now
        )
        ready = [pk for pk in candidates if pk not in waiting]
        # Everything else still waiting for these appointments is not needed any more.
        _skip_waiting(OutboundMessage.objects.filter(appointment_id__in=ready))
        appointments = Appointment.objects.filter(pk__in=ready, anonymised_at__isnull=True).update(
            first_name="",
            last_name="",
            email="",
            phone="",
            phone_normalised="",
            note="",
            safety_answers={},
            cancel_reason="",
            client_key="",
            submission_key=None,
            # Unique, and never a SHA-256 of any token: every manage link stops working.
            manage_token_hash=Concat(Value("anonymised:"), Cast("pk", output_field=CharField())),
            anonymised_at=now,
            erasure_requested_at=None,
        )
        ManageLinkToken.objects.filter(appointment_id__in=ready).delete()
        # The history keeps who did what and when (and the slots moved between); reasons typed in go.
        AppointmentEvent.objects.filter(appointment_id__in=ready).exclude(detail="").update(detail="")
        messages = _anonymise_messages(OutboundMessage.objects.filter(appointment_id__in=ready), now=now)
        callbacks = _anonymise_callbacks(CallbackRequest.objects.filter(pk__in=list(callback_ids)), now=now)
        _strip_webhook_contact_details(appointment_ids=ready, callback_ids=list(callback_ids))
        entries, entry_messages = _anonymise_waiting_list_entries(list(waiting_list_entry_ids), now=now)
    return {
        "appointments": appointments,
        "deferred": deferred,
        "messages": messages + entry_messages,
        "callbacks": callbacks,
        "waiting_list_entries": entries,
    }


def _anonymise_waiting_list_entries(entry_ids: list[int], *, now: datetime) -> tuple[int, int]:
    """Blank the details of waiting-list entries that are off the list, and their offers' e-mails.

    An entry still waiting is left alone: its e-mail address is what its offers go to, and the one-per-address
    rule reads it. Callers take it off the list first (waiting_list_leave). An offer e-mail not yet sent is
    not needed any more (the entry has ended, so its offers have); one a worker is sending keeps its address
    until it is done, and the purge finishes it (`expired_data_purge`).
    """
    if not entry_ids:
        return 0, 0
    ended = list(
        WaitingListEntry.objects.filter(pk__in=entry_ids, anonymised_at__isnull=True)
        .exclude(status__in=OPEN_ENTRY_STATUSES)
        .select_for_update()
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    # The offers' e-mails, and the e-mails carrying the entry's own link.
    offer_messages = OutboundMessage.objects.filter(
        Q(waiting_list_offer__entry_id__in=ended) | Q(waiting_list_entry_id__in=ended)
    )
    _skip_waiting(offer_messages)
    entries = WaitingListEntry.objects.filter(pk__in=ended, anonymised_at__isnull=True).update(
        first_name="",
        last_name="",
        email="",
        phone="",
        phone_normalised="",
        safety_answers={},
        # Unique, and never a SHA-256 of any token: the entry's own link stops working, as a manage link does.
        token_hash=Concat(Value("anonymised:"), Cast("pk", output_field=CharField())),
        anonymised_at=now,
    )
    return entries, _anonymise_messages(offer_messages, now=now)


def _skip_waiting(messages) -> int:
    """Messages still waiting to be sent are not needed once the details they would carry are erased."""
    return messages.filter(status=OutboundMessage.Status.PENDING).update(
        status=OutboundMessage.Status.SKIPPED,
        last_error="Not needed: the patient's details were erased.",
        lease_expires_at=None,
    )


def _anonymise_messages(messages, *, now: datetime) -> int:
    """Blank the address (and any error text, which can quote it) of messages no worker holds any more."""
    return (
        messages.filter(anonymised_at__isnull=True)
        .exclude(status__in=WAITING)
        .update(recipient="", last_error="", manage_token="", anonymised_at=now)
    )


# The contact details a subscription allowed to receive (bookings.webhooks): stripped from the recorded
# payloads, sent or still waiting, when the patient's details go. Ids, times and statuses stay.
_STRIP_WEBHOOK_CONTACT_SQL = f"""
    UPDATE {WebhookDelivery._meta.db_table}
    SET payload = jsonb_set(
        payload, '{{data}}', (payload -> 'data') - 'patient' - 'name' - 'phone' - 'preferred_time'
    )
    WHERE (
        (payload -> 'data' ->> 'appointment_id')::bigint = ANY(%s)
        OR (payload -> 'data' ->> 'callback_id')::bigint = ANY(%s)
    )
    AND (payload -> 'data') ?| array['patient', 'name', 'phone', 'preferred_time']
"""


def _strip_webhook_contact_details(*, appointment_ids, callback_ids) -> None:
    if not appointment_ids and not callback_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(_STRIP_WEBHOOK_CONTACT_SQL, [list(appointment_ids), list(callback_ids)])


def _anonymise_callbacks(callbacks, *, now: datetime) -> int:
    return callbacks.filter(anonymised_at__isnull=True).update(
        name="", phone="", phone_normalised="", preferred_time="", message="", anonymised_at=now
    )


def patient_data_erase(
    *, appointment: Appointment, reference: str, actor, now: datetime, notify_patient: bool = True
) -> PatientDataErasure:
    """Erasure on request of the patient of APPOINTMENT.

    1. Their live appointments still ahead are cancelled through the booking service (the slot is freed,
       the history records it, the patient is e-mailed unless NOTIFY_PATIENT is off), and their entries still
       on the waiting list are taken off it by the waiting list's own service (their held offers end).
    2. Everything found by `patient_records_for` is anonymised (an appointment whose cancellation e-mail
       is still to go is finished by the purge once it has).
    3. The erasure is recorded: who, when, the reference and the counts, never the data.
    """
    from bookings.services import ChangeNotAllowed, appointment_cancel, waiting_list_leave

    records = patient_records_for(appointment)
    cancelled = 0
    for each in records.appointments:
        if each.status == Appointment.Status.BOOKED and each.slot.starts_at > now:
            try:
                appointment_cancel(appointment=each, now=now, reason="", actor=actor, notify_patient=notify_patient)
                cancelled += 1
            except ChangeNotAllowed:
                # Cancelled or marked since it was read: there is nothing ahead to free.
                pass
    for entry in records.waiting_list_entries:
        if entry.status in OPEN_ENTRY_STATUSES:
            # Waiting, or not confirmed yet. Removed by reception (actor): the outcome the list shows for an
            # entry taken off on the patient's behalf.
            waiting_list_leave(entry=entry, now=now, actor=actor)
    counts = patient_data_anonymise(
        appointment_ids=records.appointment_ids,
        callback_ids=records.callback_ids,
        waiting_list_entry_ids=records.waiting_list_entry_ids,
        now=now,
    )
    return PatientDataErasure.objects.create(
        at=now,
        by=actor,
        by_username=actor.get_username() if actor else "",
        reference=reference[:100],
        counts={"cancelled": cancelled, **counts},
    )


# -- The retention purge -------------------------------------------------------------------------


def expired_data_purge(*, now: datetime) -> dict[str, int]:
    """Anonymise (or delete, for records that are nothing but personal data) what settings.RETENTION says
    has expired at NOW, and finish erasures that waited for an e-mail. Idempotent; safe run twice at once."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    retention = settings.RETENTION
    attended = ~Q(status__in=[Appointment.Status.CANCELLED, Appointment.Status.NO_SHOW])
    expired = Appointment.objects.filter(anonymised_at__isnull=True).filter(
        Q(attended, slot__starts_at__lt=now - retention["attended"])
        | Q(~attended, slot__starts_at__lt=now - retention["not_attended"])
        | Q(erasure_requested_at__isnull=False)
    )
    # Waiting-list entries that ended (booked, left, removed, waited until their last day, link never opened).
    expired_entries = (
        WaitingListEntry.objects.filter(anonymised_at__isnull=True, ended_at__lt=now - retention["waiting_list"])
        .exclude(status__in=OPEN_ENTRY_STATUSES)
        .values_list("pk", flat=True)
    )
    counts = patient_data_anonymise(
        appointment_ids=list(expired.values_list("pk", flat=True)),
        waiting_list_entry_ids=list(expired_entries),
        now=now,
    )
    counts.pop("callbacks")
    message_cutoff = now - retention["messages"]
    counts["messages"] += _anonymise_messages(
        OutboundMessage.objects.filter(
            Q(sent_at__lt=message_cutoff)
            | Q(
                status__in=[OutboundMessage.Status.FAILED, OutboundMessage.Status.SKIPPED],
                created_at__lt=message_cutoff,
            )
            # An offer e-mail a worker was sending when its entry was erased: finished once it is done.
            | Q(waiting_list_offer__entry__anonymised_at__isnull=False)
            | Q(waiting_list_entry__anonymised_at__isnull=False)
        ),
        now=now,
    )
    expired_callbacks = CallbackRequest.objects.filter(
        done_at__lt=now - retention["callbacks"], anonymised_at__isnull=True
    )
    expired_callbacks = list(expired_callbacks.values_list("pk", flat=True))
    counts["callbacks"] = _anonymise_callbacks(CallbackRequest.objects.filter(pk__in=expired_callbacks), now=now)
    _strip_webhook_contact_details(appointment_ids=[], callback_ids=expired_callbacks)
    # A delivery's record is kept as long as an e-mail's: its payload may name the patient.
    counts["webhook_deliveries"] = (
        WebhookDelivery.objects.filter(created_at__lt=message_cutoff)
        .exclude(status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.SENDING])
        .delete()[0]
    )
    signin_cutoff = now - retention["signin_attempts"]
    counts["signin_attempts"] = (
        AccessAttempt.objects.filter(attempt_time__lt=signin_cutoff).delete()[0]
        + AccessLog.objects.filter(attempt_time__lt=signin_cutoff).delete()[0]
        + AccessFailureLog.objects.filter(attempt_time__lt=signin_cutoff).delete()[0]
    )
    counts["access_log"] = PatientDataAccess.objects.filter(at__lt=now - retention["access_log"]).delete()[0]
    return counts


def pending_erasures_finish(*, now: datetime) -> int:
    """Finish the erasures that waited for their cancellation e-mail to leave: run by the e-mail worker on
    every loop, so that the rest is erased within seconds of the e-mail being sent, not at the next daily purge.
    One indexed query when there is nothing to do. Returns how many appointments were anonymised."""
    waiting = list(
        Appointment.objects.filter(erasure_requested_at__isnull=False, anonymised_at__isnull=True).values_list(
            "pk", flat=True
        )[:500]
    )
    if not waiting:
        return 0
    return patient_data_anonymise(appointment_ids=waiting, now=now)["appointments"]


def purge_if_due(*, now: datetime) -> PurgeRun | None:
    """The e-mail worker's daily purge: run it unless one ran in the last day, on this machine or another.

    A transaction-scoped advisory lock lets one worker in at a time; the others go on sending.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [PURGE_LOCK_KEY])
            (locked,) = cursor.fetchone()
        if not locked or PurgeRun.objects.filter(at__gt=now - PURGE_EVERY).exists():
            return None
        return PurgeRun.objects.create(at=now, counts=expired_data_purge(now=now))
