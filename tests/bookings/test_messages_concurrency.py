"""Workers running side by side on real PostgreSQL send every message exactly once.

Each worker is a real thread with its own database connection, started together at a barrier.
The control runs the same harness with a claim that does not lock, to show it can see doubles.
"""

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from bookings import notifications
from bookings.models import OutboundMessage, Slot
from bookings.services import PatientDetails, appointment_book

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=LONDON)
FIRST_SLOT = datetime(2026, 6, 8, 9, 0, tzinfo=LONDON)
WORKERS = 4
MESSAGES = 40

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _mail_settings(settings):
    settings.RECEPTION_NOTIFY_EMAIL = ""
    settings.REMINDER_HOURS_BEFORE = 0


class RecordingBackend(BaseEmailBackend):
    """A mail server shared by all workers: notes each Message-ID it accepts, and takes a moment."""

    accepted = []
    lock = threading.Lock()

    def send_messages(self, email_messages):
        time.sleep(0.002)
        with self.lock:
            self.accepted.extend(message.extra_headers["Message-ID"] for message in email_messages)
        return len(email_messages)


def _book_many(practitioner):
    for index in range(MESSAGES):
        start = FIRST_SLOT + timedelta(minutes=20 * index)
        slot = Slot.objects.create(practitioner=practitioner, starts_at=start, ends_at=start + timedelta(minutes=20))
        patient = PatientDetails(
            first_name="Pat", last_name=f"Ient{index}", phone="07700 900123", email="p@example.com"
        )
        appointment_book(slot_id=slot.pk, patient=patient, now=NOW)


def _run_workers():
    RecordingBackend.accepted = []
    barrier = threading.Barrier(WORKERS)
    errors = []

    def work(name):
        try:
            barrier.wait()
            while notifications.send_due_messages(
                now=NOW, worker_id=name, limit=3, connection=RecordingBackend()
            ).claimed:
                pass
        except Exception as exc:  # reported by the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(f"worker-{n}",)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return Counter(RecordingBackend.accepted)


def test_four_workers_running_together_send_each_message_exactly_once(dr_patel):
    _book_many(dr_patel)

    accepted = _run_workers()

    assert len(accepted) == MESSAGES
    assert max(accepted.values()) == 1
    assert OutboundMessage.objects.filter(status=OutboundMessage.Status.SENT).count() == MESSAGES
    # Every worker got a share: they really ran side by side.
    assert OutboundMessage.objects.values("claimed_by").distinct().count() > 1


def test_control_without_the_row_lock_the_same_workers_send_duplicates(dr_patel, monkeypatch):
    """Proves the harness can see a double send: the claim reads, pauses, then updates without locking."""

    def claim_without_lock(*, now, worker_id, limit):
        with transaction.atomic():
            ids = list(OutboundMessage.objects.due(now=now).order_by("pk").values_list("pk", flat=True)[:limit])
            time.sleep(0.02)
            OutboundMessage.objects.filter(pk__in=ids).update(
                status=OutboundMessage.Status.SENDING,
                attempts=F("attempts") + 1,
                claimed_by=worker_id,
                lease_expires_at=now + notifications.LEASE,
            )
        return list(OutboundMessage.objects.filter(pk__in=ids).select_related("appointment", "slot__practitioner"))

    monkeypatch.setattr(notifications, "claim_due_messages", claim_without_lock)
    _book_many(dr_patel)

    accepted = _run_workers()

    assert max(accepted.values()) > 1


@pytest.mark.slow
def test_a_worker_process_killed_while_sending_leaves_its_message_to_the_next_worker(dr_patel, mailoutbox):
    """A real `manage.py send_messages` process hangs on a mail server that never answers and is killed -9."""
    now = timezone.now()
    start = now + timedelta(days=3)
    slot = Slot.objects.create(practitioner=dr_patel, starts_at=start, ends_at=start + timedelta(minutes=20))
    patient = PatientDetails(first_name="Pat", last_name="Ient", phone="07700 900123", email="p@ex.org")
    appointment_book(slot_id=slot.pk, patient=patient, now=now)
    database = connection.settings_dict
    with socket.socket() as silent_server:
        silent_server.bind(("127.0.0.1", 0))
        silent_server.listen()
        silent_server.settimeout(30)
        env = os.environ | {
            # The worker process uses this test's database, through the server's socket.
            "DATABASE_URL": f"postgres://{database['USER']}@/{database['NAME']}?host={database['HOST']}",
            "DJANGO_DEBUG": "true",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(silent_server.getsockname()[1]),
            "EMAIL_USE_TLS": "false",
            "EMAIL_TIMEOUT": "60",
        }
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "send_messages", "--interval", "0.2"],
            cwd=django_settings.BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # The worker has claimed the message and is waiting for the server's greeting.
            hung_connection, _ = silent_server.accept()
            worker.kill()
            worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()
        hung_connection.close()

    message = OutboundMessage.objects.get()
    assert (message.status, message.attempts) == (OutboundMessage.Status.SENDING, 1)
    assert notifications.send_due_messages(now=timezone.now(), worker_id="next").claimed == 0

    # EMAIL_TIMEOUT=60 made that worker's lease longer than the five-minute minimum.
    assert message.lease_expires_at >= now + timedelta(minutes=12)
    report = notifications.send_due_messages(now=message.lease_expires_at, worker_id="next")

    assert report.sent == 1
    assert [sent.to for sent in mailoutbox] == [["p@ex.org"]]
    message.refresh_from_db()
    assert (message.status, message.attempts, message.claimed_by) == (OutboundMessage.Status.SENT, 2, "next")
