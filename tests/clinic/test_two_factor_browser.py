"""Rita sets up her authenticator app in Chromium, reading the secret off the page as she would type it into the app."""

import re
import time

import pytest

from tests.staff_signin import secret_to_device_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


def test_rita_enrols_signs_out_and_signs_in_with_password_and_code_to_the_day_view(page, rita):
    page.goto("/staff/login/")
    page.get_by_label("Username").fill("rita")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url("**/staff/two-factor/setup/**")
    assert page.get_by_role("img", name=re.compile("QR code")).is_visible()
    secret = page.locator("#totp-secret").inner_text()
    # A code typed as its half-minute ends is checked in the next one: the site then records a drift of one
    # step, and the later "next code" below falls outside its window. A person would wait for a fresh code too.
    _wait_for_a_fresh_code()
    page.get_by_label("Code from the app").fill(secret_to_device_code(secret))
    page.get_by_role("button", name="Confirm").click()

    codes = page.locator("#backup-codes li").all_inner_texts()
    assert len(codes) == 10
    page.get_by_role("link", name=re.compile("continue")).click()
    page.wait_for_url("**/staff/reception/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(lambda url: "/staff/" not in url)

    page.goto("/staff/reception/")
    page.get_by_label("Username").fill("rita")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/staff/login/code/**")
    # The enrolment used this half-minute's code: the phone's next one, within the one step of drift allowed.
    _wait_for_a_fresh_code()
    page.get_by_label("Code").fill(secret_to_device_code(secret, steps=1))
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url("**/staff/reception/")
    assert "Today" in page.locator("h1").inner_text()


def _wait_for_a_fresh_code(margin: float = 10.0) -> None:
    """Sleep into the next 30-second step when fewer than MARGIN seconds of this one are left."""
    left = 30 - time.time() % 30
    if left < margin:
        time.sleep(left + 0.5)
