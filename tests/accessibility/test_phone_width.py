"""No page, public or staff, scrolls sideways on a 390 px wide phone.

Every page of `every_page` (tests/accessibility/conftest.py), fetched as its visitor gets it, is opened in Chromium
at 390x844 with the site's own CSS and JavaScript from the live server: the HTML and headers the site answered
are served at a path of the live server, so that pages reached by a POST (errors, "just taken", 429) are there too.
"""

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
KEPT_HEADERS = {"content-type", "content-security-policy", "cache-control", "x-content-type-options"}

# The elements that stick out to the right of the page, for the failure message.
WIDEST = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
    .slice(-3).map(e => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ').join('.') : '')
        + ' "' + (e.textContent || '').trim().slice(0, 40) + '"')"""


def serve(answer, headers):
    def fulfill(route):
        route.fulfill(status=answer.status, headers=headers, body=answer.html)

    return fulfill


def test_no_page_scrolls_sideways_on_a_390_pixel_phone(page, live_server, every_page, capsys):
    page.set_viewport_size(PHONE)
    too_wide = {}
    for name, answer in every_page.items():
        path = "/every-page/" + re.sub(r"[^a-z0-9]+", "-", name.lower()) + "/"
        headers = {key: value for key, value in answer.headers.items() if key.lower() in KEPT_HEADERS}
        page.route(f"{live_server.url}{path}", serve(answer, headers))
        page.goto(path)
        page.wait_for_load_state("load")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[name] = (width, page.evaluate(WIDEST))
    with capsys.disabled():
        print(f"\nAt 390 px: {len(every_page)} pages, {len(too_wide)} scroll sideways")
    assert too_wide == {}, "\n".join(
        f"{name}: {width} px, {sticking_out}" for name, (width, sticking_out) in too_wide.items()
    )
