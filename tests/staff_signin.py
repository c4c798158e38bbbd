"""Signing staff in for a test: a password and a code, as the site now requires (clinic/two_factor.py)."""

import base64
import time

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice


def authenticator(user) -> TOTPDevice:
    """The user's confirmed authenticator app, set up if they have none."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="Test phone", confirmed=True)


def code_for(device: TOTPDevice, *, at: float | None = None, steps: int = 0) -> str:
    """The code the phone shows now (or `steps` time steps away), computed from the secret as the app does."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, 0)
    if at is not None:
        totp.time = at
    totp.drift = steps
    return f"{totp.token():06d}"


def verified_login(client, user) -> None:
    """Sign `user` in with both factors: Django's force_login plus a verified second factor in the session."""
    device = authenticator(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


def next_unused_code(device: TOTPDevice) -> str:
    """A code the site will take now: this half-minute's, or (if a test already used it) the next one's,
    which the one step of tolerated drift accepts."""
    device.refresh_from_db()
    now_t = int(time.time() - device.t0) // device.step
    return code_for(device, steps=max(0, device.last_t + 1 - now_t))


def secret_to_device_code(secret: str, *, steps: int = 0) -> str:
    """The code an authenticator app shows for a secret typed in from the enrolment page."""
    key = base64.b32decode(secret.replace(" ", "") + "=" * (-len(secret.replace(" ", "")) % 8))
    totp = TOTP(key, drift=steps)
    return f"{totp.token():06d}"


def browser_sign_in(page, username: str, password: str) -> None:
    """Sign in through the forms, as staff do: the password, then the code their phone shows."""
    from django.contrib.auth import get_user_model

    device = authenticator(get_user_model().objects.get(username=username))
    page.goto("/staff/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/staff/login/code/**")
    page.get_by_label("Code").fill(next_unused_code(device))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/staff/login/" not in url)
