"""Staff sign in with a password and then a code from an authenticator app (clinic/two_factor.py).

Codes are computed from the device's secret, as Rita's phone does (django_otp.oath), at frozen times.
"""

import base64
import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinic.models import BackupCode, BackupCodeDevice, TwoFactorEvent, TwoFactorExemption
from tests.helpers import PASSWORD
from tests.staff_signin import authenticator, code_for, verified_login

pytestmark = pytest.mark.django_db

# The middle of a 30-second step, so "one step early" and "late" are whole steps away.
NOON = datetime(2026, 12, 1, 12, 0, 15, tzinfo=UTC)


def password_step(client, username="rita", password=PASSWORD):
    response = client.post(reverse("login"), {"username": username, "password": password})
    assert response.status_code == 302, response.content.decode()[:500]
    return response["Location"]


def code_step(client, code):
    return client.post(reverse("two_factor_code"), {"code": code})


def reaches_day_view(client) -> bool:
    return client.get(reverse("reception_day")).status_code == 200


@pytest.fixture
def frozen():
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


def test_rita_with_the_right_code_reaches_the_day_view(client, rita, frozen):
    phone = authenticator(rita)
    assert password_step(client).startswith(reverse("two_factor_code"))
    assert not reaches_day_view(client)

    assert code_step(client, code_for(phone, at=NOON.timestamp())).status_code == 302

    assert reaches_day_view(client)


def test_a_wrong_code_is_refused_with_a_message_and_opens_nothing(client, rita, frozen):
    phone = authenticator(rita)
    password_step(client)
    right = code_for(phone, at=NOON.timestamp())
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    response = code_step(client, wrong)

    assert response.status_code == 200
    assert "That code is not right" in response.content.decode()
    assert client.get(reverse("reception_day"))["Location"].startswith(reverse("two_factor_code"))


def test_a_code_used_once_cannot_be_used_again_even_in_the_same_half_minute(rita, frozen):
    phone = authenticator(rita)
    code = code_for(phone, at=NOON.timestamp())
    first = Client()
    password_step(first)
    assert code_step(first, code).status_code == 302

    # Mallory watched Rita type it, and has her password too.
    frozen.shift(timedelta(seconds=5))
    second = Client()
    password_step(second)
    response = code_step(second, code)

    assert response.status_code == 200
    assert "already used" in response.content.decode()
    assert not reaches_day_view(second)


@pytest.mark.parametrize("steps", [-1, 1])
def test_a_phone_one_step_early_or_late_is_accepted(client, rita, frozen, steps):
    phone = authenticator(rita)
    password_step(client)

    assert code_step(client, code_for(phone, at=NOON.timestamp(), steps=steps)).status_code == 302
    assert reaches_day_view(client)


@pytest.mark.parametrize("steps", [-2, 2])
def test_a_phone_two_steps_out_is_refused(client, rita, frozen, steps):
    phone = authenticator(rita)
    password_step(client)

    assert code_step(client, code_for(phone, at=NOON.timestamp(), steps=steps)).status_code == 200
    assert not reaches_day_view(client)


def test_repeated_wrong_codes_lock_rita_out_even_with_the_right_code_and_password_again(rita, settings, frozen):
    phone = authenticator(rita)
    attacker = Client()
    password_step(attacker)
    right = code_for(phone, at=NOON.timestamp())
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        frozen.shift(timedelta(seconds=60))  # past the device's own throttle, so only django-axes counts
        assert code_step(attacker, wrong).status_code == 200
    frozen.shift(timedelta(seconds=60))
    assert code_step(attacker, wrong).status_code == 429

    # The half-finished sign-in is over, and the right password again neither wipes the count (that would
    # allow endless guesses) nor gets past the lock.
    assert code_step(attacker, code_for(phone, at=(NOON + timedelta(minutes=5)).timestamp()))["Location"].startswith(
        reverse("login")
    )
    locked = attacker.post(reverse("login"), {"username": "rita", "password": PASSWORD})
    assert locked.status_code == 429
    assert "Sign-in paused for this account" in locked.content.decode()
    assert not reaches_day_view(attacker)


def test_a_right_code_forgives_earlier_wrong_ones(client, rita, frozen):
    phone = authenticator(rita)
    password_step(client)
    code_step(client, "000000" if code_for(phone, at=NOON.timestamp()) != "000000" else "111111")
    frozen.shift(timedelta(seconds=31))

    assert code_step(client, code_for(phone, at=NOON.timestamp() + 31)).status_code == 302
    assert not AccessAttempt.objects.filter(username="rita").exists()


def enrol(client, user, at: datetime) -> tuple[str, list[str]]:
    """Rita's first sign-in: read the secret off the page, type the phone's code, keep the backup codes."""
    page = client.get(reverse("two_factor_setup")).content.decode()
    secret = re.search(r'<code id="totp-secret"[^>]*>([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    totp = TOTP(key)
    totp.time = at.timestamp()
    response = client.post(reverse("two_factor_setup"), {"code": f"{totp.token():06d}"})
    assert response.status_code == 200
    codes = re.findall(r"<li>([a-z2-9]{5}-[a-z2-9]{5})</li>", response.content.decode())
    return secret, codes


def test_rita_without_an_app_is_sent_to_set_one_up_and_reaches_no_staff_page_before(client, rita, frozen):
    assert password_step(client).startswith(reverse("two_factor_setup"))
    assert client.get(reverse("reception_day"))["Location"].startswith(reverse("two_factor_setup"))
    assert client.get("/admin/")["Location"].startswith(reverse("two_factor_setup"))

    page = client.get(reverse("two_factor_setup")).content.decode()
    assert 'src="data:image/svg+xml;base64,' in page  # the QR code, drawn here

    secret, codes = enrol(client, rita, NOON)

    assert len(secret) == 32
    assert len(codes) == 10 == len(set(codes))
    assert TOTPDevice.objects.get(user=rita).confirmed
    assert TwoFactorEvent.objects.get(subject=rita).kind == TwoFactorEvent.Kind.ENROLLED
    assert reaches_day_view(client)


def test_a_wrong_first_code_does_not_enrol(client, rita, frozen):
    password_step(client)
    client.get(reverse("two_factor_setup"))

    response = client.post(reverse("two_factor_setup"), {"code": "12345x"})

    assert "Enter the 6 digits" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=rita).exists()


def test_backup_codes_are_stored_hashed_and_each_works_once(rita, frozen):
    first = Client()
    password_step(first)
    _, codes = enrol(first, rita, NOON)
    stored = list(BackupCode.objects.filter(device__user=rita).values_list("code_hash", "salt"))
    assert len(stored) == 10
    assert not any(code.replace("-", "") in value for code in codes for pair in stored for value in pair)
    first.post(reverse("logout"))

    lost_phone = Client()
    password_step(lost_phone)
    assert code_step(lost_phone, codes[3].upper()).status_code == 302
    assert reaches_day_view(lost_phone)
    assert BackupCodeDevice.objects.get(user=rita).codes.count() == 9
    lost_phone.post(reverse("logout"))

    frozen.shift(timedelta(seconds=60))
    again = Client()
    password_step(again)
    assert code_step(again, codes[3]).status_code == 200
    assert not reaches_day_view(again)


def test_signing_out_ends_the_second_factor_too(client, rita, frozen):
    phone = authenticator(rita)
    password_step(client)
    code_step(client, code_for(phone, at=NOON.timestamp()))
    client.post(reverse("logout"))

    password_step(client)

    assert client.get(reverse("reception_day"))["Location"].startswith(reverse("two_factor_code"))


def test_a_password_alone_cannot_enrol_another_app_over_ritas(client, rita):
    authenticator(rita)
    password_step(client)

    response = client.get(reverse("two_factor_setup"))

    assert response["Location"].startswith(reverse("two_factor_code"))


def test_the_admin_refuses_a_superuser_with_a_password_alone(client, django_user_model, frozen):
    admin = django_user_model.objects.create_superuser("admin", "admin@example.org", PASSWORD)
    phone = authenticator(admin)
    client.post("/admin/login/", {"username": "admin", "password": PASSWORD})

    assert client.get("/admin/")["Location"].startswith(reverse("two_factor_code"))
    code_step(client, code_for(phone, at=NOON.timestamp()))
    assert client.get("/admin/").status_code == 200


def test_rita_resets_her_own_app_with_a_current_code_and_it_is_recorded(client, rita, frozen):
    phone = authenticator(rita)
    verified_login(client, rita)
    frozen.shift(timedelta(seconds=30))

    refused = client.post(reverse("two_factor_reset"), {"code": "not a code"})
    assert refused.status_code == 200
    assert TOTPDevice.objects.filter(user=rita).exists()

    frozen.shift(timedelta(seconds=30))
    response = client.post(reverse("two_factor_reset"), {"code": code_for(phone, at=NOON.timestamp() + 60)})

    assert response["Location"] == reverse("two_factor_setup")
    assert not TOTPDevice.objects.filter(user=rita).exists()
    event = TwoFactorEvent.objects.get(kind=TwoFactorEvent.Kind.RESET_OWN)
    assert (event.actor, event.subject) == (rita, rita)
    # Her next staff page asks her to set up the new phone.
    assert client.get(reverse("reception_day"))["Location"].startswith(reverse("two_factor_setup"))


def test_a_superuser_resets_ritas_app_with_the_command_and_it_is_recorded(rita):
    authenticator(rita)

    call_command("reset_2fa", "rita", stdout=StringIO())

    assert not TOTPDevice.objects.filter(user=rita).exists()
    event = TwoFactorEvent.objects.get()
    assert (event.kind, event.actor, event.subject) == (TwoFactorEvent.Kind.RESET_BY_COMMAND, None, rita)
    with pytest.raises(CommandError, match="No user is called"):
        call_command("reset_2fa", "nobody", stdout=StringIO())


def test_a_superuser_resets_ritas_app_in_the_admin_and_the_log_is_read_only(client, rita, django_user_model):
    authenticator(rita)
    admin = django_user_model.objects.create_superuser("admin", "admin@example.org", PASSWORD)
    verified_login(client, admin)

    response = client.post(
        "/admin/auth/user/", {"action": "reset_two_factor", "_selected_action": [rita.pk]}, follow=True
    )

    assert response.status_code == 200
    assert not TOTPDevice.objects.filter(user=rita).exists()
    event = TwoFactorEvent.objects.get()
    assert (event.kind, event.actor, event.subject) == (TwoFactorEvent.Kind.RESET_BY_SUPERUSER, admin, rita)
    assert client.get("/admin/clinic/twofactorevent/").status_code == 200
    assert client.get(f"/admin/clinic/twofactorevent/{event.pk}/change/").status_code == 200
    assert client.post(f"/admin/clinic/twofactorevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403


def test_staff_without_superuser_cannot_reset_anyone_in_the_admin(client, rita, dr_patel, django_user_model):
    authenticator(dr_patel.user)
    rita.is_staff = True
    rita.save()
    rita.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    verified_login(client, rita)

    client.post("/admin/auth/user/", {"action": "reset_two_factor", "_selected_action": [dr_patel.user.pk]})

    assert TOTPDevice.objects.filter(user=dr_patel.user).exists()
    assert not TwoFactorEvent.objects.exists()


def test_with_the_requirement_off_a_password_alone_still_opens_staff_pages(client, rita, settings):
    settings.STAFF_REQUIRE_2FA = False

    password_step(client)

    assert reaches_day_view(client)


def test_the_demo_exemption_works_only_with_debug_on(client, rita, settings):
    TwoFactorExemption.objects.create(user=rita)
    settings.DEBUG = True
    password_step(client)
    assert reaches_day_view(client)

    settings.DEBUG = False
    assert client.get(reverse("reception_day"))["Location"].startswith(reverse("two_factor_setup"))


def test_an_overlong_code_is_a_form_error(client, rita):
    authenticator(rita)
    password_step(client)

    response = code_step(client, "1" * 10_000)

    assert response.status_code == 200
    assert "at most 32 characters" in response.content.decode()


def test_the_demo_accounts_skip_the_code_only_in_debug(client, settings):
    settings.DEBUG = True
    call_command("load_demo_data", "--quiet-logins", stdout=StringIO())
    assert TwoFactorExemption.objects.count() == 6  # admin, rita, margaret and the three practitioners

    password_step(client, "rita", "clinic-demo-2026")
    assert reaches_day_view(client)

    settings.DEBUG = False
    assert client.get(reverse("reception_day"))["Location"].startswith(reverse("two_factor_setup"))


def test_the_code_step_gives_the_session_a_new_key(client, rita, frozen):
    phone = authenticator(rita)
    password_step(client)
    half_signed_in_key = client.session.session_key

    code_step(client, code_for(phone, at=NOON.timestamp()))

    assert client.session.session_key != half_signed_in_key
    assert reaches_day_view(client)


def test_the_admin_shows_no_authenticator_secrets(client, django_user_model, rita):
    authenticator(rita)
    admin = django_user_model.objects.create_superuser("admin", "admin@example.org", PASSWORD)
    verified_login(client, admin)

    assert client.get("/admin/otp_totp/totpdevice/").status_code == 404


def test_the_code_step_is_rate_limited_per_address(client, rita, settings):
    authenticator(rita)
    password_step(client)
    settings.RATE_LIMIT_PUBLIC_POSTS = 2
    answers = [code_step(client, "abc").status_code for _ in range(3)]

    assert answers == [200, 200, 429]


def test_the_code_step_never_sends_rita_to_another_site(client, rita, frozen):
    phone = authenticator(rita)
    password_step(client)

    response = client.post(
        reverse("two_factor_code"), {"code": code_for(phone, at=NOON.timestamp()), "next": "https://evil.example/"}
    )

    assert response["Location"] == reverse("staff_home")


def test_a_reset_for_a_lost_phone_ends_the_sessions_already_signed_in(rita, dr_patel):
    stolen_laptop, patels_desk = Client(), Client()
    verified_login(stolen_laptop, rita)
    verified_login(patels_desk, dr_patel.user)
    assert reaches_day_view(stolen_laptop)

    call_command("reset_2fa", "rita", stdout=StringIO())

    # Whoever holds Rita's old session must give the password again before enrolling an app of their own.
    setup = stolen_laptop.get(reverse("two_factor_setup"))
    assert setup.status_code == 302 and setup["Location"].startswith(reverse("login"))
    assert not reaches_day_view(stolen_laptop)
    # Nobody else is signed out.
    assert patels_desk.get(reverse("practitioner_day")).status_code == 200


def test_one_staff_members_wrong_codes_do_not_block_a_colleague_at_the_same_address(rita, dr_patel, frozen, settings):
    settings.RATE_LIMIT_PUBLIC_POSTS = 3
    # Both at the clinic's one internet address; axes is kept out of the way so that only the limit counts.
    settings.AXES_FAILURE_LIMIT = 100
    authenticator(rita)
    patels_app = authenticator(dr_patel.user)
    ritas_desk, patels_desk = Client(REMOTE_ADDR="203.0.113.7"), Client(REMOTE_ADDR="203.0.113.7")
    password_step(ritas_desk, "rita")
    for _ in range(4):
        answer = code_step(ritas_desk, "000000")
    assert answer.status_code == 429
    assert "ask the clinic's administrator" in answer.content.decode()

    password_step(patels_desk, dr_patel.user.username)
    patel = code_step(patels_desk, code_for(patels_app))

    assert patel.status_code == 302


def test_the_code_step_puts_the_cursor_in_the_code_field(client, rita, frozen):
    authenticator(rita)
    password_step(client)

    page = client.get(reverse("two_factor_code")).content.decode()

    # Keyboard users type the code at once, as they typed the username on the sign-in page.
    assert re.search(r'<input[^>]*name="code"[^>]*autofocus', page)
