"""The e-mail worker: sends the outbox (bookings/notifications.py) until stopped, and runs the daily
retention purge (bookings/privacy.py, purge_if_due) in case cron does not.

Before each round of sending it runs the waiting list (bookings.services.waiting_list_scan): holds that
ran out end, entries past their date leave the list, and times that came free are offered, so offers
need no request to arrive.

    python manage.py send_messages            # run beside the web server, for ever
    python manage.py send_messages --once     # send what is due now, then exit

Any number may run at once (they never send the same message). SIGTERM or Ctrl-C lets the
message in hand finish, hands the rest of the batch back, and exits.
"""

import logging
import os
import signal
import socket
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections
from django.utils import timezone
from django.utils.crypto import get_random_string

from bookings.notifications import send_due_messages
from bookings.privacy import pending_erasures_finish, purge_if_due
from bookings.services import insights_refresh_if_due, waiting_list_scan
from bookings.webhooks import send_due_deliveries

logger = logging.getLogger("bookings.notifications")


class Command(BaseCommand):
    help = "Send booking e-mails from the outbox (confirmations, changes, reminders) and the webhooks."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Send what is due now, then exit.")
        parser.add_argument(
            "--interval", type=float, default=5.0, help="Seconds to wait when nothing is due (default 5)."
        )
        parser.add_argument("--batch", type=int, default=20, help="Messages claimed at a time (default 20).")

    def handle(self, *, once, interval, batch, **options):
        worker_id = f"{socket.gethostname()[:30]}:{os.getpid()}:{get_random_string(8)}"
        stopping = threading.Event()
        if not once:

            def stop(signum, frame):
                logger.info("E-mail worker %s stopping after the current message", worker_id)
                stopping.set()

            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
            where = getattr(settings, "EMAIL_FILE_PATH", None) if not settings.EMAIL_HOST else None
            logger.info("E-mail worker %s started%s", worker_id, f"; e-mails are written to {where}" if where else "")
        while True:
            # Like a request: drop connections the database closed while we slept.
            close_old_connections()
            try:
                scan = waiting_list_scan(now=timezone.now())
                if scan.offers_made or scan.expired_offers or scan.expired_entries:
                    logger.info(
                        "Waiting list: %s offers made for %s times, %s holds ended, %s entries expired",
                        scan.offers_made,
                        scan.slots_offered,
                        scan.expired_offers,
                        scan.expired_entries,
                    )
                report = send_due_messages(
                    now=timezone.now(), worker_id=worker_id, limit=batch, should_stop=stopping.is_set
                )
                # An erasure whose cancellation e-mail has just left is finished now (bookings/privacy.py).
                pending_erasures_finish(now=timezone.now())
                # Webhooks leave beside the e-mails, with the same retry schedule (bookings/webhooks.py).
                hooks = send_due_deliveries(now=timezone.now(), limit=batch)
                if hooks.claimed:
                    self.stdout.write(
                        f"Webhooks: delivered {hooks.sent}, retrying {hooks.retrying}, failed {hooks.failed}."
                    )
            except DatabaseError as exc:
                # A database restart must not end the worker; its claimed messages come back when their lease ends.
                if once:
                    raise
                logger.warning(
                    "E-mail worker %s: database error (%s), trying again shortly", worker_id, type(exc).__name__
                )
                report = None
            try:
                # Once a day across every worker (an advisory lock and the last run's time decide which).
                purge_if_due(now=timezone.now())
                # Hourly, the Insights page's figures (bookings.services.insights_refresh_if_due).
                insights_refresh_if_due(now=timezone.now())
            except DatabaseError as exc:
                if once:
                    raise
                logger.warning(
                    "E-mail worker %s: the daily purge or the Insights rebuild failed (%s)",
                    worker_id,
                    type(exc).__name__,
                )
            if report and report.claimed:
                self.stdout.write(
                    f"Sent {report.sent}, retrying {report.retrying}, failed {report.failed}, "
                    f"skipped {report.skipped}, handed back {report.released}."
                )
            if stopping.is_set():
                return
            # A full batch suggests more are due: go again at once; otherwise wait (and wake on a signal).
            if not report or report.claimed < batch:
                if once:
                    return
                stopping.wait(interval)
