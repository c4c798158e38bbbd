"""schedule_change_apply: the one way hours, time off and closures change, for the admin and reception alike."""

from datetime import time, timedelta

import pytest
from django.utils import timezone

from bookings import schedule
from bookings.models import Slot, TimeOff, WorkingHours
from bookings.schedule import schedule_change_apply
from tests.helpers import days_ahead, local, patient_books

pytestmark = pytest.mark.django_db


@pytest.fixture
def day():
    return days_ahead(5)


def test_new_hours_for_dr_patel_bring_his_slots_and_leave_dr_okafors_alone(dr_patel, dr_okafor, day):
    WorkingHours.objects.create(practitioner=dr_okafor, weekday=day.weekday(), start_time=time(9), end_time=time(10))

    def dr_patel_works_mornings():
        WorkingHours.objects.create(practitioner=dr_patel, weekday=day.weekday(), start_time=time(9), end_time=time(10))
        return [dr_patel]

    report = schedule_change_apply(now=timezone.now(), change=dr_patel_works_mornings)

    assert report.created > 0 and report.conflicts == []
    assert Slot.objects.filter(practitioner=dr_patel, starts_at=local(day, 9)).exists()
    assert not Slot.objects.filter(practitioner=dr_okafor).exists()


def test_a_closure_reaches_every_practitioner_and_reports_the_booking_it_leaves_in_place(dr_patel, dr_okafor, day):
    for practitioner in (dr_patel, dr_okafor):
        WorkingHours.objects.create(
            practitioner=practitioner, weekday=day.weekday(), start_time=time(9), end_time=time(10)
        )
    schedule.slots_generate(now=timezone.now())
    booked = Slot.objects.get(practitioner=dr_okafor, starts_at=local(day, 9))
    patient_books(booked)

    def close_the_clinic():
        TimeOff.objects.create(practitioner=None, starts_at=local(day, 0), ends_at=local(day + timedelta(days=1), 0))
        return [None]

    report = schedule_change_apply(now=timezone.now(), change=close_the_clinic)

    assert report.conflicts == [booked]
    assert not Slot.objects.bookable(now=timezone.now(), start=local(day, 0), end=local(day, 23)).exists()


def test_a_change_whose_slots_cannot_follow_is_not_saved(dr_patel, day, monkeypatch):
    def generation_fails(**kwargs):
        raise RuntimeError("generation failed")

    monkeypatch.setattr(schedule, "slots_generate", generation_fails)

    def dentist():
        TimeOff.objects.create(practitioner=dr_patel, starts_at=local(day, 9), ends_at=local(day, 10))
        return [dr_patel]

    with pytest.raises(RuntimeError):
        schedule_change_apply(now=timezone.now(), change=dentist)

    assert not TimeOff.objects.exists()
