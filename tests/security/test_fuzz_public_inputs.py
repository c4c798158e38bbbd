"""Garbage in, never a 5xx out: generated input to every public form and URL parameter.

Each request is checked for a status below 500, and the database for changes other than
the valid bookings and call-back requests the responses announced.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from articles.models import Article
from bookings.forms import SAFETY_QUESTIONS
from bookings.models import (
    Appointment,
    AppointmentEvent,
    CallbackRequest,
    OutboundMessage,
    Slot,
    WaitingListEntry,
    WaitingListOffer,
)
from bookings.services import PatientDetails, appointment_book
from tests.helpers import SAFE_ANSWERS, local, make_slot, works_on_weekdays

pytestmark = pytest.mark.django_db

EXAMPLES_PER_TARGET = 60

NASTY_TEXT = [
    "\x00",
    "a\x00b",
    "' OR 1=1 --",
    "'; DROP TABLE bookings_slot; --",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "%00",
    "%ff%fe",
    "../../etc/passwd",
    "2026-03-29",
    "2026-10-25",
    "2026-03-29T01:30",
    "2026-02-30",
    "0000-00-00",
    "9999-12-31",
    "-1",
    "0",
    "99999999999999999999999",
    "1e9",
    "NaN",
    "🦴" * 50,
    "x" * 5000,
    "\u202e",
]

nasty_text = st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=300), st.binary(max_size=60).map(repr))
field_value = st.one_of(nasty_text, st.integers().map(str), st.dates().map(str))


@pytest.fixture(autouse=True)
def no_rate_limit():
    """Thousands of POSTs from one test address: the forms must be reached, not the 429 page."""
    from django.test import override_settings

    with override_settings(RATE_LIMIT_PUBLIC_POSTS=10**9, RATE_LIMIT_BOOKINGS_PER_HOUR=10**9):
        yield


@pytest.fixture
def world(dr_patel, dr_okafor):
    """Two practitioners with bookable slots, someone else's booking, a published article and a draft."""
    slots = [make_slot(dr_patel, local(day, hour)) for day in (2, 3) for hour in (9, 10, 11)]
    slots.append(make_slot(dr_okafor, local(2, 9)))
    blocked = make_slot(dr_okafor, local(3, 15), state=Slot.State.BLOCKED, blocked_reason="Training")
    past = make_slot(dr_okafor, local(-3, 9))
    someone_else = appointment_book(
        slot_id=slots[0].pk,
        patient=PatientDetails("Other", "Patient", "07700 900999", "other@example.org"),
        now=timezone.now(),
    )
    Article.objects.create(
        title="Hip pain",
        slug="hip-pain",
        summary="s",
        body_markdown="# Hip\nbody",
        status=Article.Status.PUBLISHED,
        published_at=timezone.now() - timedelta(days=1),
    )
    Article.objects.create(title="Draft", slug="draft", summary="s", body_markdown="x")
    slot_ids = [slot.pk for slot in slots] + [blocked.pk, past.pk, 0, 10**12]
    return {"slot_ids": slot_ids, "token": someone_else.manage_token}


class Tally:
    requests = 0


def _row_counts():
    with connection.cursor() as cursor:
        counts = {}
        for model in (
            Appointment,
            AppointmentEvent,
            Slot,
            CallbackRequest,
            Article,
            WaitingListEntry,
            WaitingListOffer,
        ):
            cursor.execute(f'SELECT count(*) FROM "{model._meta.db_table}"')  # noqa: S608 - our own table names
            counts[model.__name__] = cursor.fetchone()[0]
        return counts


def _check(response):
    Tally.requests += 1
    assert response.status_code < 500, (response.status_code, response.content[:500])
    assert response.status_code != 429  # the rate limit is off here: every input reaches its form
    return response


def _patient_client():
    client = Client()
    _check(client.post("/book/", SAFE_ANSWERS))
    return client


FUZZ = settings(
    max_examples=EXAMPLES_PER_TARGET,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["article", "practitioner", "week", "slot", "at", "q", "topic", "page"]), field_value
    )
)
def test_query_parameters_never_cause_a_server_error(world, params):
    client = _patient_client()
    for path in ["/book/", "/book/time/", "/book/details/", "/articles/", "/", "/team/", "/contact/"]:
        _check(client.get(path, params))
    # The API's public endpoints (a bad value there is a 422 problem).
    for path in ["/api/v1/availability", "/api/v1/practitioners"]:
        _check(client.get(path, params))


@FUZZ
@given(answers=st.dictionaries(st.sampled_from([*SAFE_ANSWERS, "article", "practitioner"]), field_value))
def test_the_safety_check_survives_any_answers(world, answers):
    _check(Client().post("/book/", answers))


@FUZZ
@given(ticked=st.lists(st.one_of(st.sampled_from([key for key, _ in SAFETY_QUESTIONS] + ["none"]), field_value)))
def test_the_safety_check_survives_any_set_of_ticked_boxes(world, ticked):
    _check(Client().post("/book/", {"red_flags": ticked}))


@FUZZ
@given(
    data=st.fixed_dictionaries(
        {},
        optional={
            "slot": st.one_of(field_value, st.sampled_from([1, 2, 3])),
            # "Any practitioner": a start time in its link's form, or anything else.
            "at": st.one_of(field_value, st.datetimes().map(lambda moment: moment.strftime("%Y%m%dT%H%MZ"))),
            "submission_key": st.one_of(field_value, st.uuids().map(str)),
            "first_name": field_value,
            "last_name": field_value,
            "email": st.one_of(field_value, st.emails()),
            "phone": field_value,
            "note": field_value,
            "consent": st.sampled_from(["on", "", "off", "\x00"]),
            "website": st.sampled_from(["", "x"]),
        },
    ),
    slot_index=st.integers(min_value=0, max_value=10),
)
def test_the_details_form_survives_anything_and_books_only_valid_input(world, data, slot_index):
    before = _row_counts()
    client = _patient_client()
    if "slot" not in data or slot_index < 8:
        data = {**data, "slot": world["slot_ids"][slot_index % len(world["slot_ids"])]}
    response = _check(client.post("/book/details/", data))
    after = _row_counts()
    booked = response.status_code == 302 and response["Location"] == "/book/confirmed/"
    expected = dict(before)
    if booked:
        expected["Appointment"] += after["Appointment"] - before["Appointment"]
        expected["AppointmentEvent"] += after["AppointmentEvent"] - before["AppointmentEvent"]
        assert after["Appointment"] - before["Appointment"] <= 1
    assert after == expected


@FUZZ
@given(
    token=st.one_of(nasty_text.filter(lambda t: "/" not in t and t not in ("", ".", "..")), st.just("OTHER")),
    reason=field_value,
    slot=field_value,
)
def test_manage_links_survive_garbage_tokens_and_someone_elses_slots(world, token, reason, slot):
    before = _row_counts()
    client = Client()
    real = token == "OTHER"
    if real:
        token = world["token"]
    # Only GETs with a real token: a POST with it could legitimately cancel or move.
    _check(client.get(f"/manage/{token}/"))
    _check(client.get(f"/manage/{token}/move/", {"week": reason}))
    _check(client.get(f"/manage/{token}/consultation.ics"))
    if not real:
        _check(client.post(f"/manage/{token}/cancel/", {"reason": reason}))
        _check(client.post(f"/manage/{token}/move/", {"slot": slot}))
    assert _row_counts() == before


@FUZZ
@given(data=st.dictionaries(st.sampled_from(["name", "phone", "preferred_time", "message", "website"]), field_value))
def test_the_call_back_form_survives_anything(world, data):
    before = _row_counts()
    response = _check(Client().post("/contact/", data))
    after = _row_counts()
    created = after["CallbackRequest"] - before["CallbackRequest"]
    assert created == (1 if response.status_code == 302 else 0)
    assert {k: v for k, v in after.items() if k != "CallbackRequest"} == {
        k: v for k, v in before.items() if k != "CallbackRequest"
    }


@FUZZ
@given(raw=st.binary(max_size=200))
def test_non_utf8_bodies_and_query_strings_never_cause_a_server_error(world, raw):
    client = _patient_client()
    encoded = "".join(f"%{byte:02X}" for byte in raw)
    for path in ["/book/", "/book/details/", "/contact/", f"/manage/{world['token'][:5]}/cancel/"]:
        _check(client.generic("POST", path, raw, content_type="application/x-www-form-urlencoded"))
    for path in ["/book/time/", "/articles/", "/book/details/", "/api/v1/availability"]:
        _check(client.generic("GET", path, QUERY_STRING=f"week={encoded}&q={encoded}&slot={encoded}"))


@FUZZ
@given(path=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=80))
def test_arbitrary_paths_give_a_page_not_a_server_error(world, path):
    from urllib.parse import quote

    _check(Client().get("/" + quote(path.encode("utf-8", "surrogatepass"), safe="/")))


@FUZZ
@given(
    data=st.fixed_dictionaries(
        {},
        optional={
            "first_name": field_value,
            "last_name": field_value,
            "email": st.one_of(field_value, st.emails()),
            "phone": field_value,
            "practitioner": field_value,
            "weekdays": st.one_of(field_value, st.lists(st.sampled_from(["0", "3", "6", "7", "-1", "x"]), max_size=4)),
            "parts_of_day": st.one_of(field_value, st.lists(st.sampled_from(["morning", "evening", "night"]))),
            "wait_until": st.one_of(field_value, st.dates().map(str)),
            "consent": st.sampled_from(["on", "", "\x00"]),
        },
    )
)
def test_the_waiting_list_form_survives_anything_and_adds_only_valid_entries(world, data):
    works_on_weekdays(Slot.objects.get(pk=world["slot_ids"][0]).practitioner)
    before = _row_counts()
    response = _check(_patient_client().post("/book/waiting-list/", data))
    after = _row_counts()
    added = after["WaitingListEntry"] - before["WaitingListEntry"]
    # Accepted: an entry waiting for its e-mailed link to be opened (and that e-mail), never a place on the list.
    assert added == (1 if response.status_code == 200 else 0)
    assert not WaitingListEntry.objects.waiting().exists()
    OutboundMessage.objects.filter(waiting_list_entry__isnull=False).delete()
    WaitingListEntry.objects.all().delete()
    assert {k: v for k, v in after.items() if k != "WaitingListEntry"} == {
        k: v for k, v in before.items() if k != "WaitingListEntry"
    }


@FUZZ
@given(token=nasty_text.filter(lambda t: "/" not in t and t not in ("", ".", "..")))
def test_waiting_list_links_survive_garbage_tokens_and_change_nothing(world, token):
    before = _row_counts()
    client = Client()
    _check(client.get(f"/waiting-list/{token}/"))
    _check(client.post(f"/waiting-list/{token}/leave/"))
    _check(client.post(f"/waiting-list/{token}/confirm/", {"booking": token}))
    _check(client.get(f"/waiting-list/offer/{token}/"))
    _check(client.post(f"/waiting-list/offer/{token}/"))
    assert _row_counts() == before


@FUZZ
@given(email=st.one_of(nasty_text, st.emails()))
def test_the_lost_link_form_survives_anything_and_changes_no_entry(world, email):
    before = _row_counts()
    _check(Client().post("/waiting-list/lost-link/", {"email": email}))
    assert _row_counts() == before


def test_zz_report_how_many_inputs_were_tried(capsys):
    # Runs last in this module (pytest keeps file order): the count for the closing note.
    with capsys.disabled():
        print(f"\nFuzzing: {Tally.requests} generated requests to public forms and URLs, none answered 5xx.")
    assert Tally.requests >= 1000
