import pytest
from django.contrib.sessions.models import Session
from django.db import OperationalError
from django.test import Client


@pytest.mark.django_db
def test_a_database_lost_while_saving_the_session_is_a_503_not_a_400(monkeypatch):
    client = Client(raise_request_exception=False)
    from tests.bookings.booking_helpers import SAFE_ANSWERS

    assert client.post("/book/", SAFE_ANSWERS).status_code == 302  # a session with the answers in it
    original_save = Session.save

    def database_gone(self, *args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(Session, "save", database_gone)
    response = client.get("/book/time/")
    monkeypatch.setattr(Session, "save", original_save)
    assert response.status_code == 503
    assert response["Retry-After"]
    assert b"back in a moment" in response.content


@pytest.mark.django_db
def test_healthz_asks_to_retry_when_the_database_is_down(client, monkeypatch):
    from django.db import connection

    def broken_cursor(*args, **kwargs):
        raise OperationalError("could not connect")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
