"""Real threads, real PostgreSQL: Rita cancels a booking kept through time off while a patient tries
to book that very time. The patient never gets it, and neither side fails with a deadlock."""

from datetime import time, timedelta

import pytest
from django.utils import timezone

from bookings.models import Appointment, Slot, TimeOff, WorkingHours
from bookings.schedule import slots_generate
from bookings.services import PatientDetails, SlotUnavailable, appointment_book, appointment_cancel
from tests.bookings.staff_factory import days_ahead, local
from tests.bookings.test_staff_concurrency import _run_at_once

pytestmark = pytest.mark.django_db(transaction=True)
ROUNDS = 6


def test_a_time_freed_in_time_off_is_never_booked_by_a_patient_racing_the_cancellation(rita, dr_patel):
    day = days_ahead(3)
    WorkingHours.objects.create(practitioner=dr_patel, weekday=day.weekday(), start_time=time(9), end_time=time(11))
    slots_generate(now=timezone.now(), practitioner=dr_patel)
    slots = list(Slot.objects.filter(practitioner=dr_patel, starts_at__gte=local(day, 9), starts_at__lt=local(day, 11)))
    appointments = [
        appointment_book(
            slot_id=slot.pk, patient=PatientDetails("Ada", "Lovelace", "07700 900123"), now=timezone.now()
        ).appointment
        for slot in slots[:ROUNDS]
    ]
    # Kept through the time off, as reception is told; then cancelled one by one, each in a race.
    TimeOff.objects.create(practitioner=dr_patel, starts_at=local(day, 0), ends_at=local(day + timedelta(days=1), 0))
    slots_generate(now=timezone.now(), practitioner=dr_patel)

    for appointment in appointments:
        cancelled, booked = _run_at_once(
            lambda appointment=appointment: appointment_cancel(
                appointment=appointment, now=timezone.now(), reason="Dr Patel is ill", actor=rita
            ),
            lambda appointment=appointment: appointment_book(
                slot_id=appointment.slot_id,
                patient=PatientDetails("Mallory", "Fill", "07700 900666"),
                now=timezone.now(),
            ),
        )

        assert isinstance(cancelled, Appointment), cancelled
        assert isinstance(booked, SlotUnavailable), booked
        assert Slot.objects.get(pk=appointment.slot_id).state == Slot.State.RETIRED
    assert not Appointment.objects.filter(first_name="Mallory").exists()
