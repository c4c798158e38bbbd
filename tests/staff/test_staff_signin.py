"""Signing in: each role lands on its own page, and guessing passwords is stopped without locking
a colleague out from elsewhere (django-axes, by username and address together)."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.helpers import PASSWORD
from tests.staff_signin import authenticator, code_for, verified_login

pytestmark = pytest.mark.django_db


def _sign_in(client, username, password, address):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_rita_signs_in_with_her_password_and_code_and_lands_on_the_day_view(client, rita):
    phone = authenticator(rita)
    response = _sign_in(client, "rita", PASSWORD, "10.0.0.1")
    assert response["Location"].startswith(reverse("two_factor_code"))

    response = client.post(response["Location"], {"code": code_for(phone)}, REMOTE_ADDR="10.0.0.1")

    assert response.status_code == 302
    assert client.get(response["Location"])["Location"] == reverse("reception_day")


def test_dr_patel_lands_on_her_day(client, dr_patel):
    verified_login(client, dr_patel.user)

    assert client.get(reverse("staff_home"))["Location"] == reverse("practitioner_day")


def test_mallory_with_no_role_sees_that_she_has_none(client, mallory):
    verified_login(client, mallory)

    response = client.get(reverse("staff_home"))

    assert response.status_code == 200
    assert "Your account has no staff role yet." in response.content.decode()


def test_five_wrong_passwords_pause_rita_on_that_computer_only(rita, settings):
    attacker, colleague_desk = Client(), Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(attacker, "rita", "wrong password", "203.0.113.9").status_code == 200
    assert _sign_in(attacker, "rita", "wrong password", "203.0.113.9").status_code == 429

    # Even the right password is refused from the attacker's address...
    locked = _sign_in(attacker, "rita", PASSWORD, "203.0.113.9")
    assert locked.status_code == 429
    assert "Sign-in paused for this account" in locked.content.decode()
    assert "15 minutes" in locked.content.decode()
    # ...while Rita at her own desk signs in as usual.
    assert _sign_in(colleague_desk, "rita", PASSWORD, "10.0.0.1").status_code == 302


def test_a_locked_out_address_can_still_be_used_for_another_account(rita, mallory, settings):
    shared = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(shared, "rita", "wrong password", "10.0.0.7")

    assert _sign_in(shared, "mallory", PASSWORD, "10.0.0.7").status_code == 302


def test_staff_sessions_end_after_an_hour_without_activity(settings):
    assert settings.SESSION_COOKIE_AGE == 3600
    # Saved on every signed-in request (so idle time counts from the last one), not on every patient's.
    assert "clinic.middleware.StaffSessionIdleExpiryMiddleware" in settings.MIDDLEWARE
    assert settings.SESSION_SAVE_EVERY_REQUEST is False
    assert settings.AUTHENTICATION_BACKENDS[0].startswith("axes.backends.")
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
