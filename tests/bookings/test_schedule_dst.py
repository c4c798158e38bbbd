"""Clock changes in Europe/London: slots keep their local times and their real length.

The clocks go forward at 01:00 GMT on the last Sunday of March (01:00-02:00 does not
exist) and back at 02:00 BST on the last Sunday of October (01:00-02:00 happens twice).
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bookings.models import Slot, WorkingHours
from bookings.schedule import local_datetime, slots_generate, wanted_slot_starts

LONDON = ZoneInfo("Europe/London")
SPRING_FORWARD = date(2026, 3, 29)
FALL_BACK = date(2026, 10, 25)
SUNDAY = 6
TWENTY_MINUTES = timedelta(minutes=20)

pytestmark = pytest.mark.django_db


def _the_day_before(day):
    return datetime.combine(day - timedelta(days=1), time(12), tzinfo=LONDON)


def _generate_sunday(practitioner, day, *periods):
    for start, end in periods:
        WorkingHours.objects.create(practitioner=practitioner, weekday=SUNDAY, start_time=start, end_time=end)
    slots_generate(now=_the_day_before(day), days=1)
    return list(Slot.objects.filter(practitioner=practitioner).order_by("starts_at"))


def _local(slots):
    return [f"{slot.starts_at.astimezone(LONDON):%H:%M}" for slot in slots]


def _assert_back_to_back_or_apart(slots):
    for earlier, later in zip(slots, slots[1:], strict=False):
        assert earlier.ends_at <= later.starts_at, f"{earlier} overlaps {later}"


def test_the_hour_that_does_not_exist_has_no_local_datetime():
    assert local_datetime(SPRING_FORWARD, time(1, 30), LONDON) is None
    assert local_datetime(SPRING_FORWARD, time(1, 0), LONDON) is None
    assert local_datetime(SPRING_FORWARD, time(2, 0), LONDON) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert local_datetime(SPRING_FORWARD, time(0, 59), LONDON) == datetime(2026, 3, 29, 0, 59, tzinfo=UTC)


def test_the_hour_that_happens_twice_takes_its_first_occurrence():
    first = local_datetime(FALL_BACK, time(1, 30), LONDON)
    # Compared in UTC: Python never equates a time in the repeated hour with one in another zone.
    assert first.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert first.utcoffset() == timedelta(hours=1)


def test_nine_oclock_stays_nine_oclock_local_on_both_sides_of_the_spring_change(dr_patel):
    slots = _generate_sunday(dr_patel, SPRING_FORWARD, (time(9), time(10)))
    WorkingHours.objects.all().delete()
    slots_before = _generate_sunday(dr_patel, SPRING_FORWARD - timedelta(days=7), (time(9), time(10)))

    assert _local(slots) == ["09:00", "09:20", "09:40"]
    # 09:00 BST is 08:00 UTC; the Sunday before, 09:00 GMT is 09:00 UTC.
    assert slots[0].starts_at == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    assert slots_before[0].starts_at == datetime(2026, 3, 22, 9, 0, tzinfo=UTC)


def test_nine_oclock_stays_nine_oclock_local_on_the_autumn_change(dr_patel):
    slots = _generate_sunday(dr_patel, FALL_BACK, (time(9), time(10)))

    assert _local(slots) == ["09:00", "09:20", "09:40"]
    assert slots[0].starts_at == datetime(2026, 10, 25, 9, 0, tzinfo=UTC)


def test_a_night_period_across_the_spring_change_skips_the_missing_hour(dr_patel):
    slots = _generate_sunday(dr_patel, SPRING_FORWARD, (time(0, 30), time(3, 30)))

    # 00:30-03:30 on the wall is two real hours: six slots, none in 01:00-02:00.
    assert _local(slots) == ["00:30", "00:50", "02:10", "02:30", "02:50", "03:10"]
    assert all(slot.ends_at - slot.starts_at == TWENTY_MINUTES for slot in slots)
    _assert_back_to_back_or_apart(slots)
    # The 00:50 GMT slot ends twenty real minutes later, at 02:10 BST, where the next one starts.
    assert f"{slots[1].ends_at.astimezone(LONDON):%H:%M %Z}" == "02:10 BST"
    assert slots[1].ends_at == slots[2].starts_at


def test_a_night_period_across_the_autumn_change_has_no_overlap_and_no_duplicate(dr_patel):
    slots = _generate_sunday(dr_patel, FALL_BACK, (time(0, 30), time(3, 30)))

    # Local times are laid out once: the repeated hour is offered in its first (BST) occurrence only.
    assert _local(slots) == ["00:30", "00:50", "01:10", "01:30", "01:50", "02:10", "02:30", "02:50", "03:10"]
    assert len({slot.starts_at for slot in slots}) == len(slots) == 9
    assert all(slot.ends_at - slot.starts_at == TWENTY_MINUTES for slot in slots)
    _assert_back_to_back_or_apart(slots)
    assert [slot.starts_at.astimezone(LONDON).fold for slot in slots] == [0] * 9
    # The last BST slot ends at 01:10 GMT; the clinic reopens at 02:10 GMT.
    assert f"{slots[4].ends_at.astimezone(LONDON):%H:%M %Z}" == "01:10 GMT"
    assert slots[5].starts_at - slots[4].ends_at == timedelta(hours=1)


def test_generation_on_clock_change_nights_is_idempotent(dr_patel):
    _generate_sunday(dr_patel, SPRING_FORWARD, (time(0, 30), time(3, 30)))
    _generate_sunday(dr_patel, FALL_BACK, (time(0, 30), time(3, 30)))
    rows = list(Slot.objects.order_by("pk").values_list("pk", "starts_at", "ends_at"))

    for day in (SPRING_FORWARD, FALL_BACK):
        report = slots_generate(now=_the_day_before(day), days=1)
        assert (report.created, report.removed) == (0, 0)
    assert list(Slot.objects.order_by("pk").values_list("pk", "starts_at", "ends_at")) == rows


def test_a_slot_never_runs_past_the_end_of_a_period_that_ends_after_the_missing_hour(dr_patel):
    # 00:30-02:00 on the wall is only 30 real minutes: 00:50 GMT would end at 02:10 BST.
    slots = _generate_sunday(dr_patel, SPRING_FORWARD, (time(0, 30), time(2, 0)))

    assert _local(slots) == ["00:30"]


def test_periods_either_side_of_the_missing_hour_do_not_overlap(dr_patel):
    # In real time 01:10 does not exist, so the first period ends when the clocks jump, at 02:00 BST.
    slots = _generate_sunday(dr_patel, SPRING_FORWARD, (time(0, 10), time(1, 10)), (time(2), time(3)))

    assert _local(slots) == ["00:10", "00:30", "02:00", "02:20", "02:40"]
    _assert_back_to_back_or_apart(slots)


def test_a_period_inside_the_missing_hour_gives_no_slots(dr_patel):
    assert _generate_sunday(dr_patel, SPRING_FORWARD, (time(1), time(2))) == []


def test_a_period_inside_the_repeated_hour_gives_its_slots_once(dr_patel):
    slots = _generate_sunday(dr_patel, FALL_BACK, (time(1), time(2)))

    assert _local(slots) == ["01:00", "01:20", "01:40"]
    assert {slot.starts_at.astimezone(LONDON).tzname() for slot in slots} == {"BST"}


def test_a_full_week_across_each_change_has_the_usual_slot_count(dr_patel):
    for weekday in range(7):
        WorkingHours.objects.create(practitioner=dr_patel, weekday=weekday, start_time=time(9), end_time=time(17))

    for day in (SPRING_FORWARD, FALL_BACK):
        starts = wanted_slot_starts(
            working_hours=list(dr_patel.working_hours.all()),
            time_off=[],
            first_day=day - timedelta(days=3),
            last_day=day + timedelta(days=3),
        )
        local_times = {f"{start.astimezone(LONDON):%H:%M}" for start in starts}
        assert len(starts) == 7 * 24
        assert min(local_times) == "09:00"
        assert max(local_times) == "16:40"
