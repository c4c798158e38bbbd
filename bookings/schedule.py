"""The schedule: laying out slots from working hours minus time off.

`slots_generate` is the one writer of slots; it runs on demand (admin and reception
changes to hours or time off) and daily from cron (`manage.py generate_slots`).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from bookings.models import Appointment, Practitioner, Slot, TimeOff, WorkingHours


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


def local_datetime(day: date, wall_time: time, zone: zoneinfo.ZoneInfo) -> datetime | None:
    """The aware datetime for a wall-clock time, or None if the clocks skip it that day.

    In the hour that does not exist (spring forward), a naive time survives the round
    trip through UTC changed; in the repeated hour (fall back) we take the first one.
    """
    candidate = datetime.combine(day, wall_time, tzinfo=zone)
    round_trip = candidate.astimezone(zoneinfo.ZoneInfo("UTC")).astimezone(zone)
    if round_trip.replace(tzinfo=None) != candidate.replace(tzinfo=None):
        return None
    return candidate


def wanted_slot_starts(
    *, working_hours: list[WorkingHours], time_off: list[TimeOff], first_day: date, last_day: date
) -> list[datetime]:
    """Start times (aware, UTC) the working pattern asks for between two local dates, minus time off.

    Slots are laid out in local wall-clock time (09:00 stays 09:00 across DST) and their
    length is real elapsed time, computed in UTC.
    """
    zone = clinic_zone()
    length = timedelta(minutes=settings.CONSULTATION_MINUTES)
    starts = set()
    day = first_day
    while day <= last_day:
        for period in working_hours:
            if not period.applies_on(day):
                continue
            wall = datetime.combine(day, period.start_time)
            period_end = datetime.combine(day, period.end_time)
            while wall + length <= period_end:
                start = local_datetime(day, wall.time(), zone)
                if start is not None:
                    start_utc = start.astimezone(zoneinfo.ZoneInfo("UTC"))
                    end_utc = start_utc + length
                    if not any(off.starts_at < end_utc and off.ends_at > start_utc for off in time_off):
                        starts.add(start_utc)
                wall += length
        day += timedelta(days=1)
    return sorted(starts)


def slots_generate(*, now: datetime, days: int | None = None, practitioner: Practitioner | None = None):
    """Bring future slots in line with working hours and time off, for one or all practitioners.

    Idempotent. Never touches a slot with a live appointment or a blocked slot; open slots
    that no longer fit are deleted (or retired, when a cancelled appointment points to them).
    """
    days = settings.BOOKING_HORIZON_DAYS if days is None else days
    practitioners = [practitioner] if practitioner else list(Practitioner.objects.filter(is_active=True))
    report = GenerationReport()
    for each in practitioners:
        report += _generate_for_practitioner(each, now=now, days=days)
    return report


def _generate_for_practitioner(practitioner: Practitioner, *, now: datetime, days: int) -> GenerationReport:
    """1. Compute the wanted starts. 2. Lock the practitioner's future slots. 3. Remove the
    unwanted open ones without live appointments. 4. Create the missing ones that do not
    overlap a slot we keep. One transaction per practitioner keeps each one short."""
    zone = clinic_zone()
    first_day = now.astimezone(zone).date()
    last_day = first_day + timedelta(days=days)
    window_start = now
    window_end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=zone)
    length = timedelta(minutes=settings.CONSULTATION_MINUTES)

    with transaction.atomic():
        # Serialises generation runs for one practitioner (admin save and a cron job at once).
        Practitioner.objects.select_for_update().get(pk=practitioner.pk)
        working_hours = list(practitioner.working_hours.all())
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
        booked_ids = set(
            Appointment.objects.live().filter(slot__in=[slot.pk for slot in existing]).values_list("slot_id", flat=True)
        )
        any_appointment_ids = set(
            Appointment.objects.filter(slot__in=[slot.pk for slot in existing]).values_list("slot_id", flat=True)
        )

        report = GenerationReport()
        kept: list[Slot] = []
        to_delete, to_retire, to_reopen = [], [], []
        for slot in existing:
            fits = slot.starts_at in wanted and slot.ends_at - slot.starts_at == length
            if slot.pk in booked_ids:
                kept.append(slot)
                if not fits:
                    report.conflicts.append(slot)
            elif slot.state == Slot.State.BLOCKED:
                kept.append(slot)
            elif slot.state == Slot.State.RETIRED:
                if fits:
                    to_reopen.append(slot)
                    kept.append(slot)
            elif fits:
                kept.append(slot)
            elif slot.pk in any_appointment_ids:
                to_retire.append(slot.pk)
            else:
                to_delete.append(slot.pk)

        Slot.objects.filter(pk__in=to_delete).delete()
        Slot.objects.filter(pk__in=to_retire).update(state=Slot.State.RETIRED)
        Slot.objects.filter(pk__in=[slot.pk for slot in to_reopen]).update(state=Slot.State.OPEN)
        report.removed = len(to_delete) + len(to_retire)

        kept_intervals = sorted((slot.starts_at, slot.ends_at) for slot in kept)
        new_slots = []
        for start in sorted(wanted):
            end = start + length
            if any(kept_start < end and kept_end > start for kept_start, kept_end in kept_intervals):
                continue
            new_slots.append(Slot(practitioner=practitioner, starts_at=start, ends_at=end))
        Slot.objects.bulk_create(new_slots)
        report.created = len(new_slots) + len(to_reopen)
    return report
