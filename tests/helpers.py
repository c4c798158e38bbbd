"""The one module of test helpers: small hand-written factories and the patient's steps (this module holds no tests).

Times are built in the clinic's zone and relative to the real clock, because the views read
`timezone.now()` themselves. Rows written straight to the tables (`make_appointment`,
`appointment_in_the_past_or_today`) skip the services on purpose: no history, no e-mails, and
times the services rightly refuse (the past).
"""

from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.utils import timezone

from bookings.models import Appointment, Slot, WorkingHours, hash_token, new_token
from bookings.schedule import clinic_zone
from bookings.services import PatientDetails, appointment_book

PASSWORD = "correct horse battery"
SAFE_ANSWERS = {
    "bladder_bowel": "no",
    "saddle_numbness": "no",
    "leg_weakness": "no",
    "trauma": "no",
    "systemic": "no",
}
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


# -- The patient's steps ------------------------------------------------------------------


def pass_safety_check(client, **extra):
    return client.post("/book/", {**SAFE_ANSWERS, **extra})


def details_form(client, slot) -> dict:
    """GET the details step and return the fields a browser would send back, filled in."""
    response = client.get(f"/book/details/?slot={slot.pk}")
    assert response.status_code == 200, response.status_code
    key = response.context["form"].initial["submission_key"]
    return {**PATIENT, "slot": slot.pk, "submission_key": str(key)}


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
