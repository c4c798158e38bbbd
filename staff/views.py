"""Reception's calendar and the practitioners' own pages.

Access: every view here is wrapped in `reception_required` or `practitioner_required` (sign-in,
then the group, else 403) and sends no-store. Objects are fetched through the small
`_..._for_...` helpers below, which return the object for this user or raise 404.
Writes go through bookings/services.py (appointments, slots) or bookings/schedule.py's
`schedule_change_apply` (working hours, time off, closures), and only ever on POST.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection, models
from django.db.models import F, Func, IntegerField, Lookup, OuterRef, Prefetch, Q, Subquery
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from django.http import Http404, HttpResponse, JsonResponse, QueryDict
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import escape, format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from bookings.calendar import practitioner_feed_ics
from bookings.forms import MoveForm, parse_database_id
from bookings.models import (
    MANAGER_GROUP,
    OPEN_ENTRY_STATUSES,
    PRACTITIONER_GROUP,
    RECEPTION_GROUP,
    Appointment,
    CallbackRequest,
    OutboundMessage,
    Practitioner,
    Slot,
    TimeOff,
    WaitingListEntry,
    WaitingListOffer,
    WorkingHours,
    hash_token,
    part_of_day,
)
from bookings.privacy import (
    patient_data_access_record,
    patient_data_erase,
    patient_data_export,
    patient_records_for,
)
from bookings.schedule import GenerationReport, ScheduleRule, clinic_zone, local_midnight, schedule_change_apply
from bookings.services import (
    AlreadyWaiting,
    ChangeNotAllowed,
    OfferNotPossible,
    SlotUnavailable,
    appointment_book,
    appointment_cancel,
    appointment_move,
    appointment_set_status,
    insights_refresh,
    practitioner_calendar_token_reset,
    slot_block,
    slot_unblock,
    urgent_care_count,
    waiting_list_join,
    waiting_list_leave,
    waiting_list_offer_by_hand,
)
from clinic.prepared import SAMPLE_IDS, PreparedQuery, sample_times
from clinic.privacy_notices import NOTICES, current_privacy_notice_version, privacy_notice, retention_periods
from staff import insights as insights_data
from staff.charts import bar_chart, chart_svg, html_table
from staff.forms import (
    BlockForm,
    DayForm,
    ErasureForm,
    ExportForm,
    InsightsPeriodForm,
    OfferByHandForm,
    PhoneBookingForm,
    SearchForm,
    StaffCancelForm,
    StatusForm,
    TimeOffForm,
    WaitingListCallerForm,
    WorkingHoursFormSet,
)


@never_cache
@login_required
def staff_home(request):
    """Reception lands on the day view and a practitioner on their day; anyone else sees what they may open."""
    groups = set(request.user.groups.values_list("name", flat=True))
    is_reception = RECEPTION_GROUP in groups or request.user.is_superuser
    is_practitioner = PRACTITIONER_GROUP in groups and Practitioner.objects.filter(user=request.user).exists()
    is_manager = MANAGER_GROUP in groups or request.user.is_superuser
    # Someone with one role lands on its page; a clinic manager sees the list (Insights is on it).
    if is_reception and not is_practitioner and not is_manager:
        return redirect("reception_day")
    if is_practitioner and not is_reception and not is_manager:
        return redirect("practitioner_day")
    return render(
        request,
        "staff/home.html",
        {
            "is_reception": is_reception,
            "is_practitioner": is_practitioner,
            "practitioner_without_record": PRACTITIONER_GROUP in groups and not is_practitioner,
            "is_manager": is_manager,
        },
    )


# The slots that generation reported as clashing with bookings, shown once after the redirect.
SCHEDULE_CONFLICTS = "schedule_conflicts"
# Appointment.attendance_can_be_recorded, in reception's words.
ATTENDANCE_NOT_YET = (
    "Not yet: arrived can be recorded from 30 minutes before the start, completed and did not attend from the start."
)
# A new calendar-feed URL, shown once after the redirect (only its hash is stored).
NEW_CALENDAR_FEED_URL = "new_calendar_feed_url"


# -- Access -------------------------------------------------------------------------------


def _in_group(user, group: str) -> bool:
    return user.is_superuser or user.groups.filter(name=group).exists()


def _group_required(group: str):
    """Sign-in (else the login page), then membership of `group` (else 403); never cached."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if not _in_group(request.user, group):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return never_cache(login_required(wrapper))

    return decorator


reception_required = _group_required(RECEPTION_GROUP)
practitioner_required = _group_required(PRACTITIONER_GROUP)


def _record_access(request, *, appointments=(), callbacks=(), waiting_list_entries=()) -> None:
    """Every page here that shows patients' details says so once per view (bookings.privacy): who, when,
    which page, which records, from where. tests/staff/test_patient_data_access_log.py walks every page."""
    patient_data_access_record(
        request,
        page=request.resolver_match.url_name,
        appointments=appointments,
        callbacks=callbacks,
        waiting_list_entries=waiting_list_entries,
    )


def _practitioner_for_user(user) -> Practitioner:
    """The practitioner record linked to this account, or 404 (a superuser need not have one)."""
    return get_object_or_404(Practitioner, user=user)


def _appointment_for_practitioner(user, pk) -> Appointment:
    """One of this practitioner's own appointments, or 404: other people's are not theirs to see."""
    return get_object_or_404(
        Appointment.objects.select_related("slot__practitioner", "source_article"),
        pk=pk,
        slot__practitioner__user=user,
    )


def _appointment_for_reception(pk) -> Appointment:
    return get_object_or_404(Appointment.objects.select_related("slot__practitioner", "source_article"), pk=pk)


def _slot_for_reception(pk) -> Slot:
    return get_object_or_404(Slot.objects.select_related("practitioner", "blocked_by"), pk=pk)


# -- Time helpers -------------------------------------------------------------------------


def _today(now: datetime) -> date:
    return now.astimezone(clinic_zone()).date()


def _chosen_day(request, now: datetime) -> date:
    form = DayForm(request.GET)
    if form.is_valid() and form.cleaned_data["date"]:
        return form.cleaned_data["date"]
    return _today(now)


def _day_url(day: date) -> str:
    return f"{reverse('reception_day')}?date={day.isoformat()}"


def _with_local_start(slots):
    zone = clinic_zone()
    for slot in slots:
        slot.local_start = slot.starts_at.astimezone(zone)
    return slots


# -- The calendar grid --------------------------------------------------------------------


@dataclass
class SlotCell:
    slot: Slot
    # open, booked, blocked, past or inactive (the practitioner has left)
    state: str
    appointment: Appointment | None = None
    # Booked, still ahead, and no longer in the hours or in time off: reception must move or cancel it.
    no_longer_fits: bool = False
    # The "Arrived" button shows only when the service would accept it (Appointment.attendance_can_be_recorded).
    arrival_open: bool = False
    # Its links and forms (CellUrls): booked, its page and status form; blocked, unblock; open, book and block.
    appointment_url: str = ""
    status_url: str = ""
    unblock_url: str = ""
    book_url: str = ""
    block_url: str = ""


class CellUrls:
    """The calendar cells' URLs, from one reverse() per kind for the whole grid.

    A full day is 270 cells: a `{% url %}` per link in the cell template was a quarter of the page's time.
    """

    PLACEHOLDER = 2**31 - 1

    def __init__(self):
        self.parts = {
            name: reverse(name, args=[self.PLACEHOLDER]).split(str(self.PLACEHOLDER))
            for name in ("reception_appointment", "reception_appointment_status", "reception_slot_unblock",
                         "reception_slot_block")
        }  # fmt: skip
        self.book = reverse("reception_book")

    def of(self, name: str, pk: int) -> str:
        prefix, suffix = self.parts[name]
        return f"{prefix}{pk}{suffix}"


# The calendar's slots: open or blocked (every state but retired), written as an OR so that PostgreSQL reads a
# day from the two partial indexes on start times (open: slot_open_starts_at_idx, which the patients' availability
# reads alone; blocked: slot_blocked_starts_at_idx) rather than from every slot of the diary.
_ON_THE_CALENDAR = Q(state=Slot.State.OPEN) | Q(state=Slot.State.BLOCKED)


def _slots_in(start: datetime, end: datetime):
    """The calendar's slots of a time window: every state but retired."""
    return Slot.objects.filter(_ON_THE_CALENDAR, starts_at__gte=start, starts_at__lt=end)


# What the grid shows of a slot and of its appointment (staff.views._grid_html, SlotCell, ScheduleRule.fits,
# Appointment.burst_label and patient_name): a full day is 270 of each, and the appointment's other columns
# (its safety answers' JSON, its keys, its contact details) were decoded into every one of them for nothing.
_GRID_SLOT_FIELDS = ("id", "practitioner_id", "starts_at", "ends_at", "state", "blocked_reason")
_GRID_APPOINTMENT_FIELDS = (
    "id", "slot_id", "status", "source", "first_name", "last_name", "anonymised_at", "client_key"
)  # fmt: skip


def _in_model_order(model, names: tuple[str, ...]) -> tuple[str, ...]:
    """NAMES in the order of the model's fields: Model.from_db (and _loaded) take the values in that order."""
    return tuple(f.attname for f in model._meta.concrete_fields if f.attname in names)


_GRID_SLOT_COLUMNS = _in_model_order(Slot, _GRID_SLOT_FIELDS)
_GRID_APPOINTMENT_COLUMNS = _in_model_order(Appointment, _GRID_APPOINTMENT_FIELDS)
_GRID_SLOT_ID = _GRID_SLOT_COLUMNS.index("id")
_GRID_SLOT_PRACTITIONER = _GRID_SLOT_COLUMNS.index("practitioner_id")
_GRID_APPOINTMENT_ANNOTATIONS = ("upcoming_for_patient", "bookings_from_same_place", "bookings_with_same_note")


def _held_until(*, now: datetime) -> Subquery:
    """Until when a waiting-list offer holds the outer query's slot (None: not held), in the same statement."""
    holding = WaitingListOffer.objects.holding(now=now).filter(slot=OuterRef("pk")).order_by("-held_until")
    return Subquery(holding.values("held_until")[:1])


def _grid_slot_rows(*, start: datetime, end: datetime, now: datetime, practitioner_id: int | None = None):
    """The calendar's slots of a time window (of one practitioner, or of all), each with until when a
    waiting-list offer holds it (a correlated subquery, no query of its own): _GRID_SLOT_COLUMNS, held_until."""
    slots = _slots_in(start, end)
    if practitioner_id is not None:
        slots = slots.filter(practitioner_id=practitioner_id)
    return (
        slots.annotate(held_until=_held_until(now=now))
        .order_by("starts_at")
        .values_list(*_GRID_SLOT_COLUMNS, "held_until")
    )


class _EqualsAny(Lookup):
    """`column = ANY(%s)`: a list of values as one parameter (an array), so the statement is the same however
    many there are (`__in` writes a placeholder for each)."""

    lookup_name = "equals_any"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]


def _grid_appointment_rows(*, slot_ids: list[int], start: datetime, end: datetime, now: datetime):
    """The live appointments on those slots: _GRID_APPOINTMENT_COLUMNS, then _GRID_APPOINTMENT_ANNOTATIONS.

    By the ids of the slots just read (one array, `slot_id = ANY(...)`) as well as by the window: by the window
    alone, the planner expects every practitioner's slots of a day (about 1,000 for 50) and reads every
    appointment ever made to join them (13 ms on the bench copy, and growing with the history).
    """
    return (
        Appointment.objects.live()
        .filter(_EqualsAny(F("slot_id"), slot_ids))
        .filter(slot__starts_at__gte=start, slot__starts_at__lt=end)
        # Only on the slots shown (a live appointment's slot is never retired): the same indexes find the day.
        .filter(Q(slot__state=Slot.State.OPEN) | Q(slot__state=Slot.State.BLOCKED))
        # Looked up by slot: the model's order (by the slot's time) would be a sort for nothing.
        .order_by()
        .with_upcoming_for_patient(now=now)
        .with_burst_counts()
        .values_list(*_GRID_APPOINTMENT_COLUMNS, *_GRID_APPOINTMENT_ANNOTATIONS)
    )


# Built by the ORM once per process (clinic.prepared): building and compiling the two statements, with their
# correlated subqueries, cost about 4 ms of CPU on every calendar page. Every value is an argument or a constant.
_WINDOW_SAMPLES = {"start": sample_times(0), "end": sample_times(1), "now": sample_times(2)}
_GRID_SLOTS_OF_EVERYONE = PreparedQuery(_grid_slot_rows, samples=_WINDOW_SAMPLES)
_GRID_SLOTS_OF_ONE = PreparedQuery(_grid_slot_rows, samples={**_WINDOW_SAMPLES, "practitioner_id": SAMPLE_IDS})
_GRID_APPOINTMENTS = PreparedQuery(
    _grid_appointment_rows,
    samples={**_WINDOW_SAMPLES, "slot_ids": ([SAMPLE_IDS[0]], [SAMPLE_IDS[1], SAMPLE_IDS[0]])},
)


def _loaded(model, db: str, columns: tuple[str, ...], values) -> models.Model:
    """The instance Model.from_db(DB, COLUMNS, VALUES) makes (those columns loaded, the others deferred), without
    Model.__init__ visiting every field of the model for each of a grid's 540 rows (2.9 ms of CPU a day view, this
    0.3 ms). A model whose instances someone listens for (pre_init, post_init) is made by from_db."""
    if pre_init.has_listeners(model) or post_init.has_listeners(model):
        return model.from_db(db, columns, values)
    instance = model.__new__(model)
    instance._state = ModelState()
    instance._state.adding = False
    instance._state.db = db
    instance.__dict__.update(zip(columns, values, strict=True))
    return instance


def _calendar_slots(
    *, start: datetime, end: datetime, practitioners: dict[int, Practitioner], only_one: bool
) -> list[Slot]:
    """The slots of a time window with their live appointment, and whether each booked one still
    fits the schedule: four queries whatever the size (slots, appointments, hours, time off).

    PRACTITIONERS (by id) are every practitioner whose slots are wanted: each slot gets its practitioner
    from them rather than a copy of its own per row. ONLY_ONE: the one practitioner's slots are read (the week
    view); otherwise every slot of the window, since PRACTITIONERS holds everyone with a slot in it (the day
    view's list), and a slot of someone not in it (added since that list was read) is left out.
    The appointments are fetched by the slots' ids in one statement rather than by prefetch, so that an
    empty day runs the same queries as a full one. "No longer fits" is worked out from the
    schedule rule (bookings.schedule.ScheduleRule), not stored: it ends when the appointment is
    moved or cancelled, or when the hours or time off change back.
    """
    now = timezone.now()
    window = {"start": start, "end": end, "now": now}
    if only_one:
        (window["practitioner_id"],) = practitioners
        slot_rows = _GRID_SLOTS_OF_ONE.rows(**window)
    else:
        slot_rows = _GRID_SLOTS_OF_EVERYONE.rows(**window)
    appointment_rows = _GRID_APPOINTMENTS.rows(
        slot_ids=[row[_GRID_SLOT_ID] for row in slot_rows], start=start, end=end, now=now
    )
    # The instances the ORM would make of these columns (Model.from_db), without building the statements.
    db = connection.alias
    by_slot = {}
    columns = len(_GRID_APPOINTMENT_COLUMNS)
    for row in appointment_rows:
        appointment = _loaded(Appointment, db, _GRID_APPOINTMENT_COLUMNS, row[:columns])
        (
            appointment.upcoming_for_patient,
            appointment.bookings_from_same_place,
            appointment.bookings_with_same_note,
        ) = row[columns:]
        by_slot[appointment.slot_id] = appointment
    rule = ScheduleRule.load(start=start, end=end, practitioner_ids=list(practitioners))
    zone = clinic_zone()
    # As select_related would (the field's cache, as the practitioner_id is already the row's): the descriptor's
    # checks cost more than the rest of the loop, on 270 slots.
    practitioner_of = Slot.practitioner.field
    slots = []
    for row in slot_rows:
        practitioner = practitioners.get(row[_GRID_SLOT_PRACTITIONER])
        if practitioner is None:
            continue
        slot = _loaded(Slot, db, _GRID_SLOT_COLUMNS, row[:-1])
        slot.held_until = row[-1]
        slot.local_start = slot.starts_at.astimezone(zone)
        practitioner_of.set_cached_value(slot, practitioner)
        slot.live_appointment = by_slot.get(slot.pk)
        slot.no_longer_fits = slot.live_appointment is not None and slot.starts_at > now and not rule.fits(slot)
        slots.append(slot)
    return slots


def _cell(slot: Slot, *, now: datetime, urls: CellUrls) -> SlotCell:
    if slot.live_appointment is not None:
        appointment = slot.live_appointment
        # The slot row is at hand (its id is the appointment's slot_id): the rule reads it without a query.
        Appointment.slot.field.set_cached_value(appointment, slot)
        return SlotCell(
            slot,
            "booked",
            appointment,
            no_longer_fits=slot.no_longer_fits,
            arrival_open=appointment.attendance_can_be_recorded(now=now),
            appointment_url=urls.of("reception_appointment", appointment.pk),
            status_url=urls.of("reception_appointment_status", appointment.pk),
        )
    if slot.state == Slot.State.BLOCKED:
        return SlotCell(slot, "blocked", unblock_url=urls.of("reception_slot_unblock", slot.pk))
    if slot.starts_at <= now:
        return SlotCell(slot, "past")
    if not slot.practitioner.is_active:
        # Left the clinic: nobody may be booked with them (the service refuses it too).
        return SlotCell(slot, "inactive")
    return SlotCell(
        slot, "open", book_url=f"{urls.book}?slot={slot.pk}", block_url=urls.of("reception_slot_block", slot.pk)
    )


def _grid(slots: list[Slot], column_keys: list, column_of, *, now: datetime) -> list[tuple[time, list]]:
    """Rows by local start time, one cell (or None) per column."""
    index = {key: position for position, key in enumerate(column_keys)}
    urls = CellUrls()
    rows: dict[time, list] = {}
    for slot in slots:
        position = index.get(column_of(slot))
        if position is None:
            continue
        row = rows.setdefault(slot.local_start.time(), [None] * len(column_keys))
        row[position] = _cell(slot, now=now, urls=urls)
    return sorted(rows.items())


# The grid's cells are printed from Python rather than through a template included 270 times (about
# 4,600 {% if %} evaluations made most of the day view's time). The markup is the one the cell template
# had, whitespace aside (tests/staff/test_staff_calendar_markup.py).
_STATUS_BADGE = {
    Appointment.Status.ARRIVED: "success",
    Appointment.Status.NO_SHOW: "danger",
    Appointment.Status.COMPLETED: "secondary",
}
_BURST_TITLE = (
    "Booked online within an hour of other bookings from the same internet address or with the same note:"
    " check it is genuine"
)


def _grid_html(rows: list[tuple[time, list]], *, request, now: datetime, arrival_buttons: bool) -> str:
    """The calendar grid's <tbody>: a row per start time, a cell per column (a SlotCell, or None).

    ARRIVAL_BUTTONS: the day view of today offers "Arrived" on the cells that accept it (the week view never).
    Every value from the database is escaped; the CSRF token is read once, and only if a form is shown.
    """
    status_labels = {value: escape(label) for value, label in Appointment.Status.choices}
    names: dict[int, str] = {}
    day_labels: dict[date, str] = {}
    token = ""
    next_path = escape(request.get_full_path())

    def csrf_input() -> str:
        nonlocal token
        if not token:
            token = escape(get_token(request))
        return f'<input type="hidden" name="csrfmiddlewaretoken" value="{token}">'

    def practitioner_name(slot: Slot) -> str:
        name = names.get(slot.practitioner_id)
        if name is None:
            name = names[slot.practitioner_id] = escape(slot.practitioner.full_name)
        return name

    def cell_html(cell: SlotCell | None) -> str:
        if cell is None:
            return '<td class="bg-body-tertiary"><span class="visually-hidden">No slot</span></td>'
        slot = cell.slot
        if cell.state == "booked":
            appointment = cell.appointment
            patient = escape(appointment.patient_name)
            parts = [
                f'<td class="table-primary slot-booked{" slot-no-longer-fits" if cell.no_longer_fits else ""}">\n'
                f'<a class="fw-semibold" href="{escape(cell.appointment_url)}">{patient}</a>\n'
            ]
            if cell.no_longer_fits:
                parts.append(
                    '<br><span class="badge text-bg-danger">Outside hours or in time off: move or cancel</span>'
                )
            parts.append(
                f'\n<br><span class="badge text-bg-{_STATUS_BADGE.get(appointment.status, "primary")}">'
                f"{status_labels[appointment.status]}</span>\n"
            )
            if appointment.source == Appointment.Source.PHONE:
                parts.append('<span class="badge text-bg-light border">Phone</span>')
            parts.append("\n")
            burst_label = appointment.burst_label
            if burst_label:
                parts.append(
                    f'<span class="badge text-bg-danger" title="{_BURST_TITLE}">Burst: {escape(burst_label)}</span>'
                )
            parts.append("\n")
            if (appointment.upcoming_for_patient or 0) > 1:
                parts.append(
                    '<span class="badge text-bg-warning" title="Same e-mail or phone as another upcoming booking">'
                    "2+ upcoming</span>"
                )
            parts.append("\n")
            if arrival_buttons and cell.arrival_open and appointment.status == Appointment.Status.BOOKED:
                parts.append(
                    f'<form method="post" action="{escape(cell.status_url)}" class="d-inline">{csrf_input()}\n'
                    '<input type="hidden" name="status" value="arrived">'
                    f'<input type="hidden" name="next" value="{next_path}">\n'
                    '<button type="submit" class="btn btn-link btn-sm p-0 align-baseline">Arrived'
                    f'<span class="visually-hidden">: {patient}</span></button>\n</form>\n'
                )
            parts.append("</td>")
            return "".join(parts)
        if cell.state == "blocked":
            reason = f": {escape(slot.blocked_reason)}" if slot.blocked_reason else ""
            unblock = ""
            if slot.starts_at > now:
                unblock = (
                    f'\n<form method="post" action="{escape(cell.unblock_url)}" class="d-inline">{csrf_input()}\n'
                    '<button type="submit" class="btn btn-link btn-sm p-0 align-baseline">Unblock'
                    f'<span class="visually-hidden"> {slot.local_start:%H:%M} {practitioner_name(slot)}</span>'
                    "</button>\n</form>"
                )
            blocked = f'<span class="fw-semibold">Blocked</span>{reason}{unblock}'
            return f'<td class="table-warning slot-blocked">\n{blocked}\n</td>'
        if cell.state == "past":
            return '<td class="text-body-secondary slot-past">Past</td>'
        if cell.state == "inactive":
            return '<td class="text-body-secondary slot-inactive">Not offered (practitioner inactive)</td>'
        held = ""
        if slot.held_until:
            held = (
                '<span class="badge text-bg-info">Held for a waiting-list offer until '
                f"{timezone.localtime(slot.held_until):%H:%M}</span><br>"
            )
        local_start = slot.local_start
        day_label = day_labels.get(local_start.date())
        if day_label is None:
            day_label = day_labels[local_start.date()] = escape(date_format(local_start, "D j M"))
        name = practitioner_name(slot)
        return (
            f'<td class="slot-open{" slot-held" if slot.held_until else ""}">\n{held}\n'
            f'<a class="btn btn-sm btn-outline-success" href="{escape(cell.book_url)}">Book'
            f'<span class="visually-hidden"> {day_label} {local_start:%H:%M} with {name}</span></a>\n'
            f'<a class="btn btn-sm btn-link text-body-secondary" href="{escape(cell.block_url)}">Block'
            f'<span class="visually-hidden"> {local_start:%H:%M} {name}</span></a>\n</td>'
        )

    html = ["<tbody>\n"]
    for start, cells in rows:
        html.append(f'<tr>\n<th scope="row">{start:%H:%M}</th>\n')
        html.extend(cell_html(cell) + "\n" for cell in cells)
        html.append("</tr>\n")
    html.append("</tbody>")
    return mark_safe("".join(html))  # noqa: S308 - every value from the database above is escaped


# The day view lists the oldest undelivered e-mails, and how many more there are: while no worker runs every
# booking's confirmation becomes overdue, and a list of hundreds helped nobody while it made the page that
# reception keeps open cost a model instance and a line of template per message.
UNDELIVERED_EMAILS_SHOWN = 20


# What the panel shows of each message and of what it is about (bookings/_failed_messages.html), the columns
# needs_attention's select_related and only() read: (the path from the message, model, columns).
_UNDELIVERED_EMAIL_PARTS = tuple((path, model, _in_model_order(model, columns)) for path, model, columns in (
    ("", OutboundMessage, ("id", "kind", "appointment_id", "waiting_list_offer_id", "slot_id", "status", "attempts",
                           "next_attempt_at", "last_error")),
    ("appointment", Appointment, ("id", "first_name", "last_name")),
    ("waiting_list_offer", WaitingListOffer, ("id", "entry_id")),
    ("waiting_list_offer__entry", WaitingListEntry, ("id", "first_name", "last_name")),
    ("slot", Slot, ("id", "practitioner_id", "starts_at")),
    ("slot__practitioner", Practitioner, ("id", "title", "display_name")),
))  # fmt: skip


def _undelivered_email_rows(*, overdue_before: datetime):
    """The oldest UNDELIVERED_EMAILS_SHOWN e-mails needing attention (needs_attention's rule), each with how many do.

    The count is a subquery PostgreSQL runs once (through outbound_attention_idx, or a scan where nearly every
    row is unsent, as in the bench), not a window over the list: a window needs every matching row joined to its
    appointment and slot before the first twenty can be cut (26 ms with a backlog of 3,400 on the bench copy),
    the subquery lets the twenty be read in order and stop. The rule is given the time its overdue cutoff is
    counted back from, so that the cutoff is the argument itself (clinic.prepared takes no value derived from one).
    """
    needing_attention = OutboundMessage.objects.needs_attention(now=overdue_before + OutboundMessage.OVERDUE_AFTER)
    count = needing_attention.order_by().values(count=Func("pk", function="COUNT", output_field=IntegerField()))
    columns = [
        f"{path}__{column}" if path else column for path, _, names in _UNDELIVERED_EMAIL_PARTS for column in names
    ]
    return needing_attention.annotate(needing_attention=Subquery(count)).values_list(*columns, "needing_attention")[
        :UNDELIVERED_EMAILS_SHOWN
    ]


# Built by the ORM once per process (clinic.prepared): its joins, filters and subquery cost about 2 ms of CPU.
_UNDELIVERED_EMAILS = PreparedQuery(_undelivered_email_rows, samples={"overdue_before": sample_times(0)})


def _undelivered_emails_to_show(now: datetime) -> tuple[list[OutboundMessage], int]:
    """The oldest UNDELIVERED_EMAILS_SHOWN e-mails needing attention, and how many others do: one query.

    Each message comes with its appointment or its waiting-list offer and entry, and its slot and practitioner, as
    select_related would give them (the related instances in the fields' caches, None where there is none).
    """
    db = connection.alias
    shown = []
    total = 0
    for row in _UNDELIVERED_EMAILS.rows(overdue_before=now - OutboundMessage.OVERDUE_AFTER):
        values = iter(row)
        parts = {}
        for path, model, columns in _UNDELIVERED_EMAIL_PARTS:
            part = [next(values) for _ in columns]
            parts[path] = _loaded(model, db, columns, part) if part[0] is not None else None
        total = next(values)
        message = parts[""]
        for path, holder, field in _UNDELIVERED_EMAIL_RELATIONS:
            if parts[holder] is not None:
                field.set_cached_value(parts[holder], parts[path])
        shown.append(message)
    return shown, (total - len(shown)) if shown else 0


# Where each related instance goes: (its path, the path of the instance holding it, the field).
_UNDELIVERED_EMAIL_RELATIONS = (
    ("appointment", "", OutboundMessage.appointment.field),
    ("waiting_list_offer", "", OutboundMessage.waiting_list_offer.field),
    ("waiting_list_offer__entry", "waiting_list_offer", WaitingListOffer.entry.field),
    ("slot", "", OutboundMessage.slot.field),
    ("slot__practitioner", "slot", Slot.practitioner.field),
)


_PRACTITIONER_COLUMNS = tuple(field.attname for field in Practitioner._meta.concrete_fields)


def _day_practitioner_rows(*, start: datetime, end: datetime):
    """The day view's columns: the listed practitioners, and any made inactive who still have slots that day."""
    return (
        Practitioner.objects.filter(Q(is_active=True) | Q(pk__in=_slots_in(start, end).values("practitioner_id")))
        .order_by("list_order", "display_name")
        .values_list(*_PRACTITIONER_COLUMNS)
    )


# Built by the ORM once per process (clinic.prepared), as the grid's reads are.
_DAY_PRACTITIONERS = PreparedQuery(_day_practitioner_rows, samples={"start": sample_times(0), "end": sample_times(1)})


@reception_required
def reception_day(request):
    """One column per practitioner, one row per start time.

    Queries: practitioners; the day's slots (with practitioner and blocker); the day's live
    appointments (each with its patient's count of upcoming consultations and the counts of online
    bookings made around it from the same place or with the same note, the burst flag); the working
    hours and the time off that day (which booked slots no longer fit); open call-back requests;
    undelivered e-mails. The same seven at any size.
    """
    now = timezone.now()
    day = _chosen_day(request, now)
    start, end = local_midnight(day), local_midnight(day + timedelta(days=1))
    # The listed practitioners, and any made inactive who still have slots that day (they keep a column).
    practitioners = [
        _loaded(Practitioner, connection.alias, _PRACTITIONER_COLUMNS, row)
        for row in _DAY_PRACTITIONERS.rows(start=start, end=end)
    ]
    slots = _calendar_slots(start=start, end=end, practitioners={p.pk: p for p in practitioners}, only_one=False)
    # The inactive ones after the listed, in the order of their first slot that day.
    first_slot = {}
    for slot in slots:
        first_slot.setdefault(slot.practitioner_id, slot.starts_at)
    practitioners = [p for p in practitioners if p.is_active] + sorted(
        (p for p in practitioners if not p.is_active and p.pk in first_slot), key=lambda p: first_slot[p.pk]
    )
    rows = _grid(slots, [p.pk for p in practitioners], lambda slot: slot.practitioner_id, now=now)
    failed_messages, failed_messages_not_shown = _undelivered_emails_to_show(now)
    # A failed e-mail is about an appointment, or (an offer) about a waiting-list entry: the list names either.
    _record_access(
        request,
        appointments=[slot.live_appointment for slot in slots if slot.live_appointment is not None]
        + [message.appointment_id for message in failed_messages if message.appointment_id is not None],
        waiting_list_entries=[
            message.waiting_list_offer.entry_id for message in failed_messages if message.waiting_list_offer_id
        ],
    )
    return render(
        request,
        "staff/day.html",
        {
            "day": day,
            "today": _today(now),
            "is_today": day == _today(now),
            "now": now,
            "previous_day": day - timedelta(days=1),
            "next_day": day + timedelta(days=1),
            "day_form": DayForm(initial={"date": day}),
            "practitioners": practitioners,
            "rows": rows,
            "grid_html": _grid_html(rows, request=request, now=now, arrival_buttons=day == _today(now)),
            "open_callbacks": CallbackRequest.objects.filter(done_at__isnull=True).count(),
            "failed_messages": failed_messages,
            "failed_messages_not_shown": failed_messages_not_shown,
        },
    )


@reception_required
def reception_week(request, practitioner_id):
    now = timezone.now()
    practitioner = get_object_or_404(Practitioner, pk=practitioner_id)
    day = _chosen_day(request, now)
    monday = day - timedelta(days=day.weekday())
    days = [monday + timedelta(days=offset) for offset in range(7)]
    slots = _calendar_slots(
        start=local_midnight(monday),
        end=local_midnight(monday + timedelta(days=7)),
        practitioners={practitioner.pk: practitioner},
        only_one=True,
    )
    rows = _grid(slots, days, lambda slot: slot.local_start.date(), now=now)
    _record_access(request, appointments=[slot.live_appointment for slot in slots if slot.live_appointment is not None])
    return render(
        request,
        "staff/week.html",
        {
            "practitioner": practitioner,
            "days": days,
            "rows": rows,
            "grid_html": _grid_html(rows, request=request, now=now, arrival_buttons=False),
            "today": _today(now),
            "now": now,
            "previous_week": monday - timedelta(days=7),
            "next_week": monday + timedelta(days=7),
            "day_form": DayForm(initial={"date": day}),
        },
    )


# -- Booking a caller ---------------------------------------------------------------------


@reception_required
def reception_next_free(request):
    """The soonest free times across all practitioners, for the caller who wants the first one."""
    slots = _with_local_start(list(Slot.objects.staff_bookable(now=timezone.now())[:20]))
    return render(request, "staff/next_free.html", {"slots": slots})


def _why_not_bookable(slot: Slot, now: datetime) -> str:
    """Why reception could not book SLOT, in reception's words (the service only says it was refused)."""
    if slot.starts_at <= now:
        return "That time has passed."
    if not slot.practitioner.is_active:
        return f"{slot.practitioner.full_name} no longer works at the clinic: nobody can be booked with them."
    if slot.state == Slot.State.BLOCKED:
        return "That slot has been blocked."
    if slot.state == Slot.State.RETIRED:
        return "That time is no longer in the working hours (or is in time off)."
    return "Sorry, that slot was just taken by someone else."


def _alternatives(*, now: datetime, around: datetime, limit: int = 6) -> list[Slot]:
    return _with_local_start(
        list(Slot.objects.staff_bookable(now=now).filter(starts_at__gte=around - timedelta(hours=1))[:limit])
    )


@reception_required
def reception_book(request):
    """Book a caller into a slot, through the same service (and constraint) as the online booking."""
    now = timezone.now()
    slot_id = parse_database_id(request.POST.get("slot") or request.GET.get("slot"))
    if slot_id is None:
        raise Http404
    slot = _slot_for_reception(slot_id)
    slot.local_start = slot.starts_at.astimezone(clinic_zone())
    form = PhoneBookingForm(request.POST or None, initial={"submission_key": PhoneBookingForm.new_submission_key()})
    context = {"form": form, "slot": slot}
    if request.method == "POST":
        valid = form.is_valid()
        if form.any_red_flag():
            # Nothing is booked and nothing kept: reception reads the urgent advice to the caller.
            urgent_care_count(now=now)
            context |= {"urgent": True}
            return render(request, "staff/book.html", context)
        if valid:
            try:
                result = appointment_book(
                    slot_id=slot.pk,
                    patient=form.patient_details(),
                    now=now,
                    safety_answers=form.recorded_answers(),
                    privacy_notice_version=form.privacy_notice_version,
                    submission_key=form.cleaned_data["submission_key"],
                    booked_by=request.user,
                )
            except SlotUnavailable:
                context |= {
                    "lost": True,
                    "lost_reason": _why_not_bookable(Slot.objects.select_related("practitioner").get(pk=slot.pk), now),
                    "alternatives": _alternatives(now=now, around=slot.starts_at),
                }
                return render(request, "staff/book.html", context, status=409)
            appointment = result.appointment
            if not result.replayed:
                messages.success(
                    request, f"Booked {appointment.patient_name} with {slot.practitioner.full_name} by phone."
                )
            return redirect("reception_appointment", pk=appointment.pk)
        return render(request, "staff/book.html", context, status=400)
    if not Slot.objects.staff_bookable(now=now).filter(pk=slot.pk).exists():
        context |= {"unavailable": True, "alternatives": _alternatives(now=now, around=slot.starts_at)}
    return render(request, "staff/book.html", context)


# -- Changing an appointment --------------------------------------------------------------


def _appointment_context(appointment: Appointment, **extra) -> dict:
    local_start = appointment.slot.starts_at.astimezone(clinic_zone())
    return {
        "appointment": appointment,
        "local_start": local_start,
        "events": list(appointment.events.all()),
        "status_form": StatusForm(),
        "cancel_form": StaffCancelForm(),
        # Only what may be recorded now: "back to booked" (a mistake) always, the others from their time.
        "status_choices": [
            (value, label)
            for value, label in StatusForm.STATUS_CHOICES
            if value == Appointment.Status.BOOKED
            or appointment.attendance_can_be_recorded(now=timezone.now(), status=value)
        ],
        "attendance_open": appointment.attendance_can_be_recorded(now=timezone.now()),
        "safety": (appointment.safety_answers or {}).get("answers", []),
        "several_upcoming": (
            Appointment.objects.with_upcoming_for_patient(now=timezone.now())
            .values_list("upcoming_for_patient", flat=True)
            .get(pk=appointment.pk)
            or 0
        )
        > 1,
        **extra,
    }


@reception_required
def reception_appointment(request, pk):
    appointment = _appointment_for_reception(pk)
    _record_access(request, appointments=[appointment])
    return render(request, "staff/appointment.html", _appointment_context(appointment))


@reception_required
@require_POST
def reception_appointment_status(request, pk):
    appointment = _appointment_for_reception(pk)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Please choose one of the statuses offered.")
        return redirect("reception_appointment", pk=pk)
    try:
        updated = appointment_set_status(
            appointment=appointment, status=form.cleaned_data["status"], now=timezone.now(), actor=request.user
        )
    except ChangeNotAllowed:
        if appointment.status == Appointment.Status.CANCELLED:
            messages.error(request, "A cancelled appointment keeps its status.")
        else:
            messages.error(request, ATTENDANCE_NOT_YET)
        return redirect("reception_appointment", pk=pk)
    messages.success(request, f"{updated.patient_name}: {updated.get_status_display()}.")
    # The day view's "Arrived" button comes back to the day; only ever to a page of this site.
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=False):
        return redirect(back)
    return redirect("reception_appointment", pk=pk)


@reception_required
@require_POST
def reception_appointment_cancel(request, pk):
    appointment = _appointment_for_reception(pk)
    form = StaffCancelForm(request.POST)
    if not form.is_valid():
        context = _appointment_context(appointment, cancel_form=form)
        _record_access(request, appointments=[appointment])
        return render(request, "staff/appointment.html", context, status=400)
    try:
        appointment_cancel(
            appointment=appointment,
            now=timezone.now(),
            reason=form.cleaned_data["reason"],
            actor=request.user,
            notify_patient=form.cleaned_data["notify_patient"],
        )
    except ChangeNotAllowed as refusal:
        if str(refusal) == "attendance recorded":
            messages.error(
                request,
                "This appointment is marked arrived, completed or did not attend, so it cannot be cancelled. "
                "If that was a mistake, mark it back to booked first.",
            )
        else:
            messages.error(request, "This appointment was already cancelled.")
        return redirect("reception_appointment", pk=pk)
    if not form.cleaned_data["notify_patient"]:
        told = "The patient will not be e-mailed."
    elif appointment.email:
        told = "The patient will be e-mailed."
    else:
        told = "There is no e-mail on file: please phone the patient (the number is on this page)."
    messages.success(request, f"Cancelled. {told}")
    return redirect("reception_appointment", pk=pk)


def _move_choices(*, now: datetime, day: date) -> list[tuple[Practitioner, list[Slot]]]:
    """The day's free times by practitioner, each with `held_until`: reception may move someone into a time a
    waiting-list offer holds, and the page says so, as the day view does (found by hand: a patient was moved into
    a time held for a waiter, who was then told someone else had taken it first)."""
    slots = _with_local_start(
        list(
            Slot.objects.staff_bookable(now=now)
            .filter(starts_at__gte=local_midnight(day), starts_at__lt=local_midnight(day + timedelta(days=1)))
            .annotate(held_until=_held_until(now=now))
        )
    )
    by_practitioner: dict[int, tuple[Practitioner, list[Slot]]] = {}
    for slot in slots:
        by_practitioner.setdefault(slot.practitioner_id, (slot.practitioner, []))[1].append(slot)
    return sorted(by_practitioner.values(), key=lambda entry: (entry[0].list_order, entry[0].display_name))


def _why_not_movable(appointment: Appointment) -> str:
    """Why reception cannot move APPOINTMENT (`Appointment.can_be_moved`), and what to do instead."""
    if appointment.status == Appointment.Status.CANCELLED:
        return (
            "This appointment is cancelled, so it cannot be moved. "
            "To see the patient at another time, book a new appointment."
        )
    return (
        f"This appointment is marked {appointment.get_status_display().lower()}, so it cannot be moved. "
        "If that was a mistake, mark it back to booked first."
    )


@reception_required
def reception_appointment_move(request, pk):
    """Choose a day, then one of its free times; the old slot is freed in the same transaction."""
    now = timezone.now()
    appointment = _appointment_for_reception(pk)
    local_start = appointment.slot.starts_at.astimezone(clinic_zone())
    day = _chosen_day(request, now) if request.GET.get("date") else max(local_start.date(), _today(now))
    status = 200
    if request.method == "POST" and not appointment.can_be_moved:
        status = 409
    elif request.method == "POST":
        form = MoveForm(request.POST)
        if form.is_valid():
            try:
                appointment_move(
                    appointment=appointment, new_slot_id=form.cleaned_data["slot"], now=now, actor=request.user
                )
            except SlotUnavailable:
                messages.error(request, "Sorry, that time was just taken (or is no longer free). Nothing changed.")
                status = 409
            except ChangeNotAllowed:
                # Cancelled or marked meanwhile: the page says so, as it would have on opening.
                appointment = _appointment_for_reception(pk)
                status = 409
            else:
                messages.success(request, f"Moved {appointment.patient_name}. The history shows the old time.")
                return redirect("reception_appointment", pk=pk)
        else:
            status = 400
    _record_access(request, appointments=[appointment])
    movable = appointment.can_be_moved
    return render(
        request,
        "staff/move.html",
        {
            "appointment": appointment,
            "local_start": local_start,
            "day": day,
            "previous_day": day - timedelta(days=1),
            "next_day": day + timedelta(days=1),
            "day_form": DayForm(initial={"date": day}),
            "refusal": "" if movable else _why_not_movable(appointment),
            "move_refused": not movable and request.method == "POST",
            "choices": _move_choices(now=now, day=day) if movable else [],
        },
        status=status,
    )


# -- Blocking slots -----------------------------------------------------------------------


@reception_required
def reception_slot_block(request, pk):
    slot = _slot_for_reception(pk)
    slot.local_start = slot.starts_at.astimezone(clinic_zone())
    form = BlockForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                slot_block(slot=slot, now=timezone.now(), actor=request.user, reason=form.cleaned_data["reason"])
            except SlotUnavailable:
                messages.error(request, "That slot is no longer open (booked or blocked meanwhile). Nothing changed.")
            else:
                messages.success(request, f"Blocked {slot.local_start:%H:%M} for {slot.practitioner.full_name}.")
            return redirect(_day_url(slot.local_start.date()))
        return render(request, "staff/block.html", {"slot": slot, "form": form}, status=400)
    return render(request, "staff/block.html", {"slot": slot, "form": form})


@reception_required
@require_POST
def reception_slot_unblock(request, pk):
    slot = _slot_for_reception(pk)
    local_start = slot.starts_at.astimezone(clinic_zone())
    try:
        slot_unblock(slot=slot, now=timezone.now(), actor=request.user)
    except SlotUnavailable:
        messages.error(request, "That slot is not blocked.")
    else:
        messages.success(request, f"Unblocked {local_start:%H:%M} for {slot.practitioner.full_name}.")
    return redirect(_day_url(local_start.date()))


# -- Working hours, time off, closures ----------------------------------------------------


def _report_schedule_change(request, report: GenerationReport) -> None:
    """Say what generation did; keep its conflicts for the next page, never drop them silently."""
    messages.success(request, f"Saved. Slots updated: {report.created} added, {report.removed} removed.")
    if report.conflicts:
        messages.warning(
            request,
            f"{len(report.conflicts)} booked appointment(s) no longer fit these hours. They are still booked: "
            "please move or cancel them (listed below).",
        )
        request.session[SCHEDULE_CONFLICTS] = [slot.pk for slot in report.conflicts]


def _pop_conflicts(request) -> list[Appointment]:
    slot_ids = request.session.pop(SCHEDULE_CONFLICTS, [])
    if not slot_ids:
        return []
    appointments = list(
        Appointment.objects.live().filter(slot_id__in=slot_ids).select_related("slot__practitioner").order_by("slot")
    )
    for appointment in appointments:
        appointment.local_start = appointment.slot.starts_at.astimezone(clinic_zone())
    # The hours pages show patients only when a change left bookings that no longer fit.
    if appointments:
        _record_access(request, appointments=appointments)
    return appointments


@reception_required
def reception_hours(request):
    """Practitioners to edit, and clinic closures (time off with no practitioner) for everyone."""
    now = timezone.now()
    form = TimeOffForm(request.POST or None, prefix="closure")
    if request.method == "POST" and form.is_valid():
        # All or nothing: a closure whose slots could not follow is not saved either.
        form.instance.practitioner = None
        report = schedule_change_apply(now=now, change=lambda: [form.save().practitioner])
        _report_schedule_change(request, report)
        return redirect("reception_hours")
    closures = TimeOff.objects.filter(practitioner__isnull=True, ends_at__gt=now).order_by("starts_at")
    return render(
        request,
        "staff/hours.html",
        {
            "practitioners": Practitioner.objects.order_by("-is_active", "list_order", "display_name"),
            "closures": closures,
            "form": form,
            "conflicts": _pop_conflicts(request),
        },
        status=400 if request.method == "POST" else 200,
    )


def _practitioner_hours_context(request, practitioner, *, formset=None, time_off_form=None) -> dict:
    now = timezone.now()
    return {
        "practitioner": practitioner,
        "formset": formset
        or WorkingHoursFormSet(queryset=WorkingHours.objects.filter(practitioner=practitioner), prefix="hours"),
        "time_off_form": time_off_form or TimeOffForm(prefix="off"),
        "time_off": practitioner.time_off.filter(ends_at__gt=now).order_by("starts_at"),
        "conflicts": _pop_conflicts(request),
    }


@reception_required
def reception_practitioner_hours(request, practitioner_id):
    practitioner = get_object_or_404(Practitioner, pk=practitioner_id)
    if request.method == "POST":
        formset = WorkingHoursFormSet(
            request.POST, queryset=WorkingHours.objects.filter(practitioner=practitioner), prefix="hours"
        )
        if formset.is_valid():

            def save_hours():
                periods = formset.save(commit=False)
                for period in formset.deleted_objects:
                    period.delete()
                for period in periods:
                    period.practitioner = practitioner
                    period.save()
                return [practitioner]

            _report_schedule_change(request, schedule_change_apply(now=timezone.now(), change=save_hours))
            return redirect("reception_practitioner_hours", practitioner_id=practitioner.pk)
        context = _practitioner_hours_context(request, practitioner, formset=formset)
        return render(request, "staff/practitioner_hours.html", context, status=400)
    return render(request, "staff/practitioner_hours.html", _practitioner_hours_context(request, practitioner))


@reception_required
@require_POST
def reception_time_off_add(request, practitioner_id):
    practitioner = get_object_or_404(Practitioner, pk=practitioner_id)
    form = TimeOffForm(request.POST, prefix="off")
    if not form.is_valid():
        context = _practitioner_hours_context(request, practitioner, time_off_form=form)
        return render(request, "staff/practitioner_hours.html", context, status=400)
    # All or nothing: time off whose slots could not follow is not saved (a retry would duplicate it).
    form.instance.practitioner = practitioner
    report = schedule_change_apply(now=timezone.now(), change=lambda: [form.save().practitioner])
    _report_schedule_change(request, report)
    return redirect("reception_practitioner_hours", practitioner_id=practitioner.pk)


@reception_required
@require_POST
def reception_time_off_delete(request, pk):
    time_off = get_object_or_404(TimeOff.objects.select_related("practitioner"), pk=pk)
    practitioner = time_off.practitioner

    def delete_time_off():
        time_off.delete()
        return [practitioner]

    report = schedule_change_apply(now=timezone.now(), change=delete_time_off)
    _report_schedule_change(request, report)
    if practitioner is None:
        return redirect("reception_hours")
    return redirect("reception_practitioner_hours", practitioner_id=practitioner.pk)


# -- Find and export ----------------------------------------------------------------------


@reception_required
def reception_search(request):
    """Search by POST: names, e-mails and phone numbers never go into a URL (proxy logs, history).

    `?appointment=<id>` lists that appointment's patient's bookings (the link on an appointment).
    """
    form = SearchForm(request.POST or None)
    results, query = [], ""
    patient_of = parse_database_id(request.GET.get("appointment"))
    if form.is_valid():
        query = form.cleaned_data["q"]
        results = list(Appointment.objects.matching(query)[:100])
    elif patient_of is not None:
        appointment = get_object_or_404(Appointment, pk=patient_of)
        query = appointment.patient_name
        results = list(
            Appointment.objects.same_patient_as(appointment)
            .select_related("slot__practitioner")
            .order_by("-slot__starts_at")[:100]
        )
    if results:
        for appointment in results:
            appointment.local_start = appointment.slot.starts_at.astimezone(clinic_zone())
    if query:
        _record_access(request, appointments=results)
    return render(
        request,
        "staff/search.html",
        {"form": form, "query": query, "results": results, "export_form": ExportForm()},
    )


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# "+", then digits and spaces only: a phone number in international form, as patients type it.
PHONE_NUMBER = re.compile(r"\+\d[\d ]*\d")


def csv_safe(value) -> str:
    """The value as text, with an apostrophe in front of anything a spreadsheet would run as a formula.

    Why a phone number like "+44 7700 900654" is left as it is: with no letter, no bracket and no
    operator but the leading "+", it names no function, no cell and no other file, so a spreadsheet
    has nothing to run, while the apostrophe would stay in reception's sheet (a CSV cell is not typed
    in, so the apostrophe is shown, not hidden) and break the number for dialling and matching. Every
    other value starting with = + - @ tab or CR is quoted, a phone number with brackets or hyphens too.
    """
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not PHONE_NUMBER.fullmatch(text):
        return "'" + text
    return text


EXPORT_COLUMNS = [
    "Date",
    "Time",
    "Practitioner",
    "Status",
    "Source",
    "First name",
    "Last name",
    "Phone",
    "E-mail",
    "Note",
    "Booked by",
    "Cancel reason",
    "Source article",
]


@reception_required
def reception_export(request):
    """Appointments in a date range as CSV; without a valid range, the form."""
    form = ExportForm(request.GET or None)
    if not form.is_valid():
        return render(request, "staff/export.html", {"form": form}, status=400 if request.GET else 200)
    start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    appointments = (
        Appointment.objects.filter(
            slot__starts_at__gte=local_midnight(start), slot__starts_at__lt=local_midnight(end + timedelta(days=1))
        )
        .select_related("slot__practitioner", "booked_by", "source_article")
        .order_by("slot__starts_at", "pk")
    )
    _record_access(request, appointments=appointments.values_list("pk", flat=True))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="appointments-{start}-to-{end}.csv"'
    # A byte-order mark: without it Excel on Windows reads the file as Windows-1252 ("ZoÃ«" for "Zoë").
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(EXPORT_COLUMNS)
    zone = clinic_zone()
    for appointment in appointments.iterator(chunk_size=500):
        local_start = appointment.slot.starts_at.astimezone(zone)
        row = [
            f"{local_start:%Y-%m-%d}",
            f"{local_start:%H:%M}",
            appointment.slot.practitioner.full_name,
            appointment.get_status_display(),
            appointment.get_source_display(),
            appointment.first_name,
            appointment.last_name,
            appointment.phone,
            appointment.email,
            appointment.note,
            appointment.booked_by.get_username() if appointment.booked_by else "",
            appointment.cancel_reason,
            appointment.source_article.title if appointment.source_article else "",
        ]
        writer.writerow([csv_safe(value) for value in row])
    return response


# -- Access and erasure on request (UK GDPR) -----------------------------------------------


def _patient_records(request, pk):
    """The records of the patient of appointment PK (reception's rule of the same patient), recorded as viewed."""
    records = patient_records_for(_appointment_for_reception(pk))
    _record_access(
        request,
        appointments=records.appointments,
        callbacks=records.callbacks,
        waiting_list_entries=records.waiting_list_entries,
    )
    return records


@reception_required
def reception_patient_data(request, pk):
    """Everything held about one patient, readable: what reception sends for a subject-access request."""
    data = patient_data_export(_patient_records(request, pk))
    # The answers as stored, shown whole: what the patient gets is every field the database holds.
    answers = [json.dumps(each["safety_answers"], indent=2, ensure_ascii=False) for each in data["appointments"]]
    entry_answers = [
        json.dumps(each["safety_answers"], indent=2, ensure_ascii=False) for each in data["waiting_list_entries"]
    ]
    return render(
        request,
        "staff/patient_data.html",
        {
            "appointment_pk": pk,
            "data": data,
            "appointments": zip(data["appointments"], answers, strict=True),
            "waiting_list_entries": zip(data["waiting_list_entries"], entry_answers, strict=True),
        },
    )


@reception_required
def reception_patient_data_json(request, pk):
    """The same, machine-readable, as a file to send."""
    response = JsonResponse(
        patient_data_export(_patient_records(request, pk)), json_dumps_params={"indent": 2, "ensure_ascii": False}
    )
    response["Content-Disposition"] = f'attachment; filename="patient-data-{pk}.json"'
    return response


@reception_required
def reception_patient_erase(request, pk):
    """Erasure on request: a confirm page, then the upcoming appointments cancelled and everything anonymised."""
    form = ErasureForm(request.POST or None)
    appointment = _appointment_for_reception(pk)
    if appointment.anonymised_at is not None:
        # Nothing left to erase: a second erasure would only record an empty one.
        messages.info(request, "This patient's details were erased already: there is nothing more to erase.")
        return redirect("reception_appointment", pk=pk)
    if request.method == "POST" and form.is_valid():
        erasure = patient_data_erase(
            appointment=appointment,
            reference=form.cleaned_data["reference"],
            actor=request.user,
            now=timezone.now(),
            notify_patient=form.cleaned_data["notify_patient"],
        )
        counts = erasure.counts
        messages.success(
            request,
            f"Erased (reference {erasure.reference}): {counts['appointments'] + counts['deferred']} appointment(s), "
            f"{counts['callbacks']} call-back request(s), {counts['waiting_list_entries']} waiting-list entr(y/ies); "
            f"{counts['cancelled']} upcoming appointment(s) cancelled."
            + (" The rest is erased once the cancellation e-mail has gone." if counts["deferred"] else ""),
        )
        return redirect("reception_search")
    records = _patient_records(request, pk)
    return render(
        request,
        "staff/patient_erase.html",
        {"appointment_pk": pk, "records": records, "form": form, "now": timezone.now()},
        status=400 if request.method == "POST" else 200,
    )


@reception_required
@require_GET
def reception_privacy_notice(request, version):
    """A privacy notice as published, current or older: what a patient who booked under it agreed to."""
    notice = privacy_notice(version)
    if notice is None:
        raise Http404
    return render(
        request,
        "staff/privacy_notice.html",
        {
            "notice": notice,
            "notices": NOTICES,
            "current": current_privacy_notice_version(),
            "retention": retention_periods(),
        },
    )


# -- Call-back requests -------------------------------------------------------------------


@reception_required
def reception_callbacks(request):
    open_requests = list(CallbackRequest.objects.filter(done_at__isnull=True).order_by("created_at"))
    recently_done = list(
        CallbackRequest.objects.filter(done_at__isnull=False).select_related("done_by").order_by("-done_at")[:20]
    )
    _record_access(request, callbacks=open_requests + recently_done)
    return render(request, "staff/callbacks.html", {"open_requests": open_requests, "recently_done": recently_done})


@reception_required
@require_POST
def reception_callback_done(request, pk):
    # Compare-and-set: two receptionists clicking at once record one of them, not both.
    updated = CallbackRequest.objects.filter(pk=pk, done_at__isnull=True).update(
        done_at=timezone.now(), done_by=request.user
    )
    if not updated:
        get_object_or_404(CallbackRequest, pk=pk)
        messages.info(request, "Someone already marked that call-back as done.")
    else:
        messages.success(request, "Call-back marked as done.")
    return redirect("reception_callbacks")


@reception_required
@require_POST
def reception_callback_reopen(request, pk):
    """Back on the list to call: marked done by mistake, or the caller did not answer."""
    # Compare-and-set, like marking it done: a second click changes nothing.
    updated = CallbackRequest.objects.filter(pk=pk, done_at__isnull=False).update(done_at=None, done_by=None)
    if not updated:
        get_object_or_404(CallbackRequest, pk=pk)
        messages.info(request, "That call-back is already on the list to call.")
    else:
        messages.success(request, "Call-back back on the list to call.")
    return redirect("reception_callbacks")


# -- Practitioners ------------------------------------------------------------------------


@practitioner_required
def practitioner_day(request):
    now = timezone.now()
    practitioner = _practitioner_for_user(request.user)
    today = _today(now)
    appointments = list(
        Appointment.objects.live()
        .for_practitioner(practitioner)
        .filter(
            slot__starts_at__gte=local_midnight(today),
            slot__starts_at__lt=local_midnight(today + timedelta(days=1)),
        )
        .select_related("slot")
        .order_by("slot__starts_at")
    )
    for appointment in appointments:
        appointment.local_start = appointment.slot.starts_at.astimezone(clinic_zone())
    _record_access(request, appointments=appointments)
    return render(
        request,
        "staff/my_day.html",
        {"practitioner": practitioner, "today": today, "appointments": appointments, "now": now},
    )


@practitioner_required
def practitioner_upcoming(request):
    now = timezone.now()
    practitioner = _practitioner_for_user(request.user)
    appointments = list(
        Appointment.objects.upcoming(now=now)
        .for_practitioner(practitioner)
        .select_related("slot")
        .order_by("slot__starts_at")[:200]
    )
    for appointment in appointments:
        appointment.local_start = appointment.slot.starts_at.astimezone(clinic_zone())
    _record_access(request, appointments=appointments)
    return render(request, "staff/upcoming.html", {"practitioner": practitioner, "appointments": appointments})


@practitioner_required
def practitioner_appointment(request, pk):
    appointment = _appointment_for_practitioner(request.user, pk)
    # The patient's earlier visits at the clinic; only this practitioner's own link to their pages.
    earlier = list(
        Appointment.objects.same_patient_as(appointment)
        .filter(slot__starts_at__lt=appointment.slot.starts_at)
        .exclude(pk=appointment.pk)
        .select_related("slot__practitioner")
        .order_by("-slot__starts_at")[:20]
    )
    zone = clinic_zone()
    for visit in earlier:
        visit.local_start = visit.slot.starts_at.astimezone(zone)
        visit.is_mine = visit.slot.practitioner.user_id == request.user.pk
    _record_access(request, appointments=[appointment, *earlier])
    return render(
        request,
        "staff/my_appointment.html",
        {
            "appointment": appointment,
            "local_start": appointment.slot.starts_at.astimezone(zone),
            "safety": (appointment.safety_answers or {}).get("answers", []),
            "earlier": earlier,
        },
    )


@practitioner_required
def practitioner_calendar(request):
    practitioner = _practitioner_for_user(request.user)
    return render(
        request,
        "staff/my_calendar.html",
        {
            "practitioner": practitioner,
            "has_feed": bool(practitioner.calendar_token_hash),
            "new_feed_url": request.session.pop(NEW_CALENDAR_FEED_URL, None),
        },
    )


@practitioner_required
@require_POST
def practitioner_calendar_reset(request):
    practitioner = _practitioner_for_user(request.user)
    token = practitioner_calendar_token_reset(practitioner=practitioner)
    request.session[NEW_CALENDAR_FEED_URL] = request.build_absolute_uri(
        reverse("practitioner_calendar_feed", args=[token])
    )
    messages.success(request, "A new private calendar address is ready. Any old address has stopped working.")
    return redirect("practitioner_calendar")


@require_GET
def practitioner_calendar_feed(request, token):
    """The practitioner's appointments for their phone's calendar. The token in the URL is the key.

    Only "Free consultation" and the patient's initials: no note, no phone, no health details.
    """
    if not token:
        raise Http404
    # A practitioner who has left (inactive, or their account switched off) loses the feed too.
    practitioner = Practitioner.objects.filter(
        calendar_token_hash=hash_token(token), is_active=True, user__is_active=True
    ).first()
    if practitioner is None:
        raise Http404
    response = HttpResponse(
        practitioner_feed_ics(practitioner=practitioner, now=timezone.now()),
        content_type="text/calendar; charset=utf-8",
    )
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


# -- The waiting list ---------------------------------------------------------------------

# How many times reception may pick from to offer one waiting person by hand, and how many of the next
# bookable times are read (one query) to find them.
HAND_OFFER_CHOICES = 20
HAND_OFFER_LOOKS_AT = 1000


def _hand_offer_choices(now: datetime, entries) -> None:
    """Give each entry `offer_choices` (the next bookable times that suit it: its practitioner, weekdays, parts
    of the day and last day, as the worker's matching reads them) and `other_choices` (the next others, for a
    caller who says on the phone that another time would do). Neither holds a time the entry may not be
    offered at all (`WaitingListEntry.may_move_to`: one after the booking it waits to move). The entries come
    with `appointment__slot` selected."""
    zone = clinic_zone()
    slots = list(Slot.objects.bookable(now=now).select_related("practitioner")[:HAND_OFFER_LOOKS_AT])
    for slot in slots:
        slot.local_start = slot.starts_at.astimezone(zone)
        slot.choice = (slot.pk, f"{slot.local_start:%a %d %b %H:%M} with {slot.practitioner.full_name}")
    for entry in entries:
        allowed = [slot for slot in slots if entry.may_move_to(slot.starts_at)]

        def suits(slot, entry=entry) -> bool:
            return (
                (entry.practitioner_id is None or slot.practitioner_id == entry.practitioner_id)
                and slot.local_start.weekday() in entry.weekdays
                and part_of_day(slot.local_start) in entry.parts_of_day
                and slot.local_start.date() <= entry.wait_until
            )

        entry.offer_choices = [slot.choice for slot in itertools.islice(filter(suits, allowed), HAND_OFFER_CHOICES)]
        others = (slot for slot in allowed if not suits(slot))
        entry.other_choices = [slot.choice for slot in itertools.islice(others, HAND_OFFER_CHOICES)]


def _waiting_list_context(request, *, now: datetime, offer_form=None, offer_entry_id=None) -> dict:
    """Queries: the waiting entries (with practitioner); their offers (with slot and practitioner); the
    recently ended entries; their offers; the next bookable times for a hand offer; the access record (who looked).
    The same six at any size."""
    offers = Prefetch(
        "offers", queryset=WaitingListOffer.objects.select_related("slot__practitioner").order_by("-offered_at", "pk")
    )
    zone = clinic_zone()
    waiting = list(
        WaitingListEntry.objects.waiting().select_related("practitioner", "appointment__slot").prefetch_related(offers)
    )
    ended = list(
        # Not the requests whose e-mailed link is still unopened: nobody has joined with those yet.
        WaitingListEntry.objects.exclude(status__in=OPEN_ENTRY_STATUSES)
        .select_related("practitioner")
        .prefetch_related(offers)
        .order_by("-ended_at", "-pk")[:20]
    )
    for entry in [*waiting, *ended]:
        for offer in entry.offers.all():
            offer.local_start = offer.slot.starts_at.astimezone(zone)
    _record_access(request, waiting_list_entries=[*waiting, *ended])
    _hand_offer_choices(now, waiting)
    return {
        "waiting": waiting,
        "ended": ended,
        "offer_form": offer_form,
        "offer_entry_id": offer_entry_id,
        "now": now,
        "batch_size": settings.WAITING_LIST_BATCH,
        "hold_minutes": int(settings.WAITING_LIST_HOLD.total_seconds() // 60),
    }


@reception_required
def reception_waiting_list(request):
    """Who waits, for what, since when, the times offered to them and what came of each."""
    return render(request, "staff/waiting_list.html", _waiting_list_context(request, now=timezone.now()))


@reception_required
def reception_waiting_list_add(request):
    """Put a caller on the waiting list, asking the phone booking's safety questions first."""
    now = timezone.now()
    form = WaitingListCallerForm(request.POST or None, today=_today(now))
    context = {"form": form}
    if request.method == "POST":
        valid = form.is_valid()
        if form.any_red_flag():
            # Nothing is kept but the day's count: reception reads the urgent advice to the caller.
            urgent_care_count(now=now)
            return render(request, "staff/waiting_list_add.html", context | {"urgent": True})
        if valid:
            try:
                waiting_list_join(
                    request=form.waiting_list_request(),
                    now=now,
                    safety_answers=form.recorded_answers(),
                    privacy_notice_version=form.privacy_notice_version,
                    added_by=request.user,
                )
            except AlreadyWaiting:
                return render(request, "staff/waiting_list_add.html", context | {"already_waiting": True}, status=409)
            messages.success(request, f"{form.cleaned_data['first_name']} is on the waiting list.")
            return redirect("reception_waiting_list")
        return render(request, "staff/waiting_list_add.html", context, status=400)
    return render(request, "staff/waiting_list_add.html", context)


@reception_required
@require_POST
def reception_waiting_list_remove(request, pk):
    entry = get_object_or_404(WaitingListEntry, pk=pk)
    if entry.status == WaitingListEntry.Status.WAITING:
        waiting_list_leave(entry=entry, now=timezone.now(), actor=request.user)
        messages.success(request, f"{entry.patient_name} was taken off the waiting list.")
    else:
        messages.info(request, f"{entry.patient_name} is no longer on the waiting list.")
    return redirect("reception_waiting_list")


@reception_required
@require_POST
def reception_waiting_list_offer(request, pk):
    """Offer a chosen time to a chosen person by hand: held and e-mailed as the worker's offers are."""
    now = timezone.now()
    entry = get_object_or_404(WaitingListEntry.objects.select_related("appointment__slot"), pk=pk)
    _hand_offer_choices(now, [entry])
    form = OfferByHandForm(request.POST, slot_choices=entry.offer_choices + entry.other_choices)
    if form.is_valid():
        try:
            waiting_list_offer_by_hand(entry=entry, slot_id=form.cleaned_data["slot"], now=now, actor=request.user)
        except OfferNotPossible as refusal:
            form.add_error("slot", str(refusal))
        else:
            messages.success(request, f"The time was offered to {entry.patient_name}; the e-mail is on its way.")
            return redirect("reception_waiting_list")
    context = _waiting_list_context(request, now=now, offer_form=form, offer_entry_id=entry.pk)
    return render(request, "staff/waiting_list.html", context, status=400)


# -- Insights (the clinic manager) ------------------------------------------------------------

manager_required = _group_required(MANAGER_GROUP)

# The tables of the Insights page, each also a CSV download (staff/insights.py says which cells hide small numbers).
INSIGHTS_TABLES = {
    "bookings": "Bookings per week by how they came",
    "articles": "Articles: booking starts and bookings",
    "diary": "The diary per practitioner and week",
    "attendance": "Attendance per week",
    "urgent": "Sent to urgent care per week",
}


def _week_label(week: date) -> str:
    return f"{week:%d %b}"


def _insights_period(request):
    """The period form, and the period it asks for (None when the form is wrong)."""
    form = InsightsPeriodForm(request.GET or None)
    if request.GET and not form.is_valid():
        return form, None
    if not request.GET:
        form = InsightsPeriodForm({"weeks": InsightsPeriodForm.DEFAULT_WEEKS})
        form.is_valid()
    return form, form.period(today=timezone.localdate(timezone=clinic_zone()))


@manager_required
@require_GET
def insights(request):
    """What the articles bring, how full the diary is, who does not come.

    1. The period (a wrong one: the form again, 400).
    2. One query for what the figures depend on: when the summaries were rebuilt, and the live counters'
       totals in the period (they only grow, so a new start or referral changes the key).
    3. The charts and tables for that key from the cache, else drawn from eight aggregates and kept.
    """
    form, period = _insights_period(request)
    if period is None:
        return render(request, "staff/insights.html", {"form": form}, status=400)
    query = request.GET.urlencode() if request.GET else f"weeks={InsightsPeriodForm.DEFAULT_WEEKS}"
    version, key = _insights_cache_key(period, query)
    figures = cache.get(key)
    if figures is None:
        figures = _insights_figures(period, query)
        cache.set(key, figures, timeout=INSIGHTS_CACHE_SECONDS)
    context = {
        "form": form,
        "period": period,
        "query": query,
        "tables": INSIGHTS_TABLES,
        "refreshed_at": version[0],
        "small_number_text": insights_data.SMALL_NUMBER_TEXT,
    }
    return render(request, "staff/insights.html", context | figures)


# Drawn figures are kept a day at most: a new refresh or count changes their key long before.
INSIGHTS_CACHE_SECONDS = 24 * 60 * 60


def _insights_cache_key(period, query: str) -> tuple[tuple, str]:
    version = insights_data.figures_version(period)
    return version, "insights:" + hashlib.sha256(repr((version, period, query)).encode()).hexdigest()


def insights_refresh_and_draw(*, now) -> None:
    """Rebuild the summaries, then draw the three standard periods (4, 12, 52 weeks) into the cache, so that
    the manager's usual pages are ready (a year at 50 practitioners takes ~150 ms to draw, ~25 ms to serve)."""
    insights_refresh(now=now)
    today = now.astimezone(clinic_zone()).date()
    for weeks, _label in InsightsPeriodForm.WEEKS:
        period = insights_data.Period.last_weeks(weeks, today=today)
        query = f"weeks={weeks}"
        cache.set(_insights_cache_key(period, query)[1], _insights_figures(period, query), INSIGHTS_CACHE_SECONDS)


def _insights_figures(period, query: str) -> dict:
    """The page's charts (SVG) and tables (HTML) for the period, from the aggregates of staff/insights.py."""
    weeks = [_week_label(week) for week in period.weeks]
    sources = insights_data.bookings_by_source(period)
    source_names = list(Appointment.Source.labels)
    article_rows = insights_data.articles(period)
    diary_rows = insights_data.diary(period)
    clinic_weeks = [
        insights_data.DiaryWeek(
            week, *(sum(getattr(row.weeks[i], part) for row in diary_rows) for part in ("offered", "booked", "blocked"))
        )
        for i, week in enumerate(period.weeks)
    ]
    attendance_weeks = insights_data.attendance(period)
    urgent_weeks = insights_data.urgent_care(period)
    charts = {
        "bookings": bar_chart(
            categories=weeks,
            series=[(name, [week.shown_or_none(i) for week in sources]) for i, name in enumerate(source_names)],
        ),
        "articles": bar_chart(
            categories=[str(number) for number in range(1, len(article_rows) + 1)],
            series=[("Booked", [None if row.booked.hidden else row.booked.value for row in article_rows])],
        ),
        "diary": bar_chart(
            categories=weeks,
            series=[("Booked", [100 * week.booked / week.offered if week.offered else None for week in clinic_weeks])],
            unit="%",
            top=100,
        ),
        "attendance": bar_chart(
            categories=weeks,
            series=[
                (label, [week.rate_or_none(i) for week in attendance_weeks])
                for i, (_key, label) in enumerate(insights_data.ATTENDANCE_COLUMNS[:4])
            ],
            unit="%",
            top=100,
        ),
        "urgent": bar_chart(
            categories=weeks,
            series=[("Sent to urgent care", [None if count.hidden else count.value for _week, count in urgent_weeks])],
        ),
    }

    def caption(table: str, text: str):
        csv_url = f"{reverse('insights_csv', args=[table])}?{query}"
        return format_html('{} <a href="{}">Download CSV</a>', text, csv_url)

    def day(week: date) -> str:
        return f"{week.day} {week:%b %Y}"

    def hours(value: float) -> str:
        return f"{round(value, 1):g}"

    attendance_labels = [label for _key, label in insights_data.ATTENDANCE_COLUMNS]
    tables = {
        "bookings": html_table(
            caption=caption("bookings", f"{INSIGHTS_TABLES['bookings']}: bookings made each week, cancelled ones too."),
            header=["Week starting", *source_names, "Total"],
            rows=[[day(week.week), *week.cells, week.shown_total] for week in sources],
            wide=False,
        ),
        "articles": html_table(
            caption=caption("articles", f"{INSIGHTS_TABLES['articles']}."),
            header=["#", "Article", "Booking starts", "Booked", "Booked per start"],
            rows=[
                [number, row.title, "-" if row.starts is None else row.starts, row.booked, row.rate]
                for number, row in enumerate(article_rows, start=1)
            ],
        ),
        "diary": html_table(
            caption=caption("diary", "Hours per practitioner over the period; the CSV has every week."),
            header=[
                "Practitioner",
                "Offered hours",
                "Booked hours",
                "Blocked hours",
                "Free hours",
                "Utilisation",
                "Median days to appointment",
            ],
            rows=[
                [
                    row.practitioner,
                    hours(row.total.offered),
                    hours(row.total.booked),
                    hours(row.total.blocked),
                    hours(row.total.free),
                    row.total.utilisation,
                    row.median,
                ]
                for row in diary_rows
            ],
        ),
        "clinic": html_table(
            caption="The whole clinic per week, as in the chart.",
            header=["Week starting", "Offered hours", "Booked hours", "Blocked hours", "Free hours", "Utilisation"],
            rows=[
                [
                    day(week.week),
                    hours(week.offered),
                    hours(week.booked),
                    hours(week.blocked),
                    hours(week.free),
                    week.utilisation,
                ]
                for week in clinic_weeks
            ],
            wide=False,
        ),
        "attendance": html_table(
            caption=caption("attendance", f"{INSIGHTS_TABLES['attendance']}: count (share)."),
            header=["Week starting", "Appointments", *attendance_labels],
            rows=[
                [
                    day(week.week),
                    week.shown_total,
                    *(f"{count} ({rate})" if rate else f"{count}" for count, rate in week.cells),
                ]
                for week in attendance_weeks
            ],
        ),
        "urgent": html_table(
            caption=caption("urgent", f"{INSIGHTS_TABLES['urgent']}."),
            header=["Week starting", "Sent to urgent care"],
            rows=[[day(week), count] for week, count in urgent_weeks],
            wide=False,
        ),
    }
    titles = {
        "bookings": INSIGHTS_TABLES["bookings"],
        "articles": "Bookings per article",
        "diary": "Utilisation of the whole clinic per week (booked hours as a share of offered hours)",
        "attendance": INSIGHTS_TABLES["attendance"],
        "urgent": INSIGHTS_TABLES["urgent"],
    }
    return {
        "charts": {
            name: chart_svg(chart, chart_id=f"{name}-chart", title=titles[name]) for name, chart in charts.items()
        },
        "html_tables": tables,
        "diary_empty": not diary_rows,
    }


@manager_required
@require_POST
def insights_refresh_now(request):
    """Rebuild the daily summaries now (a few seconds for a year of a large clinic), then back to the page."""
    # The page's own period comes back with the button; anything else is refused before refreshing.
    query = request.POST.get("query", "")
    form = InsightsPeriodForm(QueryDict(query))
    if len(query) > 100 or not form.is_valid():
        return render(request, "staff/insights.html", {"form": form}, status=400)
    insights_refresh_and_draw(now=timezone.now())
    messages.success(request, "The figures are up to date.")
    return redirect(f"{reverse('insights')}?{form.data.urlencode()}")


def _insights_csv_rows(table: str, period) -> tuple[list[str], list[list]]:
    """One table of the page as a header and rows, with the page's small-number rule."""
    if table == "bookings":
        names = list(Appointment.Source.labels)
        rows = [[week.week, *week.cells, week.shown_total] for week in insights_data.bookings_by_source(period)]
        return ["Week starting", *names, "Total"], rows
    if table == "articles":
        rows = [
            [row.title, "" if row.starts is None else row.starts, row.booked, row.rate]
            for row in insights_data.articles(period)
        ]
        return ["Article", "Booking starts", "Booked", "Rate"], rows
    if table == "diary":
        rows = [
            [
                row.practitioner,
                week.week,
                *(round(hours, 1) for hours in (week.offered, week.booked, week.blocked, week.free)),
                week.utilisation,
            ]
            for row in insights_data.diary(period)
            for week in row.weeks
        ]
        return [
            "Practitioner",
            "Week starting",
            "Offered hours",
            "Booked hours",
            "Blocked hours",
            "Free hours",
            "Utilisation",
        ], rows
    if table == "attendance":
        header = ["Week starting", "Appointments"]
        for _key, label in insights_data.ATTENDANCE_COLUMNS:
            header += [label, f"{label} (rate)"]
        rows = [
            [week.week, week.shown_total, *(value for cell in week.cells for value in cell)]
            for week in insights_data.attendance(period)
        ]
        return header, rows
    return ["Week starting", "Sent to urgent care"], [
        [week, count] for week, count in insights_data.urgent_care(period)
    ]


@manager_required
@require_GET
def insights_csv(request, table: str):
    """One of the page's tables as CSV, for the same period."""
    if table not in INSIGHTS_TABLES:
        raise Http404
    form, period = _insights_period(request)
    if period is None:
        return render(request, "staff/insights.html", {"form": form}, status=400)
    header, rows = _insights_csv_rows(table, period)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="insights-{table}-{period.first_day}-to-{period.last_day}.csv"'
    )
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(header)
    for row in rows:
        # "-" (nothing to divide by) is an empty cell in a spreadsheet, not text.
        writer.writerow([csv_safe("" if value == "-" else value) for value in row])
    return response
