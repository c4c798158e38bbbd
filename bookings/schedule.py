"""The schedule: laying out slots from working hours minus time off.

`slots_generate` is the one writer of slots; it runs on demand after a change to hours, time off
or a closure (`schedule_change_apply`, shared by the admin and reception) and daily from cron
(`manage.py generate_slots`).
"""

from __future__ import annotations

import bisect
import functools
import operator
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q

from bookings.models import Appointment, Practitioner, Slot, TimeOff, WorkingHours
from clinic.page_cache import Dependency


@dataclass
class GenerationReport:
    created: int = 0
    removed: int = 0
    # Booked slots that no longer fit the working hours or fall in time off: reception must act.
    conflicts: list[Slot] = field(default_factory=list)

    def __add__(self, other: GenerationReport) -> GenerationReport:
        return GenerationReport(
            self.created + other.created, self.removed + other.removed, self.conflicts + other.conflicts
        )


def clinic_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def local_midnight(day: date) -> datetime:
    """The start of a local calendar day, aware: the bound of any "this day" or "this week" query."""
    return datetime.combine(day, time(0), tzinfo=clinic_zone())


def local_datetime(day: date, wall_time: time, zone: zoneinfo.ZoneInfo) -> datetime | None:
    """The aware datetime for a wall-clock time, or None if the clocks skip it that day.

    In the hour that does not exist (spring forward), a naive time survives the round
    trip through UTC changed; in the repeated hour (fall back) we take the first one.
    """
    candidate = datetime.combine(day, wall_time, tzinfo=zone)
    round_trip = candidate.astimezone(UTC).astimezone(zone)
    if round_trip.replace(tzinfo=None) != candidate.replace(tzinfo=None):
        return None
    return candidate


def _period_instant(day: date, wall_time: time, zone: zoneinfo.ZoneInfo) -> datetime:
    """The real instant a period starts or ends: the first occurrence of a repeated time, and
    the moment the clocks jump forward for a time they skip (01:30 on that night is 02:00)."""
    wall = datetime.combine(day, wall_time)
    aware = local_datetime(wall.date(), wall.time(), zone)
    while aware is None:
        wall = wall.replace(second=0, microsecond=0) + timedelta(minutes=1)
        aware = local_datetime(wall.date(), wall.time(), zone)
    return aware.astimezone(UTC)


def _working_intervals(
    periods: list[WorkingHours], day: date, zone: zoneinfo.ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """The real (UTC) intervals worked on one day. Overlapping periods merge into one, so that
    two rows entered for the same morning lay out one run of slots, not two clashing ones;
    periods that merely touch stay apart, so each one's slots start at its own start time."""
    intervals = sorted(
        (_period_instant(day, period.start_time, zone), _period_instant(day, period.end_time, zone))
        for period in periods
        if period.applies_on(day)
    )
    merged: list[tuple[datetime, datetime]] = []
    for start, end in intervals:
        if end <= start:
            # A period that lies wholly in the hour the clocks skip.
            continue
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def wanted_slot_starts(
    *, working_hours: list[WorkingHours], time_off: list[TimeOff], first_day: date, last_day: date
) -> list[datetime]:
    """Start times (aware, UTC) the working pattern asks for between two local dates, minus time off.

    1. Each day's periods become real intervals (see `_working_intervals`), from their local
       wall-clock times: 09:00 stays 09:00 across DST.
    2. Slots follow each other in real time from the start of each interval, and end within it:
       every slot lasts CONSULTATION_MINUTES of elapsed time, even across a clock change.
    3. In the hour the clocks repeat, only its first occurrence is offered, so no local time
       is shown twice; slots touching time off are left out.
    """
    zone = clinic_zone()
    length = timedelta(minutes=settings.CONSULTATION_MINUTES)
    starts = set()
    day = first_day
    while day <= last_day:
        for interval_start, interval_end in _working_intervals(working_hours, day, zone):
            start = interval_start
            while start + length <= interval_end:
                end = start + length
                repeated = start.astimezone(zone).fold == 1
                if not repeated and not any(off.starts_at < end and off.ends_at > start for off in time_off):
                    starts.add(start)
                start = end
        day += timedelta(days=1)
    return sorted(starts)


def _fits(slot: Slot, wanted: set[datetime] | list[datetime]) -> bool:
    """The one rule of "this slot still fits the schedule": the hours minus time off ask for a slot
    starting then, and it lasts one consultation."""
    length = timedelta(minutes=settings.CONSULTATION_MINUTES)
    return slot.starts_at in wanted and slot.ends_at - slot.starts_at == length


class ScheduleRule:
    """Working hours and time off, read once for a window, to say whether slots in it still fit.

    Two queries whatever the number of slots asked about; each practitioner's day is worked out
    once, by `wanted_slot_starts`, as generation does.
    """

    def __init__(self, *, working_hours: list[WorkingHours], time_off: list[TimeOff]):
        self.working_hours: dict[int, list[WorkingHours]] = {}
        for period in working_hours:
            self.working_hours.setdefault(period.practitioner_id, []).append(period)
        self.time_off = time_off
        self._wanted: dict[tuple[int, date], set[datetime]] = {}

    @classmethod
    def load(cls, *, start: datetime, end: datetime, practitioner_ids: list[int] | None = None) -> ScheduleRule:
        """The hours and time off that decide the slots starting in [start, end).

        Only the time off that touches those slots matters to them (a slot ends up to one
        consultation after `end`), so any other can be left out of the days worked out.
        """
        working_hours = WorkingHours.objects.order_by()
        reach = timedelta(minutes=settings.CONSULTATION_MINUTES)
        time_off = TimeOff.objects.filter(starts_at__lt=end + reach, ends_at__gt=start).order_by()
        if practitioner_ids is not None:
            working_hours = working_hours.filter(practitioner_id__in=practitioner_ids)
            time_off = time_off.filter(Q(practitioner_id__in=practitioner_ids) | Q(practitioner__isnull=True))
        return cls(working_hours=list(working_hours), time_off=list(time_off))

    def fits(self, slot: Slot) -> bool:
        day = slot.starts_at.astimezone(clinic_zone()).date()
        key = (slot.practitioner_id, day)
        if key not in self._wanted:
            time_off = [off for off in self.time_off if off.practitioner_id in (None, slot.practitioner_id)]
            self._wanted[key] = set(
                wanted_slot_starts(
                    working_hours=self.working_hours.get(slot.practitioner_id, []),
                    time_off=time_off,
                    first_day=day,
                    last_day=day,
                )
            )
        return _fits(slot, self._wanted[key])


def slot_fits_schedule(slot: Slot) -> bool:
    """Whether working hours and time off still ask for this slot (two queries).

    The services that free a slot (cancel, move, unblock) ask this inside their transaction: a
    slot freed in time off or outside the hours is retired, never offered to patients again.
    """
    return ScheduleRule.load(start=slot.starts_at, end=slot.ends_at, practitioner_ids=[slot.practitioner_id]).fits(slot)


def referenced_slot_ids(slot_ids: list[int]) -> set[int]:
    """The slots among SLOT_IDS that any other row still points to (one query).

    Appointments, the outbox, and whatever gains a foreign key to Slot later: found from the
    model's relations, hidden ones included (the outbox's `related_name="+"` hides it from
    `Slot._meta.related_objects`). Such a slot is retired, never deleted: deleting it would
    raise ProtectedError, or take its history with it.
    """
    if not slot_ids:
        return set()
    references = [
        Exists(relation.related_model._base_manager.filter(**{relation.field.name: OuterRef("pk")}))
        for relation in Slot._meta.get_fields(include_hidden=True)
        if relation.auto_created and not relation.concrete and (relation.one_to_many or relation.one_to_one)
    ]
    if not references:
        return set()
    return set(
        Slot.objects.filter(pk__in=slot_ids)
        .filter(functools.reduce(operator.or_, references))
        .values_list("pk", flat=True)
    )


def slots_generate(*, now: datetime, days: int | None = None, practitioner: Practitioner | None = None):
    """Bring future slots in line with working hours and time off, for one or all practitioners.

    Idempotent. Never touches a slot with a live appointment or a blocked slot; open slots
    that no longer fit are deleted, or retired when any row still points to them (a cancelled
    appointment, a message in the outbox: see `referenced_slot_ids`).
    An inactive practitioner's future open slots all go, and their bookings are reported as conflicts.
    """
    days = settings.BOOKING_HORIZON_DAYS if days is None else days
    if practitioner:
        practitioners = [practitioner]
    else:
        # Active practitioners, and inactive ones who still have future slots to take off the diary.
        practitioners = list(
            Practitioner.objects.filter(
                Q(is_active=True) | Q(slots__starts_at__gt=now, slots__state=Slot.State.OPEN)
            ).distinct()
        )
    report = GenerationReport()
    for each in practitioners:
        report += _generate_for_practitioner(each, now=now, days=days)
    return report


def schedule_change_apply(*, now: datetime, change: Callable[[], Iterable[Practitioner | None]]) -> GenerationReport:
    """Save a change to the schedule and bring the slots in line with it, all or nothing.

    The one way hours, time off and closures change, for the admin and for reception alike:
    1. Open one transaction.
    2. Run `change`: it saves or deletes the rows (hours, time off, a closure) and returns the
       practitioners whose time it touched, None standing for a clinic closure (everyone).
    3. Regenerate the slots of those practitioners, or of every practitioner after a closure.
    4. Return the report: slots created and removed, and the booked ones that no longer fit
       (conflicts), for the caller to show; a booking is never moved or cancelled here.
    A failure in 2 or 3 rolls both back: a change whose slots could not follow is not saved,
    so a retry does not save it twice (issue 13).
    """
    with transaction.atomic():
        touched = list(change())
        if None in touched:
            return slots_generate(now=now)
        report = GenerationReport()
        for practitioner in {each.pk: each for each in touched}.values():
            report += slots_generate(now=now, practitioner=practitioner)
        return report


def _generate_for_practitioner(practitioner: Practitioner, *, now: datetime, days: int) -> GenerationReport:
    """1. Compute the wanted starts. 2. Lock the practitioner's future slots. 3. Remove the
    unwanted open ones without live appointments. 4. Create the missing ones that do not
    overlap a slot we keep. One transaction per practitioner keeps each one short."""
    zone = clinic_zone()
    first_day = now.astimezone(zone).date()
    last_day = first_day + timedelta(days=days)
    window_start = now
    window_end = local_midnight(last_day + timedelta(days=1))
    length = timedelta(minutes=settings.CONSULTATION_MINUTES)

    with transaction.atomic():
        # Serialises generation runs for one practitioner (admin save and a cron job at once).
        locked = Practitioner.objects.select_for_update().get(pk=practitioner.pk)
        # A practitioner who has left works no hours: their open slots go, their bookings are conflicts.
        working_hours = list(practitioner.working_hours.all()) if locked.is_active else []
        time_off = list(
            TimeOff.objects.filter(Q(practitioner=practitioner) | Q(practitioner__isnull=True)).filter(
                ends_at__gt=window_start, starts_at__lt=window_end
            )
        )
        wanted = {
            start
            for start in wanted_slot_starts(
                working_hours=working_hours, time_off=time_off, first_day=first_day, last_day=last_day
            )
            if window_start < start < window_end
        }
        existing = list(
            Slot.objects.select_for_update()
            .filter(practitioner=practitioner, starts_at__gt=window_start, starts_at__lt=window_end)
            .order_by("pk")
        )
        # One read of the appointments on those slots (unordered: the default ordering joins the slot).
        appointments = list(
            Appointment.objects.filter(slot__in=[slot.pk for slot in existing])
            .order_by()
            .values_list("slot_id", "status")
        )
        booked_ids = {slot_id for slot_id, status in appointments if status != Appointment.Status.CANCELLED}

        # Slots this run must not change but must not overlap either: the one in progress, and
        # any beyond the window (left by an earlier run with a longer horizon).
        fixed = (
            Slot.objects.filter(practitioner=practitioner)
            .exclude(state=Slot.State.RETIRED)
            .filter(
                Q(starts_at__lte=window_start, ends_at__gt=window_start)
                | Q(starts_at__gte=window_end, starts_at__lt=window_end + length)
            )
            .values_list("starts_at", "ends_at")
        )

        report = GenerationReport()
        kept: list[Slot] = []
        unfit, retired_fitting = [], []
        for slot in existing:
            fits = _fits(slot, wanted)
            if slot.pk in booked_ids:
                kept.append(slot)
                if not fits:
                    report.conflicts.append(slot)
            elif slot.state == Slot.State.BLOCKED:
                kept.append(slot)
            elif slot.state == Slot.State.RETIRED:
                if fits:
                    retired_fitting.append(slot)
            elif fits:
                kept.append(slot)
            else:
                unfit.append(slot.pk)
        # One query, and only when some slot goes.
        referenced = referenced_slot_ids(unfit)
        to_retire = [pk for pk in unfit if pk in referenced]
        to_delete = [pk for pk in unfit if pk not in referenced]

        taken = _TakenTimes([(slot.starts_at, slot.ends_at) for slot in kept] + list(fixed))
        # A retired slot comes back only where nothing kept (a booking on another grid) is in the way.
        to_reopen = [slot for slot in retired_fitting if taken.take(slot.starts_at, slot.ends_at)]
        Slot.objects.filter(pk__in=to_delete).delete()
        Slot.objects.filter(pk__in=to_retire).update(state=Slot.State.RETIRED)
        Slot.objects.filter(pk__in=[slot.pk for slot in to_reopen]).update(state=Slot.State.OPEN)
        report.removed = len(to_delete) + len(to_retire)

        new_slots = [
            Slot(practitioner=practitioner, starts_at=start, ends_at=start + length)
            for start in sorted(wanted)
            if taken.take(start, start + length)
        ]
        Slot.objects.bulk_create(new_slots)
        report.created = len(new_slots) + len(to_reopen)
    return report


class _TakenTimes:
    """Non-overlapping [start, end) intervals, sorted by start, so that ends are sorted too:
    only the last interval starting before a candidate ends can overlap it."""

    def __init__(self, intervals: list[tuple[datetime, datetime]]):
        self.intervals = sorted(intervals)

    def take(self, start: datetime, end: datetime) -> bool:
        """Add [start, end) if it overlaps nothing taken; say whether it did."""
        index = bisect.bisect_left(self.intervals, (end,))
        if index and self.intervals[index - 1][1] > start:
            return False
        self.intervals.insert(index, (start, end))
        return True


class AvailabilityVersion(Dependency):
    """What a week of bookable times was built from: the availability counters of its days.

    The counters are kept by triggers (migration 0006) per UTC day of a slot's start and per
    practitioner, plus one for the practitioner list; their sum only ever grows, so an equal sum
    means nothing in those days changed. Days are UTC days so that the triggers need no clinic zone.
    """

    def __init__(self, *, starts: datetime, ends: datetime, practitioner_id: int | None):
        self.first_day = starts.astimezone(UTC).date()
        self.last_day = ends.astimezone(UTC).date()
        self.practitioner_id = practitioner_id

    def version(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(sum(version), 0) FROM bookings_availabilityversion"
                " WHERE (day = '-infinity' AND practitioner_id = 0)"
                " OR (day BETWEEN %s AND %s AND (%s::bigint IS NULL OR practitioner_id = %s))",
                [self.first_day, self.last_day, self.practitioner_id, self.practitioner_id],
            )
            return int(cursor.fetchone()[0])
