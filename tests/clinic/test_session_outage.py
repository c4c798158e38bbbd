import pytest
from django.contrib.sessions.models import Session
from django.db import OperationalError
from django.test import Client

from tests.staff_signin import verified_login


@pytest.mark.django_db
def test_a_database_lost_while_saving_the_session_is_a_503_not_a_400(monkeypatch, rita):
    client = Client(raise_request_exception=False)
    verified_login(client, rita)
    original_save = Session.save

    def database_gone(self, *args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(Session, "save", database_gone)
    # A signed-in receptionist's session is saved at the end of every request (its idle timeout).
    response = client.get("/staff/reception/")
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


@pytest.mark.django_db
@pytest.mark.parametrize("cookie", ['"abcdefgh\\000"', "abcdefghij\x00", "../../etc/passwd", "x" * 500])
def test_a_forged_session_cookie_is_no_session_not_a_server_error(cookie):
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = cookie
    response = client.get("/book/time/")
    assert response.status_code == 302  # no session: back to the start of the booking
    assert client.post("/book/", {}).status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["booking", "booking_confirmed"])
@pytest.mark.parametrize(
    "cookie", ['"abcdefgh\\000"', "abcdefghij\x00", "eyJzYWZldHkiOiIyMDI2LTExIn0:1vZ:forged", "é:ü:ß", "x" * 5000]
)
def test_a_forged_booking_flow_cookie_is_no_progress_not_a_server_error(name, cookie):
    client = Client(raise_request_exception=False)
    client.cookies[name] = cookie
    assert client.get("/book/time/")["Location"] == "/book/"  # back to the safety check
    assert client.get("/book/confirmed/")["Location"] == "/book/"
    assert client.get("/book/confirmed/consultation.ics").status_code == 404
