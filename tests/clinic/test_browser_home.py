"""The home page and a missing page in a real browser, styled by our own vendored Bootstrap, with nothing from outside.

The `page` fixture (tests/conftest.py) fails the test if any request leaves the machine.
"""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db]


def bootstrap_is_applied(page) -> bool:
    # Bootstrap's .navbar is a flex container and .btn-warning is yellow; unstyled HTML has neither.
    return page.evaluate(
        """() => {
            const navbar = document.querySelector('.navbar');
            const button = document.querySelector('.btn-warning');
            return getComputedStyle(navbar).display === 'flex'
                && getComputedStyle(button).backgroundColor === 'rgb(255, 193, 7)';
        }"""
    )


def test_the_home_page_renders_styled_with_local_assets_only(page, settings):
    failed = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("response", lambda response: response.status >= 400 and failed.append(response.url))

    response = page.goto("/")

    assert response.status == 200
    assert settings.CLINIC_NAME in page.title()
    assert page.locator("h1").first.is_visible()
    assert bootstrap_is_applied(page)
    page.screenshot(path="/tmp/home.png", full_page=True)
    assert failed == []


def test_a_missing_page_shows_the_friendly_404_in_the_site_style(page):
    response = page.goto("/no-such-page/")

    assert response.status == 404
    assert page.get_by_role("heading", name="We can't find that page").is_visible()
    assert page.get_by_role("link", name="Home page").is_visible()
    assert bootstrap_is_applied(page)
