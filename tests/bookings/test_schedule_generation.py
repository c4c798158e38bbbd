"""Generating slots from working hours minus time off, and keeping them in line when either changes."""

from datetime import date, datetime, time, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command

from bookings.models import Appointment, Slot, TimeOff, WorkingHours
from bookings.schedule import slots_generate
from tests.helpers import make_appointment

LONDON = ZoneInfo("Europe/London")
# A Sunday noon: the week ahead starts on Monday 8 June 2026, far from any clock change.
NOW = datetime(2026, 6, 7, 12, 0, tzinfo=LONDON)
MONDAY = date(2026, 6, 8)
TUESDAY = date(2026, 6, 9)
WEEK = 6

pytestmark = pytest.mark.django_db


def _at(day, hour, minute=0):
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON)


def _hours(practitioner, weekday, start, end, **extra):
    return WorkingHours.objects.create(
        practitioner=practitioner, weekday=weekday, start_time=start, end_time=end, **extra
    )


def _local_starts(practitioner, *states):
    """Local "YYYY-MM-DD HH:MM" of a practitioner's slots, in order, optionally only in some states."""
    slots = Slot.objects.filter(practitioner=practitioner).order_by("starts_at")
    if states:
        slots = slots.filter(state__in=states)
    return [f"{slot.starts_at.astimezone(LONDON):%Y-%m-%d %H:%M}" for slot in slots]


def _monday(*times):
    return [f"2026-06-08 {each}" for each in times]


def _rows():
    return list(Slot.objects.order_by("pk").values_list("pk", "practitioner", "starts_at", "ends_at", "state"))


def _slot_at(practitioner, when):
    return Slot.objects.get(practitioner=practitioner, starts_at=when)


def test_a_morning_of_working_hours_becomes_twenty_minute_slots(dr_patel):
    _hours(dr_patel, 0, time(9), time(12))

    report = slots_generate(now=NOW, days=WEEK)

    assert report.created == 9
    assert report.removed == 0
    assert _local_starts(dr_patel) == _monday(
        "09:00", "09:20", "09:40", "10:00", "10:20", "10:40", "11:00", "11:20", "11:40"
    )
    assert {slot.ends_at - slot.starts_at for slot in Slot.objects.all()} == {timedelta(minutes=20)}
    assert set(Slot.objects.values_list("state", flat=True)) == {Slot.State.OPEN}


def test_a_lunch_break_is_two_periods_with_no_slot_between_them(dr_patel):
    _hours(dr_patel, 0, time(9), time(10))
    _hours(dr_patel, 0, time(11), time(12))

    slots_generate(now=NOW, days=WEEK)

    assert _local_starts(dr_patel) == _monday("09:00", "09:20", "09:40", "11:00", "11:20", "11:40")


def test_a_period_too_short_for_a_whole_slot_leaves_no_partial_slot(dr_patel):
    _hours(dr_patel, 0, time(9), time(9, 50))

    slots_generate(now=NOW, days=WEEK)

    assert _local_starts(dr_patel) == _monday("09:00", "09:20")


def test_overlapping_periods_give_one_run_of_slots_not_two_clashing_ones(dr_patel):
    # Two rows for Monday, entered separately, that overlap: the practitioner works their union.
    _hours(dr_patel, 0, time(9), time(10))
    _hours(dr_patel, 0, time(9, 30), time(10, 30))

    slots_generate(now=NOW, days=WEEK)

    assert _local_starts(dr_patel) == _monday("09:00", "09:20", "09:40", "10:00")


def test_working_hours_apply_only_within_their_date_range(dr_patel):
    _hours(dr_patel, 0, time(9), time(9, 40), valid_until=date(2026, 6, 14))
    _hours(dr_patel, 0, time(14), time(14, 40), valid_from=date(2026, 6, 15))

    slots_generate(now=NOW, days=14)

    assert _local_starts(dr_patel) == [
        "2026-06-08 09:00",
        "2026-06-08 09:20",
        "2026-06-15 14:00",
        "2026-06-15 14:20",
    ]


def test_generation_covers_the_days_asked_for_and_no_more(dr_patel):
    for weekday in range(7):
        _hours(dr_patel, weekday, time(9), time(9, 20))

    slots_generate(now=NOW, days=3)

    # Sunday noon is past 09:00, so Monday to Wednesday.
    assert _local_starts(dr_patel) == ["2026-06-08 09:00", "2026-06-09 09:00", "2026-06-10 09:00"]


def test_by_default_generation_fills_the_booking_horizon(dr_patel, settings):
    settings.BOOKING_HORIZON_DAYS = 56
    _hours(dr_patel, 0, time(9), time(9, 20))

    slots_generate(now=NOW)

    mondays = [MONDAY + timedelta(weeks=week) for week in range(8)]
    assert _local_starts(dr_patel) == [f"{day} 09:00" for day in mondays]


def test_a_slot_already_started_is_never_generated(dr_patel):
    _hours(dr_patel, 0, time(9), time(10))

    slots_generate(now=_at(MONDAY, 9, 10), days=WEEK)

    assert _local_starts(dr_patel)[:2] == _monday("09:20", "09:40")


def test_only_active_practitioners_get_slots_unless_named(dr_patel, dr_okafor):
    dr_okafor.is_active = False
    dr_okafor.save()
    _hours(dr_patel, 0, time(9), time(9, 20))
    _hours(dr_okafor, 0, time(9), time(9, 20))

    slots_generate(now=NOW, days=WEEK)

    assert _local_starts(dr_patel) == _monday("09:00")
    assert _local_starts(dr_okafor) == []


def test_generating_for_one_practitioner_leaves_the_others_alone(dr_patel, dr_okafor):
    _hours(dr_patel, 0, time(9), time(9, 20))
    _hours(dr_okafor, 0, time(9), time(9, 20))

    report = slots_generate(now=NOW, days=WEEK, practitioner=dr_okafor)

    assert report.created == 1
    assert _local_starts(dr_patel) == []
    assert _local_starts(dr_okafor) == _monday("09:00")


# -- Idempotence ------------------------------------------------------------------------------


def test_a_second_run_creates_and_removes_nothing_and_keeps_the_same_rows(dr_patel, dr_okafor):
    _hours(dr_patel, 0, time(9), time(12, 40))
    _hours(dr_patel, 0, time(13, 40), time(17))
    _hours(dr_okafor, 2, time(8, 30), time(13, 30))
    TimeOff.objects.create(practitioner=dr_okafor, starts_at=_at(MONDAY, 0), ends_at=_at(TUESDAY, 11))
    first = slots_generate(now=NOW, days=14)
    rows = _rows()

    second = slots_generate(now=NOW, days=14)

    assert first.created == len(rows) > 0
    assert (second.created, second.removed, second.conflicts) == (0, 0, [])
    assert _rows() == rows


def test_a_later_run_only_adds_the_day_that_came_into_the_horizon(dr_patel):
    for weekday in range(7):
        _hours(dr_patel, weekday, time(9), time(9, 20))
    slots_generate(now=NOW, days=3)
    rows = _rows()

    report = slots_generate(now=NOW + timedelta(days=1), days=3)

    assert (report.created, report.removed) == (1, 0)
    # Monday's slot is in the past now; it is kept, as every other row.
    assert _rows()[:3] == rows
    assert _local_starts(dr_patel)[-1] == "2026-06-11 09:00"


def test_the_command_reports_what_it_created_and_removed(dr_patel):
    _hours(dr_patel, 0, time(9), time(10))
    out = StringIO()

    with time_machine.travel(NOW, tick=False):
        call_command("generate_slots", "--days", "6", stdout=out)
        call_command("generate_slots", "--days", "6", stdout=out)

    assert out.getvalue().splitlines() == ["Slots: 3 created, 0 removed.", "Slots: 0 created, 0 removed."]


def test_the_command_names_each_booked_slot_left_outside_the_hours(dr_patel):
    hours = _hours(dr_patel, 0, time(9), time(10))
    slots_generate(now=NOW, days=WEEK)
    make_appointment(_slot_at(dr_patel, _at(MONDAY, 9, 20)), at=NOW)
    hours.start_time = time(9, 40)
    hours.save()
    out = StringIO()

    with time_machine.travel(NOW, tick=False):
        call_command("generate_slots", "--days", "6", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == "Slots: 0 created, 1 removed."
    assert lines[1:] == [
        "  Booked slot outside working hours or in time off, left in place: Dr Priya Patel Mon 08 Jun 2026 09:20"
    ]


# -- Changes to working hours -----------------------------------------------------------------


def test_shorter_hours_remove_exactly_the_open_slots_that_no_longer_fit(dr_patel):
    hours = _hours(dr_patel, 0, time(9), time(11))
    slots_generate(now=NOW, days=WEEK)
    kept_ids = set(Slot.objects.filter(starts_at__gte=_at(MONDAY, 10)).values_list("pk", flat=True))

    hours.start_time = time(10)
    hours.save()
    report = slots_generate(now=NOW, days=WEEK)

    assert (report.created, report.removed, report.conflicts) == (0, 3, [])
    assert set(Slot.objects.values_list("pk", flat=True)) == kept_ids


def test_longer_hours_add_exactly_the_missing_slots(dr_patel):
    hours = _hours(dr_patel, 0, time(10), time(11))
    slots_generate(now=NOW, days=WEEK)
    kept_ids = set(Slot.objects.values_list("pk", flat=True))

    hours.start_time = time(9)
    hours.end_time = time(12)
    hours.save()
    report = slots_generate(now=NOW, days=WEEK)

    assert (report.created, report.removed) == (6, 0)
    assert kept_ids < set(Slot.objects.values_list("pk", flat=True))
    assert _local_starts(dr_patel) == _monday(
        "09:00", "09:20", "09:40", "10:00", "10:20", "10:40", "11:00", "11:20", "11:40"
    )


def test_hours_moved_off_the_old_grid_replace_the_open_slots(dr_patel):
    hours = _hours(dr_patel, 0, time(9), time(10))
    slots_generate(now=NOW, days=WEEK)

    hours.start_time = time(9, 10)
    hours.end_time = time(10, 10)
    hours.save()
    report = slots_generate(now=NOW, days=WEEK)

    assert (report.created, report.removed) == (3, 3)
    assert _local_starts(dr_patel) == _monday("09:10", "09:30", "09:50")


def test_deleted_hours_remove_the_future_open_slots_but_not_past_ones(dr_patel):
    hours = _hours(dr_patel, 0, time(9), time(10))
    slots_generate(now=NOW, days=WEEK)

    hours.delete()
    # Monday 09:30: the 09:00 and 09:20 slots have started; only 09:40 is in the future.
    report = slots_generate(now=_at(MONDAY, 9, 30), days=WEEK)

    assert (report.created, report.removed) == (0, 1)
    assert _local_starts(dr_patel) == _monday("09:00", "09:20")


def test_a_booked_slot_outside_new_hours_stays_and_is_reported_as_a_conflict(dr_patel):
    hours = _hours(dr_patel, 0, time(9), time(10))
    slots_generate(now=NOW, days=WEEK)
    booked = _slot_at(dr_patel, _at(MONDAY, 9))
    appointment = make_appointment(booked, at=NOW)

    hours.start_time = time(9, 20)
    hours.save()
    report = slots_generate(now=NOW, days=WEEK)

    assert report.conflicts == [booked]
    assert (report.created, report.removed) == (0, 0)
    booked.refresh_from_db()
    assert booked.state == Slot.State.OPEN
    appointment.refresh_from_db()
    assert (appointment.slot, appointment.status) == (booked, Appointment.Status.BOOKED)
    # A second run reports the same conflict again, until reception moves or cancels it.
    assert slots_generate(now=NOW, days=WEEK).conflicts == [booked]


def test_a_booked_slot_on_an_old_grid_keeps_new_slots_from_overlapping_it(dr_patel):
    hours = _hours(dr_patel, 0, time(9), time(10))
    slots_generate(now=NOW, days=WEEK)
    booked = _slot_at(dr_patel, _at(MONDAY, 9, 20))
    make_appointment(booked, at=NOW)

    hours.start_time = time(9, 10)
    hours.end_time = time(10, 10)
    hours.save()
    report = slots_generate(now=NOW, days=WEEK)

    # 09:10 and 09:30 would overlap the booked 09:20-09:40: only 09:50 is added.
    assert report.conflicts == [booked]
    assert _local_starts(dr_patel) == _monday("09:20", "09:50")


def test_a_blocked_slot_is_kept_even_outside_the_hours(dr_patel, rita):
    hours = _hours(dr_patel, 0, time(9), time(10))
    slots_generate(now=NOW, days=WEEK)
    Slot.objects.filter(starts_at=_at(MONDAY, 9)).update(
        state=Slot.State.BLOCKED, blocked_by=rita, blocked_reason="Team meeting"
    )

    hours.delete()
    report = slots_generate(now=NOW, days=WEEK)

    assert report.removed == 2
    blocked = Slot.objects.get()
    assert (blocked.starts_at, blocked.state, blocked.blocked_reason) == (_at(MONDAY, 9), "blocked", "Team meeting")


def test_an_open_slot_whose_only_appointment_was_cancelled_is_retired_not_deleted(dr_patel):
    hours = _hours(dr_patel, 0, time(9), time(10))
    slots_generate(now=NOW, days=WEEK)
    cancelled_slot = _slot_at(dr_patel, _at(MONDAY, 9))
    cancelled = make_appointment(cancelled_slot, status=Appointment.Status.CANCELLED, at=NOW)

    hours.delete()
    report = slots_generate(now=NOW, days=WEEK)

    assert (report.removed, report.conflicts) == (3, [])
    cancelled_slot.refresh_from_db()
    assert cancelled_slot.state == Slot.State.RETIRED
    assert Slot.objects.get() == cancelled_slot
    cancelled.refresh_from_db()
    assert cancelled.slot == cancelled_slot


def test_a_retired_slot_is_reopened_when_its_time_is_worked_again(dr_patel):
    hours = _hours(dr_patel, 0, time(9), time(10))
    slots_generate(now=NOW, days=WEEK)
    retired = _slot_at(dr_patel, _at(MONDAY, 9))
    make_appointment(retired, status=Appointment.Status.CANCELLED, at=NOW)
    hours.delete()
    slots_generate(now=NOW, days=WEEK)

    _hours(dr_patel, 0, time(9), time(10))
    report = slots_generate(now=NOW, days=WEEK)

    assert (report.created, report.removed) == (3, 0)
    retired.refresh_from_db()
    assert retired.state == Slot.State.OPEN
    # Reopened, not duplicated.
    assert _local_starts(dr_patel) == _monday("09:00", "09:20", "09:40")


def test_a_retired_slot_is_not_reopened_on_top_of_a_booked_slot(dr_patel):
    hours = _hours(dr_patel, 0, time(9), time(10))
    slots_generate(now=NOW, days=WEEK)
    retired = _slot_at(dr_patel, _at(MONDAY, 9))
    make_appointment(retired, status=Appointment.Status.CANCELLED, at=NOW)
    # The hours move by ten minutes: 09:00 is retired, and the new 09:10 gets booked.
    hours.start_time, hours.end_time = time(9, 10), time(10, 10)
    hours.save()
    slots_generate(now=NOW, days=WEEK)
    booked = _slot_at(dr_patel, _at(MONDAY, 9, 10))
    make_appointment(booked, at=NOW)

    hours.start_time, hours.end_time = time(9), time(10)
    hours.save()
    report = slots_generate(now=NOW, days=WEEK)

    # 09:00 and 09:20 would overlap the booked 09:10-09:30; 09:40 is free.
    assert report.conflicts == [booked]
    retired.refresh_from_db()
    assert retired.state == Slot.State.RETIRED
    assert _local_starts(dr_patel, "open") == _monday("09:10", "09:40")


def test_a_new_slot_never_overlaps_the_slot_in_progress(dr_patel):
    hours = _hours(dr_patel, 0, time(9), time(10))
    slots_generate(now=NOW, days=WEEK)

    hours.start_time, hours.end_time = time(9, 10), time(10, 10)
    hours.save()
    # Monday 09:05: the 09:00-09:20 slot has started; the new 09:10 would overlap it.
    report = slots_generate(now=_at(MONDAY, 9, 5), days=WEEK)

    assert report.created == 2
    assert _local_starts(dr_patel) == _monday("09:00", "09:30", "09:50")


# -- Time off and closures --------------------------------------------------------------------


def test_time_off_produces_no_slots(dr_patel):
    _hours(dr_patel, 0, time(9), time(12))
    TimeOff.objects.create(practitioner=dr_patel, starts_at=_at(MONDAY, 10), ends_at=_at(MONDAY, 11), reason="GP")

    slots_generate(now=NOW, days=WEEK)

    assert _local_starts(dr_patel) == _monday("09:00", "09:20", "09:40", "11:00", "11:20", "11:40")


def test_time_off_that_covers_part_of_a_slot_removes_the_whole_slot(dr_patel):
    _hours(dr_patel, 0, time(9), time(10))
    TimeOff.objects.create(practitioner=dr_patel, starts_at=_at(MONDAY, 9, 10), ends_at=_at(MONDAY, 9, 30))

    slots_generate(now=NOW, days=WEEK)

    assert _local_starts(dr_patel) == _monday("09:40")


def test_new_time_off_removes_exactly_the_open_slots_it_covers(dr_patel, dr_okafor):
    _hours(dr_patel, 0, time(9), time(12))
    _hours(dr_okafor, 0, time(9), time(12))
    slots_generate(now=NOW, days=WEEK)
    okafor_rows = list(Slot.objects.filter(practitioner=dr_okafor).values_list("pk", flat=True))

    TimeOff.objects.create(practitioner=dr_patel, starts_at=_at(MONDAY, 10), ends_at=_at(MONDAY, 11))
    report = slots_generate(now=NOW, days=WEEK)

    assert (report.created, report.removed) == (0, 3)
    assert _local_starts(dr_patel) == _monday("09:00", "09:20", "09:40", "11:00", "11:20", "11:40")
    assert list(Slot.objects.filter(practitioner=dr_okafor).values_list("pk", flat=True)) == okafor_rows


def test_ended_time_off_brings_the_slots_back(dr_patel):
    _hours(dr_patel, 0, time(9), time(10))
    time_off = TimeOff.objects.create(practitioner=dr_patel, starts_at=_at(MONDAY, 0), ends_at=_at(TUESDAY, 0))
    slots_generate(now=NOW, days=WEEK)
    assert _local_starts(dr_patel) == []

    time_off.delete()
    report = slots_generate(now=NOW, days=WEEK)

    assert (report.created, report.removed) == (3, 0)


def test_a_clinic_closure_removes_every_practitioners_slots_that_day(dr_patel, dr_okafor):
    for practitioner in (dr_patel, dr_okafor):
        _hours(practitioner, 0, time(9), time(10))
        _hours(practitioner, 1, time(9), time(10))
    slots_generate(now=NOW, days=WEEK)

    TimeOff.objects.create(practitioner=None, starts_at=_at(MONDAY, 0), ends_at=_at(TUESDAY, 0), reason="Bank holiday")
    report = slots_generate(now=NOW, days=WEEK)

    assert report.removed == 6
    for practitioner in (dr_patel, dr_okafor):
        assert _local_starts(practitioner) == ["2026-06-09 09:00", "2026-06-09 09:20", "2026-06-09 09:40"]


def test_time_off_over_a_booked_slot_leaves_it_and_reports_it(dr_patel):
    _hours(dr_patel, 0, time(9), time(10))
    slots_generate(now=NOW, days=WEEK)
    booked = _slot_at(dr_patel, _at(MONDAY, 9, 20))
    make_appointment(booked, at=NOW)

    TimeOff.objects.create(practitioner=dr_patel, starts_at=_at(MONDAY, 0), ends_at=_at(TUESDAY, 0))
    report = slots_generate(now=NOW, days=WEEK)

    assert (report.removed, report.conflicts) == (2, [booked])
    assert _local_starts(dr_patel) == _monday("09:20")
