"""Every error a visitor can meet is a friendly page in the site's style, never a traceback.

This module is also the urlconf of its tests: the site's own URLs and error handlers, plus views that fail
on purpose.
"""

import html

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db import OperationalError
from django.test import Client
from django.urls import path

from clinic import urls as site_urls
from tests.staff_signin import verified_login


def raises_an_error(request):
    raise ValueError("a bug in a view")


def raises_permission_denied(request):
    raise PermissionDenied


def raises_suspicious_operation(request):
    raise SuspiciousOperation("a tampered request")


def loses_the_database(request):
    raise OperationalError('connection to server on socket "/tmp/x/.s.PGSQL.5432" failed: No such file or directory')


urlpatterns = [
    path("test-errors/500/", raises_an_error),
    path("test-errors/403/", raises_permission_denied),
    path("test-errors/400/", raises_suspicious_operation),
    path("test-errors/database-down/", loses_the_database),
    *site_urls.urlpatterns,
]
handler400 = getattr(site_urls, "handler400", "django.views.defaults.bad_request")
handler403 = getattr(site_urls, "handler403", "django.views.defaults.permission_denied")
handler404 = getattr(site_urls, "handler404", "django.views.defaults.page_not_found")
handler500 = getattr(site_urls, "handler500", "django.views.defaults.server_error")

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]


@pytest.fixture
def visitor():
    # A real server does not re-raise a view's exception into the caller; the test client does unless told not to.
    return Client(raise_request_exception=False)


def assert_friendly(response, status, heading, settings):
    assert response.status_code == status
    body = html.unescape(response.content.decode())
    assert heading in body
    # The page is in the site's style and tells people how to reach the clinic.
    assert "bootstrap.min.css" in body
    assert settings.CLINIC_NAME in body
    assert settings.CLINIC_PHONE in body
    assert "Traceback" not in body
    assert "a bug in a view" not in body


def test_a_failing_view_gives_the_friendly_500_page(visitor, settings):
    response = visitor.get("/test-errors/500/")
    assert_friendly(response, 500, "Sorry, something went wrong on our side", settings)


def test_a_forbidden_page_gives_the_friendly_403_page(visitor, settings):
    response = visitor.get("/test-errors/403/")
    assert_friendly(response, 403, "You don't have access to this page", settings)


def test_a_suspicious_request_gives_the_friendly_400_page(visitor, settings):
    response = visitor.get("/test-errors/400/")
    assert_friendly(response, 400, "We couldn't understand that request", settings)


def test_an_unknown_page_gives_the_friendly_404_page(visitor, settings):
    response = visitor.get("/no-such-page/")
    assert_friendly(response, 404, "We can't find that page", settings)


def test_a_form_sent_without_its_csrf_token_gives_the_friendly_csrf_page(settings):
    browser = Client(enforce_csrf_checks=True)

    response = browser.post("/staff/login/", {"username": "rita", "password": "correct horse battery"})

    assert_friendly(response, 403, "Please reload the page and try again", settings)


def test_losing_the_database_gives_503_with_retry_after_not_500(visitor, settings):
    response = visitor.get("/test-errors/database-down/")

    assert_friendly(response, 503, "We'll be back in a moment", settings)
    assert response["Retry-After"] == "5"
    assert response["Cache-Control"] == "no-store"
    assert ".s.PGSQL" not in response.content.decode()


class LosesTheDatabaseOutsideTheView:
    """Database work in a middleware (a rate limit on the database cache, a session save) fails there, not in a view."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raise OperationalError("server closed the connection unexpectedly")


def test_losing_the_database_outside_a_view_also_gives_503(visitor, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.LosesTheDatabaseOutsideTheView"]

    response = visitor.get("/privacy/")

    assert_friendly(response, 503, "We'll be back in a moment", settings)
    assert response["Retry-After"] == "5"


def test_the_500_page_needs_no_database(visitor, settings, django_db_blocker):
    # A 500 is often the database's fault: rendering the page must not ask it for the session or user.
    with django_db_blocker.block():
        response = visitor.get("/test-errors/500/")
    assert_friendly(response, 500, "Sorry, something went wrong on our side", settings)


@pytest.mark.django_db
def test_opening_the_sign_out_address_offers_the_button_and_only_a_post_signs_out(client, rita):
    verified_login(client, rita)
    page = client.get("/staff/logout/")
    assert page.status_code == 200
    assert b'<form method="post" action="/staff/logout/">' in page.content
    assert client.get("/staff/reception/").status_code == 200  # still signed in
    client.post("/staff/logout/")
    assert client.get("/staff/reception/")["Location"].startswith("/staff/login/")
