"""Shared fixtures: the named people of our tests, and a browser that never leaves the machine.

People: a patient (no account), Rita at reception, Dr Patel and Dr Okafor as
practitioners, Mallory the stranger with an account but no group.
"""

import logging
import os
import re
from pathlib import Path
from urllib.parse import urlparse

# Playwright's sync API runs an event loop in the test thread; pytest-django's database
# setup would otherwise refuse to run there (SynchronousOnlyOperation).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import pytest  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() == "true"


class _RunLog(logging.Handler):
    """Keeps every log line of the test run, formatted as the real handlers would emit it."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


LEAK_PATTERNS = {
    "e-mail address": re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"),
    "phone number": re.compile(r"(?<![\w/])(?:\+|0)7\d{3} ?\d{6}"),
    "manage or feed token": re.compile(r"/(?:manage|calendar-feed)/(?!\[redacted\])[^/\s]+"),
    "waiting-list token": re.compile(r"/waiting-list/(?:offer/)?(?!\[redacted\]|lost-link|offer\b)[^/\s?]+"),
    "token": re.compile(r"(?<![\w-])(?=[\w-]*[A-Z0-9])[A-Za-z0-9_-]{43}(?![\w-])"),
}


@pytest.fixture(scope="session", autouse=True)
def no_patient_data_in_any_log_line():
    """Every log line of the whole run goes through the production redaction filter; none may leak."""
    from clinic.logging import RedactSecretsFilter

    handler = _RunLog()
    handler.addFilter(RedactSecretsFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    loggers = [logging.getLogger(), logging.getLogger("django"), logging.getLogger("django.server")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)
    leaks = [
        (kind, line[:200]) for line in handler.lines for kind, pattern in LEAK_PATTERNS.items() if pattern.search(line)
    ]
    print(f"\nLog lines captured during the run: {len(handler.lines)}; with patient data or tokens: {len(leaks)}")
    assert leaks == [], leaks[:10]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    # In CI a browser test that did not run is a failure, not a skip.
    if IN_CI and report.skipped and item.get_closest_marker("browser"):
        report.outcome = "failed"
        report.longrepr = f"Browser test skipped in CI: {report.longrepr}"


def _make_user(django_user_model, username, group=None, **extra):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(username=username, password="correct horse battery", **extra)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def rita(db, django_user_model):
    return _make_user(django_user_model, "rita", "Reception", first_name="Rita")


@pytest.fixture
def margaret(db, django_user_model):
    """Margaret, the clinic manager: sees Insights, nothing of reception's or the practitioners'."""
    return _make_user(django_user_model, "margaret", "Clinic manager", first_name="Margaret")


@pytest.fixture
def mallory(db, django_user_model):
    return _make_user(django_user_model, "mallory", first_name="Mallory")


@pytest.fixture
def dr_patel(db, django_user_model):
    from bookings.models import Practitioner

    user = _make_user(django_user_model, "dr.patel", "Practitioner", first_name="Priya", last_name="Patel")
    return Practitioner.objects.create(
        user=user, display_name="Priya Patel", title="Dr", profession="Physiotherapist", list_order=1
    )


@pytest.fixture
def dr_okafor(db, django_user_model):
    from bookings.models import Practitioner

    user = _make_user(django_user_model, "dr.okafor", "Practitioner", first_name="Chidi", last_name="Okafor")
    return Practitioner.objects.create(
        user=user, display_name="Chidi Okafor", title="Dr", profession="Physiotherapist", list_order=2
    )


@pytest.fixture(scope="session")
def chromium_browser():
    if not CHROMIUM.exists():
        message = "Debian's Chromium is not installed (apt-get install -y --no-install-recommends chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium_browser, live_server):
    """A fresh browser page. Any request to a host other than this machine fails the test."""
    context = chromium_browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    outside_requests = []

    def refuse_outside(route):
        url = urlparse(route.request.url)
        if url.scheme in {"http", "https", "ws", "wss"} and url.hostname not in {"127.0.0.1", "localhost", "::1"}:
            outside_requests.append(route.request.url)
            return route.abort()
        return route.continue_()

    page.route("**/*", refuse_outside)
    # A Content-Security-Policy violation means something on the page silently did not work.
    policy_violations = []
    page.on(
        "console",
        lambda message: policy_violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    yield page
    context.close()
    assert outside_requests == [], f"Requests left the machine: {outside_requests}"
    assert policy_violations == [], f"Content-Security-Policy violations: {policy_violations}"


@pytest.fixture(autouse=True)
def no_page_kept_from_an_earlier_test():
    """Pages kept in memory (clinic/page_cache.py) are process state: each test starts without any."""
    from clinic.page_cache import clear_all

    clear_all()
    yield
    clear_all()


@pytest.fixture
def admin_client(db, admin_user):
    """pytest-django's admin_client, signed in with both factors: the admin, too, needs a password and a code."""
    from django.test import Client

    from tests.staff_signin import verified_login

    client = Client()
    verified_login(client, admin_user)
    return client
