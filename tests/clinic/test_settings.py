"""Settings come from the environment; a missing or bad value stops the process with a message naming it.

Each case imports the settings in a fresh interpreter, since they are read once at import.
"""

import secrets
import subprocess

import pytest

from tests.clinic.conftest import BASE_DIR, PYTHON, app_env, run_manage

pytestmark = pytest.mark.slow


def import_settings(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-c", "import clinic.settings"],
        cwd=BASE_DIR,
        env=app_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "clinic.example",
        # Never connected to: neither importing settings nor `check --deploy` opens a connection.
        "DATABASE_URL": "postgres://u:p@127.0.0.1:1/x",
    }
    env.update(overrides)
    return env


def assert_fails_naming(result: subprocess.CompletedProcess, variable: str) -> None:
    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured" in result.stderr
    assert variable in result.stderr.strip().splitlines()[-1]


def test_production_like_settings_import_cleanly():
    result = import_settings(**production_env())
    assert result.returncode == 0, result.stderr


def test_debug_off_without_a_secret_key_fails_naming_the_variable():
    result = import_settings(DJANGO_DEBUG="false", DJANGO_ALLOWED_HOSTS="clinic.example", DJANGO_SECRET_KEY="")
    assert_fails_naming(result, "DJANGO_SECRET_KEY")


def test_debug_off_without_allowed_hosts_fails_naming_the_variable():
    result = import_settings(**production_env(DJANGO_ALLOWED_HOSTS=""))
    assert_fails_naming(result, "DJANGO_ALLOWED_HOSTS")


def test_a_boolean_that_is_neither_true_nor_false_fails_naming_the_variable():
    result = import_settings(DJANGO_DEBUG="maybe")
    assert_fails_naming(result, "DJANGO_DEBUG")
    assert "'maybe'" in result.stderr


def test_an_unknown_time_zone_fails_naming_the_variable():
    result = import_settings(CLINIC_TIME_ZONE="Mars/Olympus_Mons")
    assert_fails_naming(result, "CLINIC_TIME_ZONE")


def test_a_number_that_is_not_a_number_fails_naming_the_variable():
    result = import_settings(CONSULTATION_MINUTES="twenty")
    assert_fails_naming(result, "CONSULTATION_MINUTES")


def test_a_database_url_for_another_database_fails_loudly():
    result = import_settings(**production_env(DATABASE_URL="sqlite:///clinic.db"))
    assert_fails_naming(result, "DATABASE_URL")


def test_the_deployment_checklist_passes_with_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=app_env(**production_env()))

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_a_socket_folder_in_the_database_url_becomes_the_host():
    # dj-database-url leaves ?host=/socket/dir in OPTIONS, where dbshell would ignore it.
    result = subprocess.run(
        [
            PYTHON,
            "-c",
            "from clinic import settings; d = settings.DATABASES['default']; print(d['HOST'], d['OPTIONS'])",
        ],
        cwd=BASE_DIR,
        env=app_env(**production_env(DATABASE_URL="postgres://postgres@/clinic?host=/tmp/clinic-sock")),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(maxsplit=1) == ["/tmp/clinic-sock", "{}\n"]


def site_url(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-c", "from clinic import settings; print(settings.SITE_URL)"],
        cwd=BASE_DIR,
        env=app_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_site_url_the_links_in_e_mails_follow_the_port_make_run_serves_on():
    result = site_url(PORT="8911", SITE_URL="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http://127.0.0.1:8911"


def test_site_url_wins_over_the_port():
    result = site_url(PORT="8911", SITE_URL="https://clinic.example/")
    assert result.stdout.strip() == "https://clinic.example"


def test_a_port_that_is_not_a_port_fails_naming_the_variable():
    assert_fails_naming(import_settings(PORT="eighty"), "PORT")
    assert_fails_naming(import_settings(PORT="70000"), "PORT")


def test_make_run_hands_its_port_to_the_server_and_the_mail_worker():
    plan = subprocess.run(
        ["make", "-n", "run", "PORT=8911"], cwd=BASE_DIR, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    # One shell line: the worker started after the export sends links to the same port the server listens on.
    assert "export PORT=8911;" in plan
    assert (
        plan.index("export PORT=8911;")
        < plan.index("send_messages --interval")
        < plan.index("runserver 127.0.0.1:8911")
    )


def test_check_deploy_fails_behind_a_tls_proxy_until_its_client_address_is_trusted():
    untrusted = production_env(SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    trusted = production_env(SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto", TRUST_X_FORWARDED_FOR="true")

    warned = run_manage("check", "--deploy", "--fail-level", "WARNING", env=app_env(**untrusted))
    quiet = run_manage("check", "--deploy", "--fail-level", "WARNING", env=app_env(**trusted))

    assert warned.returncode != 0
    assert "clinic.W001" in warned.stderr + warned.stdout
    assert quiet.returncode == 0, quiet.stderr
