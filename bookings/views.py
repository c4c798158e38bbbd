import functools
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.views.decorators.cache import never_cache

from articles import structured_data
from articles.models import Article
from bookings import flow, services
from bookings.calendar import appointment_ics
from bookings.forms import (
    CallbackRequestForm,
    CancelForm,
    MoveForm,
    PatientDetailsForm,
    SafetyCheckForm,
    WaitingListJoinForm,
    WaitingListLinkForm,
    parse_database_id,
    parse_start_time,
    start_time_value,
)
from bookings.models import (
    Appointment,
    PartOfDay,
    Practitioner,
    Slot,
    WaitingListEntry,
    WaitingListOffer,
    WorkingHours,
    bookable_bounds,
    manage_token_for_submission,
    practitioner_full_name,
)
from bookings.schedule import AvailabilityVersion, clinic_zone, local_midnight
from bookings.services import (
    AlreadyWaiting,
    BookingLimitReached,
    ChangeNotAllowed,
    OnlineBookingGuard,
    SafetyCheckPassUsed,
    SlotUnavailable,
    appointment_book,
    appointment_cancel,
    appointment_move,
    booking_start_count,
    booking_to_move,
    offer_refusal,
    urgent_care_count,
    waiting_list_ask,
    waiting_list_confirm,
    waiting_list_join,
    waiting_list_leave,
    waiting_list_offer_accept,
    waiting_list_send_link,
)
from clinic.page_cache import MAX_AGE, PageCache, Rendering
from clinic.prepared import SAMPLE_IDS, PreparedQuery, sample_times
from clinic.ratelimit import client_address_key, rate_limited_post

# A manage link stops working this long after the appointment.
MANAGE_LINK_LIFETIME = timedelta(days=30)


def team(request):
    practitioners = Practitioner.objects.listed()
    return render(request, "bookings/team.html", {"practitioners": practitioners})


# never_cache: a refused form shows the name and phone number typed, and the page after it a thank-you.
@never_cache
@rate_limited_post("callback")
def contact(request):
    """The Contact page, with a short "please call me back" form; requests appear on reception's screen."""
    form = CallbackRequestForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            # A bot that filled the hidden field is thanked like anyone else, and nothing is saved.
            if not form.filled_by_a_bot:
                services.callback_request_record(callback=form.save(commit=False), now=timezone.now())
            messages.success(request, "Thank you: we will call you back, usually within one working day.")
            return redirect("contact")
        return render(request, "bookings/contact.html", _contact_context(form), status=400)
    return render(request, "bookings/contact.html", _contact_context(form))


def _contact_context(form) -> dict:
    return {"callback_form": form, "structured_data": structured_data.contact_graph(reverse("contact"))}


# -- Choosing a time ----------------------------------------------------------------------


def _parse_week(value) -> date | None:
    try:
        day = date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        return None
    if day.year < 2000 or day.year > 9000:
        return None
    return day - timedelta(days=day.weekday())


def bookable_weeks(now: datetime) -> tuple[date, date]:
    """The Mondays of the first and the last week a patient may book in at NOW (clinic time)."""
    zone = clinic_zone()
    latest = now + timedelta(days=settings.BOOKING_HORIZON_DAYS)
    return _parse_week(now.astimezone(zone).date()), _parse_week(latest.astimezone(zone).date())


def _withinbookable_weeks(week: date, now: datetime) -> date:
    """WEEK, or the nearest week a patient may book in: what the time page shows when asked for it."""
    this_week, last_week = bookable_weeks(now)
    return min(max(week, this_week), last_week)


def _distinct_times(slots):
    """For "any practitioner": one slot per start time, the first practitioner in list order."""
    return slots.order_by("starts_at", "practitioner__list_order", "practitioner_id").distinct("starts_at")


class BookableTime(NamedTuple):
    """One time in the picker: the slot to book, its local start, and as text its id, label ("09:40") and
    the details page's query: "slot=<id>" for one practitioner, "at=<start>" for any practitioner.

    The template prints the text: an int in a template goes through number formatting each time.
    """

    pk: int
    local_start: datetime
    value: str
    label: str
    query: str


class DayTimes(list):
    """One day's BookableTimes, with their links as HTML (`links_html`) for the time page's "links" mode,
    and the day as the template prints it: `label` ("Monday 7 December") and `anchor` ("20261207").

    The links are made here, escaped, in one pass: through the template's loop (a variable lookup and an
    autoescape per value, 135 times a page) they were most of the time a first render of the page took.
    The day's label and anchor likewise, once, instead of a `date` filter each of the six times a day is named.
    """

    links_html: str = ""
    label: str = ""
    anchor: str = ""


def _day_links_html(
    times: list[BookableTime], *, details_url: str, day_label: str, practitioner_name: str | None
) -> str:
    hidden = escape(f" on {day_label}" + (f" with {practitioner_name}" if practitioner_name else ""))
    return mark_safe(  # noqa: S308 - every value below is escaped
        "".join(
            f'<li><a class="btn btn-outline-primary slot-link" data-hx-boost="false" '
            f'href="{details_url}?{escape(time.query)}">{escape(time.label)}'
            f'<span class="visually-hidden">{hidden}</span></a></li>'
            for time in times
        )
    )


@functools.lru_cache(maxsize=1024)
def _date_text(day: date, format_string: str, language: str) -> str:
    """date_format(DAY, FORMAT_STRING) in LANGUAGE (the active one, given for the cache's key): always the same text,
    so made once per process. About 30 microseconds each, and the picker names a dozen days and weeks a page."""
    return date_format(day, format_string)


class PractitionerChoice(NamedTuple):
    """A practitioner in the picker's list: no model instance for each of the fifty on every rendering."""

    pk: int
    full_name: str


def _practitioner_options_html(practitioners: list[PractitionerChoice], chosen: PractitionerChoice | None) -> str:
    return mark_safe(  # noqa: S308 - every value below is escaped
        "".join(
            f'<option value="{practitioner.pk}"{" selected" if practitioner == chosen else ""}>'
            f"{escape(practitioner.full_name)}</option>"
            for practitioner in practitioners
        )
    )


# The picker's statements, compiled once per process from the QuerySets that define them (the rule stays
# Slot.objects.bookable's): building them again for every rendering cost more than PostgreSQL's answer.
# The samples each statement is prepared with (clinic.prepared): one pair of times for each time argument.
_WINDOW_SAMPLES = {"now": sample_times(0), "earliest": sample_times(1), "latest": sample_times(2)}
_practitioners_offered = PreparedQuery(
    lambda: Practitioner.objects.offering_consultations().values_list("pk", "title", "display_name"), samples={}
)
_first_bookable_start = {
    "any": PreparedQuery(
        lambda now, earliest, latest: Slot.objects.bookable_between(
            now=now, earliest=earliest, latest=latest
        ).values_list("starts_at")[:1],
        samples=_WINDOW_SAMPLES,
    ),
    "one": PreparedQuery(
        lambda now, earliest, latest, practitioner: Slot.objects.bookable_between(
            now=now, earliest=earliest, latest=latest, practitioner=practitioner
        ).values_list("starts_at")[:1],
        samples={**_WINDOW_SAMPLES, "practitioner": SAMPLE_IDS},
    ),
}
_bookable_times = {
    "any": PreparedQuery(
        lambda now, earliest, latest: _distinct_times(
            Slot.objects.bookable_between(now=now, earliest=earliest, latest=latest)
        ).values_list("pk", "starts_at"),
        samples=_WINDOW_SAMPLES,
    ),
    "one": PreparedQuery(
        lambda now, earliest, latest, practitioner: Slot.objects.bookable_between(
            now=now, earliest=earliest, latest=latest, practitioner=practitioner
        ).values_list("pk", "starts_at"),
        samples={**_WINDOW_SAMPLES, "practitioner": SAMPLE_IDS},
    ),
}


def _bookable_rows(statements: dict, *, now: datetime, chosen, start=None, end=None) -> list[tuple]:
    """Slot.objects.bookable(now=, start=, end=, practitioner=chosen) through one of the compiled statements."""
    earliest, latest = bookable_bounds(now, start=start, end=end)
    if chosen is None:
        return statements["any"].rows(now=now, earliest=earliest, latest=latest)
    return statements["one"].rows(now=now, earliest=earliest, latest=latest, practitioner=chosen.pk)


def slot_picker_context(request, *, now: datetime) -> dict:
    """A week of bookable times, grouped by local day, for the time page and the move page.

    Queries: practitioners; the week's slots; when the week has none, the next bookable slot after it (and, with
    no ?week, that slot's week: the page then shows the first week with a bookable time).

    Besides what the template shows, "availability" says which rows the answer was built from and
    "valid_until" when the clock alone will change it (the first time shown passing its minimum
    notice): the time page is kept rendered until either moves (clinic/page_cache.py).
    """
    zone = clinic_zone()
    practitioners = [
        PractitionerChoice(pk, practitioner_full_name(title, name)) for pk, title, name in _practitioners_offered.rows()
    ]
    practitioner_id = parse_database_id(request.GET.get("practitioner"))
    chosen = next((p for p in practitioners if p.pk == practitioner_id), None)
    # A link naming a practitioner who is not offered (inactive, no online consultations, no such id, or not an
    # id at all) shows everyone's times, and says so: silently it looked as if the practitioner had been chosen.
    not_offered = _practitioner_asked(request.GET.get("practitioner")) is not None and chosen is None
    this_week, last_week = bookable_weeks(now)

    asked_week = _parse_week(request.GET.get("week"))
    week = this_week if asked_week is None else _withinbookable_weeks(asked_week, now)
    week_start, week_end = local_midnight(week), local_midnight(week + timedelta(days=7))
    rows = _bookable_rows(_bookable_times, now=now, chosen=chosen, start=week_start, end=week_end)
    next_available = None
    if not rows:
        # Nothing bookable this week: the next bookable time after it, to name it or, with no week asked, to
        # show its week (the first with a bookable time). Asked only then: most often this week has times,
        # and the first bookable time is in it (a statement fewer than reading the first time, then its week).
        following = _bookable_rows(_first_bookable_start, now=now, chosen=chosen, start=week_end)
        if following and asked_week is None:
            week = _withinbookable_weeks(_parse_week(following[0][0].astimezone(zone).date().isoformat()), now)
            week_start, week_end = local_midnight(week), local_midnight(week + timedelta(days=7))
            rows = _bookable_rows(_bookable_times, now=now, chosen=chosen, start=week_start, end=week_end)
        elif following:
            next_available = following[0][0].astimezone(zone)

    # From `depends_from` to `depends_until`: the slots this answer reads (see "availability" below). With no week
    # asked, the weeks before the one shown count too: a time freed in them would be the one to show.
    depends_from = now + settings.BOOKING_MIN_NOTICE
    if asked_week is not None:
        depends_from = max(depends_from, week_start)
    depends_until = week_end if rows else now + timedelta(days=settings.BOOKING_HORIZON_DAYS)
    # Only what the picker shows, as plain tuples (no model instance per time) with the label made
    # here once: the template then only prints strings (the practitioner's name is chosen_practitioner's).
    days: dict[date, DayTimes] = {}
    for pk, starts_at in rows:
        local_start = starts_at.astimezone(zone)
        # "Any practitioner" links the time, and the booking chooses who is free then (services._lock_free_slot_at).
        query = f"slot={pk}" if chosen else f"at={start_time_value(starts_at)}"
        days.setdefault(local_start.date(), DayTimes()).append(
            BookableTime(pk, local_start, str(pk), local_start.strftime("%H:%M"), query)
        )

    details_url = reverse("booking_details")
    language = get_language()
    for day, times in days.items():
        times.label, times.anchor = _date_text(day, "l j F", language), day.strftime("%Y%m%d")
        times.links_html = _day_links_html(
            times,
            details_url=details_url,
            day_label=times.label,
            practitioner_name=chosen.full_name if chosen else None,
        )
    first_time_shown = min((times[0].local_start for times in days.values()), default=next_available)
    # The soonest time, as one button at the top: the first one shown when the page shows the first week
    # a patient may book in (no week asked, or this week), so it costs no query and no wider cache dependency.
    soonest = None
    if days and (asked_week is None or week == this_week):
        soonest = min(days.items())[1][0]

    previous_week = week - timedelta(days=7) if week > this_week else None
    next_week = week + timedelta(days=7) if week < last_week else None
    return {
        "soonest": soonest,
        "soonest_day_label": days[soonest.local_start.date()].label if soonest else "",
        "details_url": details_url,
        "practitioners": practitioners,
        "practitioner_options_html": _practitioner_options_html(practitioners, chosen),
        "chosen_practitioner": chosen,
        "practitioner_not_offered": not_offered,
        "practitioner_not_offered_name": _practitioner_name(practitioner_id) if not_offered and practitioner_id else "",
        "week": week,
        "previous_week": previous_week,
        "next_week": next_week,
        # As the template prints them (the `date` filter costs as much as a database round trip here).
        "week_value": week.isoformat(),
        "previous_week_value": previous_week.isoformat() if previous_week else "",
        "next_week_value": next_week.isoformat() if next_week else "",
        "week_heading_from": _date_text(week, "j M", language),
        "week_heading_to": _date_text(week + timedelta(days=6), "j M Y", language),
        "next_available": next_available,
        "next_available_week": _parse_week(next_available.date().isoformat()) if next_available else None,
        "days": sorted(days.items()),
        "zone_name": str(zone),
        "zone_abbreviation": week_start.tzname(),
        "availability": AvailabilityVersion(
            starts=depends_from, ends=depends_until, practitioner_id=chosen.pk if chosen else None
        ),
        # In UTC: a local time minus a timedelta moves the wall clock, an hour wrong across a clock change.
        "valid_until": (
            first_time_shown.astimezone(UTC) - settings.BOOKING_MIN_NOTICE if first_time_shown else now + MAX_AGE
        ),
    }


# What the time page was asked for when "practitioner" is given but names no possible id ("abc", "0", "1e3").
_NOT_AN_ID = "not an id"


def _practitioner_asked(value: str | None) -> int | str | None:
    """The practitioner a link asks for: an id, _NOT_AN_ID, or None for none ("?practitioner=" is "any")."""
    if value is None or not value.strip():
        return None
    return parse_database_id(value) or _NOT_AN_ID


def _practitioner_name(practitioner_id: int) -> str:
    """The name of a practitioner the picker does not offer (practitioners are public), or "" for no such id."""
    row = Practitioner.objects.filter(pk=practitioner_id).order_by().values_list("title", "display_name").first()
    return practitioner_full_name(*row) if row else ""


def nearest_alternatives(*, now: datetime, around: datetime | None, limit: int = 5) -> list[Slot]:
    """The bookable times nearest to the one a patient wanted (soonest first when unknown)."""
    zone = clinic_zone()
    target = around or now
    later = list(_distinct_times(Slot.objects.bookable(now=now, start=target)).select_related("practitioner")[:limit])
    # One slot per start time on this side too: LIMIT counted practitioners, so with three free at each earlier
    # time only two earlier times were candidates, and with the wanted time the last of its day (everyone's slot
    # taken, "any practitioner") later days' times were offered before nearer ones that day.
    earlier = list(
        Slot.objects.bookable(now=now, end=target)
        .order_by("-starts_at", "practitioner__list_order", "practitioner_id")
        .distinct("starts_at")
        .select_related("practitioner")[:limit]
    )
    seen, candidates = set(), []
    for slot in sorted(later + earlier, key=lambda s: abs((s.starts_at - target).total_seconds())):
        if slot.starts_at not in seen:
            seen.add(slot.starts_at)
            candidates.append(slot)
    chosen = sorted(candidates[:limit], key=lambda s: s.starts_at)
    for slot in chosen:
        slot.local_start = slot.starts_at.astimezone(zone)
    return chosen


# -- The booking flow ---------------------------------------------------------------------


@never_cache
@rate_limited_post("booking")
def booking_start(request):
    """Step 1: the safety check. Any "yes" stops here with urgent-care advice."""
    initial = {"article": request.GET.get("article", "")[:200], "practitioner": request.GET.get("practitioner")}
    # Bound on any POST: nothing ticked is an empty POST, which must get its error, not a blank form.
    form = SafetyCheckForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "bookings/safety_check.html", {"form": form}, status=400)
        if form.any_red_flag():
            urgent_care_count(now=timezone.now())
            response = render(request, "bookings/urgent_care.html")
            response.delete_cookie(flow.BOOKING_COOKIE, path=flow.FLOW_COOKIE_PATH)
            return response
        url = reverse("booking_time")
        if form.cleaned_data["practitioner"]:
            url += f"?practitioner={form.cleaned_data['practitioner']}"
        if kept_choice := flow.kept_form_choice(request):
            # Back to the details form the patient was filling in, for the time they had chosen.
            url = f"{reverse('booking_details')}?{kept_choice}"
        response = redirect(url)
        flow.set_flow_cookie(
            response, flow.BOOKING_COOKIE, flow.booking_flow_cookie_value(article=form.cleaned_data["article"])
        )
        return response
    booking_start_count(article_slug=initial["article"], now=timezone.now())
    return render(request, "bookings/safety_check.html", {"form": form})


# The time page as every patient sees it, per (week, practitioner) asked for.
_time_pages = PageCache("time page")


@never_cache
def booking_time(request):
    """Step 2: the soonest bookable times, a week at a time; each time is a link to step 3."""
    if flow.booking_state_or_none(request) is None:
        return flow.start_again(request)
    now = timezone.now()
    # The key is what the page will show: a week outside the bookable ones shows the nearest one.
    week = _parse_week(request.GET.get("week"))
    if week is not None:
        week = _withinbookable_weeks(week, now)
    # Every value that is not an id shares one key: those pages say the same ("We could not find ..."), and
    # differ from the page with no practitioner asked for.
    practitioner = _practitioner_asked(request.GET.get("practitioner"))

    def render_page() -> Rendering:
        context = slot_picker_context(request, now=now)
        return Rendering(
            render(request, "bookings/pick_time.html", context),
            dependency=context["availability"],
            expires_at=context["valid_until"],
        )

    return _time_pages.serve(request, (week, practitioner), now=now, render=render_page)


def minimum_notice_text() -> str:
    """BOOKING_MIN_NOTICE in words: "2 hours", "1 hour", "30 minutes"."""
    minutes = int(settings.BOOKING_MIN_NOTICE.total_seconds() // 60)
    if minutes % 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{minutes // 60} hour{'s' if minutes != 60 else ''}"


def too_soon_or_past(starts_at: datetime | None, *, now: datetime) -> str:
    """Why a time a patient may not book was refused, when it is the clock and not another patient: else ""."""
    if starts_at is None:
        return ""
    if starts_at <= now:
        return "past"
    if starts_at < now + settings.BOOKING_MIN_NOTICE:
        return "too soon"
    return ""


def _never_offered(any_at: datetime | None) -> bool:
    """An "any practitioner" time at which no slot starts at all: a made-up or mistyped link, not a time taken."""
    return any_at is not None and not Slot.objects.filter(starts_at=any_at).order_by().exists()


def _slot_unavailable_response(request, *, form, wanted_start, now, status=409, headline=None, never_offered=False):
    alternatives = nearest_alternatives(now=now, around=wanted_start)
    # A time that passed its minimum notice was not "just taken": say what happened.
    clock = too_soon_or_past(wanted_start, now=now)
    if never_offered:
        headline = "We do not offer a consultation at that time"
    elif clock == "past":
        headline = "Sorry, that time has passed"
    elif clock == "too soon":
        headline = "That time is too soon to book online"
    return render(
        request,
        "bookings/details.html",
        {
            "form": form,
            "chosen": None,
            "alternatives": alternatives,
            # Sent back with the form: a page sent without a choice, or for a time gone too, still offers these.
            "wanted_value": start_time_value(wanted_start) if wanted_start else "",
            "headline": headline or "Sorry, that time has just been taken",
            "too_soon": clock == "too soon",
            "minimum_notice": minimum_notice_text(),
        },
        status=status,
    )


def _bookable_slot(slot_id: int, *, now: datetime) -> Slot | None:
    return Slot.objects.bookable(now=now).filter(pk=slot_id).select_related("practitioner").first()


@never_cache
@rate_limited_post("booking")
def booking_details(request):
    """Step 3 and 4: the patient's details, then the booking itself (the cookies' protocol: bookings/flow.py)."""
    state = flow.booking_state_or_none(request)
    if state is None:
        return _details_without_safety_check(request)
    if request.method == "POST" and "choose_another_time" in request.POST:
        return flow.choose_another_time_keeping_the_details(request, query=_times_chosen_from(request.POST))
    now = timezone.now()
    asked = request.POST if request.method == "POST" else request.GET
    slot_id = parse_database_id(asked.get("slot"))
    # "Any practitioner": a start time, given to a practitioner free then as it is booked.
    any_at = parse_start_time(asked.get("at")) if slot_id is None else None
    if slot_id is None and request.method == "POST" and "slot" not in request.POST and "at" not in request.POST:
        # The "just taken" page offers times without choosing one for the patient: sent
        # without a choice, it asks again and keeps what they typed.
        return _slot_unavailable_response(
            request,
            form=PatientDetailsForm(request.POST),
            wanted_start=parse_start_time(request.POST.get("wanted")),
            now=now,
            status=400,
            headline="Please choose one of the times below",
        )
    form = PatientDetailsForm(request.POST) if request.method == "POST" else None
    if form is None or not form.is_valid():
        # A valid POST goes straight to the booking, which checks the slot under its lock.
        return _details_form(request, form, slot_id=slot_id, any_at=any_at, now=now)
    if form.filled_by_a_bot:
        # The same answer as a booking refused for its contact details: nothing tells a bot what gave it away.
        return _book_by_phone(request, status=409)
    return _book_online(request, form, state=state, slot_id=slot_id, any_at=any_at, now=now)


def _times_chosen_from(posted) -> str:
    """The time page's query (week, and practitioner) that offered the posted time: a practitioner's slot was
    chosen with that practitioner; a start time ("at") with any practitioner."""
    slot_id = parse_database_id(posted.get("slot"))
    slot = Slot.objects.filter(pk=slot_id).only("starts_at", "practitioner_id").first() if slot_id else None
    starts_at = slot.starts_at if slot else parse_start_time(posted.get("at"))
    if starts_at is None:
        return ""
    query = {"week": _parse_week(starts_at.astimezone(clinic_zone()).date().isoformat()).isoformat()}
    if slot is not None:
        query["practitioner"] = slot.practitioner_id
    return urlencode(query)


def _details_without_safety_check(request):
    """No valid pass: a posted form is kept for after the safety check (flow.py, step 3)."""
    if request.method == "POST":
        return flow.start_again_keeping_the_details(request)
    if flow.confirmations(request):
        # Back to the form after booking: the booking stands.
        messages.info(
            request,
            "Your booking is made: its confirmation e-mail has the details and a link to change it. "
            "To book another consultation, please answer the safety check again.",
        )
        return redirect("booking_start")
    return flow.start_again(request)


def _wanted_slot(slot_id: int | None) -> Slot | None:
    # Unordered: the model's default ordering would join the practitioner for nothing.
    return Slot.objects.filter(pk=slot_id).only("starts_at").order_by().first() if slot_id else None


def _wanted_start(request, *, slot_id: int | None, any_at: datetime | None) -> datetime | None:
    """The time the patient asked for, to offer the nearest ones: the "any practitioner" time, the chosen slot's
    start, or the start the form carried back ("wanted") when that slot has gone from the diary."""
    if any_at:
        return any_at
    if (slot := _wanted_slot(slot_id)) is not None:
        return slot.starts_at
    return parse_start_time(request.POST.get("wanted")) if request.method == "POST" else None


def _still_offered_by_its_practitioner(slot_id: int | None) -> bool:
    """Whether the slot is still in the diary of a practitioner taking online bookings: if not, it was not
    "just taken" but is no longer available."""
    return Slot.objects.filter(pk=slot_id, practitioner__in=Practitioner.objects.offering_consultations()).exists()


class ChosenTime(NamedTuple):
    """The time on the details form: one practitioner's slot, or a start time with "any practitioner"."""

    local_start: datetime
    practitioner_name: str | None  # None: any practitioner free then
    field: str  # the hidden field that carries it: "slot" or "at"
    value: str
    # The start time again ("wanted"), for the nearest times should the slot be gone from the diary when the form
    # comes back (its practitioner stopped taking bookings: the schedule deletes their open slots).
    wanted: str


def _chosen_time(*, slot_id: int | None, any_at: datetime | None, now: datetime) -> ChosenTime | None:
    """The time asked for, if a patient may still book it."""
    zone = clinic_zone()
    if slot_id:
        slot = _bookable_slot(slot_id, now=now)
        if slot is not None:
            local_start, wanted = slot.starts_at.astimezone(zone), start_time_value(slot.starts_at)
            return ChosenTime(local_start, slot.practitioner.full_name, "slot", str(slot.pk), wanted)
    elif any_at and Slot.objects.bookable(now=now, start=any_at).filter(starts_at=any_at).exists():
        return ChosenTime(any_at.astimezone(zone), None, "at", start_time_value(any_at), start_time_value(any_at))
    return None


def _details_form(
    request, form: PatientDetailsForm | None, *, slot_id: int | None, any_at: datetime | None, now: datetime
):
    """The form, first (FORM is None: filled from a kept form if there is one) or again with its errors."""
    status = 200 if form is None else 400
    kept = None
    if form is None:
        kept = flow.take_kept_details(request, now=now)
        if kept:
            messages.info(request, "Here is what you typed. Please check it, tick the box and confirm.")
        form = PatientDetailsForm(
            initial={"slot": slot_id, "submission_key": PatientDetailsForm.new_submission_key(), **(kept or {})}
        )
    chosen = _chosen_time(slot_id=slot_id, any_at=any_at, now=now)
    wanted_start = _wanted_start(request, slot_id=slot_id, any_at=any_at)
    if chosen is not None:
        response = render(request, "bookings/details.html", {"form": form, "chosen": chosen}, status=status)
    elif wanted_start is None:
        response = render(request, "bookings/slot_not_found.html", status=404)
    else:
        never_offered = _never_offered(any_at)
        response = _slot_unavailable_response(
            request,
            form=form,
            wanted_start=wanted_start,
            now=now,
            status=404 if never_offered else 409 if status == 200 else 400,
            headline="Sorry, that time is no longer available",
            never_offered=never_offered,
        )
    if kept is not None or flow.KEPT_FORM_COOKIE in request.COOKIES:
        response.delete_cookie(flow.KEPT_FORM_COOKIE, path=flow.FLOW_COOKIE_PATH)
    return response


def _book_online(
    request, form: PatientDetailsForm, *, state: dict, slot_id: int | None, any_at: datetime | None, now: datetime
):
    """Step 4: book, then confirm only to the browser that made the booking (flow.py, steps 4 to 6)."""
    article = (
        Article.objects.published(now=now).filter(slug=state.get("article")).first() if state.get("article") else None
    )
    submission_key = form.cleaned_data["submission_key"]
    browser_secret = state["browser"]
    try:
        result = appointment_book(
            slot_id=slot_id,
            patient=form.patient_details(),
            now=now,
            safety_answers=SafetyCheckForm.passed_answers(),
            privacy_notice_version=form.privacy_notice_version,
            source_article=article,
            submission_key=submission_key,
            manage_token=manage_token_for_submission(submission_key, browser_secret),
            online_guard=OnlineBookingGuard(safety_pass=state["pass"], client_key=client_address_key(request)),
            any_practitioner_at=any_at,
        )
    except SafetyCheckPassUsed:
        # Another tab booked with this pass already, or the cookie was copied: nothing is booked.
        return flow.start_again_keeping_the_details(request)
    except BookingLimitReached as refusal:
        return _book_by_phone(request, status=429 if refusal.reason == "address" else 409)
    except SlotUnavailable:
        # For "any practitioner": nobody is free at that time any more.
        wanted_start = _wanted_start(request, slot_id=slot_id, any_at=any_at)
        if wanted_start is None:
            return render(request, "bookings/slot_not_found.html", status=404)
        # What was typed is kept either way, with the nearest times.
        never_offered = _never_offered(any_at)
        return _slot_unavailable_response(
            request,
            form=form,
            wanted_start=wanted_start,
            now=now,
            status=404 if never_offered else 409,
            headline=None
            if any_at or _still_offered_by_its_practitioner(slot_id)
            else "Sorry, that time is no longer available",
            never_offered=never_offered,
        )
    known = flow.confirmations_with_proof(request, result.appointment, browser_secret=browser_secret)
    if known is None:
        return render(request, "bookings/already_booked.html", status=409)
    return flow.confirmation_redirect(request, result.appointment.pk, known=known)


def _book_by_phone(request, *, status: int):
    """The answer to a booking refused by a limit, or sent by a bot: phone us. It names nobody and nothing typed."""
    response = render(request, "bookings/book_by_phone.html", status=status)
    if status == 429:
        response["Retry-After"] = "3600"
    return response


@never_cache
def booking_confirmed(request):
    """Step 5: what, when, where, the calendar file and the manage link, as the booking stands now.

    Reloaded after a cancellation it says so and offers to book again; after a move it gives the new time.
    """
    appointment, token = flow.confirmed_appointment(request)
    if appointment is None:
        return redirect("booking_start")
    return render(
        request,
        "bookings/confirmed.html",
        {
            "appointment": appointment,
            "cancelled": appointment.status == Appointment.Status.CANCELLED,
            # The sequence counts moves and the cancellation: a live booking with one was moved.
            "moved": appointment.status != Appointment.Status.CANCELLED and appointment.sequence > 0,
            "local_start": appointment.slot.starts_at.astimezone(clinic_zone()),
            "manage_url": request.build_absolute_uri(reverse("manage", args=[token])),
        },
    )


@never_cache
def booking_forget(request):
    """ "Done on a shared computer? Forget this booking here": this browser stops showing its bookings.

    A POST from a plain form (no JavaScript needed); the e-mail keeps the manage link.
    """
    if request.method != "POST":
        return redirect("booking_confirmed")
    response = render(request, "bookings/forgotten.html")
    response.delete_cookie(flow.CONFIRMATIONS_COOKIE, path=flow.FLOW_COOKIE_PATH)
    response.delete_cookie(flow.BOOKING_COOKIE, path=flow.FLOW_COOKIE_PATH)
    return response


def _ics_response(appointment) -> HttpResponse:
    response = HttpResponse(appointment_ics(appointment), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="consultation.ics"'
    response["Cache-Control"] = "no-store"
    return response


def booking_confirmed_ics(request):
    appointment, _ = flow.confirmed_appointment(request)
    if appointment is None:
        raise Http404
    return _ics_response(appointment)


# -- The manage link ----------------------------------------------------------------------


def _appointment_for_token(token: str, *, now: datetime) -> Appointment:
    """The appointment behind a manage link, or 404 for a wrong, tampered or expired link."""
    appointment = Appointment.objects.by_manage_token(token).select_related("slot__practitioner").first()
    if appointment is None or appointment.slot.starts_at < now - MANAGE_LINK_LIFETIME:
        raise Http404
    return appointment


def _manage_context(appointment, *, now, token):
    return {
        "appointment": appointment,
        "token": token,
        "local_start": appointment.slot.starts_at.astimezone(clinic_zone()),
        "can_change": appointment.patient_can_change(now=now),
        "cutoff_hours": int(settings.MANAGE_CUTOFF.total_seconds() // 3600),
    }


@never_cache
def manage(request, token):
    """Opening the link only shows the booking: changes need a POST, so link scanners change nothing."""
    now = timezone.now()
    appointment = _appointment_for_token(token, now=now)
    context = _manage_context(appointment, now=now, token=token)
    context["cancel_form"] = CancelForm()
    return render(request, "bookings/manage.html", context)


@never_cache
@rate_limited_post("manage")
def manage_cancel(request, token):
    now = timezone.now()
    appointment = _appointment_for_token(token, now=now)
    if request.method != "POST":
        return redirect("manage", token=token)
    form = CancelForm(request.POST)
    if not form.is_valid():
        context = _manage_context(appointment, now=now, token=token) | {"cancel_form": form}
        return render(request, "bookings/manage.html", context, status=400)
    try:
        appointment_cancel(appointment=appointment, now=now, reason=form.cleaned_data["reason"])
    except ChangeNotAllowed:
        context = _manage_context(appointment, now=now, token=token) | {"cancel_form": form, "change_refused": True}
        return render(request, "bookings/manage.html", context, status=409)
    messages.success(request, "Your consultation has been cancelled. We hope to see you another time.")
    return redirect("manage", token=token)


@never_cache
@rate_limited_post("manage")
def manage_move(request, token):
    now = timezone.now()
    appointment = _appointment_for_token(token, now=now)
    context = _manage_context(appointment, now=now, token=token)
    if not context["can_change"]:
        context["cancel_form"] = CancelForm()
        context["change_refused"] = request.method == "POST"
        return render(request, "bookings/manage.html", context, status=409 if request.method == "POST" else 200)
    if request.method == "POST":
        form = MoveForm(request.POST)
        if form.is_valid():
            try:
                appointment_move(appointment=appointment, new_slot_id=form.cleaned_data["slot"], now=now)
            except SlotUnavailable as refusal:
                messages.error(request, _move_refusal(refusal, slot_id=form.cleaned_data["slot"], now=now))
                context |= slot_picker_context(request, now=now)
                return render(request, "bookings/manage_move.html", context, status=409)
            except ChangeNotAllowed:
                return redirect("manage", token=token)
            messages.success(request, "Your consultation has been moved. The new time is below.")
            return redirect("manage", token=token)
        context |= slot_picker_context(request, now=now) | {"move_form": form}
        return render(request, "bookings/manage_move.html", context, status=400)
    context |= slot_picker_context(request, now=now)
    return render(request, "bookings/manage_move.html", context)


def _move_refusal(refusal: SlotUnavailable, *, slot_id: int, now: datetime) -> str:
    if refusal.reason == "same slot":
        return "That's your current time: to move, choose a different one."
    wanted = Slot.objects.filter(pk=slot_id).values_list("starts_at", flat=True).first()
    clock = too_soon_or_past(wanted, now=now)
    if wanted is None:
        return "Sorry, that time is not in the diary any more. Please choose another."
    if clock == "past":
        return "Sorry, that time has passed. Please choose another."
    if clock == "too soon":
        return (
            f"That time is too soon to book online: online booking closes {minimum_notice_text()} before the start. "
            f"Please choose a later time, or phone us on {settings.CLINIC_PHONE}: we may still be able to see you then."
        )
    return "Sorry, that time has just been taken. Please choose another."


def manage_ics(request, token):
    appointment = _appointment_for_token(token, now=timezone.now())
    return _ics_response(appointment)


# -- The waiting list ---------------------------------------------------------------------


def _clinic_today(now: datetime) -> date:
    return now.astimezone(clinic_zone()).date()


def _waiting_list_form(request, *, now: datetime, initial: dict | None = None, booking=None) -> WaitingListJoinForm:
    today = _clinic_today(now)
    defaults = {
        "weekdays": [day for day in WorkingHours.Weekday.values if day < WorkingHours.Weekday.SATURDAY],
        "parts_of_day": list(PartOfDay.values),
        "wait_until": today + timedelta(days=min(28, settings.BOOKING_HORIZON_DAYS)),
    }
    return WaitingListJoinForm(
        request.POST or None, today=today, initial=defaults | (initial or {}), booking=booking, now=now
    )


def _join_waiting_list(request, form, *, now, safety_answers: dict, appointment=None, template_context=None):
    """The join form's POST: the entry, then its own page; or the form again, with what was typed and why."""
    context = {"form": form, **(template_context or {})}
    if not form.is_valid():
        return render(request, "bookings/waiting_list_join.html", context, status=400)
    try:
        _, token = waiting_list_join(
            request=form.waiting_list_request(),
            now=now,
            safety_answers=safety_answers,
            privacy_notice_version=form.privacy_notice_version,
            appointment=appointment,
        )
    except AlreadyWaiting:
        return render(request, "bookings/waiting_list_join.html", context | {"already_waiting": True}, status=409)
    messages.success(request, "You are on the waiting list. Keep this page's address: it is your link to it.")
    return redirect("waiting_list_entry", token=token)


@never_cache
@rate_limited_post("booking")
def waiting_list_join_view(request):
    """ "None of these times suit me": ask to join the waiting list, after the safety check (its answers are kept).

    Joining is confirmed by the e-mailed link; the answer is the same whether or not the address already waits
    (services.waiting_list_ask), so the page tells nobody who is on the list."""
    if flow.booking_state_or_none(request) is None:
        return flow.start_again(request)
    now = timezone.now()
    # The week and practitioner of the time page it was opened from: the form's choice, and the way back.
    practitioner = parse_database_id(request.GET.get("practitioner"))
    week = _parse_week(request.GET.get("week"))
    times_query = urlencode(
        {key: value for key, value in (("week", week and week.isoformat()), ("practitioner", practitioner)) if value}
    )
    form = _waiting_list_form(request, now=now, initial={"practitioner": practitioner})
    join_action = reverse("waiting_list_join") + (f"?{times_query}" if times_query else "")
    context = {"form": form, "times_query": times_query, "join_action": join_action}
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "bookings/waiting_list_join.html", context, status=400)
        waiting_list_ask(
            request=form.waiting_list_request(),
            now=now,
            safety_answers=SafetyCheckForm.passed_answers(),
            privacy_notice_version=form.privacy_notice_version,
        )
        context = {"email": form.cleaned_data["email"], "joining": True}
        return render(request, "bookings/waiting_list_sent.html", context)
    return render(request, "bookings/waiting_list_join.html", context)


@never_cache
@rate_limited_post("manage")
def waiting_list_lost_link(request):
    """ "Lost your link?": a fresh one by e-mail to the address's open entry; the same answer whether or not."""
    form = WaitingListLinkForm(request.POST or None)
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "bookings/waiting_list_lost.html", {"form": form}, status=400)
        waiting_list_send_link(email=form.cleaned_data["email"], now=timezone.now())
        return render(request, "bookings/waiting_list_sent.html", {"email": form.cleaned_data["email"]})
    return render(request, "bookings/waiting_list_lost.html", {"form": form})


@never_cache
@rate_limited_post("manage")
def manage_sooner(request, token):
    """ "I'd like something sooner": wait for an earlier time, keeping this booking until an offer is accepted."""
    now = timezone.now()
    appointment = _appointment_for_token(token, now=now)
    if not appointment.patient_can_change(now=now):
        return redirect("manage", token=token)
    initial = {
        "first_name": appointment.first_name,
        "last_name": appointment.last_name,
        "wait_until": min(
            _clinic_today(now) + timedelta(days=28), appointment.slot.starts_at.astimezone(clinic_zone()).date()
        ),
    }
    form = _waiting_list_form(request, now=now, initial=initial, booking=appointment)
    context = {
        "appointment": appointment,
        "token": token,
        "local_start": appointment.slot.starts_at.astimezone(clinic_zone()),
    }
    if not appointment.email:
        # Offers come by e-mail, and only to the booking's own address: a booking made without one cannot wait.
        return render(request, "bookings/waiting_list_join.html", context | {"no_email": True})
    if request.method == "POST":
        return _join_waiting_list(
            request,
            form,
            now=now,
            safety_answers=appointment.safety_answers,
            appointment=appointment,
            template_context=context,
        )
    return render(request, "bookings/waiting_list_join.html", {"form": form, **context})


def _entry_for_token(token: str) -> WaitingListEntry:
    entry = WaitingListEntry.objects.by_token(token).select_related("practitioner", "appointment__slot").first()
    if entry is None:
        raise Http404
    return entry


@never_cache
def waiting_list_entry(request, token):
    """The entry's own page: what it waits for, the offers made, and a button to leave."""
    entry = _entry_for_token(token)
    offers = entry.offers.select_related("slot__practitioner").order_by("-offered_at", "pk")
    zone = clinic_zone()
    for offer in offers:
        offer.local_start = offer.slot.starts_at.astimezone(zone)
    context = {"entry": entry, "offers": offers, "token": token}
    now = timezone.now()
    booking = None
    if entry.status == WaitingListEntry.Status.PENDING:
        # Opening the e-mailed link shows the address is theirs: their booking ahead may be named to them.
        booking = booking_to_move(email=entry.email, now=now)
        context["booking"] = booking
    elif entry.appointment_id:
        booking = entry.appointment
    if booking is not None:
        context["booking_start"] = booking.slot.starts_at.astimezone(zone)
        # Only times before the booking are offered to move it: say so when none of those asked for can be.
        context["nothing_earlier"] = not entry.wants_a_time_before(booking.slot.starts_at, now=now)
    return render(request, "bookings/waiting_list_entry.html", context)


_CONFIRM_ANSWERS = {
    "expired": "This link has expired: please join the waiting list again.",
    "already waiting": "This e-mail address is already on the waiting list: use “Lost your link?” for its link.",
    "ended": "This request has ended: please join the waiting list again.",
    "nothing earlier": (
        "None of the times you asked for comes before your booking, and the waiting list only moves a booking "
        "to an earlier time: nothing has changed. Confirm for another person, or join again with earlier days."
    ),
}


@never_cache
@rate_limited_post("manage")
def waiting_list_confirm_view(request, token):
    """The e-mailed link's button: join the list (moving the booking ahead, or for another person)."""
    entry = _entry_for_token(token)
    if request.method == "POST":
        outcome = waiting_list_confirm(
            entry=entry, now=timezone.now(), move_booking=request.POST.get("booking") != "another person"
        )
        if outcome == "joined":
            messages.success(request, "You are on the waiting list. This e-mailed link is your link to your place.")
        else:
            messages.error(request, _CONFIRM_ANSWERS[outcome])
    return redirect("waiting_list_entry", token=token)


@never_cache
@rate_limited_post("manage")
def waiting_list_leave_view(request, token):
    entry = _entry_for_token(token)
    if request.method == "POST" and entry.status == WaitingListEntry.Status.WAITING:
        waiting_list_leave(entry=entry, now=timezone.now())
        messages.success(request, "You have left the waiting list. We will not offer you any more times.")
    return redirect("waiting_list_entry", token=token)


# The offer page's answers when nothing was booked: the status and what the page says.
_OFFER_REFUSALS = {
    "unknown": 404,
    "used": 409,
    "gone": 409,
    "expired": 410,
    "left": 410,
    "too late to move": 409,
    "not earlier": 409,
    "limit": 409,
    "not taking bookings": 410,
}


@never_cache
@rate_limited_post("manage")
def waiting_list_offer(request, token):
    """An offered time: opening the link shows it (link scanners change nothing); a POST accepts it."""
    now = timezone.now()
    if request.method == "POST":
        result = waiting_list_offer_accept(token=token, now=now)
        offer = result.offer
        if result.outcome in ("booked", "moved"):
            appointment = result.appointment
            return render(
                request,
                "bookings/waiting_list_accepted.html",
                {
                    "appointment": appointment,
                    "moved": result.outcome == "moved",
                    "local_start": appointment.slot.starts_at.astimezone(clinic_zone()),
                    "manage_url": request.build_absolute_uri(reverse("manage", args=[result.manage_token]))
                    if result.manage_token
                    else "",
                },
            )
        outcome = result.outcome
    else:
        offer = (
            WaitingListOffer.objects.by_token(token)
            .with_batch_size()
            .select_related("entry", "slot__practitioner")
            .order_by()
            .first()
        )
        outcome = "unknown" if offer is None else offer_refusal(offer, now=now)
        if not outcome and Appointment.objects.live().filter(slot_id=offer.slot_id).exists():
            # Reception booked the held time for a caller: it has gone, though nobody accepted.
            outcome = "gone"
    context = {"outcome": outcome, "token": token}
    if offer is not None and outcome != "unknown":
        context |= {
            "offer": offer,
            "local_start": offer.slot.starts_at.astimezone(clinic_zone()),
            "held_until": offer.held_until.astimezone(clinic_zone()),
        }
    return render(request, "bookings/waiting_list_offer.html", context, status=_OFFER_REFUSALS.get(outcome, 200))
