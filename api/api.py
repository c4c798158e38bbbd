"""/api/v1/: the booking site for other systems (practice-management, accounting, a partner site).

Built with django-ninja: the OpenAPI 3.1 description (/api/v1/openapi.json) is generated from the
same typed signatures that validate the requests, so the two cannot drift apart.

- Public, no key: the practitioners offered online, and the bookable times of a week: the time
  page's rule and its kept rendering (bookings.views.slot_picker_context, clinic.page_cache).
- With a key (api.models.ApiKey, "Authorization: Bearer clk_..."): appointments, by scope.
- Every error is an RFC 9457 problem (application/problem+json) with a stable `code`.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, NinjaAPI, Path, Query, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer

from api.models import ApiKey, ApiScope
from bookings import services
from bookings.forms import SAFETY_QUESTIONS, SAFETY_QUESTIONS_VERSION, clean_person_name, clean_phone
from bookings.models import Appointment, Practitioner, Slot
from bookings.privacy import patient_data_access_record
from bookings.schedule import clinic_zone, local_midnight
from bookings.views import bookable_weeks, nearest_alternatives, slot_picker_context
from clinic.middleware import is_database_unavailable
from clinic.page_cache import PageCache, Rendering
from clinic.privacy_notices import current_privacy_notice_version
from clinic.ratelimit import count_post

DATABASE_ID_MAX = 2**63 - 1
PROBLEM = "application/problem+json"


# -- Problems (RFC 9457) ----------------------------------------------------------------------------


class Problem(Exception):
    """An error answer: HTTP status, a stable code, a short title, and what to do in `detail`."""

    def __init__(self, status: int, code: str, title: str, detail: str = "", headers=None, **extra):
        super().__init__(code)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(status: int, code: str, title: str, detail: str = "", headers=None, **extra) -> HttpResponse:
    body = {"type": f"/api/v1/problems/{code}", "title": title, "status": status, "code": code}
    if detail:
        body["detail"] = detail
    body.update(extra)
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# What a status means when nothing more specific was said (the middleware uses it for Django's own answers).
GENERIC_PROBLEMS = {
    400: ("bad-request", "The request could not be read."),
    401: ("unauthorised", "A valid API key is needed."),
    403: ("forbidden", "The API key may not do this."),
    404: ("not-found", "There is nothing at this address."),
    405: ("method-not-allowed", "This address does not take that method."),
    409: ("conflict", "The request conflicts with the current state."),
    413: ("too-large", "The request is too large."),
    422: ("invalid", "The request was read but its content is not valid."),
    429: ("rate-limited", "Too many requests: try again later."),
    500: ("server-error", "Something went wrong on our side; nothing was changed."),
    503: ("unavailable", "The service is briefly unavailable; try again shortly."),
}


def generic_problem(status: int, headers=None) -> HttpResponse:
    code, title = GENERIC_PROBLEMS.get(status, ("error", "The request failed."))
    return problem_response(status, code, title, headers=headers)


class ProblemOut(Schema):
    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None
    alternatives: list[dict[str, Any]] | None = None


class ProblemAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        """Errors are described as what they are sent as: application/problem+json."""
        schema = super().get_openapi_schema(**kwargs)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        content[PROBLEM] = content.pop("application/json")
        return schema


# -- Keys, scopes and the rate limit ----------------------------------------------------------------


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        key = ApiKey.find(token)
        if key is None or key.revoked_at is not None:
            raise Problem(401, "invalid-key", "The API key is not valid or has been revoked.")
        request.api_key_name = key.name
        now = timezone.now()
        count, window_end = count_post(f"api-key:{key.pk}", "key", now=now)
        if count > settings.API_KEY_REQUESTS_PER_WINDOW:
            wait = max(1, math.ceil((window_end - now).total_seconds()))
            raise Problem(
                429,
                "rate-limited",
                "This key has made too many requests.",
                f"At most {settings.API_KEY_REQUESTS_PER_WINDOW} requests per {settings.RATE_LIMIT_WINDOW_SECONDS} s.",
                headers={"Retry-After": str(wait)},
            )
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key


class OptionalApiKey(ApiKeyAuth):
    """The public endpoints: no key is fine; a key sent is checked, and must hold availability:read."""

    def __call__(self, request):
        if not request.headers.get("Authorization"):
            return "anonymous"
        key = super().__call__(request)
        if key is not None:
            require(key, ApiScope.AVAILABILITY_READ)
        return key


def require(key: ApiKey, scope: str) -> None:
    if not key.has_scope(scope):
        raise Problem(403, "missing-scope", "The API key lacks a scope this needs.", f"This needs the {scope} scope.")


api = ProblemAPI(
    title="Clinic booking API",
    version="1",
    description="Availability, appointments and their changes. Errors are RFC 9457 problem details.",
    urls_namespace="api-v1",
    docs_url=None,
)
ERRORS = dict.fromkeys((400, 401, 403, 404, 409, 413, 422, 429, 503), ProblemOut)


@api.exception_handler(Problem)
def _problem(request, exc: Problem):
    return problem_response(exc.status, exc.code, exc.title, exc.detail, exc.headers, **exc.extra)


@api.exception_handler(NinjaValidationError)
def _invalid(request, exc: NinjaValidationError):
    errors = [
        {"where": ".".join(str(part) for part in error.get("loc", ())), "message": str(error.get("msg", ""))}
        for error in exc.errors
    ]
    return problem_response(422, "invalid", "Some values are missing or not valid.", errors=errors)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return problem_response(401, "missing-key", "Send an API key as 'Authorization: Bearer <key>'.")


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return generic_problem(exc.status_code)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return generic_problem(404)


@api.exception_handler(RequestDataTooBig)
def _too_large(request, exc):
    return problem_response(
        413,
        "too-large",
        "The request body is too large.",
        f"Send at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
    )


@api.exception_handler(DatabaseError)
def _database_error(request, exc):
    """The database out of reach is a 503 to retry, as on the site's pages, in debug as in production
    (django-ninja would answer a debug 500 itself); any other database error is a bug: Django's 500."""
    if is_database_unavailable(exc):
        return generic_problem(503, headers={"Retry-After": "5", "Cache-Control": "no-store"})
    raise exc


# -- Shapes ----------------------------------------------------------------------------------------


def _local(moment: datetime) -> datetime:
    """Times leave in the clinic's zone, with their offset."""
    return moment.astimezone(clinic_zone())


class PractitionerOut(Schema):
    id: int
    name: str
    profession: str


class AvailableTime(Schema):
    slot_id: int
    starts_at: datetime
    ends_at: datetime
    practitioner_id: int


class AvailabilityOut(Schema):
    week: date
    practitioner_id: int | None
    times: list[AvailableTime]
    next_available: datetime | None


class PatientOut(Schema):
    first_name: str
    last_name: str
    email: str | None = None
    phone: str | None = None


class AppointmentOut(Schema):
    id: int
    status: str
    source: str
    starts_at: datetime
    ends_at: datetime
    practitioner: PractitionerOut
    patient: PatientOut | None = None
    note: str | None = None
    safety_answers: dict[str, Any] | None = None
    privacy_notice_version: str | None = None
    cancel_reason: str | None = None


class PatientIn(Schema):
    first_name: str = Field(max_length=80)
    last_name: str = Field(max_length=80)
    phone: str = Field(max_length=32)
    email: str = Field("", max_length=254)
    note: str = Field("", max_length=1000)


class BookingIn(Schema):
    slot_id: int = Field(ge=1, le=DATABASE_ID_MAX)
    patient: PatientIn
    safety_answers: dict[str, bool | Literal["yes", "no"]] = Field(
        description="Every red-flag question by its key, answered true/false or 'yes'/'no'. Any yes: no booking."
    )
    privacy_notice_version: str = Field(max_length=20, description="The notice the patient was shown.")


class MoveIn(Schema):
    slot_id: int = Field(ge=1, le=DATABASE_ID_MAX)


class CancelIn(Schema):
    reason: str = Field(min_length=1, max_length=300)


class StatusIn(Schema):
    status: Literal["booked", "arrived", "completed", "no_show"]


class SafetyQuestionOut(Schema):
    key: str
    question: str


def appointment_out(appointment: Appointment, key: ApiKey, *, detail: bool) -> dict:
    """No more patient data than the key's scopes allow: the name with appointments:read; contact details,
    the note and the safety answers only there and only for one appointment (never in a list)."""
    slot = appointment.slot
    out = {
        "id": appointment.pk,
        "status": appointment.status,
        "source": appointment.source,
        "starts_at": _local(slot.starts_at),
        "ends_at": _local(slot.ends_at),
        "practitioner": _practitioner_out(slot.practitioner),
    }
    if key.has_scope(ApiScope.APPOINTMENTS_READ):
        out["patient"] = {"first_name": appointment.first_name, "last_name": appointment.last_name}
        if detail:
            out["patient"].update(email=appointment.email, phone=appointment.phone)
            out.update(
                note=appointment.note,
                safety_answers=appointment.safety_answers,
                privacy_notice_version=appointment.privacy_notice_version,
                cancel_reason=appointment.cancel_reason,
            )
    return out


def _practitioner_out(practitioner: Practitioner) -> dict:
    return {"id": practitioner.pk, "name": practitioner.full_name, "profession": practitioner.profession}


# -- Public ----------------------------------------------------------------------------------------


@api.get("/practitioners", response={200: list[PractitionerOut], **ERRORS}, auth=OptionalApiKey(), tags=["public"])
def practitioners(request):
    """The practitioners a patient may book online, in the clinic's order."""
    return [_practitioner_out(p) for p in Practitioner.objects.offering_consultations()]


@api.get("/safety-questions", response={200: list[SafetyQuestionOut], **ERRORS}, auth=OptionalApiKey(), tags=["public"])
def safety_questions(request):
    """The red-flag questions a booking must answer, by key."""
    return [{"key": key, "question": question} for key, question in SAFETY_QUESTIONS]


# The availability answer as everyone sees it, kept until the slots behind it change (as the time page is).
_availability_answers = PageCache("API availability")


@api.get("/availability", response={200: AvailabilityOut, **ERRORS}, auth=OptionalApiKey(), tags=["public"])
def availability(
    request,
    week: date | None = Query(None, description="Any day of the week wanted; the soonest week with times if left out."),
    practitioner: int | None = Query(None, ge=1, le=DATABASE_ID_MAX, description="One practitioner, or any."),
):
    """The bookable times of one week: the same rule as the booking site's time page, and as fresh.

    For "any practitioner", one time per start time (the first practitioner in the clinic's order).
    """
    if practitioner is not None and not Practitioner.objects.offering_consultations().filter(pk=practitioner).exists():
        raise Problem(404, "unknown-practitioner", "No practitioner with that id is offered online.")
    now = timezone.now()
    if week is not None:
        first, last = bookable_weeks(now)
        if not first <= week - timedelta(days=week.weekday()) <= last:
            # The time page shows the nearest bookable week instead; a system asking for another week
            # would take those times for the week it asked for.
            raise Problem(
                422,
                "week-not-bookable",
                "That week cannot be booked online.",
                f"Ask for a week from {first.isoformat()} to {last.isoformat()} (Mondays, clinic time).",
            )

    def render() -> Rendering:
        context = slot_picker_context(request, now=now)
        times = [time for _, day_times in context["days"] for time in day_times]
        # The picker keeps only ids and starts; one more query for the ends and practitioners (as rows: a model
        # instance for each of up to 135 times cost more than the query).
        shown = Slot.objects.filter(pk__in=[t.pk for t in times]).values_list("pk", "ends_at", "practitioner_id")
        slots = {pk: (ends_at, practitioner_id) for pk, ends_at, practitioner_id in shown} if times else {}
        body = AvailabilityOut(
            week=context["week"],
            practitioner_id=context["chosen_practitioner"].pk if context["chosen_practitioner"] else None,
            # Constructed, not validated: ints and aware datetimes from the database, up to 135 of them, and
            # ninja's validation of each (its Django-object getter) cost more than the rest of the answer.
            times=[
                AvailableTime.model_construct(
                    slot_id=time.pk,
                    starts_at=time.local_start,
                    ends_at=_local(slots[time.pk][0]),
                    practitioner_id=slots[time.pk][1],
                )
                for time in times
            ],
            next_available=context["next_available"],
        )
        return Rendering(
            HttpResponse(body.model_dump_json(), content_type="application/json"),
            dependency=context["availability"],
            expires_at=context["valid_until"],
        )

    return _availability_answers.serve(request, (str(week), practitioner), now=now, render=render)


# -- With a key ------------------------------------------------------------------------------------


def _appointment_for(appointment_id: int) -> Appointment:
    try:
        return Appointment.objects.select_related("slot__practitioner").get(pk=appointment_id)
    except Appointment.DoesNotExist:
        raise Problem(404, "unknown-appointment", "No appointment has that id.") from None


AppointmentId = Path(..., ge=1, le=DATABASE_ID_MAX)


@api.get(
    "/appointments",
    response={200: list[AppointmentOut], **ERRORS},
    auth=ApiKeyAuth(),
    tags=["appointments"],
    exclude_none=True,
)
def appointments(
    request,
    day: date = Query(..., description="The day, in the clinic's zone."),
    practitioner: int | None = Query(None, ge=1, le=DATABASE_ID_MAX),
):
    """A day's appointments (any status), by start time; optionally one practitioner's. Needs appointments:read."""
    require(request.auth, ApiScope.APPOINTMENTS_READ)
    if not 2000 <= day.year <= 9000:
        raise Problem(422, "invalid", "Choose a day between the years 2000 and 9000.")
    start = local_midnight(day)
    listed = Appointment.objects.filter(
        slot__starts_at__gte=start, slot__starts_at__lt=local_midnight(day + timedelta(days=1))
    ).select_related("slot__practitioner")
    if practitioner is not None:
        listed = listed.filter(slot__practitioner_id=practitioner)
    listed = list(listed.order_by("slot__starts_at", "pk"))
    patient_data_access_record(request, page="api_appointments", appointments=listed, api_key_name=request.auth.name)
    return [appointment_out(each, request.auth, detail=False) for each in listed]


@api.get(
    "/appointments/{appointment_id}",
    response={200: AppointmentOut, **ERRORS},
    auth=ApiKeyAuth(),
    tags=["appointments"],
    exclude_none=True,
)
def appointment(request, appointment_id: int = AppointmentId):
    """One appointment, with the patient's details, note and safety answers. Needs appointments:read."""
    require(request.auth, ApiScope.APPOINTMENTS_READ)
    found = _appointment_for(appointment_id)
    patient_data_access_record(request, page="api_appointment", appointments=[found], api_key_name=request.auth.name)
    return appointment_out(found, request.auth, detail=True)


def _checked_patient(patient: PatientIn) -> services.PatientDetails:
    """The booking site's own rules for names, phone and e-mail; every problem at once."""
    errors, cleaned = [], {}
    checks = {
        "first_name": clean_person_name,
        "last_name": clean_person_name,
        "phone": clean_phone,
    }
    for field, check in checks.items():
        try:
            cleaned[field] = check(getattr(patient, field))
        except DjangoValidationError as error:
            errors.append({"where": f"body.patient.{field}", "message": " ".join(error.messages)})
    if patient.email:
        try:
            validate_email(patient.email)
        except DjangoValidationError:
            errors.append({"where": "body.patient.email", "message": "Enter a valid e-mail address."})
    if errors:
        raise Problem(422, "invalid", "Some values are missing or not valid.", errors=errors)
    return services.PatientDetails(email=patient.email, note=patient.note, **cleaned)


def _recorded_safety_answers(answers: dict) -> dict:
    """Every red flag answered, none yes: the answers as the booking site stores them. Otherwise a problem."""
    keys = [key for key, _ in SAFETY_QUESTIONS]
    missing = [key for key in keys if key not in answers]
    unknown = [key for key in answers if key not in keys]
    if missing or unknown:
        raise Problem(
            422,
            "safety-answers-incomplete",
            "Answer every safety question, by its key (GET /api/v1/safety-questions).",
            f"Missing: {', '.join(missing) or 'none'}. Unknown: {', '.join(unknown) or 'none'}.",
        )
    said_yes = {key: answers[key] in (True, "yes") for key in keys}
    if any(said_yes.values()):
        raise Problem(
            422,
            "urgent-care",
            "This needs urgent medical help, not a physiotherapy booking. Nothing was booked.",
            settings.CLINIC_EMERGENCY_GUIDANCE,
        )
    return {
        "version": SAFETY_QUESTIONS_VERSION,
        "answers": [{"key": key, "question": question, "answer": "no"} for key, question in SAFETY_QUESTIONS],
    }


def _taken(now: datetime, around: datetime | None) -> Problem:
    alternatives = [
        {
            "slot_id": slot.pk,
            "starts_at": _local(slot.starts_at).isoformat(),
            "practitioner_id": slot.practitioner_id,
        }
        for slot in nearest_alternatives(now=now, around=around)
    ]
    return Problem(
        409,
        "slot-unavailable",
        "That time cannot be booked: it was just taken or is not offered.",
        "Choose one of the nearest alternatives.",
        alternatives=alternatives,
    )


@api.post(
    "/appointments",
    response={201: AppointmentOut, **ERRORS},
    auth=ApiKeyAuth(),
    tags=["appointments"],
    exclude_none=True,
)
def book(request, booking: BookingIn):
    """Book a time for a patient, by the booking site's rules. Needs appointments:write.

    Every safety question must be answered (any "yes" books nothing: 422 urgent-care), and the privacy
    notice version must be the one in force. A time just taken answers 409 with the nearest alternatives.
    """
    key = request.auth
    require(key, ApiScope.APPOINTMENTS_WRITE)
    patient = _checked_patient(booking.patient)
    answers = _recorded_safety_answers(booking.safety_answers)
    if booking.privacy_notice_version != current_privacy_notice_version():
        raise Problem(
            422,
            "privacy-notice-outdated",
            "The patient must be shown the privacy notice in force.",
            f"The notice in force is version {current_privacy_notice_version()}.",
        )
    now = timezone.now()
    try:
        result = services.appointment_book(
            slot_id=booking.slot_id,
            patient=patient,
            now=now,
            safety_answers=answers,
            privacy_notice_version=booking.privacy_notice_version,
            api_key_name=key.name,
        )
    except services.SlotUnavailable:
        wanted = context_slot_start(booking.slot_id)
        raise _taken(now, wanted) from None
    return Status(201, appointment_out(result.appointment, key, detail=True))


def context_slot_start(slot_id: int) -> datetime | None:
    return Slot.objects.filter(pk=slot_id).values_list("starts_at", flat=True).first()


def _change_refused(exc: services.ChangeNotAllowed) -> Problem:
    return Problem(409, "change-not-allowed", "The appointment cannot be changed this way now.", str(exc))


@api.post(
    "/appointments/{appointment_id}/move",
    response={200: AppointmentOut, **ERRORS},
    auth=ApiKeyAuth(),
    tags=["appointments"],
    exclude_none=True,
)
def move(request, body: MoveIn, appointment_id: int = AppointmentId):
    """Move a booked appointment to another free time. Needs appointments:write."""
    key = request.auth
    require(key, ApiScope.APPOINTMENTS_WRITE)
    appointment = _appointment_for(appointment_id)
    now = timezone.now()
    try:
        moved = services.appointment_move(
            appointment=appointment, new_slot_id=body.slot_id, now=now, api_key_name=key.name
        )
    except services.ChangeNotAllowed as exc:
        raise _change_refused(exc) from None
    except services.SlotUnavailable:
        raise _taken(now, context_slot_start(body.slot_id)) from None
    return appointment_out(moved, key, detail=key.has_scope(ApiScope.APPOINTMENTS_READ))


@api.post(
    "/appointments/{appointment_id}/cancel",
    response={200: AppointmentOut, **ERRORS},
    auth=ApiKeyAuth(),
    tags=["appointments"],
    exclude_none=True,
)
def cancel(request, body: CancelIn, appointment_id: int = AppointmentId):
    """Cancel a booked appointment, with a reason; its time is offered again. Needs appointments:write."""
    key = request.auth
    require(key, ApiScope.APPOINTMENTS_WRITE)
    appointment = _appointment_for(appointment_id)
    try:
        cancelled = services.appointment_cancel(
            appointment=appointment, now=timezone.now(), reason=body.reason, api_key_name=key.name
        )
    except services.ChangeNotAllowed as exc:
        raise _change_refused(exc) from None
    return appointment_out(cancelled, key, detail=key.has_scope(ApiScope.APPOINTMENTS_READ))


@api.post(
    "/appointments/{appointment_id}/status",
    response={200: AppointmentOut, **ERRORS},
    auth=ApiKeyAuth(),
    tags=["appointments"],
    exclude_none=True,
)
def set_status(request, body: StatusIn, appointment_id: int = AppointmentId):
    """Record arrived, completed or did not attend (no_show), or back to booked. Needs appointments:write.

    Attendance is not recorded ahead of time: arrived from 30 minutes before the start, the others from the start.
    """
    key = request.auth
    require(key, ApiScope.APPOINTMENTS_WRITE)
    appointment = _appointment_for(appointment_id)
    try:
        changed = services.appointment_set_status(
            appointment=appointment, status=body.status, now=timezone.now(), actor=None, api_key_name=key.name
        )
    except services.ChangeNotAllowed as exc:
        raise _change_refused(exc) from None
    return appointment_out(changed, key, detail=key.has_scope(ApiScope.APPOINTMENTS_READ))


def not_found(request, rest: str = ""):
    """Any other address under /api/: a problem, not the site's HTML 404 page."""
    return generic_problem(404)
