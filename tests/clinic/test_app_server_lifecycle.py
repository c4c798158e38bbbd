"""The app as people run it: runserver with its autoreloader, gunicorn, and commands that need no database.

Every process here runs on its own embedded server in a tmp folder (EMBEDDED_PGDATA, or DATABASE_URL
pointing at it); the `pgdata` fixture stops that server afterwards.
"""

import os
import secrets
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.clinic.conftest import (
    app_env,
    embedded,
    http_get,
    postmaster_pids,
    run_helper,
    run_manage,
    runserver_command,
    wait_for_status,
)

pytestmark = pytest.mark.slow
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_runserver_with_its_autoreloader_restarts_on_the_database_it_left_running(
    stop_signal, reused_pgdata, tmp_path, app_servers
):
    env = app_env(reused_pgdata)
    first = app_servers(runserver_command, env, tmp_path / "first.log").start()
    wait_for_status(f"{first.url}/healthz", 200, timeout=60, process=first.process)
    [postmaster] = postmaster_pids(reused_pgdata)

    # Ctrl-C in a terminal reaches the whole foreground process group: runserver, its reloader child,
    # and anything they started in that group. PostgreSQL runs in its own session and must survive.
    first.stop(stop_signal)

    assert postmaster_pids(reused_pgdata) == [postmaster]
    assert embedded(reused_pgdata).status() == "running"

    started = time.monotonic()
    second = app_servers(runserver_command, env, tmp_path / "second.log").start()
    wait_for_status(f"{second.url}/healthz", 200, timeout=30, process=second.process)
    seconds_to_serve = time.monotonic() - started
    second.stop(stop_signal)

    assert seconds_to_serve < 5, second.log()
    assert postmaster_pids(reused_pgdata) == [postmaster]
    # The app never held the server hostage: `make stop` still stops it.
    assert run_helper("stop", reused_pgdata).returncode == 0
    assert run_helper("status", reused_pgdata).returncode == 3


def _no_database_was_started(pgdata: Path) -> bool:
    return not (pgdata / "PG_VERSION").exists() and postmaster_pids(pgdata) == []


def test_manage_py_check_does_not_start_the_database(pgdata):
    result = run_manage("check", env=app_env(pgdata))

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
    assert _no_database_was_started(pgdata)


def test_collectstatic_does_not_start_the_database(pgdata, tmp_path):
    static_root = tmp_path / "staticfiles"
    # STATIC_ROOT has no environment variable: a settings module on top of ours points it into tmp.
    (tmp_path / "collect_settings.py").write_text(
        f"from clinic.settings import *  # noqa: F403\nSTATIC_ROOT = {str(static_root)!r}\n"
    )
    env = app_env(
        pgdata,
        DJANGO_SETTINGS_MODULE="collect_settings",
        PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
        # The manifest storage production uses: it also proves every vendored file's references resolve.
        STATIC_MANIFEST="true",
    )

    result = run_manage("collectstatic", "--noinput", env=env)

    assert result.returncode == 0, result.stderr
    assert (static_root / "staticfiles.json").exists()
    assert (static_root / "vendor" / "bootstrap" / "css" / "bootstrap.min.css").exists()
    assert _no_database_was_started(pgdata)


def _production_env(database_url: str) -> dict[str, str]:
    return app_env(
        DATABASE_URL=database_url,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        # Plain HTTP on loopback; static files are not what this test is about.
        SECURE_SSL_REDIRECT="false",
        STATIC_MANIFEST="false",
    )


def test_gunicorn_answers_503_while_the_database_is_down_and_recovers_without_a_restart(
    reused_pgdata, tmp_path, app_servers
):
    database = embedded(reused_pgdata)
    database.ensure_running()
    env = _production_env(f"postgres://postgres@/clinic?host={database.socket_dir}")
    migrate = run_manage("migrate", "--noinput", env=env)
    assert migrate.returncode == 0, migrate.stderr

    def gunicorn(port):
        return [GUNICORN, "clinic.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1"] + [
            "--no-control-socket",
            "--timeout",
            "30",
        ]

    app = app_servers(gunicorn, env, tmp_path / "gunicorn.log").start()
    wait_for_status(f"{app.url}/healthz", 200, timeout=30, process=app.process)
    assert http_get(f"{app.url}/team/").status == 200

    assert run_helper("stop", reused_pgdata).returncode == 0

    health = http_get(f"{app.url}/healthz")
    assert (health.status, health.body) == (503, '{"status": "error", "database": "unavailable"}')
    team = http_get(f"{app.url}/team/")
    assert team.status == 503, app.log()
    assert team.headers["Retry-After"] == "5"
    assert "We'll be back in a moment" in team.body
    assert "Traceback" not in team.body
    assert "Traceback" not in app.log()

    assert run_helper("start", reused_pgdata).returncode == 0

    wait_for_status(f"{app.url}/healthz", 200, timeout=3, process=app.process)
    assert http_get(f"{app.url}/team/").status == 200
