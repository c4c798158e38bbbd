"""The one module of test helpers: small hand-written factories and the patient's steps (this module holds no tests).

Times are built in the clinic's zone and relative to the real clock, because the views read
`timezone.now()` themselves. Rows written straight to the tables (`make_appointment`,
`appointment_in_the_past_or_today`) skip the services on purpose: no history, no e-mails, and
times the services rightly refuse (the past).
"""

from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.utils import timezone

from bookings.forms import start_time_value
from bookings.models import Appointment, Slot, WorkingHours, hash_token, new_token
from bookings.schedule import clinic_zone
from bookings.services import PatientDetails, appointment_book

PASSWORD = "correct horse battery"
# The safety check answered "No, none of these"; {"red_flags": "trauma"} ticks one red flag instead.
SAFE_ANSWERS = {"red_flags": "none"}
PATIENT = {
    "first_name": "Pat",
    "last_name": "Example",
    "email": "pat@example.org",
    "phone": "07700 900123",
    "note": "Left hip, worse on stairs",
    "consent": "on",
    "website": "",
}


# -- Time ---------------------------------------------------------------------------------


def today() -> date:
    return timezone.now().astimezone(clinic_zone()).date()


def days_ahead(days: int) -> date:
    return (timezone.now() + timedelta(days=days)).astimezone(clinic_zone()).date()


def local(day: date | int, hour: int, minute: int = 0) -> datetime:
    """An aware datetime in the clinic zone on DAY: a date, or a number of days from today."""
    if isinstance(day, int):
        day = today() + timedelta(days=day)
    return datetime.combine(day, time(hour, minute), tzinfo=clinic_zone())


# -- Rows ---------------------------------------------------------------------------------


def make_slot(practitioner, starts_at: datetime, **extra) -> Slot:
    length = timedelta(minutes=settings.CONSULTATION_MINUTES)
    return Slot.objects.create(practitioner=practitioner, starts_at=starts_at, ends_at=starts_at + length, **extra)


def slot_at(practitioner, when: datetime) -> Slot:
    return Slot.objects.get(practitioner=practitioner, starts_at=when)


def make_appointment(slot, *, at: datetime, status=Appointment.Status.BOOKED, cancelled_at=None) -> Appointment:
    """An appointment written straight to the table (no service, no history, no e-mails), made AT."""
    return Appointment.objects.create(
        slot=slot,
        status=status,
        first_name="Pat",
        last_name="Ient",
        phone="07700 900123",
        manage_token_hash=hash_token(new_token()),
        created_at=at,
        updated_at=at,
        cancelled_at=(cancelled_at or at) if status == Appointment.Status.CANCELLED else None,
    )


def appointment_in_the_past_or_today(slot, *, first_name="Pat", last_name="Ient", phone="07700 900123", **extra):
    """An appointment written straight to the table: the services rightly refuse to book the past."""
    at = timezone.now() - timedelta(days=2)
    return Appointment.objects.create(
        slot=slot,
        first_name=first_name,
        last_name=last_name,
        phone=phone,
        manage_token_hash=hash_token(new_token()),
        created_at=at,
        updated_at=at,
        **extra,
    )


def patient_books(slot, *, first_name="Pat", last_name="Ient", phone="07700 900123", email="pat@example.org", note=""):
    """The online flow's booking (same service, no staff member)."""
    return appointment_book(
        slot_id=slot.pk,
        patient=PatientDetails(first_name=first_name, last_name=last_name, phone=phone, email=email, note=note),
        now=timezone.now(),
        safety_answers={
            "version": "2026-11",
            "answers": [{"key": "trauma", "question": "Did the pain start after a fall?", "answer": "no"}],
        },
    ).appointment


def works_at(practitioner, starts_at: datetime) -> WorkingHours:
    """Working hours (08:00 to 20:00 that weekday) that ask for a slot at STARTS_AT: a slot freed by a
    cancel, a move or an unblock is offered again only if the schedule still has it."""
    local_day = starts_at.astimezone(clinic_zone()).date()
    return WorkingHours.objects.get_or_create(
        practitioner=practitioner, weekday=local_day.weekday(), start_time=time(8), end_time=time(20)
    )[0]


def works_on_weekdays(practitioner) -> None:
    """Working hours Monday to Friday, 09:00 to 17:00: the days the waiting list's join form offers."""
    for weekday in range(5):
        WorkingHours.objects.get_or_create(
            practitioner=practitioner, weekday=weekday, start_time=time(9), end_time=time(17)
        )


def entry_link_in(email) -> str:
    """The path of the waiting-list entry link an e-mail carries."""
    return "/waiting-list/" + email.body.split("/waiting-list/", 1)[1].split("/", 1)[0] + "/"


# -- The patient's steps ------------------------------------------------------------------


def pass_safety_check(client, **extra):
    return client.post("/book/", {**SAFE_ANSWERS, **extra})


def time_link(slot) -> str:
    """The query of the time page's link to SLOT's time: "any practitioner" links the start time, not the slot."""
    return f"?at={start_time_value(slot.starts_at)}"


def details_form(client, slot) -> dict:
    """GET the details step and return the fields a browser would send back, filled in."""
    response = client.get(f"/book/details/?slot={slot.pk}")
    assert response.status_code == 200, response.status_code
    key = response.context["form"].initial["submission_key"]
    return {**PATIENT, "slot": slot.pk, "submission_key": str(key)}


# -- Patient data (UK GDPR) -----------------------------------------------------------------

# A patient whose every detail is distinctive, so that a dump of the database can be searched for them.
QUILLON = {
    "first_name": "Quillon",
    "last_name": "Marrowfield",
    "email": "quillon.marrowfield@example.net",
    "phone": "07700 900471",
    "note": "Zanzibar twinge behind the kneecap",
}
QUILLON_CANCEL_REASON = "Ferret bit my ankle"
QUILLON_CALLBACK_MESSAGE = "Please ring about the Zanzibar twinge"
QUILLON_ANSWER = "Ate a glowing mushroom before the pain started"
# What must never be found in the database once the patient's data is erased or expired.
QUILLON_STRINGS = [
    "Quillon",
    "Marrowfield",
    "quillon.marrowfield",
    "900471",
    "Zanzibar",
    QUILLON_CANCEL_REASON,
    QUILLON_ANSWER,
]


def a_patient_with_every_record(practitioner, *, first_seen: datetime, details: dict | None = None, actor=None):
    """One patient with one of every kind of record, the first made at FIRST_SEEN (all through the services):

    a consultation that took place (note, safety answers, notice version, history, confirmation e-mail sent),
    one cancelled by them with a typed reason (its e-mails sent), a waiting-list entry (their safety answers)
    offered a time by reception (the offer e-mail sent) that they left a day after, a call-back request done
    two days after, and one staff view recorded of their appointments. Returns the appointments, the call-back
    request and the waiting-list entry.
    """
    from bookings.models import CallbackRequest, OutboundMessage, PartOfDay, PatientDataAccess, WebhookSubscription
    from bookings.notifications import send_due_messages
    from bookings.services import (
        WaitingListRequest,
        appointment_cancel,
        appointment_set_status,
        callback_request_record,
        waiting_list_join,
        waiting_list_leave,
        waiting_list_offer_by_hand,
    )

    # A practice system whose webhooks carry contact details: the payloads it was sent hold the patient too.
    WebhookSubscription.objects.get_or_create(
        name="Practice system",
        defaults={
            "url": "https://hooks.example.com/practice",
            "events": ["appointment.booked", "appointment.cancelled", "callback.requested"],
            "secret": "whsec_AA==",
            "include_contact_details": True,
            "created_at": first_seen,
        },
    )
    details = details or QUILLON
    answers = {
        "version": "2026-11",
        "answers": [{"key": "trauma", "question": "Did the pain start after a fall?", "answer": "no"}],
        "details": QUILLON_ANSWER if details is QUILLON else "",
    }
    patient = PatientDetails(**details)
    attended_slot = make_slot(practitioner, first_seen + timedelta(days=3))
    attended = appointment_book(
        slot_id=attended_slot.pk,
        patient=patient,
        now=first_seen,
        safety_answers=answers,
        privacy_notice_version="2026-11",
    ).appointment
    cancelled_slot = make_slot(practitioner, first_seen + timedelta(days=5))
    cancelled = appointment_book(
        slot_id=cancelled_slot.pk, patient=patient, now=first_seen, safety_answers=answers
    ).appointment
    appointment_cancel(
        appointment=cancelled,
        now=first_seen + timedelta(hours=1),
        reason=QUILLON_CANCEL_REASON if details is QUILLON else "",
    )
    entry, _ = waiting_list_join(
        request=WaitingListRequest(
            first_name=details["first_name"],
            last_name=details["last_name"],
            email=details["email"],
            phone=details["phone"],
            practitioner=None,
            weekdays=list(range(7)),
            parts_of_day=list(PartOfDay.values),
            wait_until=(first_seen + timedelta(days=20)).date(),
        ),
        now=first_seen + timedelta(hours=1),
        safety_answers=answers,
        privacy_notice_version="2026-11",
    )
    offered_slot = make_slot(practitioner, first_seen + timedelta(days=6))
    waiting_list_offer_by_hand(
        entry=entry, slot_id=offered_slot.pk, now=first_seen + timedelta(hours=2) - timedelta(minutes=1), actor=actor
    )
    send_due_messages(now=first_seen + timedelta(hours=2), worker_id="test")
    waiting_list_leave(entry=entry, now=first_seen + timedelta(days=1))
    appointment_set_status(
        appointment=attended, status=Appointment.Status.COMPLETED, now=attended_slot.starts_at, actor=actor
    )
    callback = callback_request_record(
        callback=CallbackRequest(
            name=f"{details['first_name']} {details['last_name']}",
            phone=details["phone"],
            preferred_time="Mornings",
            message=QUILLON_CALLBACK_MESSAGE if details is QUILLON else "",
            done_at=first_seen + timedelta(days=2),
        ),
        now=first_seen,
    )
    PatientDataAccess.objects.create(
        at=first_seen + timedelta(days=3), username="rita", page="reception_appointment", appointment_ids=[attended.pk]
    )
    assert OutboundMessage.objects.filter(appointment=attended, status=OutboundMessage.Status.SENT).exists()
    assert OutboundMessage.objects.filter(waiting_list_offer__entry=entry, status=OutboundMessage.Status.SENT).exists()
    return {"attended": attended, "cancelled": cancelled, "callback": callback, "waiting_list_entry": entry}


def database_dump() -> str:
    """A plain-SQL pg_dump of the test database, as a backup would hold it (committed data only)."""
    import os
    import shutil
    import subprocess

    from django.db import connection

    from clinic.embedded_db import _bin_dir

    database = connection.settings_dict
    pg_dump = shutil.which("pg_dump") if os.environ.get("DATABASE_URL") else str(_bin_dir() / "pg_dump")
    host = database.get("HOST") or database.get("OPTIONS", {}).get("host", "")
    environment = {**os.environ, "PGPASSWORD": database.get("PASSWORD") or ""}
    command = [pg_dump, "--no-owner", "-h", host, "-U", database["USER"], "-d", database["NAME"]]
    if database.get("PORT"):
        command += ["-p", str(database["PORT"])]
    return subprocess.run(command, check=True, capture_output=True, text=True, env=environment).stdout


# -- The waiting list ---------------------------------------------------------------------


def waiting(
    email: str,
    *,
    first_name: str = "Wanda",
    practitioner=None,
    weekdays=None,
    parts_of_day=None,
    wait_until: date | None = None,
    joined: datetime | None = None,
    appointment=None,
):
    """A patient on the waiting list through the service (every day, every part of the day, for 30 days by
    default), joined at JOINED; returns (entry, raw token of its link)."""
    from bookings.models import PartOfDay
    from bookings.services import WaitingListRequest, waiting_list_join

    request = WaitingListRequest(
        first_name=first_name,
        last_name="Waits",
        email=email,
        phone="07700 900456",
        practitioner=practitioner,
        weekdays=list(range(7)) if weekdays is None else weekdays,
        parts_of_day=list(PartOfDay.values) if parts_of_day is None else parts_of_day,
        wait_until=wait_until or days_ahead(30),
    )
    return waiting_list_join(
        request=request,
        now=joined or timezone.now(),
        safety_answers={"version": "2026-11", "answers": []},
        privacy_notice_version="2026-11",
        appointment=appointment,
    )


def run_at_once(count: int, work) -> list:
    """Run WORK(index) in COUNT threads released together; each result, or the exception it raised."""
    import threading

    from django.db import connections

    barrier = threading.Barrier(count)
    results = [None] * count

    def run(index):
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except Exception as exc:  # recorded, asserted by the caller
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results
