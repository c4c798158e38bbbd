"""Every page of the site, public and staff, as its visitor gets it: for the HTML checker and the phone-width test.

`every_page` builds a small clinic (the launch articles, two practitioners with slots, a booking, a caller to ring
back, time off and a closure), then fetches each page as the person who would see it: a patient going through the
booking, Rita at reception, Dr Patel, Mallory (403) and a stranger's browser. Pages that only a POST shows (the
urgent-care advice, the form with its errors, "just taken", "already booked", 429) are reached by that POST.
"""

import re
from dataclasses import dataclass, field
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone

from articles.models import Article
from bookings.models import (
    Appointment,
    CallbackRequest,
    OutboundMessage,
    Practitioner,
    Slot,
    TimeOff,
    WaitingListEntry,
    WorkingHours,
)
from bookings.services import PatientDetails, appointment_book, waiting_list_offer_by_hand
from clinic.views import database_unavailable_response, server_error
from tests.helpers import (
    SAFE_ANSWERS,
    details_form,
    local,
    make_appointment,
    make_slot,
    time_link,
    waiting,
    works_on_weekdays,
)
from tests.staff_signin import secret_to_device_code, verified_login


@dataclass
class Page:
    status: int
    html: str
    headers: dict[str, str] = field(default_factory=dict)


def _page(response) -> Page:
    return Page(response.status_code, response.content.decode(), dict(response.headers.items()))


def _signed_in(username: str) -> Client:
    client = Client()
    verified_login(client, get_user_model().objects.get(username=username))
    return client


def _patient() -> Client:
    client = Client()
    assert client.post("/book/", SAFE_ANSWERS).status_code == 302
    return client


@pytest.fixture
def every_page(rita, mallory, dr_patel, dr_okafor, margaret) -> dict[str, Page]:
    call_command("import_articles", "--launch-content", stdout=StringIO())
    articles = list(Article.objects.order_by("slug").values_list("slug", flat=True))
    assert len(articles) == 2
    WorkingHours.objects.create(practitioner=dr_patel, weekday=1, start_time="09:00", end_time="12:00")
    TimeOff.objects.create(practitioner=dr_patel, starts_at=local(20, 9), ends_at=local(20, 17), reason="Course")
    TimeOff.objects.create(starts_at=local(30, 0), ends_at=local(31, 0), reason="Bank holiday")
    taken, free, later, okafor = (
        make_slot(dr_patel, local(2, 9)),
        make_slot(dr_patel, local(2, 10)),
        make_slot(dr_patel, local(3, 11)),
        make_slot(dr_okafor, local(2, 9)),
    )
    make_slot(dr_okafor, local(2, 14), state=Slot.State.BLOCKED, blocked_reason="Team meeting")
    # A third practitioner, as in the demo: the day view's widest table.
    sam = Practitioner.objects.create(
        user=get_user_model().objects.create_user(username="sam.lee", first_name="Sam", last_name="Lee"),
        display_name="Sam Lee",
        title="",
        profession="Physiotherapist",
        list_order=3,
    )
    make_slot(sam, local(0, 23, 20))
    booking = appointment_book(
        slot_id=taken.pk,
        patient=PatientDetails(
            "Pat", "Wolfeschlegelsteinhausenbergerdorff", "07700 900123", "pat@example.org", "Left hip"
        ),
        now=timezone.now(),
    )
    # Today's appointment, for the practitioner's day and the day view (the services rightly refuse the past).
    today = make_appointment(make_slot(dr_patel, local(0, 0, 20)), at=timezone.now() - timedelta(days=2))
    # A real 35-letter surname: headings and tables must wrap it, not widen the page on a phone. Another
    # patient's phone: before 00:20 this appointment is still upcoming, and with Pat's it would make Pat's
    # bookings below exceed the per-contact limit (the fixture failed between midnight and 00:20).
    Appointment.objects.filter(pk=today.pk).update(
        last_name="Wolfeschlegelsteinhausenbergerdorff", phone="07700 900789"
    )
    CallbackRequest.objects.create(name="Carol Caller", phone="07700 900555", created_at=timezone.now())

    pages: dict[str, Page] = {}
    stranger = Client()
    for name, url in [
        ("home", "/"),
        ("article list", "/articles/"),
        # A search for one endless word: it is printed in the page and must wrap, not widen it.
        ("article search for a long word", "/articles/?q=" + "x" * 200),
        *[(f"article {slug}", f"/articles/{slug}/") for slug in articles],
        ("team", "/team/"),
        ("contact", "/contact/"),
        ("privacy", "/privacy/"),
        ("accessibility", "/accessibility/"),
        ("safety check", "/book/"),
        ("staff sign-in", "/staff/login/"),
        ("sign-out", "/staff/logout/"),
        ("manage", f"/manage/{booking.manage_token}/"),
        ("manage move", f"/manage/{booking.manage_token}/move/"),
        ("404", "/no-such-page/"),
    ]:
        pages[name] = _page(stranger.get(url))
    pages["urgent care"] = _page(Client().post("/book/", {"red_flags": "trauma"}))
    pages["safety check with an error"] = _page(Client().post("/book/", {"red_flags": ["none", "trauma"]}))
    pages["contact with errors"] = _page(Client().post("/contact/", {"name": "", "phone": "no"}))

    patient = _patient()
    pages["time page"] = _page(patient.get("/book/time/"))
    # A link naming a practitioner the picker does not offer: the page says so above everyone's times.
    pages["time page, practitioner not found"] = _page(patient.get("/book/time/?practitioner=987654"))
    pages["details"] = _page(patient.get(f"/book/details/?slot={free.pk}"))
    pages["details, any practitioner"] = _page(patient.get(f"/book/details/{time_link(free)}"))
    pages["details with errors"] = _page(patient.post("/book/details/", {"slot": free.pk}))
    form = details_form(patient, free)
    assert patient.post("/book/details/", form).status_code == 302
    pages["confirmation"] = _page(patient.get("/book/confirmed/"))
    pages["already booked"] = _page(_patient().post("/book/details/", form))
    pages["just taken"] = _page(
        _patient().post("/book/details/", {**details_form(_patient(), later), "slot": taken.pk})
    )

    # The waiting list: joining, an entry's page, offers live, accepted, used, gone and unknown.
    pages["waiting list join"] = _page(_patient().get("/book/waiting-list/"))
    pages["waiting list join with errors"] = _page(_patient().post("/book/waiting-list/", {"email": "x"}))
    works_on_weekdays(dr_patel)
    join = {
        "first_name": "Jo",
        "last_name": "Ining",
        "email": "jo@example.org",
        "phone": "07700 900456",
        "weekdays": ["0"],
        "parts_of_day": ["morning"],
        "wait_until": local(10, 9).date().isoformat(),
        "consent": "on",
    }
    pages["waiting list join sent"] = _page(_patient().post("/book/waiting-list/", join))
    pages["waiting list lost link"] = _page(stranger.get("/waiting-list/lost-link/"))
    pages["waiting list lost link with errors"] = _page(stranger.post("/waiting-list/lost-link/", {"email": "x"}))
    pages["waiting list lost link sent"] = _page(stranger.post("/waiting-list/lost-link/", {"email": "jo@example.org"}))
    # Someone with a booking ahead opens the link that confirms joining: asked whether to move that booking.
    confirming, confirming_token = waiting(booking.appointment.email, first_name="Pat")
    WaitingListEntry.objects.filter(pk=confirming.pk).update(status=WaitingListEntry.Status.PENDING)
    pages["waiting list entry to confirm"] = _page(stranger.get(f"/waiting-list/{confirming_token}/"))
    # Asking only for days after that booking: the list could never move it, and the page says so.
    WaitingListEntry.objects.filter(pk=confirming.pk).update(weekdays=[local(5, 9).weekday()])
    pages["waiting list entry to confirm, later days"] = _page(stranger.get(f"/waiting-list/{confirming_token}/"))
    WaitingListEntry.objects.filter(pk=confirming.pk).update(
        status=WaitingListEntry.Status.LEFT, ended_at=timezone.now()
    )
    pages["manage sooner"] = _page(stranger.get(f"/manage/{booking.manage_token}/sooner/"))
    wanda, wanda_token = waiting("wanda@example.org", practitioner=dr_okafor)
    xavier, _ = waiting("xavier@example.org", first_name="Xavier", practitioner=dr_okafor)
    rita = get_user_model().objects.get(username="rita")
    offered = make_slot(dr_okafor, local(4, 10))
    gone = make_slot(dr_okafor, local(4, 11))
    waiting_list_offer_by_hand(entry=wanda, slot_id=offered.pk, now=timezone.now(), actor=rita)
    waiting_list_offer_by_hand(entry=xavier, slot_id=gone.pk, now=timezone.now(), actor=rita)
    appointment_book(
        slot_id=gone.pk, patient=PatientDetails("Cal", "Ler", "07700 900777"), now=timezone.now(), booked_by=rita
    )
    accept_link = "/waiting-list/offer/{}/".format
    tokens = dict(
        OutboundMessage.objects.filter(waiting_list_offer__isnull=False).values_list("slot_id", "manage_token")
    )
    pages["waiting list offer"] = _page(stranger.get(accept_link(tokens[offered.pk])))
    pages["waiting list offer gone"] = _page(stranger.get(accept_link(tokens[gone.pk])))
    pages["waiting list offer unknown"] = _page(stranger.get(accept_link("no-such-offer")))
    pages["waiting list accepted"] = _page(stranger.post(accept_link(tokens[offered.pk])))
    pages["waiting list offer used"] = _page(stranger.post(accept_link(tokens[offered.pk])))
    pages["waiting list entry"] = _page(stranger.get(f"/waiting-list/{wanda_token}/"))
    waiting("yvonne@example.org", first_name="Yvonne")
    # Pat waits for a time too: the patient's data page shows the waiting-list section.
    waiting("pat@example.org", first_name="Pat")

    rita_browser = _signed_in("rita")
    for name, url in [
        ("day view", "/staff/reception/"),
        ("week view", f"/staff/reception/week/{dr_patel.pk}/"),
        ("next free", "/staff/reception/next-free/"),
        ("phone booking", f"/staff/reception/book/?slot={okafor.pk}"),
        ("appointment", f"/staff/reception/appointments/{booking.appointment.pk}/"),
        ("staff move", f"/staff/reception/appointments/{booking.appointment.pk}/move/"),
        ("block a slot", f"/staff/reception/slots/{okafor.pk}/block/"),
        ("hours and closures", "/staff/reception/hours/"),
        ("hours and time off", f"/staff/reception/hours/{dr_patel.pk}/"),
        ("export", "/staff/reception/export/"),
        ("call-backs", "/staff/reception/callbacks/"),
        ("patient's data", f"/staff/reception/patients/{booking.appointment.pk}/"),
        ("erasure on request", f"/staff/reception/patients/{booking.appointment.pk}/erase/"),
        ("older privacy notice", "/staff/reception/privacy-notices/2026-11/"),
        ("waiting list", "/staff/reception/waiting-list/"),
        ("waiting list add", "/staff/reception/waiting-list/add/"),
    ]:
        pages[name] = _page(rita_browser.get(url))
    cancelled = make_appointment(
        make_slot(dr_okafor, local(5, 9)), at=timezone.now(), status=Appointment.Status.CANCELLED
    )
    pages["staff move, cancelled"] = _page(rita_browser.get(f"/staff/reception/appointments/{cancelled.pk}/move/"))
    pages["search"] = _page(rita_browser.post("/staff/reception/search/", {"q": "Wolfeschlegel"}))
    pages["erasure with errors"] = _page(
        rita_browser.post(f"/staff/reception/patients/{booking.appointment.pk}/erase/", {"reference": ""})
    )
    pages["waiting list add with errors"] = _page(
        rita_browser.post("/staff/reception/waiting-list/add/", {"email": "x"})
    )
    pages["phone booking with errors"] = _page(
        rita_browser.post(f"/staff/reception/book/?slot={okafor.pk}", {"slot": okafor.pk})
    )

    patel_browser = _signed_in("dr.patel")
    for name, url in [
        ("my day", "/staff/me/"),
        ("my upcoming", "/staff/me/upcoming/"),
        ("my appointment", f"/staff/me/appointments/{today.pk}/"),
        ("my calendar", "/staff/me/calendar/"),
    ]:
        pages[name] = _page(patel_browser.get(url))

    # Margaret's Insights page, over a year (the charts and tables), and with dates the wrong way round.
    manager_browser = _signed_in("margaret")
    pages["insights"] = _page(manager_browser.get("/staff/insights/?weeks=52"))
    pages["insights with errors"] = _page(manager_browser.get("/staff/insights/?start=2026-03-15&end=2026-03-02"))

    # The second factor's pages: the code step after a password, enrolment, the backup codes, the reset.
    half_signed_in = Client()
    half_signed_in.force_login(get_user_model().objects.get(username="rita"))
    pages["code step"] = _page(half_signed_in.get("/staff/login/code/"))
    pages["code step with errors"] = _page(half_signed_in.post("/staff/login/code/", {"code": "12"}))
    new_starter = Client()
    new_starter.force_login(dr_okafor.user)
    pages["set up an app"] = _page(new_starter.get("/staff/two-factor/setup/"))
    pages["set up an app with errors"] = _page(new_starter.post("/staff/two-factor/setup/", {"code": "x"}))
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', pages["set up an app"].html).group(1)
    pages["backup codes"] = _page(new_starter.post("/staff/two-factor/setup/", {"code": secret_to_device_code(secret)}))
    assert "backup-codes" in pages["backup codes"].html
    pages["app already set up"] = _page(rita_browser.get("/staff/two-factor/setup/"))
    pages["reset my app"] = _page(rita_browser.get("/staff/two-factor/reset/"))

    pages["400"] = _page(Client().get("/", HTTP_HOST="not-our-site.example"))
    pages["403"] = _page(_signed_in("mallory").get("/staff/reception/"))
    pages["403 csrf"] = _page(Client(enforce_csrf_checks=True).post("/contact/", {"name": "Mallory"}))
    with override_settings(RATE_LIMIT_PUBLIC_POSTS=1):
        flooder = Client()
        flooder.post("/contact/", {"name": ""})
        pages["429"] = _page(flooder.post("/contact/", {"name": ""}))
    pages["500"] = _page(server_error(RequestFactory().get("/")))
    pages["503"] = _page(database_unavailable_response())

    expected = {"404": 404, "400": 400, "403": 403, "403 csrf": 403, "429": 429, "500": 500, "503": 503}
    expected |= {"urgent care": 200, "already booked": 409, "just taken": 409}
    expected |= dict.fromkeys(
        (
            "contact with errors",
            "details with errors",
            "phone booking with errors",
            "safety check with an error",
            "insights with errors",
        ),
        400,
    )
    expected |= {"erasure with errors": 400}
    expected |= {"waiting list offer gone": 409, "waiting list offer unknown": 404, "waiting list offer used": 409}
    expected |= dict.fromkeys(
        ("waiting list join with errors", "waiting list add with errors", "waiting list lost link with errors"), 400
    )
    wrong = {name: page.status for name, page in pages.items() if page.status != expected.get(name, 200)}
    assert wrong == {}, wrong
    return pages
