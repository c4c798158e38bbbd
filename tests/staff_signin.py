"""Signing staff in for a test: a password and a code, as the site now requires (clinic/two_factor.py)."""

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
