"""axe-core (vendored from npm in tests/vendor/axe-core) on every public page and the main staff pages."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from articles.models import Article
from bookings.models import OutboundMessage, WaitingListEntry
from bookings.services import PatientDetails, appointment_book, waiting_list_offer_by_hand
from tests.helpers import local, make_slot, patient_books, waiting, works_on_weekdays
from tests.staff_signin import browser_sign_in, secret_to_device_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE_SOURCE = (Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js").read_text()
BLOCKING_IMPACTS = {"serious", "critical"}


def axe_violations(page) -> list[dict]:
    """Inject axe-core and return its serious and critical violations on the current page."""
    page.wait_for_load_state("load")
    page.evaluate(AXE_SOURCE)
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in results["violations"]
        if v["impact"] in BLOCKING_IMPACTS
    ]


@pytest.fixture
def clinic_day(dr_patel, dr_okafor):
    Article.objects.create(
        title="Hip pain and your back",
        slug="hip-pain-and-your-back",
        summary="Why hips and backs hurt together.",
        body_markdown="Intro paragraph.\n\n## Why\n\nBecause.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        status=Article.Status.PUBLISHED,
        published_at=timezone.now() - timedelta(days=1),
    )
    today_slot = make_slot(dr_patel, timezone.now() + timedelta(hours=3))
    make_slot(dr_patel, local(2, 10))
    make_slot(dr_okafor, local(2, 11))
    booking = appointment_book(
        slot_id=today_slot.pk,
        patient=PatientDetails("Pat", "Example", "07700 900123", "pat@example.org", "Left hip"),
        now=timezone.now() - timedelta(days=1),
    )
    return booking


PUBLIC_PAGES = [
    "/",
    "/articles/",
    "/articles/?q=nothing-matches-this",
    "/articles/hip-pain-and-your-back/",
    "/team/",
    "/contact/",
    "/privacy/",
    "/accessibility/",
    "/book/",
    "/staff/login/",
    "/no-such-page/",
]


def test_public_pages_have_no_serious_or_critical_axe_violations(page, live_server, clinic_day, capsys):
    checked = {}
    for url in PUBLIC_PAGES:
        page.goto(url)
        checked[url] = axe_violations(page)
    # The rest of the booking flow, reached as a patient would.
    page.goto("/book/")
    page.get_by_label("No, none of these").check()
    # Each check waits for its page: axe run mid-navigation measures a half-styled page.
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/book/time/")
    checked["/book/time/"] = axe_violations(page)
    page.locator("a.slot-link").first.click()
    page.wait_for_url("**/book/details/?at=*")
    checked["/book/details/"] = axe_violations(page)
    page.get_by_role("button", name="Confirm booking").click()  # empty: the page with every error shown
    page.wait_for_selector("#error-summary")
    checked["/book/details/ (errors)"] = axe_violations(page)
    page.goto(f"/manage/{clinic_day.manage_token}/")
    checked["/manage/…/"] = axe_violations(page)
    page.goto(f"/manage/{clinic_day.manage_token}/move/")
    checked["/manage/…/move/"] = axe_violations(page)
    with capsys.disabled():
        print(
            f"\naxe-core: {len(checked)} public pages, serious/critical violations: "
            f"{sum(len(v) for v in checked.values())}"
        )
    assert {url: v for url, v in checked.items() if v} == {}


def test_the_waiting_list_pages_have_no_serious_or_critical_axe_violations(page, live_server, clinic_day, rita, capsys):
    checked = {}
    works_on_weekdays(clinic_day.appointment.slot.practitioner)
    page.goto("/book/")
    # The safety check is one "none of these" box since #18.
    page.get_by_label("No, none of these").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/book/time/")
    page.get_by_role("link", name="Join the waiting list").click()
    page.wait_for_url("**/book/waiting-list/?*")
    checked["/book/waiting-list/"] = axe_violations(page)
    page.get_by_role("button", name="Join the waiting list").click()  # empty: every error shown
    page.wait_for_selector("#error-summary")
    checked["/book/waiting-list/ (errors)"] = axe_violations(page)
    page.goto(f"/manage/{clinic_day.manage_token}/sooner/")
    checked["/manage/…/sooner/"] = axe_violations(page)
    page.goto("/waiting-list/lost-link/")
    checked["/waiting-list/lost-link/"] = axe_violations(page)
    page.get_by_label("E-mail").fill("pat@example.org")
    page.get_by_role("button", name="E-mail me my link").click()
    page.wait_for_selector("text=Check your e-mail")
    checked["/waiting-list/lost-link/ (sent)"] = axe_violations(page)
    # Someone with a booking ahead opens their joining link: the page asks whether to move that booking.
    patient_books(make_slot(clinic_day.appointment.slot.practitioner, local(6, 10)), email="paula@example.org")
    pending, pending_token = waiting("paula@example.org", first_name="Paula")
    WaitingListEntry.objects.filter(pk=pending.pk).update(status=WaitingListEntry.Status.PENDING)
    page.goto(f"/waiting-list/{pending_token}/")
    checked["/waiting-list/…/ (to confirm)"] = axe_violations(page)
    WaitingListEntry.objects.filter(pk=pending.pk).update(status=WaitingListEntry.Status.LEFT, ended_at=timezone.now())
    entry, token = waiting("wanda@example.org")
    page.goto(f"/waiting-list/{token}/")
    checked["/waiting-list/…/"] = axe_violations(page)
    offered = make_slot(clinic_day.appointment.slot.practitioner, local(5, 10))
    waiting_list_offer_by_hand(entry=entry, slot_id=offered.pk, now=timezone.now(), actor=rita)
    accept_token = OutboundMessage.objects.get(waiting_list_offer__isnull=False).manage_token
    page.goto(f"/waiting-list/offer/{accept_token}/")
    checked["/waiting-list/offer/…/"] = axe_violations(page)
    page.get_by_role("button", name="Accept this time").click()
    page.wait_for_selector("text=Your consultation is booked")
    checked["/waiting-list/offer/… (accepted)"] = axe_violations(page)
    page.goto("/waiting-list/offer/forged/")
    checked["/waiting-list/offer/forged/"] = axe_violations(page)
    waiting("xavier@example.org", first_name="Xavier")
    _sign_in(page, "rita")
    for name in ["/staff/reception/waiting-list/", "/staff/reception/waiting-list/add/"]:
        page.goto(name)
        checked[name] = axe_violations(page)
    with capsys.disabled():
        print(
            f"\naxe-core: {len(checked)} waiting-list pages, serious/critical violations: "
            f"{sum(len(v) for v in checked.values())}"
        )
    assert {url: v for url, v in checked.items() if v} == {}


def _sign_in(page, username):
    browser_sign_in(page, username, "correct horse battery")


def test_main_staff_pages_have_no_serious_or_critical_axe_violations(page, live_server, clinic_day, rita, capsys):
    checked = {}
    _sign_in(page, "rita")
    for name in [
        "/staff/reception/",
        "/staff/reception/next-free/",
        "/staff/reception/hours/",
        "/staff/reception/search/?q=Example",
        "/staff/reception/callbacks/",
        f"/staff/reception/appointments/{clinic_day.appointment.pk}/",
        f"/staff/reception/patients/{clinic_day.appointment.pk}/",
        f"/staff/reception/patients/{clinic_day.appointment.pk}/erase/",
        "/staff/reception/privacy-notices/2026-11/",
    ]:
        page.goto(name)
        checked[name] = axe_violations(page)
    page.context.clear_cookies()
    _sign_in(page, "dr.patel")
    for name in ["/staff/me/", f"/staff/me/appointments/{clinic_day.appointment.pk}/"]:
        page.goto(name)
        checked[name] = axe_violations(page)
    with capsys.disabled():
        print(
            f"\naxe-core: {len(checked)} staff pages, serious/critical violations: "
            f"{sum(len(v) for v in checked.values())}"
        )
    assert {url: v for url, v in checked.items() if v} == {}


def test_the_booking_flow_works_at_200_percent_zoom_on_a_phone(chromium_browser, live_server, clinic_day):
    # 200% zoom on a 390px phone is a 195 CSS-pixel-wide layout at device scale 4.
    context = chromium_browser.new_context(
        base_url=live_server.url, viewport={"width": 195, "height": 422}, device_scale_factor=4
    )
    page = context.new_page()
    try:
        page.goto("/")
        page.get_by_role("link", name="Book online - Free 20-minute consultation").first.click()
        page.get_by_label("No, none of these").check()
        page.get_by_role("button", name="Continue").click()
        page.locator("a.slot-link").first.click()
        page.get_by_label("First name").fill("Zoe")
        page.get_by_label("Last name").fill("Zoom")
        page.get_by_label("E-mail").fill("zoe@example.org")
        page.get_by_label("Phone").fill("07700 900321")
        page.get_by_label("I have read the privacy notice", exact=False).check()
        page.get_by_role("button", name="Confirm booking").click()
        page.wait_for_url("**/book/confirmed/")
        page.screenshot(path="/tmp/zoom-confirmed.png", full_page=True)
        # Nothing needs sideways scrolling at this zoom.
        too_wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > "
            "window.innerWidth + 1).map(e => e.tagName + '.' + e.className).slice(0, 5)"
        )
        assert too_wide == []
    finally:
        context.close()


def test_the_two_factor_pages_have_no_serious_or_critical_axe_violations(page, live_server, dr_okafor, capsys):
    checked = {}
    page.goto("/staff/login/")
    page.get_by_label("Username").fill("dr.okafor")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/staff/two-factor/setup/**")
    checked["set up an app"] = axe_violations(page)
    page.get_by_role("button", name="Confirm").click()  # empty: the error shown
    page.wait_for_selector(".invalid-feedback")
    checked["set up an app (errors)"] = axe_violations(page)
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Code from the app").fill(secret_to_device_code(secret))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_selector("#backup-codes")
    checked["backup codes"] = axe_violations(page)
    page.goto("/staff/two-factor/setup/")
    checked["app already set up"] = axe_violations(page)
    page.goto("/staff/two-factor/reset/")
    checked["reset my app"] = axe_violations(page)
    page.context.clear_cookies()
    page.goto("/staff/login/")
    page.get_by_label("Username").fill("dr.okafor")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/staff/login/code/**")
    checked["code step"] = axe_violations(page)
    page.get_by_label("Code").fill("000")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector(".invalid-feedback")
    checked["code step (errors)"] = axe_violations(page)
    with capsys.disabled():
        print(
            f"\naxe-core: {len(checked)} two-factor pages, serious/critical violations: "
            f"{sum(len(v) for v in checked.values())}"
        )
    assert {url: v for url, v in checked.items() if v} == {}


def test_the_insights_page_has_no_serious_or_critical_axe_violations(page, live_server, clinic_day, margaret):
    """Margaret's page with its five charts (inline SVG) and tables, and with a wrong period."""
    _sign_in(page, "margaret")
    checked = {}
    for url in [
        "/staff/insights/?weeks=52",
        "/staff/insights/?weeks=4",
        "/staff/insights/?start=2026-03-15&end=2026-03-02",
    ]:
        page.goto(url)
        checked[url] = axe_violations(page)

    assert {url: v for url, v in checked.items() if v} == {}
