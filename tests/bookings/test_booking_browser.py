"""A patient books in Chromium, with the mouse and then with the keyboard alone."""

import re

import pytest

from bookings.models import Appointment
from tests.helpers import local, make_slot, time_link

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def free_times(dr_patel, dr_okafor):
    return [make_slot(dr_patel, local(2, 10)), make_slot(dr_okafor, local(2, 10, 20)), make_slot(dr_patel, local(3, 9))]


def test_a_patient_books_from_the_home_page_and_cancels_through_the_manage_link(page, live_server, free_times):
    page.goto("/")
    page.get_by_role("link", name=re.compile("Free 20-minute consultation")).first.click()
    page.wait_for_url("**/book/")
    page.get_by_label("No, none of these").check()
    page.get_by_role("button", name="Continue").click()

    page.wait_for_url("**/book/time/")
    page.locator("a.slot-link").first.click()

    page.get_by_label("First name").fill("Pat")
    page.get_by_label("Last name").fill("Example")
    page.get_by_label("E-mail").fill("pat@example.org")
    page.get_by_label("Phone").fill("07700 900123")
    page.get_by_label(re.compile("privacy notice and agree")).check()
    page.get_by_role("button", name="Confirm booking").click()

    page.wait_for_url("**/book/confirmed/")
    assert "You're booked in, Pat" in page.inner_text("main")
    appointment = Appointment.objects.get()
    assert appointment.slot == free_times[0]

    page.locator("#manage-link").click()
    page.get_by_label("Reason (optional)").fill("Feeling better")
    page.get_by_role("button", name="Cancel my consultation").click()
    page.wait_for_selector("text=This consultation was cancelled")
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELLED
    assert appointment.cancel_reason == "Feeling better"
    page.screenshot(path="/tmp/booking-cancelled.png", full_page=True)


def _tab_to(page, selector: str, limit: int = 80):
    """Press Tab until the focused element matches `selector`, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(selector) => document.activeElement.matches(selector)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_a_patient_books_with_the_keyboard_alone(page, live_server, free_times):
    page.goto("/")
    # The skip link is the first thing the keyboard reaches.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent").strip() == "Skip to main content"
    _tab_to(page, "a[href='/book/']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/book/")
    _tab_to(page, "input[name='red_flags'][value='none']")
    page.keyboard.press("Space")
    _tab_to(page, "button[type='submit']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/book/time/")
    _tab_to(page, "a.slot-link")
    page.keyboard.press("Enter")
    page.wait_for_url("**/book/details/**")
    for name, text in [
        ("first_name", "Kim"),
        ("last_name", "Keys"),
        ("email", "kim@example.org"),
        ("phone", "07700 900456"),
    ]:
        _tab_to(page, f"input[name='{name}']")
        page.keyboard.type(text)
    _tab_to(page, "input[name='consent']")
    page.keyboard.press("Space")
    _tab_to(page, "button[type='submit']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/book/confirmed/")
    assert Appointment.objects.get().first_name == "Kim"


def test_changing_week_swaps_only_the_times_with_javascript(page, live_server, dr_patel):
    make_slot(dr_patel, local(2, 10))
    later = make_slot(dr_patel, local(16, 11))
    page.goto("/book/")
    page.get_by_label("No, none of these").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/book/time/")
    page.evaluate("window.marker = 'still the same page'")
    for _ in range(2):
        heading = page.inner_text("#week-heading")
        page.get_by_role("link", name=re.compile("Later week")).click()
        page.wait_for_function("(before) => document.querySelector('#week-heading').innerText !== before", arg=heading)
    assert "week=" in page.url
    page.wait_for_selector(f"a[href$='{time_link(later)}']")
    # htmx swapped the picker in place: the page (and its JavaScript state) was not reloaded,
    # and focus went to the new week's heading rather than being lost.
    assert page.evaluate("window.marker") == "still the same page"
    assert page.evaluate("document.activeElement.id") == "week-heading"


def test_every_booking_step_works_with_javascript_switched_off(chromium_browser, live_server, free_times):
    context = chromium_browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto("/book/")
        page.get_by_label("No, none of these").check()
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("link", name=re.compile("Later week")).click()
        page.get_by_role("link", name=re.compile("Earlier week")).click()
        page.locator("a.slot-link").first.click()
        page.get_by_label("First name").fill("Nora")
        page.get_by_label("Last name").fill("Script")
        page.get_by_label("E-mail").fill("nora@example.org")
        page.get_by_label("Phone").fill("07700 900777")
        page.get_by_label(re.compile("privacy notice and agree")).check()
        page.get_by_role("button", name="Confirm booking").click()
        page.wait_for_url("**/book/confirmed/")
        page.locator("#manage-link").click()
        page.get_by_role("link", name="Choose a new time").click()
        page.locator("label[for^='slot-']").first.click()
        page.get_by_role("button", name="Move to the chosen time").last.click()
        page.wait_for_selector("text=Your consultation has been moved")
        assert Appointment.objects.get().slot != free_times[0]
    finally:
        context.close()
