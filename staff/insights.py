"""The Insights page's numbers: eight small SQL aggregates, whatever the period or the size of the diary.

The appointments and slots are first summed per clinic day into the Insights* tables
(bookings.services.insights_refresh: the page's "Refresh" button, `manage.py refresh_insights`), because a
year at 50 practitioners is ~270,000 slots, too many to sum within the page's 100 ms. Each function below is
then one query over those days (date_trunc to the week, GROUP BY, FILTER), plus the two counters written as
they happen (booking starts, urgent care), which are daily already. Weeks start on Monday, as PostgreSQL's
date_trunc('week') does.

The small-number rule (`Small`): a count from 1 to 4 that is about patients is shown as "fewer than
5", in the page, its charts (the bar is left out) and the CSV, so that nobody can be singled out.
It applies to: bookings per week by how they came (one booking through the waiting list in a week
points at the one person who got an offer), bookings and starts per article, attendance per week
(every column, rates too), urgent-care referrals per week, and the median days to appointment (not
shown for fewer than 5 bookings: a median of one is that patient's own wait). It does not apply to the
diary's hours (about the practitioners' time, not about who came; shown to one decimal). A hidden cell
must not be recoverable by subtraction: a rate is shown only where both its counts are, and a week of
bookings or attendance with a hidden cell shows neither its total nor any rate (its bars are left out
of the chart).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property

from django.db import connection

from articles.models import Article
from bookings.models import (
    Appointment,
    BookingStartCount,
    InsightsAttendanceDay,
    InsightsBookingDay,
    InsightsDiaryDay,
    InsightsLeadDays,
    InsightsRefresh,
    Practitioner,
    UrgentCareCount,
)
from bookings.schedule import clinic_zone, local_midnight

SMALL_NUMBER_TEXT = "fewer than 5"
HIDDEN_TOTAL_TEXT = "not shown"


@dataclass(frozen=True)
class Small:
    """A count about patients, shown as "fewer than 5" from 1 to 4."""

    value: int

    @property
    def hidden(self) -> bool:
        return 1 <= self.value <= 4

    def __str__(self) -> str:
        return SMALL_NUMBER_TEXT if self.hidden else str(self.value)


@dataclass(frozen=True)
class Period:
    first_day: date
    last_day: date  # inclusive

    @property
    def starts_at(self):
        return local_midnight(self.first_day)

    @property
    def ends_at(self):
        return local_midnight(self.last_day + timedelta(days=1))

    @cached_property
    def weeks(self) -> list[date]:
        """The Mondays of every week the period touches, in order."""
        monday = self.first_day - timedelta(days=self.first_day.weekday())
        weeks = []
        while monday <= self.last_day:
            weeks.append(monday)
            monday += timedelta(days=7)
        return weeks

    @classmethod
    def last_weeks(cls, weeks: int, *, today: date) -> Period:
        """The last `weeks` whole weeks, this one included (to today)."""
        this_monday = today - timedelta(days=today.weekday())
        return cls(this_monday - timedelta(weeks=weeks - 1), today)


def _rows(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _params(period: Period) -> dict:
    return {
        "zone": clinic_zone().key,
        "start": period.starts_at,
        "end": period.ends_at,
        "first_day": period.first_day,
        "last_day": period.last_day,
    }


ARTICLE = Article._meta.db_table
STARTS = BookingStartCount._meta.db_table
URGENT = UrgentCareCount._meta.db_table
BOOKING_DAYS = InsightsBookingDay._meta.db_table
DIARY_DAYS = InsightsDiaryDay._meta.db_table
ATTENDANCE_DAYS = InsightsAttendanceDay._meta.db_table
LEAD_DAYS = InsightsLeadDays._meta.db_table
# The summaries hold clinic days, so a week is the date_trunc of the day itself.
WEEK = "date_trunc('week', day)::date"
IN_PERIOD = "day BETWEEN %(first_day)s AND %(last_day)s"


def figures_version(period: Period) -> tuple:
    """What the period's figures depend on, in one query: when the summaries were rebuilt (None if never),
    and the totals of the two live counters in the period (they only ever grow)."""
    rows = _rows(
        f"""SELECT (SELECT refreshed_at FROM {InsightsRefresh._meta.db_table} ORDER BY id LIMIT 1),
                   (SELECT coalesce(sum(count), 0) FROM {STARTS} WHERE {IN_PERIOD}),
                   (SELECT coalesce(sum(count), 0) FROM {URGENT} WHERE {IN_PERIOD})""",
        _params(period),
    )
    return rows[0]


# -- Bookings per week, by how they came -----------------------------------------------------


@dataclass
class SourceWeek:
    week: date
    counts: list[int]  # in Appointment.Source order

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def any_hidden(self) -> bool:
        return any(Small(count).hidden for count in self.counts)

    @property
    def cells(self) -> list[Small]:
        return [Small(count) for count in self.counts]

    @property
    def shown_total(self) -> str:
        # Beside a hidden cell, the total would let it be worked out from the others.
        return HIDDEN_TOTAL_TEXT if self.any_hidden else str(self.total)

    def shown_or_none(self, index: int) -> int | None:
        """For the chart: the count, or None (no bar) when it is hidden."""
        count = self.counts[index]
        return None if Small(count).hidden else count


def bookings_by_source(period: Period) -> list[SourceWeek]:
    """Bookings made in each week (by when they were made, cancelled ones too), per Appointment.Source."""
    sources = list(Appointment.Source.values)
    filters = ", ".join(f"coalesce(sum(count) FILTER (WHERE source = %(source_{i})s), 0)" for i in range(len(sources)))
    rows = _rows(
        f"SELECT {WEEK} AS week, {filters} FROM {BOOKING_DAYS} WHERE {IN_PERIOD} GROUP BY week",
        _params(period) | {f"source_{i}": source for i, source in enumerate(sources)},
    )
    by_week = {row[0]: [int(count) for count in row[1:]] for row in rows}
    return [SourceWeek(week, by_week.get(week, [0] * len(sources))) for week in period.weeks]


# -- Articles --------------------------------------------------------------------------------


@dataclass
class ArticleRow:
    title: str
    starts: Small | None  # None: bookings with no article (nothing to start from)
    booked: Small

    @property
    def rate(self) -> str:
        """Booked as a share of starts; not shown when either count is hidden (it would give it away)."""
        if self.starts is None or not self.starts.value:
            return "-"
        if self.starts.hidden or self.booked.hidden:
            return SMALL_NUMBER_TEXT
        return f"{round(100 * self.booked.value / self.starts.value)}%"


def articles(period: Period) -> list[ArticleRow]:
    """Per article: safety-check pages opened from its link, and bookings that came from it; then no article.

    One query: the starts and the bookings are summed separately, then joined by article.
    """
    rows = _rows(
        f"""
        WITH starts AS (
            SELECT article_id, sum(count) AS n FROM {STARTS} WHERE {IN_PERIOD} GROUP BY article_id
        ), booked AS (
            SELECT article_id, sum(count) AS n FROM {BOOKING_DAYS} WHERE {IN_PERIOD} GROUP BY article_id
        )
        SELECT coalesce(starts.article_id, booked.article_id) AS article_id, article.title,
               coalesce(starts.n, 0), coalesce(booked.n, 0)
        FROM starts FULL JOIN booked ON starts.article_id = booked.article_id
        LEFT JOIN {ARTICLE} article ON article.id = coalesce(starts.article_id, booked.article_id)
        """,
        _params(period),
    )
    by_article = [
        ArticleRow(title, Small(int(starts)), Small(int(booked)))
        for article_id, title, starts, booked in rows
        if article_id
    ]
    by_article.sort(key=lambda row: (-row.booked.value, -row.starts.value, row.title))
    without = int(sum(booked for article_id, _title, _starts, booked in rows if article_id is None))
    return [*by_article, ArticleRow("No article", None, Small(without))]


# -- The diary -------------------------------------------------------------------------------


@dataclass
class DiaryWeek:
    week: date
    offered: float = 0.0
    booked: float = 0.0
    blocked: float = 0.0

    @property
    def free(self) -> float:
        return self.offered - self.booked

    @property
    def utilisation(self) -> str:
        return f"{round(100 * self.booked / self.offered)}%" if self.offered else "-"


@dataclass
class DiaryRow:
    practitioner: str
    weeks: list[DiaryWeek]
    bookings_for_median: int = 0
    median_days: float | None = None
    total: DiaryWeek = field(init=False)

    def __post_init__(self):
        self.total = DiaryWeek(
            self.weeks[0].week if self.weeks else date.min,
            sum(week.offered for week in self.weeks),
            sum(week.booked for week in self.weeks),
            sum(week.blocked for week in self.weeks),
        )

    @property
    def median(self) -> str:
        if self.bookings_for_median == 0:
            return "-"
        if self.bookings_for_median < 5:
            return f"{SMALL_NUMBER_TEXT} bookings"
        return f"{self.median_days:.1f}"


def diary(period: Period) -> list[DiaryRow]:
    """Per practitioner and week: hours offered (open slots), booked (open slots with a live appointment),
    blocked by reception, and free (offered but not booked). Retired slots are no longer offered."""
    rows = _rows(
        f"""
        SELECT practitioner_id, {WEEK} AS week, sum(offered_seconds) / 3600.0::float8,
               sum(booked_seconds) / 3600.0::float8, sum(blocked_seconds) / 3600.0::float8
        FROM {DIARY_DAYS} WHERE {IN_PERIOD} GROUP BY practitioner_id, week
        """,
        _params(period),
    )
    hours = {(practitioner, week): (float(o), float(b), float(x)) for practitioner, week, o, b, x in rows}
    medians = _median_days_to_appointment(period)
    result = []
    for practitioner in _practitioners_with({practitioner for practitioner, _ in hours} | set(medians)):
        weeks = [DiaryWeek(week, *hours.get((practitioner.pk, week), (0.0, 0.0, 0.0))) for week in period.weeks]
        result.append(DiaryRow(practitioner.full_name, weeks, *medians.get(practitioner.pk, (0, None))))
    return result


def _median_days_to_appointment(period: Period) -> dict[int, tuple[int, float]]:
    """Per practitioner, for bookings made in the period and not cancelled: how many, and the median of the
    days (calendar days, in the clinic's zone) from booking to the appointment, from the histogram."""
    rows = _rows(
        f"SELECT practitioner_id, lead_days, sum(count) FROM {LEAD_DAYS} WHERE {IN_PERIOD} "
        "GROUP BY practitioner_id, lead_days ORDER BY practitioner_id, lead_days",
        _params(period),
    )
    histograms: dict[int, list[tuple[int, int]]] = {}
    for practitioner, lead, count in rows:
        histograms.setdefault(practitioner, []).append((lead, int(count)))
    return {practitioner: _median(histogram) for practitioner, histogram in histograms.items()}


def _median(histogram: list[tuple[int, int]]) -> tuple[int, float]:
    """(how many, median) of values given as (value, count) in increasing order: the middle value, or the
    mean of the two middle ones."""
    total = sum(count for _value, count in histogram)
    middle = []
    seen = 0
    for value, count in histogram:
        for position in {(total - 1) // 2, total // 2}:
            if seen <= position < seen + count:
                middle.append(value)
        seen += count
    if len(middle) == 1:
        middle *= 2
    return total, sum(middle) / 2


def _practitioners_with(ids: set[int]) -> list[Practitioner]:
    if not ids:
        return []
    return list(Practitioner.objects.filter(pk__in=ids).order_by("list_order", "display_name", "pk"))


# -- Attendance ------------------------------------------------------------------------------

ATTENDANCE_COLUMNS = [
    ("completed", "Completed"),
    ("no_show", "Did not attend"),
    ("cancelled_by_patient", "Cancelled by the patient"),
    ("cancelled_by_clinic", "Cancelled by the clinic"),
    ("not_recorded", "Booked or arrived (not recorded yet)"),
]


@dataclass
class AttendanceWeek:
    week: date
    total: int
    counts: list[int]  # in ATTENDANCE_COLUMNS order

    @property
    def any_hidden(self) -> bool:
        return any(Small(count).hidden for count in self.counts)

    @property
    def shown_total(self) -> str:
        # Beside a hidden cell, the total and the rates would let it be worked out from the others.
        return HIDDEN_TOTAL_TEXT if self.any_hidden else str(self.total)

    @property
    def cells(self) -> list[tuple[Small, str]]:
        """Each column as (count, rate); no rates in a row with a hidden cell."""
        cells = []
        for count in self.counts:
            if self.any_hidden:
                rate = ""
            elif self.total:
                rate = f"{round(100 * count / self.total)}%"
            else:
                rate = "-"
            cells.append((Small(count), rate))
        return cells

    def rate_or_none(self, index: int) -> float | None:
        """For the chart: the share in percent, or None (no bar) in a row with a hidden cell or no appointments."""
        if not self.total or self.any_hidden:
            return None
        return 100 * self.counts[index] / self.total


def attendance(period: Period) -> list[AttendanceWeek]:
    """Appointments whose time fell in each week, by what became of them. Cancelled by the patient: the
    cancellation event has no staff actor (bookings.services records actor_label "patient")."""
    outcomes = [key for key, _label in ATTENDANCE_COLUMNS]
    columns = ", ".join(
        f"coalesce(sum(count) FILTER (WHERE outcome = %(outcome_{i})s), 0)" for i in range(len(outcomes))
    )
    rows = _rows(
        f"SELECT {WEEK} AS week, sum(count), {columns} FROM {ATTENDANCE_DAYS} WHERE {IN_PERIOD} GROUP BY week",
        _params(period) | {f"outcome_{i}": outcome for i, outcome in enumerate(outcomes)},
    )
    by_week = {row[0]: [int(count) for count in row[1:]] for row in rows}
    empty = (0,) * (1 + len(ATTENDANCE_COLUMNS))
    return [
        AttendanceWeek(week, by_week.get(week, empty)[0], list(by_week.get(week, empty)[1:])) for week in period.weeks
    ]


# -- Clinical safety -------------------------------------------------------------------------


def urgent_care(period: Period) -> list[tuple[date, Small]]:
    """People the red-flag check sent to urgent care, per week (online and reception's phone bookings)."""
    rows = _rows(
        f"SELECT {WEEK} AS week, sum(count) FROM {URGENT} WHERE {IN_PERIOD} GROUP BY week",
        _params(period),
    )
    by_week = {week: int(count) for week, count in rows}
    return [(week, Small(by_week.get(week, 0))) for week in period.weeks]
