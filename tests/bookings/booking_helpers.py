"""Small hand-written factories for booking tests."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from bookings.models import Appointment, Slot, hash_token, new_token

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


def local(day_offset: int, hour: int, minute: int = 0) -> datetime:
    """An aware datetime in the clinic zone, `day_offset` days from today."""
    zone = ZoneInfo(settings.TIME_ZONE)
    day = timezone.now().astimezone(zone).date() + timedelta(days=day_offset)
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def make_slot(practitioner, starts_at: datetime, **extra) -> Slot:
    length = timedelta(minutes=settings.CONSULTATION_MINUTES)
    return Slot.objects.create(practitioner=practitioner, starts_at=starts_at, ends_at=starts_at + length, **extra)


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


def pass_safety_check(client, **extra):
    return client.post("/book/", {**SAFE_ANSWERS, **extra})


def details_form(client, slot) -> dict:
    """GET the details step and return the fields a browser would send back, filled in."""
    response = client.get(f"/book/details/?slot={slot.pk}")
    assert response.status_code == 200, response.status_code
    key = response.context["form"].initial["submission_key"]
    return {**PATIENT, "slot": slot.pk, "submission_key": str(key)}


def works_at(practitioner, starts_at: datetime):
    """Working hours (08:00 to 20:00 that weekday) that ask for a slot at STARTS_AT: a slot freed by a
    cancel, a move or an unblock is offered again only if the schedule still has it."""
    from bookings.models import WorkingHours

    local_day = starts_at.astimezone(ZoneInfo(settings.TIME_ZONE)).date()
    return WorkingHours.objects.get_or_create(
        practitioner=practitioner, weekday=local_day.weekday(), start_time=time(8), end_time=time(20)
    )[0]
