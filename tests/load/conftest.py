"""Helpers for the load tests: a tmp PostgreSQL with fresh databases, gunicorn instances, HTTP clients.

Everything a test starts here (the PostgreSQL server in its own data folder, every gunicorn) is
stopped by a finalizer. The shared development server in var/pgdata is never touched.
"""

import contextlib
import http.client
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import psycopg2
import pytest

from clinic.embedded_db import EmbeddedServer
from tests.clinic.conftest import (
    BASE_DIR,
    AppServer,
    app_env,
    free_port,
    run_manage,
    server_folder,
    stop_embedded,
    wait_for_status,
)
from tests.helpers import PATIENT, SAFE_ANSWERS

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
JUST_TAKEN = "that time has just been taken"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SUBMISSION_KEY_FIELD = re.compile(r'name="submission_key" value="([^"]+)"')


# -- Database ------------------------------------------------------------------------------


def production_env(database_url: str, **extra: str) -> dict[str, str]:
    """The settings production uses (DEBUG off, plain PostgreSQL URL), on loopback HTTP."""
    return app_env(
        DATABASE_URL=database_url,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        STATIC_MANIFEST="false",
        # Hundreds of public POSTs come from one loopback address here.
        RATE_LIMIT_PUBLIC_POSTS="1000000",
        # ... and book many times, with one patient's e-mail and phone.
        RATE_LIMIT_BOOKINGS_PER_HOUR="1000000",
        BOOKING_MAX_LIVE_PER_CONTACT="1000000",
        **extra,
    )


@dataclass
class LoadDatabaseServer:
    """A PostgreSQL server of our own (in a tmp data folder) holding fresh databases made for one test."""

    server: EmbeddedServer

    def url(self, name: str) -> str:
        return f"postgres://postgres@/{name}?host={self.server.socket_dir}"

    def connect(self, name: str):
        connection = psycopg2.connect(dbname=name, user="postgres", host=str(self.server.socket_dir), port=5432)
        connection.autocommit = True
        return connection

    def sql(self, name: str, query: str, params=None) -> list[tuple]:
        with contextlib.closing(self.connect(name)) as connection, connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """A fresh database: migrated with the cache table, or copied from TEMPLATE (much faster)."""
        clause = f' TEMPLATE "{template}"' if template else ""
        self.sql("postgres", f'CREATE DATABASE "{name}"{clause}')
        if template is None:
            env = production_env(self.url(name))
            for command in (["migrate", "--noinput"], ["createcachetable"]):
                result = run_manage(*command, env=env, timeout=180)
                assert result.returncode == 0, result.stderr
        return self.url(name)


@pytest.fixture
def database_server() -> Iterator[LoadDatabaseServer]:
    """A tmp PostgreSQL server, stopped (and its folder removed) afterwards.

    Its data folder is not under pytest's tmp_path: as root the server runs as a service user
    who must be able to walk down to it (see tests/clinic/conftest.py, `server_folder`).
    """
    with server_folder() as folder:
        pgdata = folder / "pgdata"
        try:
            server = EmbeddedServer.for_pgdata(pgdata)
            server.ensure_running()
            yield LoadDatabaseServer(server)
        finally:
            stop_embedded(pgdata)


# The schedule, made by the app's own models in a subprocess: N practitioners, then the slots,
# one every 30 minutes per practitioner from tomorrow, all bookable.
SEED_CODE = """
from datetime import timedelta
from django.utils import timezone
from django.conf import settings
from bookings.models import Practitioner, Slot
count, slots = {practitioners}, {slots}
people = [Practitioner.objects.create(display_name=f"Load {{i}}", title="Dr", profession="Physiotherapist",
                                       list_order=i) for i in range(count)]
start = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
length = timedelta(minutes=settings.CONSULTATION_MINUTES)
made = Slot.objects.bulk_create(
    Slot(practitioner=people[i % count], starts_at=start + (i // count) * timedelta(minutes=30),
         ends_at=start + (i // count) * timedelta(minutes=30) + length)
    for i in range(slots)
)
print(",".join(str(slot.pk) for slot in made))
"""


def seed_schedule(database_url: str, *, practitioners: int, slots: int) -> list[int]:
    code = SEED_CODE.format(practitioners=practitioners, slots=slots)
    result = run_manage("shell", "-c", code, env=production_env(database_url))
    assert result.returncode == 0, result.stderr
    return [int(pk) for pk in result.stdout.strip().splitlines()[-1].split(",")]


# -- App servers ----------------------------------------------------------------------------


def gunicorn_command(port: int, workers: int = 2) -> list[str]:
    return [
        GUNICORN,
        "clinic.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--no-control-socket",
        "--timeout",
        "30",
        "--graceful-timeout",
        "5",
    ]


@pytest.fixture
def gunicorns(tmp_path) -> Iterator[Callable[..., AppServer]]:
    """Starts gunicorn instances (2 workers each) and waits until they answer; kills them all at the end."""
    started: list[AppServer] = []

    def start(env: dict[str, str], name: str, workers: int = 2) -> AppServer:
        port = free_port()
        server = AppServer(gunicorn_command(port, workers), env, tmp_path / f"{name}.log", port)
        started.append(server)
        server.start()
        wait_for_status(f"{server.url}/healthz", 200, timeout=60, process=server.process)
        return server

    yield start
    for server in started:
        server.stop(timeout=10)


# -- Clients ---------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: str
    seconds: float = 0.0


@dataclass
class Patient:
    """One browser: its own cookies (session, CSRF), talking to one app server with stdlib http.client."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    csrf_token: str = ""
    passed_safety_check: bool = False

    def request(self, method: str, path: str, form: dict | None = None, port: int | None = None) -> Answer:
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=60)
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel.value:
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return Answer(response.status, response.headers, text, time.perf_counter() - started)

    def pass_safety_check(self) -> Answer:
        if not self.csrf_token:
            page = self.request("GET", "/book/")
            assert page.status == 200, page.status
            self.csrf_token = CSRF_FIELD.search(page.body).group(1)
        answer = self.request("POST", "/book/", SAFE_ANSWERS | {"csrfmiddlewaretoken": self.csrf_token})
        assert answer.status == 302 and answer.headers["Location"].startswith("/book/time/"), answer.status
        self.passed_safety_check = True
        return answer

    def details_form(self, slot_id: int) -> dict[str, str]:
        """GET the details step for SLOT_ID; the fields a browser would post back, filled in."""
        page = self.request("GET", f"/book/details/?slot={slot_id}")
        assert page.status == 200, (page.status, page.body[:500])
        return self.details_form_from(page, slot_id)

    def details_form_from(self, page: Answer, slot_id: int) -> dict[str, str]:
        return PATIENT | {
            "slot": str(slot_id),
            "submission_key": SUBMISSION_KEY_FIELD.search(page.body).group(1),
            "csrfmiddlewaretoken": CSRF_FIELD.search(page.body).group(1),
        }

    def book(self, form: dict[str, str], port: int | None = None) -> Answer:
        return self.request("POST", "/book/details/", form, port=port)


def run_at_once(count: int, work: Callable[[int], object], timeout: float = 120) -> list:
    """Run WORK(i) in COUNT threads; each returns what it returned or the exception it raised."""
    results: list = [None] * count

    def run(index):
        try:
            results[index] = work(index)
        except Exception as exc:  # recorded, asserted by the caller
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results


def double_booked_slots(database: LoadDatabaseServer, name: str) -> list[tuple[int, int]]:
    """(slot, live appointments) for every slot holding more than one live appointment."""
    return database.sql(
        name,
        "SELECT slot_id, count(*) FROM bookings_appointment WHERE status <> 'cancelled'"
        " GROUP BY slot_id HAVING count(*) > 1 ORDER BY slot_id",
    )


def report(capsys, lines: list[str], name: str) -> None:
    """Print figures to the terminal (past pytest's capture) and keep them in var/load/NAME.txt."""
    text = "\n".join(lines) + "\n"
    folder = BASE_DIR / "var" / "load"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text(text)
    with capsys.disabled():
        print("\n" + text, end="", flush=True)
