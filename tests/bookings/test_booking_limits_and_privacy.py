import io
import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from bookings.forms import SAFETY_QUESTIONS_VERSION
from bookings.models import Practitioner, Slot
from tests.helpers import PATIENT, details_form, local, make_slot, pass_safety_check

pytestmark = pytest.mark.django_db


def _practitioners_with_a_week_of_slots(count):
    practitioners = Practitioner.objects.bulk_create(
        Practitioner(display_name=f"Practitioner {i}", profession="Physiotherapist", list_order=i) for i in range(count)
    )
    slots = []
    for practitioner in practitioners:
        for day in range(1, 8):
            for hour in (9, 10, 11, 14, 15):
                slots.append(Slot(practitioner=practitioner, starts_at=local(day, hour), ends_at=local(day, hour, 20)))
    Slot.objects.bulk_create(slots)


@pytest.mark.parametrize("practitioners", [1, 50])
def test_the_time_page_runs_the_same_queries_at_1_and_50_practitioners(
    client, django_assert_num_queries, practitioners
):
    _practitioners_with_a_week_of_slots(practitioners)
    pass_safety_check(client)
    # 1 practitioners offering consultations, 2 this week's bookable times (it has some: the first bookable time
    # is in it, so it is not read on its own; it was a third query until round 4). Rendered, not kept: inside a
    # test transaction (tests/bookings/test_time_page_cache.py). No session: the booking flow's state is a signed
    # cookie.
    with django_assert_num_queries(2):
        response = client.get("/book/time/")
    assert response.status_code == 200
    assert len(response.context["practitioners"]) == practitioners


def test_public_posts_are_rate_limited_per_address_with_a_friendly_429(client, settings):
    settings.RATE_LIMIT_PUBLIC_POSTS = 3
    for _ in range(3):
        assert pass_safety_check(client).status_code == 302
    response = pass_safety_check(client)
    assert response.status_code == 429
    assert b"Too many attempts" in response.content
    assert int(response["Retry-After"]) > 0
    # Another address is not affected (an empty form is a 400, not a 429).
    other = client.post("/book/", {}, REMOTE_ADDR="192.0.2.7")
    assert other.status_code == 400


def test_no_patient_name_email_phone_or_token_reaches_the_logs(client, dr_patel):
    # The handler configured in settings.LOGGING, with its redacting filter.
    handler = logging.getLogger("django").handlers[0]
    captured = io.StringIO()
    previous = handler.setStream(captured)
    logging.getLogger("django.request").setLevel(logging.DEBUG)
    try:
        slot = make_slot(dr_patel, local(3, 10))
        pass_safety_check(client)
        client.post("/book/details/", details_form(client, slot))
        manage_url = client.get("/book/confirmed/").context["manage_url"]
        token = manage_url.rstrip("/").rsplit("/", 1)[1]
        client.get(f"/manage/{token}x/")  # a 404 is logged with its path
        logging.getLogger("django.request").warning(
            "Not Found: /manage/%s/ for %s %s", token, PATIENT["email"], PATIENT["phone"]
        )
    finally:
        handler.setStream(previous)
    output = captured.getvalue()
    assert "Not Found" in output  # the log really was captured
    for secret in [token, PATIENT["email"], PATIENT["phone"], PATIENT["last_name"]]:
        assert secret not in output


def test_the_minimum_notice_and_horizon_come_from_settings(dr_patel):
    now = timezone.now()
    inside_notice = make_slot(dr_patel, now + settings.BOOKING_MIN_NOTICE / 2)
    fine = make_slot(dr_patel, now + settings.BOOKING_MIN_NOTICE * 2)
    bookable = set(Slot.objects.bookable(now=now).values_list("pk", flat=True))
    assert fine.pk in bookable and inside_notice.pk not in bookable


def test_a_mangled_manage_link_with_quotes_is_still_redacted_in_the_logs():
    from clinic.logging import redact

    for path in ["/manage/'abc\"def/", '/manage/"tok/', "/calendar-feed/'x.ics"]:
        assert redact(f"Not Found: {path}").startswith(
            ("Not Found: /manage/[redacted]", "Not Found: /calendar-feed/[redacted]")
        )


def test_a_patient_books_without_any_database_session_and_the_flow_cookies_hold_no_answers(client, dr_patel, settings):
    from django.contrib.sessions.models import Session
    from django.core import signing

    settings.SESSION_COOKIE_SECURE = True
    slot = make_slot(dr_patel, local(3, 10))

    started = pass_safety_check(client, article="hip-pain")
    flow = started.cookies["booking"]
    assert flow["secure"] and flow["httponly"] and flow["samesite"] == "Lax" and flow["path"] == "/book/"
    # That the check was passed, for this version of the questions, where the patient came from, and this
    # browser's random secret (its manage token is derived from it), and the pass one booking consumes: no answers.
    state = signing.loads(flow.value, salt="bookings.booking")
    assert state.keys() == {"safety", "article", "browser", "pass"}
    assert (state["safety"], state["article"], len(state["browser"])) == (SAFETY_QUESTIONS_VERSION, "hip-pain", 22)

    booked = client.post("/book/details/", details_form(client, slot))
    assert booked.status_code == 302
    assert booked.cookies["booking"].value == ""  # the flow is over: its cookie is deleted
    assert booked.cookies["booking_confirmed"]["httponly"]
    assert b"Dr Priya Patel" in client.get("/book/confirmed/").content
    assert Session.objects.count() == 0


def test_an_altered_or_hour_old_flow_cookie_sends_the_patient_back_to_the_safety_check(client, dr_patel):
    import time_machine

    make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)
    genuine = client.cookies["booking"].value

    client.cookies["booking"] = genuine.replace(":", ":x", 1)
    assert client.get("/book/time/")["Location"] == "/book/"

    client.cookies["booking"] = genuine
    assert client.get("/book/time/").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=61)):
        assert client.get("/book/time/")["Location"] == "/book/"


def test_waiting_list_links_are_redacted_in_the_logs_even_a_token_without_a_digit():
    """Found in a test run: a 4xx on an offer link whose token had no digit logged the link in full (about one
    token in 1,400 has none, and the catch-all rule wanted a capital and a digit)."""
    from clinic.logging import redact

    no_digit = "fgW-gfftNrByoBqxtEUqDCTYfkOhtnBDkqSj-RoAgos"
    no_capital = "fgw-gfftnrbyoboxteu9dctyfkohtnbdkqsj-roagos"
    for line, expected in [
        (f"Conflict: /waiting-list/offer/{no_digit}/", "Conflict: /waiting-list/offer/[redacted]/"),
        (f"Not Found: /waiting-list/{no_digit}/confirm/", "Not Found: /waiting-list/[redacted]/confirm/"),
        (f"Gone: /waiting-list/{no_capital}/leave/", "Gone: /waiting-list/[redacted]/leave/"),
        (f"token {no_digit} in a message", "token [redacted] in a message"),
        (f"token {no_capital} in a message", "token [redacted] in a message"),
        ("Not Found: /waiting-list/lost-link/", "Not Found: /waiting-list/lost-link/"),
        ("Not Found: /book/waiting-list/", "Not Found: /book/waiting-list/"),
        (
            "Not Found: /articles/what-to-expect-at-your-first-physiotherapy-appointment/",
            "Not Found: /articles/what-to-expect-at-your-first-physiotherapy-appointment/",
        ),
    ]:
        assert redact(line) == expected
