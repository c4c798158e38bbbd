"""Property-based tests: whatever the working pattern, generation never double-books time.

Hypothesis draws random weekdays, one to three periods a day (on a five-minute grid, so
they touch, overlap and miss the twenty-minute grid), optional date ranges and random time
off, for a few days that often include a clock change. Every example runs in a savepoint
that is rolled back, so the examples share one test database without seeing each other.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bookings.models import Appointment, Slot, TimeOff, WorkingHours
from bookings.schedule import slots_generate
from tests.helpers import make_appointment

LONDON = ZoneInfo("Europe/London")
# Sundays the clocks change, and an ordinary one: a run starts a few days before one of them.
AROUND = [date(2026, 3, 29), date(2026, 10, 25), date(2026, 6, 14)]
DAYS = 8

pytestmark = pytest.mark.django_db

# Function-scoped fixtures (the practitioners) are fine here: each example rolls its rows back.
EXAMPLES = hypothesis_settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _minutes(value):
    return time(value // 60, value % 60)


@st.composite
def periods(draw):
    """One period: starts anywhere on a five-minute grid, lasts five minutes to five hours."""
    start = draw(st.integers(0, 23 * 12 - 1)) * 5
    length = draw(st.integers(1, 60)) * 5
    return start, min(start + length, 24 * 60 - 5)


@st.composite
def working_patterns(draw, first_day):
    pattern = []
    for weekday in draw(st.sets(st.integers(0, 6), min_size=1)):
        for start, end in draw(st.lists(periods(), min_size=1, max_size=3)):
            if end <= start:
                continue
            valid_from = valid_until = None
            if draw(st.booleans()):
                valid_from = first_day + timedelta(days=draw(st.integers(0, DAYS)))
            if draw(st.booleans()):
                valid_until = (valid_from or first_day) + timedelta(days=draw(st.integers(0, DAYS)))
            pattern.append((weekday, _minutes(start), _minutes(end), valid_from, valid_until))
    return pattern


@st.composite
def scenarios(draw):
    clock_change = draw(st.sampled_from(AROUND))
    first_day = clock_change - timedelta(days=draw(st.integers(0, 3)))
    now = datetime.combine(first_day, _minutes(draw(st.integers(0, 23 * 4)) * 15), tzinfo=LONDON)
    time_off = []
    for _ in range(draw(st.integers(0, 3))):
        starts_at = now + timedelta(minutes=draw(st.integers(0, DAYS * 24 * 12)) * 5)
        ends_at = starts_at + timedelta(minutes=draw(st.integers(1, 2 * 24 * 12)) * 5)
        clinic_wide = draw(st.booleans())
        time_off.append((clinic_wide, starts_at, ends_at))
    return {
        "now": now,
        "pattern": draw(working_patterns(first_day)),
        "later_pattern": draw(working_patterns(first_day)),
        "time_off": time_off,
        "bookings": draw(st.lists(st.integers(0, 10_000), max_size=5)),
    }


def _apply(practitioner, pattern, time_off=()):
    WorkingHours.objects.filter(practitioner=practitioner).delete()
    WorkingHours.objects.bulk_create(
        WorkingHours(
            practitioner=practitioner,
            weekday=weekday,
            start_time=start,
            end_time=end,
            valid_from=valid_from,
            valid_until=valid_until,
        )
        for weekday, start, end, valid_from, valid_until in pattern
    )
    for clinic_wide, starts_at, ends_at in time_off:
        TimeOff.objects.create(practitioner=None if clinic_wide else practitioner, starts_at=starts_at, ends_at=ends_at)


def _instants(day, wall_time):
    """Every real instant a wall-clock time may mean that day (two in the repeated hour, and for a
    skipped time both readings): the widest honest reading of the working hours."""
    return [datetime.combine(day, wall_time, tzinfo=LONDON).replace(fold=fold).astimezone(UTC) for fold in (0, 1)]


def _inside_working_hours(slot, pattern):
    """Whether the slot lies within the time worked that day: the union of its periods, since
    periods that overlap are one stretch of work."""
    day = slot.starts_at.astimezone(LONDON).date()
    worked = sorted(
        (min(_instants(day, start)), max(_instants(day, end)))
        for weekday, start, end, valid_from, valid_until in pattern
        if day.weekday() == weekday
        and (valid_from is None or day >= valid_from)
        and (valid_until is None or day <= valid_until)
    )
    stretches = []
    for start, end in worked:
        if stretches and start <= stretches[-1][1]:
            stretches[-1][1] = max(stretches[-1][1], end)
        else:
            stretches.append([start, end])
    return any(start <= slot.starts_at and slot.ends_at <= end for start, end in stretches)


def _assert_schedule_is_sound(practitioner, pattern, *, now, booked_ids=frozenset()):
    slots = list(Slot.objects.filter(practitioner=practitioner).exclude(state=Slot.State.RETIRED).order_by("starts_at"))
    length = timedelta(minutes=settings.CONSULTATION_MINUTES)
    # The exclusion constraint would already have raised; say it in Python too, with the culprits.
    for earlier, later in zip(slots, slots[1:], strict=False):
        assert earlier.ends_at <= later.starts_at, f"{earlier} overlaps {later}"
    time_off = list(TimeOff.objects.filter(practitioner__in=[practitioner, None]))
    for slot in slots:
        if slot.pk in booked_ids or slot.starts_at <= now:
            continue
        assert slot.ends_at - slot.starts_at == length
        assert slot.state == Slot.State.OPEN
        assert _inside_working_hours(slot, pattern), f"{slot} is outside working hours"
        local = slot.starts_at.astimezone(LONDON)
        assert local.fold == 0, f"{slot} repeats a local time"
        clash = [off for off in time_off if off.starts_at < slot.ends_at and off.ends_at > slot.starts_at]
        assert not clash, f"{slot} falls in time off {clash}"
    return slots


@EXAMPLES
@given(scenario=scenarios())
def test_random_working_patterns_never_give_an_overlap_or_a_slot_outside_hours_or_in_time_off(scenario, dr_patel):
    now = scenario["now"]
    with transaction.atomic():
        _apply(dr_patel, scenario["pattern"], scenario["time_off"])

        first = slots_generate(now=now, days=DAYS, practitioner=dr_patel)
        slots = _assert_schedule_is_sound(dr_patel, scenario["pattern"], now=now)
        second = slots_generate(now=now, days=DAYS, practitioner=dr_patel)

        assert first.created == len(slots)
        assert (second.created, second.removed, second.conflicts) == (0, 0, [])
        transaction.set_rollback(True)


@EXAMPLES
@given(scenario=scenarios())
def test_changing_random_patterns_keeps_bookings_and_leaves_only_slots_that_fit(scenario, dr_patel):
    now = scenario["now"]
    with transaction.atomic():
        _apply(dr_patel, scenario["pattern"])
        slots_generate(now=now, days=DAYS, practitioner=dr_patel)
        slots = list(Slot.objects.filter(practitioner=dr_patel).order_by("starts_at"))
        booked = {slots[index % len(slots)] for index in scenario["bookings"]} if slots else set()
        for slot in booked:
            make_appointment(slot, at=now)

        _apply(dr_patel, scenario["later_pattern"], scenario["time_off"])
        report = slots_generate(now=now, days=DAYS, practitioner=dr_patel)

        booked_ids = {slot.pk for slot in booked}
        _assert_schedule_is_sound(dr_patel, scenario["later_pattern"], now=now, booked_ids=booked_ids)
        # Every booking is still there, on its own slot, and each one out of place is reported.
        assert set(Appointment.objects.live().values_list("slot_id", flat=True)) == booked_ids
        assert {slot.pk for slot in report.conflicts} <= booked_ids
        again = slots_generate(now=now, days=DAYS, practitioner=dr_patel)
        assert (again.created, again.removed) == (0, 0)
        transaction.set_rollback(True)
