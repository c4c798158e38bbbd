"""Keys and webhook subscriptions are made and revoked in the admin; a key or secret is shown once."""

import re
import socket

import pytest
from django.contrib.auth import get_user_model

from api.models import ApiKey
from bookings.models import WebhookSubscription
from tests.api.conftest import bearer
from tests.staff_signin import verified_login


@pytest.fixture
def ada(db, client):
    admin = get_user_model().objects.create_superuser("ada", "ada@example.org", "correct horse battery")
    verified_login(client, admin)
    return admin


def test_a_key_made_in_the_admin_is_shown_once_stored_hashed_and_revoked_there(client, ada):
    response = client.post(
        "/admin/api/apikey/add/",
        {"name": "Practice system", "scopes": ["appointments:read"], "revoked_at_0": "", "revoked_at_1": ""},
        follow=True,
    )
    raw = re.search(r"clk_[\w-]+", response.content.decode()).group(0)
    key = ApiKey.objects.get()
    assert raw not in str(ApiKey.objects.values().get())
    assert key.scopes == ["appointments:read"]
    assert raw not in client.get(f"/admin/api/apikey/{key.pk}/change/").content.decode()
    assert raw not in client.get("/admin/api/apikey/").content.decode()
    other = client.__class__()
    assert other.get("/api/v1/appointments?day=2030-01-01", **bearer(raw)).status_code == 200

    client.post("/admin/api/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert other.get("/api/v1/appointments?day=2030-01-01", **bearer(raw)).status_code == 401


def test_a_subscription_made_in_the_admin_shows_its_secret_once_and_refuses_the_inside(client, ada, monkeypatch):
    real = socket.getaddrinfo

    def fake_dns(host, port, *args, **kwargs):
        if host == "hooks.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
    form = {"name": "Practice system", "events": ["appointment.booked"], "paused_at_0": "", "paused_at_1": ""}
    refused = client.post("/admin/bookings/webhooksubscription/add/", form | {"url": "https://10.0.0.1/hook"})
    assert refused.status_code == 200 and "public addresses only" in refused.content.decode()
    assert not WebhookSubscription.objects.exists()
    response = client.post(
        "/admin/bookings/webhooksubscription/add/", form | {"url": "https://hooks.example.com/hook"}, follow=True
    )
    subscription = WebhookSubscription.objects.get()
    assert subscription.secret.startswith("whsec_") and subscription.secret in response.content.decode()
    assert (
        subscription.secret
        not in client.get(f"/admin/bookings/webhooksubscription/{subscription.pk}/change/").content.decode()
    )
