"""From an article's call to action to "You're booked in" on a 390 px phone: at most 4 pages and 10 interactions.

Driven only by what the screen shows (roles and visible labels), as a new patient would: the call to action,
"No, none of these", Continue, the soonest time, four fields, the consent box, Confirm. Page loads are the
main frame's "load" events after the article was shown; each tap, fill or key press a patient makes is one
interaction. The same journey is then made with the keyboard alone and with JavaScript off.
"""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from bookings.models import Appointment
from tests.helpers import local, make_slot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SLUG = "hip-and-lower-back-pain-why-they-come-together"
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 3}
MAX_PAGES, MAX_INTERACTIONS = 4, 10
CALL_TO_ACTION = "Book online - Free 20-minute consultation"


@pytest.fixture
def article_and_times(dr_patel, dr_okafor):
    call_command("import_articles", "--launch-content", stdout=StringIO())
    # The soonest time has both practitioners free; later ones fill a week, as on a real time page.
    times = [make_slot(dr_patel, local(2, 10)), make_slot(dr_okafor, local(2, 10))]
    for day in (3, 4):
        times += [make_slot(dr_patel, local(day, 9) + timedelta(minutes=20 * index)) for index in range(24)]
    return times


class Journey:
    """Counts what a patient does: page loads of the main frame, and interactions."""

    def __init__(self, page):
        self.page, self.loads, self.interactions = page, 0, 0
        page.on("load", lambda _: self._loaded())

    def _loaded(self):
        self.loads += 1

    def tap(self, locator):
        self.interactions += 1
        locator.tap()

    def fill(self, locator, text):
        self.interactions += 1
        locator.fill(text)

    def report(self, name):
        print(f"\n{name}: {self.loads} page loads, {self.interactions} interactions")


def _phone(chromium_browser, live_server, **extra):
    return chromium_browser.new_context(base_url=live_server.url, **PHONE, **extra)


def _to_the_article(page):
    page.goto(f"/articles/{SLUG}/")
    page.wait_for_load_state("load")


def _book_the_soonest_time_by_touch(page, journey):
    journey.tap(page.get_by_role("link", name=CALL_TO_ACTION).last)
    page.wait_for_url("**/book/?article=*")
    journey.tap(page.get_by_label("No, none of these"))
    journey.tap(page.get_by_role("button", name="Continue"))
    page.wait_for_url("**/book/time/")
    journey.tap(page.get_by_role("link", name=re.compile(r"^Soonest: ")))
    page.wait_for_url("**/book/details/?at=*")
    journey.fill(page.get_by_label("First name"), "Pat")
    journey.fill(page.get_by_label("Last name"), "Example")
    journey.fill(page.get_by_label("E-mail"), "pat@example.org")
    journey.fill(page.get_by_label("Phone"), "07700 900123")
    journey.tap(page.get_by_label(re.compile("privacy notice and agree")))
    journey.tap(page.get_by_role("button", name="Confirm booking"))
    page.wait_for_url("**/book/confirmed/")
    page.wait_for_load_state("load")
    assert "You're booked in, Pat" in page.get_by_role("main").inner_text()


def test_a_patient_on_a_phone_books_the_soonest_time_in_four_pages_and_ten_taps(
    chromium_browser, live_server, article_and_times, capsys
):
    context = _phone(chromium_browser, live_server)
    page = context.new_page()
    try:
        _to_the_article(page)
        journey = Journey(page)
        _book_the_soonest_time_by_touch(page, journey)
        with capsys.disabled():
            journey.report("Touch, 390x844")
    finally:
        context.close()

    assert journey.loads <= MAX_PAGES and journey.interactions <= MAX_INTERACTIONS
    appointment = Appointment.objects.get()
    assert appointment.slot.starts_at == local(2, 10)
    assert appointment.source_article.slug == SLUG


def test_the_same_journey_works_with_javascript_off(chromium_browser, live_server, article_and_times, capsys):
    context = _phone(chromium_browser, live_server, java_script_enabled=False)
    page = context.new_page()
    try:
        _to_the_article(page)
        journey = Journey(page)
        _book_the_soonest_time_by_touch(page, journey)
        with capsys.disabled():
            journey.report("Touch, JavaScript off")
    finally:
        context.close()

    assert journey.loads <= MAX_PAGES and journey.interactions <= MAX_INTERACTIONS
    assert Appointment.objects.get().slot.starts_at == local(2, 10)


def _tab_to(page, locator, limit: int = 120) -> int:
    """Press Tab until LOCATOR has the focus, as a keyboard user would; the number of presses."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if locator.evaluate("element => element === document.activeElement"):
            return presses
    raise AssertionError(f"Tab never reached {locator}")


def test_the_same_journey_works_with_the_keyboard_alone(chromium_browser, live_server, article_and_times, capsys):
    context = chromium_browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        _to_the_article(page)
        loads = []
        page.on("load", lambda _: loads.append(page.url))
        _tab_to(page, page.get_by_role("link", name=CALL_TO_ACTION).first)
        page.keyboard.press("Enter")
        page.wait_for_url("**/book/?article=*")
        _tab_to(page, page.get_by_label("No, none of these"))
        page.keyboard.press("Space")
        _tab_to(page, page.get_by_role("button", name="Continue"))
        page.keyboard.press("Enter")
        page.wait_for_url("**/book/time/")
        _tab_to(page, page.get_by_role("link", name=re.compile(r"^Soonest: ")))
        page.keyboard.press("Enter")
        page.wait_for_url("**/book/details/?at=*")
        for label, text in [
            ("First name", "Kim"),
            ("Last name", "Keys"),
            ("E-mail", "kim@example.org"),
            ("Phone", "07700 900456"),
        ]:
            _tab_to(page, page.get_by_label(label))
            page.keyboard.type(text)
        _tab_to(page, page.get_by_label(re.compile("privacy notice and agree")))
        page.keyboard.press("Space")
        _tab_to(page, page.get_by_role("button", name="Confirm booking"))
        page.keyboard.press("Enter")
        page.wait_for_url("**/book/confirmed/")
        page.wait_for_load_state("load")
        with capsys.disabled():
            print(f"\nKeyboard alone: {len(loads)} page loads")
    finally:
        context.close()

    assert len(loads) <= MAX_PAGES
    assert Appointment.objects.get().first_name == "Kim"


def test_a_day_link_brings_that_days_times_into_view_without_loading_a_page(
    chromium_browser, live_server, article_and_times
):
    context = _phone(chromium_browser, live_server)
    page = context.new_page()
    try:
        page.goto("/book/")
        page.get_by_label("No, none of these").tap()
        page.get_by_role("button", name="Continue").tap()
        page.wait_for_url("**/book/time/")
        later_day = local(4, 9).strftime("%A %-d %B")
        heading = page.get_by_role("heading", name=later_day)
        expect(heading).not_to_be_in_viewport()
        page.screenshot(path="/tmp/time-page-on-a-phone.png")
        loads = []
        page.on("load", lambda _: loads.append(page.url))

        page.get_by_role("link", name=f"{later_day}: 24 times").tap()

        # Bootstrap scrolls smoothly: the expectation waits for the scroll to end.
        expect(heading).to_be_in_viewport(ratio=1)
        assert page.evaluate("location.hash").startswith("#day-") and loads == []
        page.get_by_role("link", name=f"09:20 on {later_day}").tap()
        page.wait_for_url("**/book/details/?at=*")
        assert f"{later_day} 2026 at 09:20" in page.get_by_role("main").inner_text()
    finally:
        context.close()


def test_ticking_none_clears_the_flags_and_a_flag_clears_none_with_javascript(chromium_browser, live_server, db):
    context = _phone(chromium_browser, live_server)
    page = context.new_page()
    try:
        page.goto("/book/")
        page.screenshot(path="/tmp/safety-check-on-a-phone.png", full_page=True)
        flag = page.get_by_label(re.compile("^The pain started after a fall"))
        none = page.get_by_label("No, none of these")
        flag.tap()
        none.tap()
        assert none.is_checked() and not flag.is_checked()
        flag.tap()
        assert flag.is_checked() and not none.is_checked()
    finally:
        context.close()


def test_without_javascript_none_with_a_flag_is_refused_and_both_stay_ticked(chromium_browser, live_server, db):
    context = _phone(chromium_browser, live_server, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto("/book/")
        page.get_by_label(re.compile("^The pain started after a fall")).tap()
        page.get_by_label("No, none of these").tap()
        page.get_by_role("button", name="Continue").tap()
        expect(page.get_by_text("please tick only what applies to you")).to_be_visible()
        assert page.get_by_label("No, none of these").is_checked()
        assert page.get_by_label(re.compile("^The pain started after a fall")).is_checked()
    finally:
        context.close()


def test_the_details_form_asks_a_phone_to_autofill_name_email_and_number(
    chromium_browser, live_server, article_and_times
):
    context = _phone(chromium_browser, live_server)
    page = context.new_page()
    try:
        page.goto("/book/")
        page.get_by_label("No, none of these").tap()
        page.get_by_role("button", name="Continue").tap()
        page.get_by_role("link", name=re.compile(r"^Soonest: ")).tap()
        page.wait_for_url("**/book/details/?at=*")
        fields = {
            label: page.get_by_label(label).evaluate("e => [e.type, e.autocomplete, e.inputMode]")
            for label in ["First name", "Last name", "E-mail", "Phone"]
        }
    finally:
        context.close()

    assert fields == {
        "First name": ["text", "given-name", ""],
        "Last name": ["text", "family-name", ""],
        "E-mail": ["email", "email", ""],
        "Phone": ["tel", "tel", "tel"],
    }
