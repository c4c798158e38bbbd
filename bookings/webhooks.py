"""Webhooks: other systems told of changes, signed as the Standard Webhooks specification says.

1. A change (bookings.services._record_event, a call-back request) records one WebhookDelivery per
   subscription that asked for its event, in the change's own transaction: a rolled-back booking
   sends nothing, and a committed one cannot be forgotten.
2. The worker (`manage.py send_messages`, beside the e-mails) claims due deliveries and POSTs each,
   outside any transaction, with the e-mails' retry schedule (notifications.retry_delay). A delivery
   keeps its `message_id` (the webhook-id header) on every retry, so the receiver can drop repeats.
3. A subscription that fails PAUSE_AFTER_FAILURES times in a row is paused and shown to staff.

Server-side request forgery: the URL is checked when saved and again at every delivery, after DNS
resolution, and the connection goes to the address that was checked (a DNS answer that changes between
check and connect cannot reach the inside). Only https to public (global) addresses; http or https to
loopback only when DEBUG is on. Redirects are never followed, and the timeout is short.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from bookings.models import (
    Appointment,
    AppointmentEvent,
    CallbackRequest,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from bookings.notifications import retry_delay
from clinic.prepared import PreparedQuery

logger = logging.getLogger("bookings.webhooks")

TIMEOUT_SECONDS = 5
LEASE = timedelta(minutes=2)
Status = WebhookDelivery.Status

_EVENT_OF_ACTION = {
    AppointmentEvent.Action.BOOKED: WebhookEvent.APPOINTMENT_BOOKED,
    AppointmentEvent.Action.MOVED: WebhookEvent.APPOINTMENT_MOVED,
    AppointmentEvent.Action.CANCELLED: WebhookEvent.APPOINTMENT_CANCELLED,
    AppointmentEvent.Action.STATUS: WebhookEvent.APPOINTMENT_STATUS_CHANGED,
}


def new_secret() -> str:
    """A Standard Webhooks secret: "whsec_" and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: "v1," and the base64 HMAC-SHA256 of "id.timestamp.body"."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


# -- Recording (in the change's transaction) -------------------------------------------------------


def appointment_payload(appointment: Appointment, *, with_contact: bool) -> dict:
    """Ids, times, practitioner and status; contact details only when the subscription may have them.
    Never the note or the safety answers."""
    slot = appointment.slot
    data = {
        "appointment_id": appointment.pk,
        "status": appointment.status,
        "source": appointment.source,
        "starts_at": slot.starts_at.isoformat(),
        "ends_at": slot.ends_at.isoformat(),
        "practitioner": {"id": slot.practitioner_id, "name": slot.practitioner.full_name},
        "sequence": appointment.sequence,
    }
    if with_contact:
        data["patient"] = {
            "first_name": appointment.first_name,
            "last_name": appointment.last_name,
            "email": appointment.email,
            "phone": appointment.phone,
        }
    return data


class Receiver(NamedTuple):
    """What recording a delivery needs of a subscription receiving the event."""

    pk: int
    include_contact_details: bool


# Read in every change's transaction (a booking's too): prepared once per process, one statement per event.
_RECEIVING = {
    event: PreparedQuery(
        lambda event=event: WebhookSubscription.objects.receiving(event).values_list("pk", "include_contact_details"),
        samples={},
    )
    for event in WebhookEvent.values
}


def receiving_statement(action: str) -> tuple[str, list]:
    """The read of the subscriptions receiving ACTION's event, as SQL and parameters, for a caller to send with
    statements of its own (its rows make `Receiver`s)."""
    prepared = _RECEIVING[_EVENT_OF_ACTION[action]]
    return prepared.prepare(), prepared.params({})


def _record(event: str, *, now: datetime, data_for, receivers: list[Receiver] | None = None) -> None:
    """Record a delivery to each subscription receiving EVENT (RECEIVERS, if the caller has read them already)."""
    subscriptions = receivers if receivers is not None else [Receiver(*row) for row in _RECEIVING[event].rows()]
    if not subscriptions:
        return
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            subscription_id=subscription.pk,
            message_id=f"msg_{uuid.uuid4().hex}",
            event=event,
            payload={"type": event, "timestamp": now.isoformat(), "data": data_for(subscription)},
            created_at=now,
            next_attempt_at=now,
        )
        for subscription in subscriptions
    )


def appointment_changed(
    appointment: Appointment, *, action: str, now: datetime, receivers: list[Receiver] | None = None
) -> None:
    """Record the deliveries for an appointment change; call inside the change's transaction.

    RECEIVERS: the subscriptions receiving the change's event, if the caller read them in a statement of its own
    (`receiving_statement`; a booking does, with its INSERTs).
    """
    event = _EVENT_OF_ACTION[action]
    _record(
        event,
        now=now,
        receivers=receivers,
        data_for=lambda subscription: appointment_payload(
            appointment, with_contact=subscription.include_contact_details
        ),
    )


def callback_requested(callback: CallbackRequest, *, now: datetime) -> None:
    def data_for(subscription):
        data = {"callback_id": callback.pk, "created_at": callback.created_at.isoformat()}
        if subscription.include_contact_details:
            data.update(name=callback.name, phone=callback.phone, preferred_time=callback.preferred_time)
        return data

    _record(WebhookEvent.CALLBACK_REQUESTED, now=now, data_for=data_for)


# -- Where a webhook may go --------------------------------------------------------------------------


class UnsafeWebhookURL(Exception):
    """The URL may not be called: its words say why (shown in the admin, recorded on the delivery)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str


def check_url(url: str) -> Target:
    """Where URL may be called: its scheme, host and the one checked address to connect to.

    Raises UnsafeWebhookURL for anything but https to public addresses (or, with DEBUG on, http or
    https to loopback). Every address the name resolves to must pass: a name that also resolves inside
    is refused, not just skipped.
    """
    parts = urlsplit(url or "")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeWebhookURL("Enter an https:// address.")
    if parts.username or parts.password:
        raise UnsafeWebhookURL("Leave the user name and password out of the address.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeWebhookURL("The port in the address is not a number from 1 to 65535.") from None
    try:
        answers = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeWebhookURL("The address's name could not be found (DNS).") from None
    addresses = [ipaddress.ip_address(answer[4][0].split("%")[0]) for answer in answers]
    if not addresses:
        raise UnsafeWebhookURL("The address's name could not be found (DNS).")
    all_loopback = all(address.is_loopback for address in addresses)
    if settings.DEBUG and all_loopback:
        # Development only: a receiver on this machine.
        pass
    elif parts.scheme != "https":
        raise UnsafeWebhookURL("Only https:// addresses may receive webhooks.")
    elif not all(address.is_global for address in addresses):
        raise UnsafeWebhookURL(
            "This address leads to a private, loopback or link-local network: webhooks go to public addresses only."
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, parts.hostname, port, path, str(addresses[0]))


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the checked address, with the certificate checked against the name in the URL."""

    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def post(url: str, *, body: bytes, headers: dict) -> int:
    """POST BODY to URL, checked as `check_url` says, to the checked address. The status; no redirect is followed."""
    target = check_url(url)
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, TIMEOUT_SECONDS)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)
        return response.status
    finally:
        connection.close()


# -- Sending (the worker) ---------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def claim_due_deliveries(*, now: datetime, limit: int) -> list[WebhookDelivery]:
    """Claim due deliveries of subscriptions that are on, in one short transaction (SKIP LOCKED)."""
    due = Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(status=Status.SENDING, lease_expires_at__lte=now)
    with transaction.atomic():
        pks = list(
            WebhookDelivery.objects.filter(due, subscription__is_active=True, subscription__paused_at__isnull=True)
            .select_for_update(of=("self",), skip_locked=True)
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        WebhookDelivery.objects.filter(pk__in=pks).update(
            status=Status.SENDING, attempts=F("attempts") + 1, lease_expires_at=now + LEASE
        )
    return list(WebhookDelivery.objects.filter(pk__in=pks).select_related("subscription").order_by("pk"))


def send_due_deliveries(*, now: datetime, limit: int = 20) -> DeliveryReport:
    """Send each claimed delivery once for this attempt; record the result at once."""
    report = DeliveryReport()
    deliveries = claim_due_deliveries(now=now, limit=limit)
    report.claimed = len(deliveries)
    for delivery in deliveries:
        subscription = delivery.subscription
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "clinic-webhooks/1",
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(
                secret=subscription.secret, message_id=delivery.message_id, timestamp=timestamp, body=body
            ),
        }
        try:
            status = post(subscription.url, body=body, headers=headers)
            error = "" if 200 <= status < 300 else f"The receiver answered {status}."
            if 300 <= status < 400:
                error = f"The receiver answered {status} (a redirect, which is never followed)."
        except UnsafeWebhookURL as refusal:
            error = f"Refused: {refusal}"
        except (OSError, http.client.HTTPException) as exc:
            error = f"Could not deliver: {type(exc).__name__}"
        _record_result(delivery, now=now, error=error, report=report)
    return report


def _record_result(delivery: WebhookDelivery, *, now: datetime, error: str, report: DeliveryReport) -> None:
    claimed = WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.SENDING, attempts=delivery.attempts)
    subscription = WebhookSubscription.objects.filter(pk=delivery.subscription_id)
    if not error:
        claimed.update(status=Status.SENT, sent_at=now, lease_expires_at=None, last_error="")
        subscription.update(failures_in_a_row=0, last_error="")
        report.sent += 1
        logger.info("Webhook %s (%s) delivered", delivery.message_id, delivery.event)
        return
    given_up = delivery.attempts >= settings.MESSAGE_MAX_ATTEMPTS
    if given_up:
        claimed.update(status=Status.FAILED, last_error=error[:300], lease_expires_at=None)
        report.failed += 1
    else:
        claimed.update(
            status=Status.PENDING,
            last_error=error[:300],
            lease_expires_at=None,
            next_attempt_at=now + retry_delay(delivery.attempts),
        )
        report.retrying += 1
    subscription.update(failures_in_a_row=F("failures_in_a_row") + 1, last_error=error[:300])
    subscription.filter(failures_in_a_row__gte=WebhookSubscription.PAUSE_AFTER_FAILURES, paused_at__isnull=True).update(
        paused_at=now
    )
    logger.warning(
        "Webhook %s (%s) attempt %s failed: %s", delivery.message_id, delivery.event, delivery.attempts, error
    )
