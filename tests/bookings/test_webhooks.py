"""Webhooks: a receiver on this machine checks every delivery with the `standardwebhooks` library, as a
clinic's other system would; and no subscription reaches the inside of the network in production."""

import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bookings import services, webhooks
from bookings.models import CallbackRequest, WebhookDelivery, WebhookEvent, WebhookSubscription
from bookings.notifications import retry_delay
from tests.helpers import local, make_slot, patient_books
from tests.staff_signin import verified_login

EVERY_EVENT = list(WebhookEvent.values)
REAL_GETADDRINFO = socket.getaddrinfo


class Receiver:
    """A webhook receiver on 127.0.0.1: verifies each signature, keeps each event once (by webhook-id),
    and answers the statuses it is told to, in turn (then 204)."""

    def __init__(self, secret: str, answers=()):
        self.webhook = Webhook(secret)
        self.answers = list(answers)
        self.requests: list[tuple[dict, bytes]] = []
        self.events: dict[str, dict] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.requests.append((headers, body))
                status = receiver.answers.pop(0) if receiver.answers else 204
                if status < 300:
                    payload = receiver.webhook.verify(body, headers)
                    receiver.events.setdefault(headers["webhook-id"], payload)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.redirect_to = ""
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def debug(settings):
    """Development settings, from the test's side: http to a receiver on loopback is allowed only there."""
    settings.DEBUG = True


@pytest.fixture
def receiver(debug):
    made = []

    def make(answers=()):
        secret = webhooks.new_secret()
        one = Receiver(secret, answers)
        one.subscription = WebhookSubscription.objects.create(
            name="Practice system", url=one.url, events=EVERY_EVENT, secret=secret, created_at=timezone.now()
        )
        made.append(one)
        return one

    yield make
    for one in made:
        one.stop()


def deliver(at=None):
    return webhooks.send_due_deliveries(now=at or timezone.now())


def test_the_receiver_verifies_every_event_and_sees_each_once(receiver, dr_patel):
    hook = receiver()
    first, second = make_slot(dr_patel, local(3, 10)), make_slot(dr_patel, local(3, 11))
    appointment = patient_books(first)
    services.appointment_move(appointment=appointment, new_slot_id=second.pk, now=timezone.now())
    services.appointment_cancel(appointment=appointment, now=timezone.now(), reason="Better")
    services.callback_request_record(
        callback=CallbackRequest(name="Pat Ient", phone="07700 900123"), now=timezone.now()
    )

    report = deliver()
    assert report.sent == 4
    assert deliver().claimed == 0  # sent once per attempt: nothing is sent again
    types = [payload["type"] for payload in hook.events.values()]
    assert types == ["appointment.booked", "appointment.moved", "appointment.cancelled", "callback.requested"]
    assert len(hook.requests) == 4 and len(hook.events) == 4
    moved = list(hook.events.values())[1]["data"]
    assert moved["appointment_id"] == appointment.pk and moved["practitioner"]["id"] == dr_patel.pk
    assert moved["starts_at"] == second.starts_at.isoformat()


def test_a_status_change_is_an_event(receiver, dr_patel, rita, time_machine):
    hook = receiver()
    appointment = patient_books(make_slot(dr_patel, local(3, 10)))
    time_machine.move_to(local(3, 10, 5))
    services.appointment_set_status(appointment=appointment, status="arrived", now=timezone.now(), actor=rita)
    deliver()
    changed = [payload for payload in hook.events.values() if payload["type"] == "appointment.status_changed"]
    assert changed[0]["data"]["status"] == "arrived"


def test_a_retry_after_a_500_carries_the_same_id_and_the_receiver_keeps_it_once(receiver, dr_patel):
    hook = receiver(answers=[500])
    patient_books(make_slot(dr_patel, local(3, 10)))
    now = timezone.now()
    assert deliver(now).retrying == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.next_attempt_at == now + retry_delay(1)  # the e-mails' schedule
    assert deliver(now + timedelta(seconds=30)).claimed == 0  # not due yet
    assert deliver(now + retry_delay(1)).sent == 1
    (first_headers, _), (second_headers, _) = hook.requests
    assert first_headers["webhook-id"] == second_headers["webhook-id"] == delivery.message_id
    assert list(hook.events) == [delivery.message_id]


def test_a_replay_older_than_five_minutes_and_a_changed_body_are_rejected(receiver, dr_patel, time_machine):
    hook = receiver()
    patient_books(make_slot(dr_patel, local(3, 10)))
    deliver()
    headers, body = hook.requests[0]
    hook.webhook.verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        hook.webhook.verify(body.replace(b"booked", b"cancelled"), headers)
    time_machine.move_to(timezone.now() + timedelta(minutes=5, seconds=30))
    with pytest.raises(WebhookVerificationError, match="too old"):
        hook.webhook.verify(body, headers)


def test_payloads_never_carry_notes_or_safety_answers_and_contact_details_only_when_allowed(dr_patel):
    now = timezone.now()
    common = {"url": "https://hooks.example.com/x", "events": EVERY_EVENT, "secret": "whsec_AA==", "created_at": now}
    plain = WebhookSubscription.objects.create(name="Accounts", **common)
    allowed = WebhookSubscription.objects.create(name="Practice system", include_contact_details=True, **common)
    patient_books(make_slot(dr_patel, local(3, 10)), note="Private note")
    plain_payload = WebhookDelivery.objects.get(subscription=plain).payload
    allowed_payload = WebhookDelivery.objects.get(subscription=allowed).payload
    assert "patient" not in plain_payload["data"] and "Ient" not in json.dumps(plain_payload)
    assert allowed_payload["data"]["patient"]["email"] == "pat@example.org"
    for payload in (plain_payload, allowed_payload):
        assert "Private note" not in json.dumps(payload) and "safety" not in json.dumps(payload)


def test_deliveries_are_recorded_in_the_change_s_own_transaction(dr_patel):
    WebhookSubscription.objects.create(
        name="Practice system",
        url="https://hooks.example.com/x",
        events=EVERY_EVENT,
        secret="whsec_AA==",
        created_at=timezone.now(),
    )
    slot = make_slot(dr_patel, local(3, 10))
    with pytest.raises(RuntimeError), transaction.atomic():
        patient_books(slot)
        assert WebhookDelivery.objects.count() == 1
        raise RuntimeError("the booking's transaction fails after it")
    assert not WebhookDelivery.objects.exists()
    patient_books(slot)
    with pytest.raises(services.SlotUnavailable):
        patient_books(slot)
    assert WebhookDelivery.objects.count() == 1


def test_a_subscription_that_keeps_failing_is_paused_and_shown_to_staff(receiver, dr_patel, client, monkeypatch):
    monkeypatch.setattr(WebhookSubscription, "PAUSE_AFTER_FAILURES", 2)
    hook = receiver(answers=[500] * 10)
    patient_books(make_slot(dr_patel, local(3, 10)))
    now = timezone.now()
    deliver(now)
    deliver(now + timedelta(minutes=1))
    hook.subscription.refresh_from_db()
    assert hook.subscription.paused_at is not None
    assert deliver(now + timedelta(hours=2)).claimed == 0
    assert len(hook.requests) == 2

    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("ada", "ada@example.org", "correct horse battery")
    verified_login(client, admin)
    page = client.get("/admin/bookings/webhooksubscription/?paused_at__isnull=False").content.decode()
    assert "Practice system" in page and "The receiver answered 500." in page


# -- Where webhooks may go --------------------------------------------------------------------------


def _resolving(names: dict):
    """socket.getaddrinfo, with NAMES answered as given (a fake DNS): nothing leaves the machine."""
    calls = []

    def getaddrinfo(host, port, *args, **kwargs):
        calls.append(host)
        if host in names:
            address = names[host]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port))]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    getaddrinfo.calls = calls
    return getaddrinfo


@pytest.fixture
def no_connections(monkeypatch):
    """Any connection attempt fails the test: a refused URL must be refused before connecting."""
    attempts = []

    def refuse(address, *args, **kwargs):
        attempts.append(address)
        raise AssertionError(f"connected to {address}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://10.1.2.3/hook",
        "https://192.168.1.5/hook",
        "https://172.16.0.9/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://0.0.0.0/hook",
        "https://inside.example.com/hook",
        "https://loopback.example.com/hook",
        "http://public.example.com/hook",
        "ftp://public.example.com/hook",
        "https://user:pass@public.example.com/hook",
    ],
)
def test_production_refuses_a_subscription_to_the_inside_when_saved(url, monkeypatch, no_connections):
    fake = {
        "inside.example.com": "10.0.0.5",
        "loopback.example.com": "127.0.0.1",
        "public.example.com": "93.184.216.34",
    }
    monkeypatch.setattr(socket, "getaddrinfo", _resolving(fake))
    subscription = WebhookSubscription(name="Mallory", url=url, events=EVERY_EVENT, created_at=timezone.now())
    with pytest.raises(ValidationError) as refusal:
        subscription.full_clean()
    assert "url" in refusal.value.message_dict


def test_production_accepts_https_to_a_public_address(db, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _resolving({"hooks.example.com": "93.184.216.34"}))
    subscription = WebhookSubscription(
        name="Practice system", url="https://hooks.example.com/in", events=EVERY_EVENT, created_at=timezone.now()
    )
    subscription.full_clean(exclude=["secret"])


def test_a_name_that_resolves_inside_after_it_was_saved_is_refused_at_delivery(dr_patel, monkeypatch, no_connections):
    monkeypatch.setattr(socket, "getaddrinfo", _resolving({"hooks.example.com": "93.184.216.34"}))
    subscription = WebhookSubscription(
        name="Practice system",
        url="https://hooks.example.com/in",
        events=EVERY_EVENT,
        secret=webhooks.new_secret(),
        created_at=timezone.now(),
    )
    subscription.full_clean()
    subscription.save()
    patient_books(make_slot(dr_patel, local(3, 10)))
    # The name now answers with an address inside (DNS rebinding).
    monkeypatch.setattr(socket, "getaddrinfo", _resolving({"hooks.example.com": "169.254.169.254"}))
    assert deliver().retrying == 1
    assert no_connections == []
    assert "private, loopback or link-local" in WebhookDelivery.objects.get().last_error


def test_http_to_loopback_is_allowed_only_in_debug(db, settings, receiver):
    hook = receiver()
    settings.DEBUG = False
    with pytest.raises(ValidationError):
        hook.subscription.full_clean()
    settings.DEBUG = True
    hook.subscription.full_clean()


def test_the_connection_goes_to_the_address_that_was_checked(receiver, dr_patel, monkeypatch):
    hook = receiver()
    port = hook.server.server_address[1]
    hook.subscription.url = f"http://receiver.test:{port}/hook"
    hook.subscription.save()
    patient_books(make_slot(dr_patel, local(3, 10)))
    fake = _resolving({"receiver.test": "127.0.0.1"})
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    assert deliver().sent == 1
    # Resolved once, when checked: the connection did not ask DNS again (whose answer could have changed).
    assert fake.calls.count("receiver.test") == 1
    assert hook.requests[0][0]["host"] == f"receiver.test:{port}"


def test_a_redirect_is_never_followed(receiver, dr_patel):
    inside = receiver()
    hook = receiver(answers=[302])
    hook.redirect_to = inside.url
    inside.subscription.delete()
    patient_books(make_slot(dr_patel, local(3, 10)))
    assert deliver().retrying == 1
    assert len(hook.requests) == 1 and inside.requests == []
    assert "redirect" in WebhookDelivery.objects.get().last_error


def test_a_call_back_request_from_the_contact_page_is_an_event(client, db):
    WebhookSubscription.objects.create(
        name="Practice system",
        url="https://hooks.example.com/x",
        events=[WebhookEvent.CALLBACK_REQUESTED],
        secret="whsec_AA==",
        created_at=timezone.now(),
    )
    client.post("/contact/", {"name": "Pat Ient", "phone": "07700 900123", "preferred_time": "", "message": ""})
    delivery = WebhookDelivery.objects.get()
    assert delivery.payload["type"] == "callback.requested"
    assert delivery.payload["data"] == {
        "callback_id": CallbackRequest.objects.get().pk,
        "created_at": CallbackRequest.objects.get().created_at.isoformat(),
    }
