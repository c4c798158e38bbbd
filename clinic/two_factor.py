"""Staff sign in with two factors: a password (Django's LoginView), then a code from an authenticator app.

The codes are TOTP (RFC 6238) from django-otp's TOTPDevice: it accepts one step of clock drift either way
(tolerance 1) and refuses a code whose time step is not after the last one used (`last_t`), so a code cannot be
used twice. Backup codes are clinic.models.BackupCodeDevice (hashed, single use).

The second factor lives in the session (django_otp.login; OTPMiddleware gives request.user.is_verified()), so
signing out ends it with the session, and the idle expiry (clinic.middleware) applies to it too.

A wrong code counts as a failed sign-in for django-axes (the `user_login_failed` signal, with the username and the
request), so five wrong codes or passwords lock that username on that address, as the password step does.
"""

import base64
import secrets
from io import BytesIO
from urllib.parse import quote

import qrcode
import qrcode.image.svg
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_lockout_response
from axes.utils import reset as axes_reset
from django import forms
from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.contrib.sessions.models import Session
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django_otp import login as otp_login
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinic.models import BackupCode, BackupCodeDevice, TwoFactorEvent, TwoFactorExemption
from clinic.ratelimit import rate_limited_post

BACKUP_CODE_COUNT = 10
# No 0/o, 1/l/i: a code read off paper is typed right the first time.
BACKUP_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
SETUP_KEY_SESSION = "two_factor_setup_key"
# Views a signed-in user without the second factor may still open.
OPEN_BEFORE_CODE = {
    "login",
    "logout",
    "two_factor_code",
    "two_factor_setup",
    # The token in its address is the key; a phone's calendar cannot sign in at all.
    "practitioner_calendar_feed",
    "admin:login",
    "admin:logout",
}


# -- Who needs what ----------------------------------------------------------------------------------------------


def authenticator_of(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def is_demo_exempt(user) -> bool:
    # The demo accounts' exemption is worthless outside development: a production site never honours it.
    return settings.DEBUG and TwoFactorExemption.objects.filter(user=user).exists()


def needs_enrolment(user) -> bool:
    return settings.STAFF_REQUIRE_2FA and not is_demo_exempt(user) and authenticator_of(user) is None


def _with_next(url_name: str, next_url: str) -> str:
    return f"{reverse(url_name)}?{REDIRECT_FIELD_NAME}={quote(next_url)}"


def _safe_next(request) -> str:
    next_url = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    if next_url and url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        return next_url
    return reverse(settings.LOGIN_REDIRECT_URL)


def forgive_failed_sign_ins(request, user) -> None:
    """The whole sign-in succeeded: forget this username's failures from this address (AXES_RESET_ON_SUCCESS is off)."""
    AxesProxyHandler.update_request(request)
    axes_reset(ip=request.axes_ip_address, username=user.get_username())


class StaffTwoFactorMiddleware:
    """A signed-in user reaches no staff page and no admin page on a password alone.

    With a device, they are sent to the code step; without one (and the second factor required), to enrolment.
    Put after django_otp's OTPMiddleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not request.path_info.startswith(("/staff/", "/admin/")):
            return None
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        if request.resolver_match and request.resolver_match.view_name in OPEN_BEFORE_CODE:
            return None
        if authenticator_of(user) is not None:
            return redirect(_with_next("two_factor_code", request.get_full_path()))
        if needs_enrolment(user):
            return redirect(_with_next("two_factor_setup", request.get_full_path()))
        return None


# -- Services ----------------------------------------------------------------------------------------------------


def new_backup_code() -> str:
    code = "".join(secrets.choice(BACKUP_CODE_ALPHABET) for _ in range(10))
    return f"{code[:5]}-{code[5:]}"


@transaction.atomic
def two_factor_enrol(*, user, key: str, last_t: int, drift: int, now) -> tuple[TOTPDevice, list[str]]:
    """Confirm an authenticator app (its first code already checked) and make ten backup codes.

    Returns the device and the backup codes in clear, to be shown once: only their hashes are kept.
    """
    TOTPDevice.objects.filter(user=user).delete()
    BackupCodeDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(
        user=user, name="Authenticator app", key=key, confirmed=True, last_t=last_t, drift=drift, tolerance=1
    )
    backup = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    codes = [new_backup_code() for _ in range(BACKUP_CODE_COUNT)]
    BackupCode.objects.bulk_create([BackupCode.for_code(backup, code) for code in codes])
    TwoFactorEvent.objects.create(at=now, kind=TwoFactorEvent.Kind.ENROLLED, actor=user, subject=user)
    return device, codes


@transaction.atomic
def two_factor_reset(*, subject, actor, kind: str, now, note: str = "", keep_session_key: str | None = None) -> None:
    """Remove a user's authenticator and backup codes, and end their other sessions: their next sign-in asks
    for the password and then for a new app.

    Ending the sessions matters: a reset is for a lost or stolen phone, and whoever holds a session that
    was already signed in (the stolen laptop) must not be able to enrol an app of their own without the
    password. KEEP_SESSION_KEY is the session of a staff member resetting their own app with a current code.
    """
    TOTPDevice.objects.filter(user=subject).delete()
    BackupCodeDevice.objects.filter(user=subject).delete()
    _end_sessions_of(subject, now=now, except_key=keep_session_key)
    TwoFactorEvent.objects.create(at=now, kind=kind, actor=actor, subject=subject, note=note)


def _end_sessions_of(user, *, now, except_key: str | None) -> None:
    # Only staff have sessions here (patients never get one), so reading the live ones is a short list.
    for session in Session.objects.filter(expire_date__gt=now).exclude(session_key=except_key or ""):
        if session.get_decoded().get(auth.SESSION_KEY) == str(user.pk):
            session.delete()


def match_code(user, code: str):
    """The device a code belongs to (and now used up), or None. Six digits are an app's code; else a backup code."""
    code = code.strip().replace(" ", "")
    if code.isdigit() and len(code) == 6:
        device = authenticator_of(user)
    else:
        device = BackupCodeDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None and device.verify_token(code):
        return device
    return None


def is_throttled(user) -> bool:
    return any(
        not device.verify_is_allowed()[0]
        for device in [authenticator_of(user), BackupCodeDevice.objects.filter(user=user).first()]
        if device is not None
    )


# -- QR code -----------------------------------------------------------------------------------------------------


def qr_code_data_uri(text: str) -> str:
    """The QR code as an SVG data: URI: drawn here, no request to anyone else (the CSP allows img-src data:)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=4)
    buffer = BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def grouped(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def config_url(user, key_hex: str) -> str:
    secret = base64.b32encode(bytes.fromhex(key_hex)).decode().rstrip("=")
    issuer = settings.OTP_TOTP_ISSUER
    label = quote(f"{issuer}:{user.get_username()}")
    return f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer)}&algorithm=SHA1&digits=6&period=30"


# -- Forms -------------------------------------------------------------------------------------------------------


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6-digit code your authenticator app shows now, or one of your backup codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "none", "autofocus": True}),
    )


class FirstCodeForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=32,
        help_text="The 6 digits the app shows for this account.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean_code(self):
        code = self.cleaned_data["code"].strip().replace(" ", "")
        if not (code.isdigit() and len(code) == 6):
            raise forms.ValidationError("Enter the 6 digits the app shows.")
        return code


# -- Views -------------------------------------------------------------------------------------------------------


class StaffLoginView(auth_views.LoginView):
    """The password step. With a password alone the sign-in is not finished: on to the code step or enrolment."""

    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        user = form.get_user()
        if authenticator_of(user) is not None:
            return redirect(_with_next("two_factor_code", self.get_success_url()))
        if needs_enrolment(user):
            return redirect(_with_next("two_factor_setup", self.get_success_url()))
        forgive_failed_sign_ins(self.request, user)
        return response


def _locked_out(request, credentials):
    # The half-finished sign-in ends too: the password step, locked as well, is the only way back in.
    auth.logout(request)
    return get_lockout_response(request, None, credentials)


@never_cache
@login_required
@rate_limited_post("two_factor_code", per_user=True)
def two_factor_code(request):
    user = request.user
    next_url = _safe_next(request)
    if user.is_verified():
        return redirect(next_url)
    if authenticator_of(user) is None:
        return redirect(_with_next("two_factor_setup", next_url) if needs_enrolment(user) else next_url)
    credentials = {settings.AXES_USERNAME_FORM_FIELD: user.get_username()}
    if AxesProxyHandler.is_locked(request, credentials):
        return _locked_out(request, credentials)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if is_throttled(user):
            form.add_error("code", "Too many wrong codes in a row: wait a minute, then try the newest code.")
        elif (device := match_code(user, form.cleaned_data["code"])) is not None:
            otp_login(request, device)
            # Signed in fully now: a session key seen before this (say, planted) must not carry that.
            request.session.cycle_key()
            forgive_failed_sign_ins(request, user)
            if isinstance(device, BackupCodeDevice):
                left = device.codes.count()
                messages.warning(request, f"You used a backup code: {left} left. Reset your app to get new ones.")
            return redirect(next_url)
        else:
            # A wrong code is a failed sign-in: django-axes counts it and locks out as for a wrong password.
            user_login_failed.send(sender=__name__, credentials=credentials, request=request)
            if AxesProxyHandler.is_locked(request, credentials):
                return _locked_out(request, credentials)
            form.add_error("code", "That code is not right, or was already used. Try the newest code in the app.")
    return render(request, "registration/two_factor_code.html", {"form": form, "next": next_url})


@never_cache
@login_required
@rate_limited_post("two_factor_setup", per_user=True)
def two_factor_setup(request):
    user = request.user
    next_url = _safe_next(request)
    if authenticator_of(user) is not None:
        if not user.is_verified():
            # With a device already, a password alone never enrols another: that is what the code step guards.
            return redirect(_with_next("two_factor_code", next_url))
        return render(request, "registration/two_factor_enrolled.html")
    key = request.session.get(SETUP_KEY_SESSION)
    if not key:
        key = secrets.token_hex(20)
        request.session[SETUP_KEY_SESSION] = key
    form = FirstCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        totp = TOTP(bytes.fromhex(key), step=30, t0=0, digits=6, drift=0)
        if totp.verify(int(form.cleaned_data["code"]), tolerance=1):
            device, codes = two_factor_enrol(user=user, key=key, last_t=totp.t(), drift=totp.drift, now=timezone.now())
            del request.session[SETUP_KEY_SESSION]
            otp_login(request, device)
            request.session.cycle_key()
            forgive_failed_sign_ins(request, user)
            return render(request, "registration/two_factor_backup_codes.html", {"codes": codes, "next": next_url})
        form.add_error("code", "That code does not match. Check the app's clock is right and enter the newest code.")
    secret = base64.b32encode(bytes.fromhex(key)).decode().rstrip("=")
    return render(
        request,
        "registration/two_factor_setup.html",
        {
            "form": form,
            "next": next_url,
            "secret": grouped(secret),
            "qr_code": qr_code_data_uri(config_url(user, key)),
            "required": settings.STAFF_REQUIRE_2FA,
        },
    )


@never_cache
@login_required
@rate_limited_post("two_factor_reset", per_user=True)
def two_factor_reset_own(request):
    """Reset one's own authenticator (say, a new phone): only with a current code, so a borrowed session cannot."""
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if is_throttled(request.user):
            form.add_error("code", "Too many wrong codes in a row: wait a minute, then try the newest code.")
        elif match_code(request.user, form.cleaned_data["code"]) is not None:
            two_factor_reset(
                subject=request.user,
                actor=request.user,
                kind=TwoFactorEvent.Kind.RESET_OWN,
                now=timezone.now(),
                keep_session_key=request.session.session_key,
            )
            messages.success(request, "Your authenticator app was removed. Set up the new one now.")
            return redirect("two_factor_setup")
        else:
            form.add_error("code", "That code is not right, or was already used.")
    return render(request, "registration/two_factor_reset.html", {"form": form})
