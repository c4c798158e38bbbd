"""Workers running side by side on real PostgreSQL send every message exactly once.

Each worker is a real thread with its own database connection, started together at a barrier.
The control runs the same harness with a claim that does not lock, to show it can see doubles.
"""

import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.db.models import F

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
