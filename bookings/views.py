import itertools
import json
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.db import connection
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache

from articles import structured_data
from articles.models import Article
from bookings.calendar import appointment_ics
from bookings.forms import (
    SAFETY_QUESTIONS_VERSION,
    CallbackRequestForm,
    CancelForm,
    MoveForm,
    PatientDetailsForm,
    SafetyCheckForm,
    parse_database_id,
)
from bookings.models import (
    Appointment,
    KeptBookingForm,
    Practitioner,
    Slot,
    hash_token,
    manage_token_for_submission,
)
from bookings.schedule import AvailabilityVersion, clinic_zone, local_midnight
from bookings.services import (
    BookingLimitReached,
    ChangeNotAllowed,
    OnlineBookingGuard,
    SafetyCheckPassUsed,
    SlotUnavailable,
    appointment_book,
    appointment_cancel,
    appointment_move,
)
from clinic.page_cache import MAX_AGE, PageCache, Rendering
from clinic.ratelimit import client_address_key, rate_limited_post

# The booking flow keeps its state in signed cookies (django.core.signing), not in URLs and
# not in a database session: a patient never needs a session row, so the time page and the
# booking read nothing for them but the schedule. The cookies are HttpOnly, Secure in
# production, SameSite=Lax, sent only to /book/, and are good for an hour.
# - BOOKING_COOKIE: that the safety check was passed (every answer "no": one "yes" stops at step 1)
#   for which version of the questions, the article the patient came from, a random secret of
#   this browser ("browser") from which the booking's manage token is derived
#   (models.manage_token_for_submission), and the pass: a random id that one booking consumes
#   server-side (services.appointment_book), so a copied or replayed cookie books nothing.
# - CONFIRMATIONS_COOKIE: for each booking made in this browser, newest last, its id and that
#   browser secret: the proof that this browser made it. Never the manage token itself (signed is
#   not encrypted: anyone at the computer can read a cookie); the confirmation page derives the
#   token again from the proof, the booking's submission key and SECRET_KEY. A session cookie, so
#   that closing the browser forgets it, and the page offers to forget it at once (a shared computer).
# - KEPT_FORM_COOKIE: when a details form had to go back to the safety check (a second tab, or
#   more than an hour on the form), the time it was for and the random key of the row that keeps
#   what was typed (models.KeptBookingForm): the form comes back filled after the check.
BOOKING_COOKIE = "booking"
CONFIRMATIONS_COOKIE = "booking_confirmed"
KEPT_FORM_COOKIE = "booking_kept"
# What a patient typed that comes back after the safety check (the consent box is ticked again).
KEPT_FIELDS = ("first_name", "last_name", "email", "phone", "note")
PRUNE_KEPT_FORMS_EVERY = 100
_forms_kept = itertools.count(1)
FLOW_COOKIE_MAX_AGE = 3600
FLOW_COOKIE_PATH = "/book/"
CONFIRMATIONS_KEPT = 5
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
                callback = form.save(commit=False)
                callback.created_at = timezone.now()
                callback.save()
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


def _bookable_weeks(now: datetime) -> tuple[date, date]:
    """The Mondays of the first and the last week a patient may book in at NOW (clinic time)."""
    zone = clinic_zone()
    latest = now + timedelta(days=settings.BOOKING_HORIZON_DAYS)
    return _parse_week(now.astimezone(zone).date()), _parse_week(latest.astimezone(zone).date())


def _within_bookable_weeks(week: date, now: datetime) -> date:
    """WEEK, or the nearest week a patient may book in: what the time page shows when asked for it."""
    this_week, last_week = _bookable_weeks(now)
    return min(max(week, this_week), last_week)


def _distinct_times(slots):
    """For "any practitioner": one slot per start time, the first practitioner in list order."""
    return slots.order_by("starts_at", "practitioner__list_order", "practitioner_id").distinct("starts_at")


class BookableTime(NamedTuple):
    """One time in the picker: the slot to book, its local start, and as text its id and label ("09:40").

    The template prints the text: an int in a template goes through number formatting each time.
    """

    pk: int
    local_start: datetime
    value: str
    label: str


def slot_picker_context(request, *, now: datetime) -> dict:
    """A week of bookable times, grouped by local day, for the time page and the move page.

    Queries: practitioners; the first bookable slot (only without ?week); the week's slots;
    the next bookable slot after the week (only when the week is empty).

    Besides what the template shows, "availability" says which rows the answer was built from and
    "valid_until" when the clock alone will change it (the first time shown passing its minimum
    notice): the time page is kept rendered until either moves (clinic/page_cache.py).
    """
    zone = clinic_zone()
    practitioners = list(Practitioner.objects.offering_consultations())
    practitioner_id = parse_database_id(request.GET.get("practitioner"))
    chosen = next((p for p in practitioners if p.pk == practitioner_id), None)
    this_week, last_week = _bookable_weeks(now)

    week = asked_week = _parse_week(request.GET.get("week"))
    # From here to `depends_until`: the slots this answer reads (see "availability" below).
    depends_from = now + settings.BOOKING_MIN_NOTICE
    if week is None:
        first = Slot.objects.bookable(now=now, practitioner=chosen).only("starts_at").first()
        week = _parse_week(first.starts_at.astimezone(zone).date().isoformat()) if first else this_week
    week = _within_bookable_weeks(week, now)

    week_start, week_end = local_midnight(week), local_midnight(week + timedelta(days=7))
    if asked_week is not None:
        depends_from = max(depends_from, week_start)
    depends_until = week_end
    bookable = Slot.objects.bookable(now=now, start=week_start, end=week_end, practitioner=chosen)
    if chosen is None:
        bookable = _distinct_times(bookable)
    # Only what the picker shows, as plain tuples (no model instance per time) with the label made
    # here once: the template then only prints strings (the practitioner's name is chosen_practitioner's).
    days: dict[date, list[BookableTime]] = {}
    for pk, starts_at in bookable.values_list("pk", "starts_at"):
        local_start = starts_at.astimezone(zone)
        days.setdefault(local_start.date(), []).append(
            BookableTime(pk, local_start, str(pk), local_start.strftime("%H:%M"))
        )

    next_available = None
    if not days:
        depends_until = now + timedelta(days=settings.BOOKING_HORIZON_DAYS)
        following = Slot.objects.bookable(now=now, start=week_end, practitioner=chosen).only("starts_at").first()
        if following:
            next_available = following.starts_at.astimezone(zone)
    first_time_shown = min((times[0].local_start for times in days.values()), default=next_available)

    return {
        "practitioners": practitioners,
        "chosen_practitioner": chosen,
        "week": week,
        "week_end_day": week + timedelta(days=6),
        "previous_week": week - timedelta(days=7) if week > this_week else None,
        "next_week": week + timedelta(days=7) if week < last_week else None,
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


def nearest_alternatives(*, now: datetime, around: datetime | None, limit: int = 5) -> list[Slot]:
    """The bookable times nearest to the one a patient wanted (soonest first when unknown)."""
    zone = clinic_zone()
    target = around or now
    later = list(_distinct_times(Slot.objects.bookable(now=now, start=target)).select_related("practitioner")[:limit])
    earlier = list(
        Slot.objects.bookable(now=now, end=target)
        .order_by("-starts_at", "practitioner__list_order")
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
    form = SafetyCheckForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "bookings/safety_check.html", {"form": form}, status=400)
        if form.any_red_flag():
            response = render(request, "bookings/urgent_care.html")
            response.delete_cookie(BOOKING_COOKIE, path=FLOW_COOKIE_PATH)
            return response
        url = reverse("booking_time")
        if form.cleaned_data["practitioner"]:
            url += f"?practitioner={form.cleaned_data['practitioner']}"
        kept = _flow_cookie(request, KEPT_FORM_COOKIE)
        if isinstance(kept, dict) and parse_database_id(kept.get("slot")):
            # Back to the details form the patient was filling in, for the time they had chosen.
            url = f"{reverse('booking_details')}?slot={parse_database_id(kept['slot'])}"
        response = redirect(url)
        _set_flow_cookie(response, BOOKING_COOKIE, booking_flow_cookie_value(article=form.cleaned_data["article"]))
        return response
    return render(request, "bookings/safety_check.html", {"form": form})


def booking_flow_cookie_value(*, article: str = "") -> str:
    """The signed BOOKING_COOKIE of a patient who has just passed the safety check."""
    # "browser": a random secret of this browser's booking, from which its manage token is derived.
    state = {
        "safety": SAFETY_QUESTIONS_VERSION,
        "article": article or "",
        "browser": secrets.token_urlsafe(16),
        "pass": secrets.token_urlsafe(16),
    }
    return _signed(BOOKING_COOKIE, state)


def _signed(name: str, value) -> str:
    return signing.dumps(value, salt=f"bookings.{name}")


def _set_flow_cookie(response, name: str, value: str, *, session_only: bool = False) -> None:
    """Set one of the flow's cookies; SESSION_ONLY: no Max-Age, so it goes when the browser closes.

    Either way the signature's timestamp limits it to FLOW_COOKIE_MAX_AGE (_flow_cookie).
    """
    response.set_cookie(
        name,
        value,
        max_age=None if session_only else FLOW_COOKIE_MAX_AGE,
        path=FLOW_COOKIE_PATH,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def _flow_cookie(request, name: str):
    """The cookie's value, or None when it is missing, altered or older than an hour."""
    try:
        return signing.loads(request.COOKIES.get(name, ""), salt=f"bookings.{name}", max_age=FLOW_COOKIE_MAX_AGE)
    except (signing.BadSignature, ValueError):
        return None


def _booking_state_or_none(request) -> dict | None:
    """The patient's progress, if they passed the safety check as it is asked now (within the hour)."""
    state = _flow_cookie(request, BOOKING_COOKIE)
    if not isinstance(state, dict) or state.get("safety") != SAFETY_QUESTIONS_VERSION:
        return None
    if not isinstance(state.get("pass"), str) or not isinstance(state.get("browser"), str):
        return None
    return state


def _start_again(request):
    messages.info(request, "Please answer the short safety check first: it takes a few seconds.")
    return redirect("booking_start")


def _start_again_keeping_the_details(request):
    """Back to the safety check with what the patient typed kept (never in the URL), to refill the form after it.

    1. A POST that repeats a booking this browser made (Back, then Confirm again) goes to its confirmation.
    2. Otherwise the posted fields are kept in a KeptBookingForm row, behind a random key in a cookie.
    """
    earlier = _booking_with_submission_key(request.POST.get("submission_key"))
    if earlier is not None and str(earlier.pk) in _confirmations(request):
        messages.info(request, "This consultation is already booked: here it is. Nothing new was booked.")
        return _confirmation_redirect(request, earlier.pk)
    typed = {
        name: request.POST.get(name, "")[: PatientDetailsForm.base_fields[name].max_length] for name in KEPT_FIELDS
    }
    if not any(value.strip() for value in typed.values()):
        return _start_again(request)
    key = secrets.token_urlsafe(32)
    now = timezone.now()
    KeptBookingForm.objects.create(
        key_hash=hash_token(key), fields=typed, expires_at=now + timedelta(seconds=FLOW_COOKIE_MAX_AGE)
    )
    if next(_forms_kept) % PRUNE_KEPT_FORMS_EVERY == 0:
        KeptBookingForm.objects.filter(expires_at__lt=now).delete()
    messages.info(
        request,
        "Your consultation is not booked yet: please answer the safety check again (it takes a few seconds). "
        "What you typed is kept and comes back after it.",
    )
    response = redirect("booking_start")
    kept = {"key": key, "slot": parse_database_id(request.POST.get("slot"))}
    _set_flow_cookie(response, KEPT_FORM_COOKIE, _signed(KEPT_FORM_COOKIE, kept))
    return response


TAKE_KEPT_FORM_SQL = (
    f"DELETE FROM {KeptBookingForm._meta.db_table} WHERE key_hash = %s AND expires_at > %s RETURNING fields"
)


def _take_kept_details(request, *, now: datetime) -> dict | None:
    """What the patient typed before the safety check was asked again, once (the row is deleted), or None."""
    kept = _flow_cookie(request, KEPT_FORM_COOKIE)
    if not isinstance(kept, dict) or not isinstance(kept.get("key"), str):
        return None
    with connection.cursor() as cursor:
        cursor.execute(TAKE_KEPT_FORM_SQL, [hash_token(kept["key"]), now])
        row = cursor.fetchone()
    if row is None:
        return None
    # Django has the driver hand jsonb over as text (JSONField decodes it itself).
    fields = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    if not isinstance(fields, dict):
        return None
    return {name: str(fields.get(name, "")) for name in KEPT_FIELDS}


def _booking_with_submission_key(value) -> Appointment | None:
    try:
        key = uuid.UUID(str(value))
    except ValueError:
        return None
    return Appointment.objects.filter(submission_key=key).order_by().first()


# The time page as every patient sees it, per (week, practitioner) asked for.
_time_pages = PageCache("time page")


@never_cache
def booking_time(request):
    """Step 2: the soonest bookable times, a week at a time; each time is a link to step 3."""
    if _booking_state_or_none(request) is None:
        return _start_again(request)
    now = timezone.now()
    # The key is what the page will show: a week outside the bookable ones shows the nearest one.
    week = _parse_week(request.GET.get("week"))
    if week is not None:
        week = _within_bookable_weeks(week, now)
    practitioner = parse_database_id(request.GET.get("practitioner"))

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


def _slot_unavailable_response(request, *, form, wanted_start, now, status=409, headline=None):
    alternatives = nearest_alternatives(now=now, around=wanted_start)
    # A time that passed its minimum notice was not "just taken": say what happened.
    clock = too_soon_or_past(wanted_start, now=now)
    if clock == "past":
        headline = "Sorry, that time has passed"
    elif clock == "too soon":
        headline = "That time is too soon to book online"
    return render(
        request,
        "bookings/details.html",
        {
            "form": form,
            "slot": None,
            "alternatives": alternatives,
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
    """Step 3 and 4: the patient's details, then the booking itself."""
    state = _booking_state_or_none(request)
    if state is None:
        if request.method == "POST":
            return _start_again_keeping_the_details(request)
        if _confirmations(request):
            # Back to the form after booking: the booking stands.
            messages.info(
                request,
                "Your booking is made: its confirmation e-mail has the details and a link to change it. "
                "To book another consultation, please answer the safety check again.",
            )
        return _start_again(request)
    now = timezone.now()
    raw_slot = request.POST.get("slot") if request.method == "POST" else request.GET.get("slot")
    slot_id = parse_database_id(raw_slot)
    if slot_id is None and request.method == "POST" and "slot" not in request.POST:
        # The "just taken" page offers times without choosing one for the patient: sent
        # without a choice, it asks again and keeps what they typed.
        return _slot_unavailable_response(
            request,
            form=PatientDetailsForm(request.POST),
            wanted_start=None,
            now=now,
            status=400,
            headline="Please choose one of the times below",
        )

    def wanted_slot():
        # Unordered: the model's default ordering would join the practitioner for nothing.
        return Slot.objects.filter(pk=slot_id).only("starts_at").order_by().first() if slot_id else None

    form = PatientDetailsForm(request.POST) if request.method == "POST" else None
    if form is None or not form.is_valid():
        # The form, first or again. A valid POST goes straight to the booking, which checks the slot under its lock.
        status = 200 if form is None else 400
        kept = None
        if form is None:
            kept = _take_kept_details(request, now=now)
            if kept:
                messages.info(request, "Here is what you typed. Please check it, tick the box and confirm.")
            form = PatientDetailsForm(
                initial={"slot": slot_id, "submission_key": PatientDetailsForm.new_submission_key(), **(kept or {})}
            )
        slot = _bookable_slot(slot_id, now=now) if slot_id else None
        if slot is not None:
            slot.local_start = slot.starts_at.astimezone(clinic_zone())
            response = render(request, "bookings/details.html", {"form": form, "slot": slot}, status=status)
        elif (any_slot := wanted_slot()) is None:
            response = render(request, "bookings/slot_not_found.html", status=404)
        else:
            response = _slot_unavailable_response(
                request,
                form=form,
                wanted_start=any_slot.starts_at,
                now=now,
                status=409 if status == 200 else 400,
                headline="Sorry, that time is no longer available",
            )
        if kept is not None or KEPT_FORM_COOKIE in request.COOKIES:
            response.delete_cookie(KEPT_FORM_COOKIE, path=FLOW_COOKIE_PATH)
        return response

    if form.filled_by_a_bot:
        # The same answer as a booking refused for its contact details: nothing tells a bot what gave it away.
        return _book_by_phone(request, status=409)
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
        )
    except SafetyCheckPassUsed:
        # Another tab booked with this pass already, or the cookie was copied: nothing is booked.
        return _start_again_keeping_the_details(request)
    except BookingLimitReached as refusal:
        return _book_by_phone(request, status=429 if refusal.reason == "address" else 409)
    except SlotUnavailable:
        any_slot = wanted_slot()
        if any_slot is None:
            return render(request, "bookings/slot_not_found.html", status=404)
        return _slot_unavailable_response(request, form=form, wanted_start=any_slot.starts_at, now=now)

    # A repeated submission is confirmed only to the browser that made the booking: one whose
    # confirmations cookie proves it (sent again after Back), or one with the same booking cookie,
    # which derives the same token (a double click whose second request never received the first
    # answer's cookie). A replay from another browser learns nothing of the booking.
    confirmations = _confirmations(request)
    proof = browser_secret if _proves(result.appointment, browser_secret) else None
    earlier_proof = confirmations.pop(str(result.appointment.pk), None)
    if proof is None and earlier_proof and _proves(result.appointment, earlier_proof):
        proof = earlier_proof
    if proof is None:
        return render(request, "bookings/already_booked.html", status=409)
    confirmations[str(result.appointment.pk)] = proof
    return _confirmation_redirect(request, result.appointment.pk, confirmations=confirmations)


def _confirmation_redirect(request, appointment_pk: int, *, confirmations: dict[str, str] | None = None):
    """To the confirmation page of a booking this browser made; the booking flow is over."""
    confirmations = _confirmations(request) if confirmations is None else confirmations
    # This booking last (the one the confirmation page shows), and only the newest few.
    proof = confirmations.pop(str(appointment_pk))
    confirmations = dict(list(confirmations.items())[-(CONFIRMATIONS_KEPT - 1) :])
    confirmations[str(appointment_pk)] = proof
    response = redirect("booking_confirmed")
    _set_flow_cookie(response, CONFIRMATIONS_COOKIE, _signed(CONFIRMATIONS_COOKIE, confirmations), session_only=True)
    response.delete_cookie(BOOKING_COOKIE, path=FLOW_COOKIE_PATH)
    return response


def _book_by_phone(request, *, status: int):
    """The answer to a booking refused by a limit, or sent by a bot: phone us. It names nobody and nothing typed."""
    response = render(request, "bookings/book_by_phone.html", status=status)
    if status == 429:
        response["Retry-After"] = "3600"
    return response


def _confirmations(request) -> dict[str, str]:
    """{appointment id: the secret of the browser that booked it}, newest last (see CONFIRMATIONS_COOKIE)."""
    confirmations = _flow_cookie(request, CONFIRMATIONS_COOKIE)
    if not isinstance(confirmations, dict):
        return {}
    return {str(key): value for key, value in confirmations.items() if isinstance(value, str)}


def _confirmed_appointment(request):
    """The last booking made in this browser (within the hour) and its manage token, or (None, None).

    The token is derived again from the browser secret the cookie holds; it must match the
    booking's stored hash, so a cookie naming another booking's id shows nothing.
    """
    confirmations = _confirmations(request)
    if not confirmations:
        return None, None
    appointment_id, browser_secret = list(confirmations.items())[-1]
    appointment_id = parse_database_id(appointment_id)
    appointment = (
        Appointment.objects.filter(pk=appointment_id).select_related("slot__practitioner").first()
        if appointment_id
        else None
    )
    if appointment is None or not _proves(appointment, browser_secret):
        return None, None
    return appointment, manage_token_for_submission(appointment.submission_key, browser_secret)


def _proves(appointment, browser_secret: str) -> bool:
    """Whether BROWSER_SECRET is that of the browser that booked APPOINTMENT: it derives its manage token."""
    if appointment.submission_key is None:
        return False
    token = manage_token_for_submission(appointment.submission_key, browser_secret)
    return constant_time_compare(hash_token(token), appointment.manage_token_hash)


@never_cache
def booking_confirmed(request):
    """Step 5: what, when, where, the calendar file and the manage link, as the booking stands now.

    Reloaded after a cancellation it says so and offers to book again; after a move it gives the new time.
    """
    appointment, token = _confirmed_appointment(request)
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
    response.delete_cookie(CONFIRMATIONS_COOKIE, path=FLOW_COOKIE_PATH)
    response.delete_cookie(BOOKING_COOKIE, path=FLOW_COOKIE_PATH)
    return response


def _ics_response(appointment) -> HttpResponse:
    response = HttpResponse(appointment_ics(appointment), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="consultation.ics"'
    response["Cache-Control"] = "no-store"
    return response


def booking_confirmed_ics(request):
    appointment, _ = _confirmed_appointment(request)
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
