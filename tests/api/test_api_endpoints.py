"""The API, endpoint by endpoint: what each answers, to which key, and how it refuses."""

import json
import logging
from datetime import datetime

import pytest
from django.conf import settings
from django.utils import timezone

from api.models import ApiScope
from bookings.forms import SAFETY_QUESTIONS_VERSION
from bookings.models import Appointment, AppointmentEvent, Slot
from tests.api.conftest import EVERY_SCOPE, bearer, booking_body, safe_answers
from tests.helpers import local, make_slot, patient_books

PROBLEM = "application/problem+json"
READ, WRITE, AVAILABILITY = ApiScope.APPOINTMENTS_READ, ApiScope.APPOINTMENTS_WRITE, ApiScope.AVAILABILITY_READ


def post_json(client, url, body, raw_key):
    return client.post(url, json.dumps(body), content_type="application/json", **bearer(raw_key))


def assert_problem(response, status, code=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"]
    if code:
        assert body["code"] == code, body
    return body


# -- Public ------------------------------------------------------------------------------------------


def test_anyone_sees_the_practitioners_offered_online(client, dr_patel, dr_okafor):
    dr_okafor.offers_free_consultation = False
    dr_okafor.save()
    response = client.get("/api/v1/practitioners")
    assert response.status_code == 200
    assert response.json() == [{"id": dr_patel.pk, "name": "Dr Priya Patel", "profession": "Physiotherapist"}]


def test_availability_offers_what_the_time_page_offers_with_offsets(client, dr_patel, dr_okafor):
    now = timezone.now()
    free = make_slot(dr_patel, local(3, 10))
    taken = make_slot(dr_patel, local(3, 11))
    patient_books(taken)
    blocked = make_slot(dr_okafor, local(3, 12), state=Slot.State.BLOCKED)
    make_slot(dr_okafor, local(3, 13))
    response = client.get(f"/api/v1/availability?week={local(3, 0).date()}")
    assert response.status_code == 200
    times = response.json()["times"]
    expected = list(Slot.objects.bookable(now=now, start=local(3, 0), end=local(4, 0)).values_list("pk", flat=True))
    assert [time["slot_id"] for time in times] == expected
    assert free.pk in expected and taken.pk not in expected and blocked.pk not in expected
    first = datetime.fromisoformat(times[0]["starts_at"])
    assert first.utcoffset() is not None and first == free.starts_at
    assert times[0]["practitioner_id"] == dr_patel.pk


def test_availability_for_one_practitioner_and_an_unknown_one(client, dr_patel, dr_okafor):
    make_slot(dr_patel, local(3, 10))
    okafor_slot = make_slot(dr_okafor, local(3, 10))
    week = local(3, 0).date()
    response = client.get(f"/api/v1/availability?week={week}&practitioner={dr_okafor.pk}")
    assert [time["slot_id"] for time in response.json()["times"]] == [okafor_slot.pk]
    assert_problem(client.get(f"/api/v1/availability?practitioner={dr_okafor.pk + 99}"), 404, "unknown-practitioner")


def test_a_time_booked_on_the_site_leaves_the_kept_availability_at_once(client, dr_patel, settings):
    settings.PAGE_CACHE_ENABLED = True
    slot = make_slot(dr_patel, local(3, 10))
    url = f"/api/v1/availability?week={local(3, 0).date()}"
    assert [t["slot_id"] for t in client.get(url).json()["times"]] == [slot.pk]
    assert [t["slot_id"] for t in client.get(url).json()["times"]] == [slot.pk]  # served from the kept answer
    patient_books(slot)
    assert client.get(url).json()["times"] == []


def test_the_safety_questions_are_listed_by_key(client):
    keys = [question["key"] for question in client.get("/api/v1/safety-questions").json()]
    assert keys == list(safe_answers())


# -- Keys and scopes ---------------------------------------------------------------------------------

WITH_KEY = [
    ("get", "/api/v1/appointments?day={day}", READ),
    ("get", "/api/v1/appointments/{appointment}", READ),
    ("post", "/api/v1/appointments", WRITE),
    ("post", "/api/v1/appointments/{appointment}/move", WRITE),
    ("post", "/api/v1/appointments/{appointment}/cancel", WRITE),
    ("post", "/api/v1/appointments/{appointment}/status", WRITE),
    ("get", "/api/v1/availability", AVAILABILITY),
    ("get", "/api/v1/practitioners", AVAILABILITY),
]


def _call(client, method, url, free_slot, raw_key):
    appointment = patient_books(make_slot(free_slot.practitioner, local(4, 10)))
    url = url.format(day=local(3, 0).date(), appointment=appointment.pk)
    bodies = {
        "/move": {"slot_id": free_slot.pk},
        "/cancel": {"reason": "Feeling better"},
        "/status": {"status": "arrived"},
    }
    body = next((b for suffix, b in bodies.items() if url.endswith(suffix)), booking_body(free_slot.pk))
    if method == "get":
        return client.get(url, **bearer(raw_key))
    return post_json(client, url, body, raw_key)


@pytest.mark.parametrize(("method", "url", "scope"), WITH_KEY)
def test_a_key_without_the_scope_gets_403_and_changes_nothing(client, make_key, free_slot, method, url, scope):
    _, raw = make_key(*[other for other in EVERY_SCOPE if other != scope])
    events_before = AppointmentEvent.objects.count()
    assert_problem(_call(client, method, url, free_slot, raw), 403, "missing-scope")
    # Only the fixture's own booking was recorded.
    assert AppointmentEvent.objects.count() == events_before + 1


@pytest.mark.parametrize(("method", "url", "scope"), WITH_KEY)
def test_a_revoked_key_gets_401(client, make_key, free_slot, method, url, scope):
    key, raw = make_key(*EVERY_SCOPE)
    key.revoked_at = timezone.now()
    key.save()
    assert_problem(_call(client, method, url, free_slot, raw), 401, "invalid-key")


@pytest.mark.parametrize(("method", "url", "scope"), WITH_KEY[:6])
def test_no_key_or_a_made_up_key_gets_401(client, free_slot, method, url, scope):
    assert_problem(_call(client, method, url, free_slot, "clk_made-up"), 401, "invalid-key")
    response = client.get("/api/v1/appointments?day=2030-01-01")
    assert_problem(response, 401, "missing-key")


def test_keys_are_stored_hashed_and_record_their_last_use(client, make_key):
    key, raw = make_key(READ)
    assert raw not in key.key_hash and len(key.key_hash) == 64
    assert key.last_used_at is None
    client.get("/api/v1/appointments?day=2030-01-01", **bearer(raw))
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_every_call_is_logged_with_the_key_name_and_no_patient_data(client, make_key, free_slot, caplog):
    _, raw = make_key(*EVERY_SCOPE, name="Accounts system")
    with caplog.at_level(logging.INFO, logger="api.calls"):
        post_json(client, "/api/v1/appointments", booking_body(free_slot.pk), raw)
        client.get("/api/v1/practitioners")
    lines = [record.getMessage() for record in caplog.records if record.name == "api.calls"]
    assert lines == [
        "API POST /api/v1/appointments -> 201 (key: Accounts system)",
        "API GET /api/v1/practitioners -> 200 (key: none)",
    ]


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(client, make_key, settings):
    settings.API_KEY_REQUESTS_PER_WINDOW = 3
    _, raw = make_key(READ)
    statuses = [client.get("/api/v1/appointments?day=2030-01-01", **bearer(raw)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    response = client.get("/api/v1/appointments?day=2030-01-01", **bearer(raw))
    assert_problem(response, 429, "rate-limited")
    assert 1 <= int(response["Retry-After"]) <= settings.RATE_LIMIT_WINDOW_SECONDS
    # Another system's key is counted on its own.
    _, other = make_key(READ, name="Chatbot")
    assert client.get("/api/v1/appointments?day=2030-01-01", **bearer(other)).status_code == 200


# -- Reading appointments ----------------------------------------------------------------------------


def test_a_day_s_list_shows_names_but_never_notes_safety_answers_or_contact_details(
    client, make_key, dr_patel, dr_okafor
):
    patel = patient_books(make_slot(dr_patel, local(3, 10)), note="Private note")
    okafor = patient_books(make_slot(dr_okafor, local(3, 11)), email="other@example.org")
    patient_books(make_slot(dr_patel, local(4, 10)))
    _, raw = make_key(READ)
    listed = client.get(f"/api/v1/appointments?day={local(3, 0).date()}", **bearer(raw)).json()
    assert [item["id"] for item in listed] == [patel.pk, okafor.pk]
    assert listed[0]["patient"] == {"first_name": "Pat", "last_name": "Ient"}
    assert not {"note", "safety_answers"} & set(listed[0])
    assert "Private note" not in json.dumps(listed)
    one = client.get(f"/api/v1/appointments?day={local(3, 0).date()}&practitioner={dr_okafor.pk}", **bearer(raw))
    assert [item["id"] for item in one.json()] == [okafor.pk]


def test_one_appointment_with_read_scope_carries_the_details(client, make_key, dr_patel):
    appointment = patient_books(make_slot(dr_patel, local(3, 10)), note="Private note")
    _, raw = make_key(READ)
    body = client.get(f"/api/v1/appointments/{appointment.pk}", **bearer(raw)).json()
    assert body["note"] == "Private note"
    assert body["safety_answers"]["version"] == "2026-11"
    assert body["patient"]["email"] == "pat@example.org"
    assert datetime.fromisoformat(body["starts_at"]).utcoffset() is not None
    assert_problem(client.get("/api/v1/appointments/987654", **bearer(raw)), 404, "unknown-appointment")


# -- Booking -----------------------------------------------------------------------------------------


def test_a_booking_through_the_api_uses_the_service_and_stores_answers_and_notice(client, make_key, free_slot):
    _, raw = make_key(WRITE, READ, name="Partner site")
    response = post_json(client, "/api/v1/appointments", booking_body(free_slot.pk), raw)
    assert response.status_code == 201, response.content
    appointment = Appointment.objects.get(pk=response.json()["id"])
    assert appointment.slot == free_slot and appointment.source == Appointment.Source.API
    assert appointment.safety_answers["version"] == SAFETY_QUESTIONS_VERSION
    assert [answer["answer"] for answer in appointment.safety_answers["answers"]] == ["no"] * 5
    assert appointment.privacy_notice_version == settings.PRIVACY_NOTICE_VERSION
    assert appointment.events.get().actor_label == "api:Partner site"
    # The confirmation e-mail goes as for any booking.
    assert appointment.messages.exists()


def test_a_write_only_key_books_but_gets_no_patient_data_back(client, make_key, free_slot):
    _, raw = make_key(WRITE)
    body = post_json(client, "/api/v1/appointments", booking_body(free_slot.pk), raw).json()
    assert "patient" not in body and "note" not in body and "safety_answers" not in body


@pytest.mark.parametrize("yes", [True, "yes"])
def test_a_red_flag_books_nothing_and_points_to_urgent_care(client, make_key, free_slot, yes):
    _, raw = make_key(WRITE)
    answers = safe_answers() | {"leg_weakness": yes}
    response = post_json(client, "/api/v1/appointments", booking_body(free_slot.pk, safety_answers=answers), raw)
    body = assert_problem(response, 422, "urgent-care")
    assert "999" in body["detail"]
    assert not Appointment.objects.exists()


def test_every_safety_question_must_be_answered(client, make_key, free_slot):
    _, raw = make_key(WRITE)
    answers = safe_answers()
    del answers["trauma"]
    response = post_json(client, "/api/v1/appointments", booking_body(free_slot.pk, safety_answers=answers), raw)
    assert "trauma" in assert_problem(response, 422, "safety-answers-incomplete")["detail"]
    assert not Appointment.objects.exists()


def test_the_notice_version_must_be_the_one_in_force(client, make_key, free_slot):
    _, raw = make_key(WRITE)
    response = post_json(
        client, "/api/v1/appointments", booking_body(free_slot.pk, privacy_notice_version="2020-01"), raw
    )
    assert_problem(response, 422, "privacy-notice-outdated")
    response = post_json(
        client,
        "/api/v1/appointments",
        {k: v for k, v in booking_body(free_slot.pk).items() if k != "privacy_notice_version"},
        raw,
    )
    assert_problem(response, 422, "invalid")
    assert not Appointment.objects.exists()


def test_a_bad_phone_or_name_is_a_422_naming_the_fields(client, make_key, free_slot):
    _, raw = make_key(WRITE)
    body = booking_body(free_slot.pk)
    body["patient"] |= {"phone": "call me", "first_name": "http://spam.example"}
    problem = assert_problem(post_json(client, "/api/v1/appointments", body, raw), 422, "invalid")
    assert {error["where"] for error in problem["errors"]} == {"body.patient.phone", "body.patient.first_name"}


def test_a_taken_time_answers_409_with_the_nearest_alternatives(client, make_key, dr_patel):
    taken = make_slot(dr_patel, local(3, 10))
    later = make_slot(dr_patel, local(3, 11))
    patient_books(taken)
    _, raw = make_key(WRITE)
    response = post_json(client, "/api/v1/appointments", booking_body(taken.pk), raw)
    body = assert_problem(response, 409, "slot-unavailable")
    assert [alternative["slot_id"] for alternative in body["alternatives"]] == [later.pk]
    assert Appointment.objects.count() == 1


# -- Changing ----------------------------------------------------------------------------------------


def test_moving_through_the_api(client, make_key, dr_patel):
    appointment = patient_books(make_slot(dr_patel, local(3, 10)))
    other = make_slot(dr_patel, local(3, 11))
    _, raw = make_key(WRITE)
    response = post_json(client, f"/api/v1/appointments/{appointment.pk}/move", {"slot_id": other.pk}, raw)
    assert response.status_code == 200, response.content
    appointment.refresh_from_db()
    assert appointment.slot == other
    again = post_json(client, f"/api/v1/appointments/{appointment.pk}/move", {"slot_id": other.pk}, raw)
    assert_problem(again, 409, "slot-unavailable")


def test_cancelling_needs_a_reason_and_records_it(client, make_key, dr_patel):
    appointment = patient_books(make_slot(dr_patel, local(3, 10)))
    _, raw = make_key(WRITE)
    assert_problem(post_json(client, f"/api/v1/appointments/{appointment.pk}/cancel", {}, raw), 422, "invalid")
    response = post_json(client, f"/api/v1/appointments/{appointment.pk}/cancel", {"reason": "Feeling better"}, raw)
    assert response.json()["status"] == "cancelled"
    appointment.refresh_from_db()
    assert appointment.cancel_reason == "Feeling better"
    again = post_json(client, f"/api/v1/appointments/{appointment.pk}/cancel", {"reason": "Twice"}, raw)
    assert_problem(again, 409, "change-not-allowed")


@pytest.mark.parametrize("status", ["arrived", "completed", "no_show"])
def test_marking_attendance_once_the_appointment_has_started(client, make_key, dr_patel, status, time_machine):
    appointment = patient_books(make_slot(dr_patel, local(3, 10)))
    _, raw = make_key(WRITE)
    url = f"/api/v1/appointments/{appointment.pk}/status"
    assert_problem(post_json(client, url, {"status": status}, raw), 409, "change-not-allowed")
    time_machine.move_to(local(3, 10, 5))
    assert post_json(client, url, {"status": status}, raw).json()["status"] == status
    assert_problem(post_json(client, url, {"status": "cancelled"}, raw), 422, "invalid")


# -- Errors are problems -----------------------------------------------------------------------------


def test_unknown_addresses_wrong_methods_and_bad_json_are_problems(client, full_key):
    assert_problem(client.get("/api/v1/nothing-here"), 404, "not-found")
    assert_problem(client.get("/api/v2/"), 404, "not-found")
    response = client.delete("/api/v1/practitioners")
    assert_problem(response, 405)
    response = client.post("/api/v1/appointments", "{not json", content_type="application/json", **bearer(full_key))
    assert response.status_code in (400, 422)
    assert response["Content-Type"].startswith(PROBLEM)
    assert_problem(client.get("/api/v1/appointments?day=not-a-day", **bearer(full_key)), 422, "invalid")
    assert_problem(client.get("/api/v1/appointments?day=0001-01-01", **bearer(full_key)), 422, "invalid")
    assert_problem(client.get(f"/api/v1/appointments/{2**70}", **bearer(full_key)), 422, "invalid")


def test_an_unexpected_error_is_a_problem_too(client, dr_patel, monkeypatch):
    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr("api.api._practitioner_out", broken)
    client.raise_request_exception = False
    assert_problem(client.get("/api/v1/practitioners"), 500, "server-error")


def test_rita_signed_in_to_the_staff_pages_still_needs_a_key(client, rita):
    from tests.staff_signin import verified_login

    verified_login(client, rita)
    assert_problem(client.get("/api/v1/appointments?day=2030-01-01"), 401, "missing-key")


def test_every_api_call_that_returns_patients_is_in_the_access_log_under_the_key_s_name(client, make_key, free_slot):
    from bookings.models import PatientDataAccess

    booked = patient_books(free_slot)
    _, raw = make_key("appointments:read", name="Practice system")
    day = free_slot.starts_at.astimezone(timezone.get_current_timezone()).date()

    client.get(f"/api/v1/appointments?day={day:%Y-%m-%d}", **bearer(raw))
    client.get(f"/api/v1/appointments/{booked.pk}", **bearer(raw))

    records = list(PatientDataAccess.objects.order_by("pk").values_list("username", "page", "appointment_ids"))
    assert records == [
        ("API key: Practice system", "api_appointments", [booked.pk]),
        ("API key: Practice system", "api_appointment", [booked.pk]),
    ]


def test_another_system_cannot_move_a_booking_into_a_time_held_for_the_waiting_list(client, make_key, dr_patel):
    from bookings.models import WaitingListOffer
    from bookings.services import waiting_list_scan
    from tests.helpers import waiting

    booked = patient_books(make_slot(dr_patel, local(3, 10)))
    held = make_slot(dr_patel, local(4, 10))
    waiting("wanda@example.org")
    waiting_list_scan(now=timezone.now())
    offer = WaitingListOffer.objects.get(slot=held)
    _, raw = make_key(WRITE)

    response = post_json(client, f"/api/v1/appointments/{booked.pk}/move", {"slot_id": held.pk}, raw)

    assert_problem(response, 409)
    booked.refresh_from_db()
    offer.refresh_from_db()
    assert booked.slot_id != held.pk and offer.status == WaitingListOffer.Status.OFFERED


def test_a_body_beyond_the_upload_limit_is_a_413_problem_not_a_500(client, make_key, free_slot, settings):
    _, raw = make_key(WRITE)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = booking_body(free_slot.pk)
    body["patient"]["note"] = "x" * 20_000

    response = post_json(client, "/api/v1/appointments", body, raw)

    assert_problem(response, 413, "too-large")
    assert not Appointment.objects.exists()


@pytest.mark.parametrize("debug", [False, True])
def test_with_the_database_out_of_reach_the_api_answers_503_with_retry_after_in_debug_too(
    client, monkeypatch, settings, debug
):
    from django.db import OperationalError

    from bookings.models import PractitionerQuerySet

    settings.DEBUG = debug

    def unreachable(self):
        raise OperationalError('connection to server on socket "/tmp/x" failed: FATAL: too many clients already')

    monkeypatch.setattr(PractitionerQuerySet, "offering_consultations", unreachable)

    response = client.get("/api/v1/practitioners")

    assert_problem(response, 503, "unavailable")
    assert response["Retry-After"] == "5"


@pytest.mark.parametrize("week", ["2020-01-06", "9999-01-04"])
def test_a_week_outside_the_bookable_weeks_is_a_422_not_another_week(client, week):
    response = client.get(f"/api/v1/availability?week={week}")

    assert "Ask for a week from" in assert_problem(response, 422, "week-not-bookable")["detail"]
