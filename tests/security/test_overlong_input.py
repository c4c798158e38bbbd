"""Overlong input in every form, public and staff: a form error or a 4xx, never a 5xx, and nothing changes.

Each page is fetched as its user would see it (a patient past the safety check, Rita at reception, Dr Patel), and
every form on it is sent back with every field it shows overlong: 10,000 characters everywhere, then 300 in each
single-line field (just past the 255 of many database columns) with 10,000 in each text area. Forms with nothing
to type in (a lone button: unblock, mark a call-back done, reset a calendar feed, sign out; the practitioner's
pages have only those) are left out: they carry no input to make too long.
"""

from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.utils import timezone

from articles.models import Article
from bookings.models import (
    Appointment,
    AppointmentEvent,
    CallbackRequest,
    OutboundMessage,
    PatientDataErasure,
    Practitioner,
    Slot,
    TimeOff,
    WaitingListEntry,
    WaitingListOffer,
    WorkingHours,
)
from bookings.services import PatientDetails, appointment_book
from tests.helpers import SAFE_ANSWERS, local, make_slot, waiting
from tests.staff_signin import authenticator, verified_login

pytestmark = pytest.mark.django_db

LONG = 10_000
SINGLE_LINE = 300
# What a person never types: the form's own CSRF token (the test client does not check it anyway).
NOT_INPUT = {"csrfmiddlewaretoken"}
TABLES_THAT_MUST_NOT_CHANGE = [
    Appointment,
    AppointmentEvent,
    CallbackRequest,
    OutboundMessage,
    PatientDataErasure,
    Practitioner,
    Slot,
    TimeOff,
    WorkingHours,
    Article,
    WaitingListEntry,
    WaitingListOffer,
]


class _Forms(HTMLParser):
    """The forms of a page: method, action and every named field, with whether it is a text area."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._current = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = {
                "method": (attrs.get("method") or "get").lower(),
                "action": attrs.get("action") or "",
                "fields": {},
            }
            self.forms.append(self._current)
        elif self._current is not None and tag in {"input", "textarea", "select"} and attrs.get("name"):
            if attrs.get("type") in {"submit", "button", "reset", "image"}:
                return
            self._current["fields"][attrs["name"]] = tag == "textarea"

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def forms_on(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def overlong(fields: dict[str, bool], single_line: int) -> dict[str, str]:
    return {name: "x" * (LONG if is_text_area else single_line) for name, is_text_area in fields.items()}


def snapshot() -> dict[str, list]:
    return {model.__name__: list(model.objects.order_by("pk").values_list()) for model in TABLES_THAT_MUST_NOT_CHANGE}


@pytest.fixture
def clinic(rita, dr_patel, dr_okafor, margaret):
    slots = [make_slot(dr_patel, local(2, hour)) for hour in (9, 10, 11)] + [make_slot(dr_okafor, local(2, 9))]
    booking = appointment_book(
        slot_id=slots[0].pk,
        patient=PatientDetails("Pat", "Example", "07700 900123", "pat@example.org", "Left hip"),
        now=timezone.now(),
    )
    CallbackRequest.objects.create(name="Carol Caller", phone="07700 900555", created_at=timezone.now())
    waiting("wanda@example.org")
    Article.objects.create(
        title="Hip pain",
        slug="hip-pain",
        summary="s",
        body_markdown="body",
        status=Article.Status.PUBLISHED,
        published_at=timezone.now() - timedelta(days=1),
    )
    return {
        "token": booking.manage_token,
        "appointment": booking.appointment.pk,
        "free_slot": slots[1].pk,
        "patel": dr_patel.pk,
    }


PAGES = {
    # name: (who is signed in, the page's URL from the clinic fixture)
    "safety check": (None, lambda c: "/book/"),
    "details": ("patient", lambda c: f"/book/details/?slot={c['free_slot']}"),
    "contact and call-back": (None, lambda c: "/contact/"),
    "article search": (None, lambda c: "/articles/"),
    "manage cancel": (None, lambda c: f"/manage/{c['token']}/"),
    "manage move": (None, lambda c: f"/manage/{c['token']}/move/"),
    "manage sooner": (None, lambda c: f"/manage/{c['token']}/sooner/"),
    "waiting list join": ("patient", lambda c: "/book/waiting-list/"),
    "waiting list lost link": (None, lambda c: "/waiting-list/lost-link/"),
    "staff sign-in": (None, lambda c: "/staff/login/"),
    "admin sign-in": (None, lambda c: "/admin/login/"),
    "day view": ("rita", lambda c: "/staff/reception/"),
    "week view": ("rita", lambda c: f"/staff/reception/week/{c['patel']}/"),
    "phone booking": ("rita", lambda c: f"/staff/reception/book/?slot={c['free_slot']}"),
    "appointment status and cancel": ("rita", lambda c: f"/staff/reception/appointments/{c['appointment']}/"),
    "staff move": ("rita", lambda c: f"/staff/reception/appointments/{c['appointment']}/move/"),
    "block a slot": ("rita", lambda c: f"/staff/reception/slots/{c['free_slot']}/block/"),
    "closures": ("rita", lambda c: "/staff/reception/hours/"),
    "hours and time off": ("rita", lambda c: f"/staff/reception/hours/{c['patel']}/"),
    "search": ("rita", lambda c: "/staff/reception/search/"),
    "export": ("rita", lambda c: "/staff/reception/export/"),
    "erasure on request": ("rita", lambda c: f"/staff/reception/patients/{c['appointment']}/erase/"),
    "waiting list": ("rita", lambda c: "/staff/reception/waiting-list/"),
    "waiting list add": ("rita", lambda c: "/staff/reception/waiting-list/add/"),
    "insights": ("margaret", lambda c: "/staff/insights/"),
    "code step": ("rita, password only", lambda c: "/staff/login/code/"),
    "set up an app": ("rita, no app yet", lambda c: "/staff/two-factor/setup/"),
    "reset my app": ("rita", lambda c: "/staff/two-factor/reset/"),
}


def client_for(who: str | None) -> Client:
    client = Client()
    if who == "patient":
        assert client.post("/book/", SAFE_ANSWERS).status_code == 302
    elif who in {"rita, password only", "rita, no app yet"}:
        rita = get_user_model().objects.get(username="rita")
        if who == "rita, password only":
            authenticator(rita)
        client.force_login(rita)  # the password step only: the page is the second one
    elif who:
        verified_login(client, get_user_model().objects.get(username=who))
    return client


@pytest.mark.parametrize("single_line", [LONG, SINGLE_LINE], ids=["10000 everywhere", "300 per line"])
@pytest.mark.parametrize("name", PAGES)
def test_every_form_answers_overlong_input_with_an_error_and_changes_nothing(clinic, name, single_line):
    who, url_of = PAGES[name]
    url = url_of(clinic)
    client = client_for(who)
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    forms = [form for form in forms_on(page.content.decode()) if set(form["fields"]) - NOT_INPUT]
    assert forms, f"no form with input on {url}"
    before = snapshot()
    answers = []
    with override_settings(RATE_LIMIT_PUBLIC_POSTS=10**9):
        for form in forms:
            target = urljoin(url, form["action"]) if form["action"] else url
            data = overlong({k: v for k, v in form["fields"].items() if k not in NOT_INPUT}, single_line)
            send = client.post if form["method"] == "post" else client.get
            response = send(target, data)
            answers.append((form["method"], target.split("?")[0], response.status_code))
    assert [answer for answer in answers if answer[2] >= 500] == []
    # A redirect means a form accepted its input and acted on it.
    assert [answer for answer in answers if answer[2] in {301, 302, 303}] == []
    assert snapshot() == before


def test_a_sign_in_attempt_with_an_overlong_username_is_recorded_cut_to_fit(rita):
    from axes.models import AccessAttempt
    from django.contrib.auth import authenticate
    from django.test import RequestFactory

    request = RequestFactory().post("/elsewhere/")
    # Any way in that skips the sign-in forms' own check still records the attempt, not a DataError.
    assert authenticate(request, username="m" * LONG, password="wrong") is None
    assert [len(attempt.username) for attempt in AccessAttempt.objects.all()] == [255]


def test_an_overlong_username_on_the_sign_in_form_is_a_message_by_the_field(rita):
    from axes.models import AccessAttempt

    response = Client().post("/staff/login/", {"username": "r" * LONG, "password": "correct horse battery"})
    assert response.status_code == 200
    assert "A username has at most 150 characters." in response.content.decode()
    # Refused before any sign-in was tried: nothing to count against anyone.
    assert not AccessAttempt.objects.exists()
