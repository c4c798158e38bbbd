"""`check --deploy` warns when a TLS proxy is in front but its client address is not trusted."""

import pytest
from django.core.checks import run_checks

from clinic.checks import proxy_client_address_is_trusted


def _proxy_warnings():
    return [message for message in run_checks(include_deployment_checks=True) if message.id == "clinic.W001"]


def test_behind_a_tls_proxy_without_trusting_x_forwarded_for_the_deploy_check_warns(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.TRUST_X_FORWARDED_FOR = False

    [warning] = _proxy_warnings()

    assert "TRUST_X_FORWARDED_FOR" in warning.msg
    assert "X-Forwarded-For" in warning.hint


def test_behind_a_tls_proxy_that_is_trusted_the_deploy_check_is_quiet(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.TRUST_X_FORWARDED_FOR = True

    assert _proxy_warnings() == []


def test_without_a_proxy_the_deploy_check_is_quiet(settings):
    if hasattr(settings, "SECURE_PROXY_SSL_HEADER"):
        del settings.SECURE_PROXY_SSL_HEADER
    settings.TRUST_X_FORWARDED_FOR = False

    assert proxy_client_address_is_trusted(None) == []


def test_the_check_runs_only_with_deploy(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.TRUST_X_FORWARDED_FOR = False

    assert [message for message in run_checks() if message.id == "clinic.W001"] == []


@pytest.mark.django_db
def test_behind_the_trusted_proxy_each_patient_has_their_own_rate_limit_and_cannot_pick_an_address(settings):
    from django.test import Client

    from tests.helpers import SAFE_ANSWERS

    settings.TRUST_X_FORWARDED_FOR = True
    settings.RATE_LIMIT_PUBLIC_POSTS = 2
    proxy = "10.0.0.1"
    mallory = Client(REMOTE_ADDR=proxy)
    patient = Client(REMOTE_ADDR=proxy)

    # Mallory uses up her limit, even when she sends addresses of her own choosing before the proxy's entry.
    answers = [
        mallory.post("/book/", SAFE_ANSWERS, HTTP_X_FORWARDED_FOR=f"192.0.2.{index}, 198.51.100.66")
        for index in range(3)
    ]
    assert [answer.status_code for answer in answers] == [302, 302, 429]
    # The patient behind the same proxy is not blocked by her.
    assert patient.post("/book/", SAFE_ANSWERS, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 302
