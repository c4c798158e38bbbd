"""Security headers on every URL the site has, as anonymous and as staff, under production settings."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver

from tests.staff_signin import verified_login

BASE_DIR = Path(__file__).resolve().parents[2]
SAMPLE_VALUES = {"slug": "hip-pain", "int": "1", "str": "not-a-real-token", "path": "x", "uuid": "0" * 32}
PRODUCTION_SECURITY = {
    "DEBUG": False,
    "SECURE_HSTS_SECONDS": 31536000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_SSL_REDIRECT": False,  # the test client asks over https=True itself
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
}


def every_url() -> list[str]:
    """One concrete URL per pattern, converters filled with sample values (admin: its index only)."""
    urls = []

    def walk(patterns, prefix):
        for pattern in patterns:
            route = str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if route.startswith("admin/"):
                    urls.append("/" + prefix + route)
                    continue
                walk(pattern.url_patterns, prefix + route)
            elif isinstance(pattern, URLPattern):
                path = re.sub(
                    r"<(?:(\w+):)?\w+>", lambda m: SAMPLE_VALUES.get(m.group(1) or "str", "x"), prefix + route
                )
                if not path.startswith("^"):
                    urls.append("/" + path)

    walk(get_resolver().url_patterns, "")
    return sorted(set(urls))


def _assert_headers(url, response):
    policy = response.get("Content-Security-Policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives.get("object-src") == ["'none'"], (url, policy)
    assert directives.get("base-uri") == ["'none'"], (url, policy)
    assert directives.get("frame-ancestors") == ["'none'"], (url, policy)
    assert "'unsafe-inline'" not in directives.get("script-src", []) and "'unsafe-eval'" not in policy, url
    assert directives.get("script-src") == ["'self'"], (url, policy)
    hsts = response.get("Strict-Transport-Security", "")
    assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 31536000, (url, hsts)
    assert response.get("X-Content-Type-Options") == "nosniff", url
    assert response.get("Referrer-Policy") == "same-origin", url
    assert response.get("X-Frame-Options") == "DENY", url


@pytest.mark.django_db
def test_every_url_sends_the_security_headers_to_anonymous_visitors_and_staff(rita, margaret, capsys):
    urls = every_url()
    assert len(urls) > 20 and "/book/" in urls and "/healthz" in urls
    checked = 0
    with override_settings(**PRODUCTION_SECURITY):
        anonymous, staff, manager = Client(), Client(), Client()
        verified_login(staff, rita)
        verified_login(manager, margaret)
        for client in (anonymous, staff, manager):
            for url in urls:
                response = client.get(url, secure=True)
                assert response.status_code < 500, (url, response.status_code)
                _assert_headers(url, response)
                checked += 1
    with capsys.disabled():
        print(f"\nSecurity headers checked on {len(urls)} URL patterns, {checked} responses.")


@pytest.mark.django_db
def test_cookies_are_secure_and_http_only_under_production_settings(client, rita):
    with override_settings(**PRODUCTION_SECURITY):
        client.get("/staff/login/", secure=True)
        csrf = client.cookies["csrftoken"]
        assert csrf["secure"] and csrf["httponly"]
        response = client.post(
            "/staff/login/",
            {"username": "rita", "password": "correct horse battery"},
            secure=True,
        )
        session = response.cookies["sessionid"]
        assert session["secure"] and session["httponly"]
        assert session["samesite"] == "Lax"


def test_production_environment_turns_on_hsts_and_secure_cookies():
    """The settings module itself, not an override: read under a production environment."""
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "x" * 60,
        "DJANGO_ALLOWED_HOSTS": "clinic.example",
        "DATABASE_URL": "postgres://u:p@127.0.0.1:1/clinic",
    }
    code = (
        "from django.conf import settings as s; import django; django.setup(); "
        "print(s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SESSION_COOKIE_HTTPONLY, s.CSRF_COOKIE_HTTPONLY, s.SECURE_SSL_REDIRECT, s.SECURE_CONTENT_TYPE_NOSNIFF)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env | {"DJANGO_SETTINGS_MODULE": "clinic.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    hsts, *flags = result.stdout.split()
    assert int(hsts) >= 31536000
    assert flags == ["True"] * 6
