"""Time (and optionally profile) the slow pages in-process, one request at a time, without HTTP or load.

Runs against the database `make bench` left in var/bench-pgdata (starts that server, stops it afterwards):

    .venv/bin/python bench/profile_pages.py [--requests 40] [--profile]

Per page: milliseconds per request (median of REQUESTS) and the number of queries; with --profile,
the functions that took the most time (cProfile, standard library).

Pages go through Django's test Client, which costs about 0.4 ms of CPU per request of its own that no server
spends. "booking WSGI" sends the same booking to Django's WSGI handler directly, with the environ a server such
as gunicorn builds (as make bench's wrk sends it: the CSRF cookie and field, the patient's own address through
X-Forwarded-For), and the request signals a server sends: what a worker process spends on it, less the HTTP parsing.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import itertools
import pstats
import secrets
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import PGDATA, bench_env, make_booking_cookies, prepare_day_view, setup_django  # noqa: E402
from clinic.embedded_db import EmbeddedServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--statements", action="store_true", help="each statement's median time (the wait for it)")
    parser.add_argument("--sort", default="cumulative", help="cProfile order: cumulative, tottime, ...")
    parser.add_argument(
        "--cpu-profile", action="store_true", help="cProfile counts this process's CPU time, not the wall clock"
    )
    parser.add_argument("--only", help="only the pages named so (trivial, home, article, time, booking, day, signed)")
    args = parser.parse_args()
    if not (PGDATA / "PG_VERSION").exists():
        sys.exit("Run `make bench` first: it makes the database this profiles against.")
    server = EmbeddedServer.for_pgdata(PGDATA)
    server.ensure_running()
    try:
        setup_django(bench_env(f"postgres://postgres@/bench?host={server.socket_dir}"))
        from django.core.handlers.wsgi import WSGIHandler
        from django.db import connection
        from django.test import Client
        from django.utils import timezone

        from articles.models import Article
        from bookings.models import Practitioner, Slot

        practitioner_ids = list(Practitioner.objects.order_by("pk").values_list("pk", flat=True))
        # "booking=<signed value>": the flow cookie of a patient past the safety check.
        cookies = iter(cookie.split("=", 1)[1] for cookie in make_booking_cookies(args.requests * 4 + 20))
        slots = iter(Slot.objects.bookable(now=timezone.now()).order_by("-starts_at").values_list("pk", flat=True))
        patients = itertools.count(secrets.randbelow(10**6) * 100)
        browsing = Client(HTTP_HOST="127.0.0.1")
        browsing.cookies["booking"] = next(cookies)

        # One client (one handler, its middleware loaded once, as in a server process), each booking a new
        # browser: its cookies cleared, then its own flow cookie.
        patient = Client(HTTP_HOST="127.0.0.1")

        def booking_post():
            patient.cookies.clear()
            patient.cookies["booking"] = next(cookies)
            form = {
                "slot": next(slots),
                "submission_key": str(uuid.uuid4()),
                "first_name": "Pat",
                "last_name": "Profile",
                # Each booking a different patient, as in make bench (bench/wrk.lua).
                "email": f"pat{next(patients)}@example.org",
                "phone": f"07700 9{next(patients) % 100000:05d}",
                "note": "",
                "consent": "on",
                "website": "",
            }
            # Form-encoded, as browsers and wrk send it (the test client's default is multipart).
            response = patient.post("/book/details/", urlencode(form), content_type="application/x-www-form-urlencoded")
            assert response.status_code == 302 and response["Location"] == "/book/confirmed/", response.status_code
            return response

        # As a server process: one handler (its middleware loaded once), each request a fresh environ.
        handler = WSGIHandler()
        csrf = secrets.token_hex(16)

        def wsgi_booking_post():
            patient_number = next(patients)
            body = urlencode(
                {
                    "slot": next(slots),
                    "submission_key": str(uuid.uuid4()),
                    "first_name": "Pat",
                    "last_name": "Profile",
                    "email": f"pat{patient_number}@example.org",
                    "phone": f"07700 9{patient_number % 100000:05d}",
                    "note": "",
                    "consent": "on",
                    "website": "",
                    "csrfmiddlewaretoken": csrf,
                }
            ).encode()
            environ = {
                "REQUEST_METHOD": "POST",
                "SCRIPT_NAME": "",
                "PATH_INFO": "/book/details/",
                "QUERY_STRING": "",
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "8000",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_HOST": "127.0.0.1",
                "HTTP_COOKIE": f"booking={next(cookies)}; csrftoken={csrf}",
                "HTTP_X_FORWARDED_FOR": f"10.{patient_number // 65536 % 256}.{patient_number // 256 % 256}."
                f"{patient_number % 256}",
                "CONTENT_TYPE": "application/x-www-form-urlencoded",
                "CONTENT_LENGTH": str(len(body)),
                "wsgi.input": io.BytesIO(body),
                "wsgi.errors": sys.stderr,
                "wsgi.url_scheme": "http",
                "wsgi.version": (1, 0),
                "wsgi.multithread": False,
                "wsgi.multiprocess": True,
                "wsgi.run_once": False,
            }
            answered = []
            result = handler(environ, lambda status, headers, exc_info=None: answered.append((status, dict(headers))))
            try:
                b"".join(result)
            finally:
                # Sends request_finished, as a server does.
                result.close()
            status, headers = answered[0]
            assert status.startswith("302") and headers["Location"] == "/book/confirmed/", status
            return result

        article_path = Article.objects.published().order_by("pk").first().get_absolute_url()
        # Like wrk's visitors to these pages: no session cookie.
        reading = Client(HTTP_HOST="127.0.0.1")
        staff = Client(HTTP_HOST="127.0.0.1")
        day_path = None
        if not args.only or args.only.startswith(("day", "signed")):
            # Reception's day view as make bench serves it (bench.run.prepare_day_view: ten practitioners).
            day_path, (staff_cookie,) = prepare_day_view(server, practitioner_ids)
            staff.cookies[staff_cookie.split("=", 1)[0]] = staff_cookie.split("=", 1)[1]
        pages = {
            "trivial view": lambda: reading.get("/bench/trivial"),
            "home page": lambda: reading.get("/"),
            "article page": lambda: reading.get(article_path),
            "time page": lambda: browsing.get("/book/time/"),
            "booking POST": booking_post,
            "booking WSGI": wsgi_booking_post,
            "day view": lambda: staff.get(day_path),
            # What every reception page pays before its own work (bench/urls.py).
            "signed-in floor": lambda: staff.get("/bench/signed-in"),
        }
        for name, request in pages.items():
            if args.only and not name.startswith(args.only):
                continue
            for _ in range(3):
                request()
            # Counted with a wrapper: Django clears connection.queries when a request starts.
            queries: list[str] = []

            def count(execute, sql, *rest, queries=queries):
                queries.append(sql)
                return execute(sql, *rest)

            with connection.execute_wrapper(count):
                request()
            timings, cpu_times = [], []
            # Per statement (in order): the time spent in the driver, i.e. waiting for PostgreSQL.
            statement_times: list[list[float]] = []
            # The CPU clock leaves out the waits for PostgreSQL (and for the other processes on a shared machine).
            profile = cProfile.Profile(time.process_time) if args.cpu_profile else cProfile.Profile()
            for _ in range(args.requests):
                this_request: list[float] = []

                def timed(execute, sql, *rest, this_request=this_request):
                    started = time.perf_counter()
                    try:
                        return execute(sql, *rest)
                    finally:
                        this_request.append((time.perf_counter() - started) * 1000)

                started, cpu_started = time.perf_counter(), time.process_time()
                if args.profile or args.cpu_profile:
                    profile.enable()
                with connection.execute_wrapper(timed):
                    request()
                if args.profile or args.cpu_profile:
                    profile.disable()
                timings.append((time.perf_counter() - started) * 1000)
                cpu_times.append((time.process_time() - cpu_started) * 1000)
                statement_times.append(this_request)
            print(
                f"{name}: {statistics.median(timings):.1f} ms per request (median), "
                f"{statistics.median(cpu_times):.2f} ms of this process's CPU (fastest {min(cpu_times):.2f} ms: "
                f"the least disturbed on a shared machine), {len(queries)} queries"
            )
            if args.statements:
                for position, sql in enumerate(queries):
                    times = [each[position] for each in statement_times if len(each) > position]
                    if times:
                        print(f"   {statistics.median(times):6.2f} ms  {' '.join(sql.split())[:110]}")
            if args.profile or args.cpu_profile:
                pstats.Stats(profile).sort_stats(args.sort).print_stats(30)
                profile.dump_stats(str(Path("var") / "bench" / f"profile-{name.split()[0]}.pstats"))
        if day_path is not None:
            # Every practitioner back, for the other pages' next run (the day view's day keeps only ten).
            Practitioner.objects.update(is_active=True)
        connection.close()
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            server.socket_dir.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
