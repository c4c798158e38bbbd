"""A small hand-written factory for the staff tests (this module holds no tests).

Times are built in the clinic's zone and relative to the real clock, because the views
read `timezone.now()` themselves.
"""

from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.utils import timezone

from bookings.models import Appointment, Slot, hash_token, new_token
from bookings.schedule import clinic_zone
from bookings.services import PatientDetails, appointment_book

PASSWORD = "correct horse battery"


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=clinic_zone())


def days_ahead(days: int) -> date:
    return (timezone.now() + timedelta(days=days)).astimezone(clinic_zone()).date()


def today() -> date:
    return timezone.now().astimezone(clinic_zone()).date()


def make_slot(practitioner, starts_at: datetime, **extra) -> Slot:
    length = timedelta(minutes=settings.CONSULTATION_MINUTES)
    return Slot.objects.create(practitioner=practitioner, starts_at=starts_at, ends_at=starts_at + length, **extra)


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
