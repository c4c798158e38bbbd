"""Who may open which staff URL: every role against every staff URL, with GET and with POST.

Roles: a stranger (anonymous), a patient holding a manage link, Dr Patel (practitioner A,
whose appointment the URLs point at), Dr Okafor (practitioner B), Rita at reception, Margaret the
clinic manager, and a superuser without a practitioner record. Each request runs in a savepoint that is rolled
back, so a POST that changes something cannot change the next role's answer.
"""

from collections import Counter

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bookings.models import CallbackRequest, Slot, TimeOff
from bookings.services import PatientDetails, appointment_book, practitioner_calendar_token_reset
from tests.helpers import days_ahead, local, make_slot, waiting
from tests.staff_signin import authenticator, verified_login

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "patient", "dr_patel", "dr_okafor", "rita", "margaret", "superuser"]

# What each role gets: "login" (sent to sign in), "forbidden" (403), "not_found" (404),
# "wrong_method" (405: past the gate, but this URL only takes the other method) or "allowed".
RECEPTION_ONLY = {
    "anonymous": "login",
    "patient": "login",
    "dr_patel": "forbidden",
    "dr_okafor": "forbidden",
    "rita": "allowed",
    "margaret": "forbidden",
    "superuser": "allowed",
}
# The Insights page: the clinic manager and superusers only.
MANAGER_ONLY = {
    "anonymous": "login",
    "patient": "login",
    "dr_patel": "forbidden",
    "dr_okafor": "forbidden",
    "rita": "forbidden",
    "margaret": "allowed",
    "superuser": "allowed",
}
# A practitioner's own pages; a superuser has no practitioner record, so nothing of "their own".
PRACTITIONER_OWN = {
    "anonymous": "login",
    "patient": "login",
    "dr_patel": "allowed",
    "dr_okafor": "allowed",
    "rita": "forbidden",
    "margaret": "forbidden",
    "superuser": "not_found",
}
# Dr Patel's appointment: Dr Okafor may not know it exists.
PRACTITIONER_A_ONLY = PRACTITIONER_OWN | {"dr_okafor": "not_found"}
SIGNED_IN = dict.fromkeys(ROLES, "allowed") | {"anonymous": "login", "patient": "login"}
# The calendar feed: the token in the URL is the key (a phone cannot sign in).
TOKEN_HOLDER = dict.fromkeys(ROLES, "allowed")


def both(expected: dict) -> tuple[dict, dict]:
    return expected, expected


def post_only(expected: dict) -> tuple[dict, dict]:
    """A GET from someone past the sign-in and group gate gets 405."""
    passed_gate = {"allowed", "not_found"}
    return {role: "wrong_method" if got in passed_gate else got for role, got in expected.items()}, expected


def get_only(expected: dict) -> tuple[dict, dict]:
    return expected, {role: "wrong_method" if got == "allowed" else got for role, got in expected.items()}


@pytest.fixture
def world(dr_patel, dr_okafor, rita, django_user_model):
    day = days_ahead(3)
    booking = appointment_book(
        slot_id=make_slot(dr_patel, local(day, 10)).pk,
        patient=PatientDetails(first_name="Ada", last_name="Lovelace", phone="07700 900123", email="ada@example.org"),
        now=timezone.now(),
    )
    return {
        "appointment": booking.appointment,
        "manage_token": booking.manage_token,
        "open_slot": make_slot(dr_patel, local(day, 11)),
        "blocked_slot": make_slot(dr_patel, local(day, 12), state=Slot.State.BLOCKED, blocked_reason="Meeting"),
        "time_off": TimeOff.objects.create(
            practitioner=dr_patel, starts_at=local(day, 14), ends_at=local(day, 15), reason="Dentist"
        ),
        "callback": CallbackRequest.objects.create(name="Bob", phone="07700 900999", created_at=timezone.now()),
        "feed_token": practitioner_calendar_token_reset(practitioner=dr_patel),
        "superuser": django_user_model.objects.create_superuser("admin", "admin@example.org", "correct horse battery"),
        "waiting_entry": waiting("wanda@example.org")[0],
    }


def staff_urls(world, dr_patel):
    appointment = world["appointment"]
    blocked_slot, time_off = world["blocked_slot"].pk, world["time_off"].pk
    return [
        ("staff home", reverse("staff_home"), *both(SIGNED_IN)),
        ("day view", reverse("reception_day"), *both(RECEPTION_ONLY)),
        ("week view", reverse("reception_week", args=[dr_patel.pk]), *both(RECEPTION_ONLY)),
        ("next free slots", reverse("reception_next_free"), *both(RECEPTION_ONLY)),
        ("book a caller", f"{reverse('reception_book')}?slot={world['open_slot'].pk}", *both(RECEPTION_ONLY)),
        ("appointment", reverse("reception_appointment", args=[appointment.pk]), *both(RECEPTION_ONLY)),
        ("set status", reverse("reception_appointment_status", args=[appointment.pk]), *post_only(RECEPTION_ONLY)),
        ("cancel", reverse("reception_appointment_cancel", args=[appointment.pk]), *post_only(RECEPTION_ONLY)),
        ("move", reverse("reception_appointment_move", args=[appointment.pk]), *both(RECEPTION_ONLY)),
        ("block slot", reverse("reception_slot_block", args=[world["open_slot"].pk]), *both(RECEPTION_ONLY)),
        (
            "unblock slot",
            reverse("reception_slot_unblock", args=[blocked_slot]),
            *post_only(RECEPTION_ONLY),
        ),
        ("hours and closures", reverse("reception_hours"), *both(RECEPTION_ONLY)),
        ("practitioner hours", reverse("reception_practitioner_hours", args=[dr_patel.pk]), *both(RECEPTION_ONLY)),
        ("add time off", reverse("reception_time_off_add", args=[dr_patel.pk]), *post_only(RECEPTION_ONLY)),
        (
            "remove time off",
            reverse("reception_time_off_delete", args=[time_off]),
            *post_only(RECEPTION_ONLY),
        ),
        ("search", f"{reverse('reception_search')}?q=Lovelace", *both(RECEPTION_ONLY)),
        ("export", f"{reverse('reception_export')}?start=2026-01-01&end=2026-12-31", *both(RECEPTION_ONLY)),
        ("call-backs", reverse("reception_callbacks"), *both(RECEPTION_ONLY)),
        ("patient's data", reverse("reception_patient_data", args=[appointment.pk]), *both(RECEPTION_ONLY)),
        ("patient's data file", reverse("reception_patient_data_json", args=[appointment.pk]), *both(RECEPTION_ONLY)),
        ("erasure on request", reverse("reception_patient_erase", args=[appointment.pk]), *both(RECEPTION_ONLY)),
        ("older privacy notice", reverse("reception_privacy_notice", args=["2026-11"]), *get_only(RECEPTION_ONLY)),
        ("call-back done", reverse("reception_callback_done", args=[world["callback"].pk]), *post_only(RECEPTION_ONLY)),
        (
            "call-back reopen",
            reverse("reception_callback_reopen", args=[world["callback"].pk]),
            *post_only(RECEPTION_ONLY),
        ),
        ("waiting list", reverse("reception_waiting_list"), *both(RECEPTION_ONLY)),
        ("waiting list add", reverse("reception_waiting_list_add"), *both(RECEPTION_ONLY)),
        (
            "waiting list remove",
            reverse("reception_waiting_list_remove", args=[world["waiting_entry"].pk]),
            *post_only(RECEPTION_ONLY),
        ),
        (
            "waiting list offer",
            reverse("reception_waiting_list_offer", args=[world["waiting_entry"].pk]),
            *post_only(RECEPTION_ONLY),
        ),
        ("insights", reverse("insights"), *get_only(MANAGER_ONLY)),
        ("insights csv", reverse("insights_csv", args=["articles"]), *get_only(MANAGER_ONLY)),
        ("insights refresh", reverse("insights_refresh"), *post_only(MANAGER_ONLY)),
        ("my day", reverse("practitioner_day"), *both(PRACTITIONER_OWN)),
        ("upcoming", reverse("practitioner_upcoming"), *both(PRACTITIONER_OWN)),
        ("my appointment", reverse("practitioner_appointment", args=[appointment.pk]), *both(PRACTITIONER_A_ONLY)),
        ("phone calendar", reverse("practitioner_calendar"), *both(PRACTITIONER_OWN)),
        ("reset calendar address", reverse("practitioner_calendar_reset"), *post_only(PRACTITIONER_OWN)),
        ("calendar feed", reverse("practitioner_calendar_feed", args=[world["feed_token"]]), *get_only(TOKEN_HOLDER)),
        # The second factor's own pages: each signed-in person's own app, nobody else's.
        ("code step", reverse("two_factor_code"), *both(SIGNED_IN)),
        ("set up an app", reverse("two_factor_setup"), *both(SIGNED_IN)),
        ("reset my app", reverse("two_factor_reset"), *both(SIGNED_IN)),
    ]


def client_for(role, world, request) -> Client:
    client = Client()
    if role == "patient":
        # Holds a manage link and has used it: that opens their own booking, nothing of the staff's.
        assert client.get(reverse("manage", args=[world["manage_token"]])).status_code == 200
    elif role == "superuser":
        verified_login(client, world["superuser"])
    elif role != "anonymous":
        person = request.getfixturevalue(role)
        verified_login(client, getattr(person, "user", person))
    return client


def outcome(response) -> str:
    if response.status_code == 302 and response["Location"].startswith(reverse("login")):
        return "login"
    if response.status_code == 403:
        return "forbidden"
    if response.status_code == 404:
        return "not_found"
    if response.status_code == 405:
        return "wrong_method"
    # Past the gate: a page, a redirect after a change, or a form error.
    assert response.status_code in {200, 302, 400, 409}, response.status_code
    return "allowed"


def run_matrix(role, world, dr_patel, request) -> list[tuple]:
    client = client_for(role, world, request)
    results = []
    for name, url, expected_get, expected_post in staff_urls(world, dr_patel):
        for method, expected in (("GET", expected_get), ("POST", expected_post)):
            with transaction.atomic():
                response = client.get(url) if method == "GET" else client.post(url, {})
                transaction.set_rollback(True)
            results.append((name, method, outcome(response), expected[role]))
    return results


def test_every_role_gets_exactly_the_expected_answer_from_every_staff_url_560_requests(world, dr_patel, request):
    """Signed in with a password and a code (verified_login): the state in which staff work."""
    results = [(role, *result) for role in ROLES for result in run_matrix(role, world, dr_patel, request)]

    wrong = [result for result in results if result[3] != result[4]]
    assert wrong == []
    tally = Counter(result[3] for result in results)
    print(f"\nAuthorisation matrix: {len(results)} requests: {dict(sorted(tally.items()))}")
    # 40 staff URLs x GET and POST x 7 roles.
    assert len(results) == 560
    assert len({result[:3] for result in results}) == 560


ADMIN_URLS = [
    "/admin/",
    "/admin/auth/user/",
    "/admin/bookings/appointment/",
    "/admin/clinic/twofactorevent/",
    "/admin/bookings/patientdataaccess/",
]
# Pages a password alone may open: the steps that finish signing in, and the feed whose token is its key.
OPEN_BEFORE_CODE = {"calendar feed", "code step", "set up an app"}
STAFF_ROLES = ["dr_patel", "dr_okafor", "rita", "margaret", "superuser"]


def password_only_client(role, world, request, *, with_app: bool) -> Client:
    person = world["superuser"] if role == "superuser" else request.getfixturevalue(role)
    user = getattr(person, "user", person)
    if with_app:
        authenticator(user)
    client = Client()
    client.force_login(user)  # the password step, and nothing more
    return client


@pytest.mark.parametrize(
    ("with_app", "sent_to"), [(True, "two_factor_code"), (False, "two_factor_setup")], ids=["has app", "no app yet"]
)
def test_a_password_alone_opens_no_staff_url_and_no_admin_page_for_any_role(
    world, dr_patel, request, with_app, sent_to
):
    """The state "password only": every staff URL and the admin send each role to the code step (or enrolment)."""
    urls = [(name, url) for name, url, *_ in staff_urls(world, dr_patel) if name not in OPEN_BEFORE_CODE]
    urls += [(url, url) for url in ADMIN_URLS]
    wrong = []
    for role in STAFF_ROLES:
        client = password_only_client(role, world, request, with_app=with_app)
        for name, url in urls:
            for method in ("GET", "POST"):
                with transaction.atomic():
                    response = client.get(url) if method == "GET" else client.post(url, {})
                    transaction.set_rollback(True)
                if response.status_code != 302 or not response["Location"].startswith(reverse(sent_to)):
                    wrong.append((role, name, method, response.status_code))
    assert wrong == []
    assert len(urls) == 42


def test_a_password_and_a_code_open_the_admin_to_the_superuser(world):
    client = Client()
    verified_login(client, world["superuser"])

    assert [client.get(url).status_code for url in ADMIN_URLS] == [200] * len(ADMIN_URLS)


def test_the_feed_of_a_practitioner_is_refused_with_a_wrong_or_old_token(client, dr_patel):
    old = practitioner_calendar_token_reset(practitioner=dr_patel)
    practitioner_calendar_token_reset(practitioner=dr_patel)

    assert client.get(reverse("practitioner_calendar_feed", args=[old])).status_code == 404
    assert client.get(reverse("practitioner_calendar_feed", args=["guess"])).status_code == 404


def test_a_change_without_the_csrf_token_is_refused(rita, dr_patel):
    slot = make_slot(dr_patel, local(days_ahead(2), 9))
    client = Client(enforce_csrf_checks=True)
    verified_login(client, rita)

    response = client.post(reverse("reception_slot_block", args=[slot.pk]), {"reason": "Meeting"})

    assert response.status_code == 403
    slot.refresh_from_db()
    assert slot.state == Slot.State.OPEN


def test_staff_pages_are_never_stored_by_the_browser(client, rita, dr_patel):
    verified_login(client, dr_patel.user)
    assert "no-store" in client.get(reverse("practitioner_day"))["Cache-Control"]
    verified_login(client, rita)
    assert "no-store" in client.get(reverse("reception_callbacks"))["Cache-Control"]
    assert "no-store" in client.get(reverse("staff_home"))["Cache-Control"]


def test_the_slot_of_a_patient_is_not_shown_to_anonymous_visitors_who_guess_the_appointment_number(client, world):
    response = client.get(reverse("reception_appointment", args=[world["appointment"].pk]))

    assert response.status_code == 302
    assert "Lovelace" not in response.content.decode()
