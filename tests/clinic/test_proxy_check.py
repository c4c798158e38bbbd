"""`check --deploy` warns when a TLS proxy is in front but its client address is not trusted."""

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
