"""The confirmation page after booking: the booking as it stands now, and a cookie a shared computer can forget."""

import pytest
from django.core import signing
from django.test import Client

from bookings.models import Appointment
from tests.helpers import details_form, local, make_slot, pass_safety_check

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_slot(dr_patel):
    return make_slot(dr_patel, local(3, 10))


def _text(response) -> str:
    return response.content.decode().replace("&#x27;", "'")


def _book(client, slot):
    pass_safety_check(client)
    form = details_form(client, slot)
    response = client.post("/book/details/", form)
    assert response["Location"] == "/book/confirmed/"
    return form, response


def _manage_path(client) -> str:
    return client.get("/book/confirmed/").context["manage_url"].removeprefix("http://testserver")


def test_reloading_the_confirmation_after_cancelling_says_so_and_offers_to_book_again(client, open_slot):
    _book(client, open_slot)
    client.post(_manage_path(client) + "cancel/", {"reason": ""})

    page = client.get("/book/confirmed/")

    assert page.status_code == 200
    text = _text(page)
    assert "This booking was cancelled" in text
    assert "You're booked in" not in text
    assert 'href="/book/"' in text and "Book another time" in text
    assert "Add to calendar" not in text


def test_a_replay_of_the_same_details_after_cancelling_shows_the_cancellation_not_booked_in(client, open_slot):
    pass_safety_check(client)
    form = details_form(client, open_slot)
    cookies_before = {name: morsel.value for name, morsel in client.cookies.items()}
    client.post("/book/details/", form)
    client.post(_manage_path(client) + "cancel/", {"reason": ""})

    # The same form sent again from the same browser: after Back, and from a request that left
    # with the cookies the browser had before the first answer (a late double click).
    late_click = Client()
    late_click.cookies.load(cookies_before)
    for browser in (client, late_click):
        if browser is client:
            pass_safety_check(browser)
        replay = browser.post("/book/details/", form)
        assert replay["Location"] == "/book/confirmed/"
        text = _text(browser.get("/book/confirmed/"))
        assert "This booking was cancelled" in text and "You're booked in" not in text
    assert Appointment.objects.get().status == Appointment.Status.CANCELLED


def test_reloading_the_confirmation_after_a_move_gives_the_new_time(client, open_slot, dr_okafor):
    later = make_slot(dr_okafor, local(4, 14))
    _book(client, open_slot)
    client.post(_manage_path(client) + "move/", {"slot": later.pk})

    text = _text(client.get("/book/confirmed/"))

    assert "Your consultation has moved" in text and "You're booked in" not in text
    assert dr_okafor.full_name in text
    assert f"at {later.starts_at.astimezone(local(0, 0).tzinfo):%H:%M}" in text


def test_the_confirmation_cookie_ends_with_the_browser_session_and_holds_no_manage_token(client, open_slot):
    _, booked = _book(client, open_slot)
    cookie = booked.cookies["booking_confirmed"]
    token = _manage_path(client).rstrip("/").rsplit("/", 1)[1]

    # A session cookie: no Max-Age or Expires, so closing the browser forgets it.
    assert cookie["max-age"] == "" and cookie["expires"] == ""
    assert cookie["httponly"] and cookie["path"] == "/book/"
    # Signed, not encrypted: anyone at the computer can read it, so it holds no token.
    assert token not in cookie.value
    held = signing.loads(cookie.value, salt="bookings.booking_confirmed")
    assert token not in str(held)
    assert list(held) == [str(Appointment.objects.get().pk)]


def test_forget_this_booking_here_clears_the_cookie_with_a_plain_form(client, open_slot):
    _book(client, open_slot)
    page = client.get("/book/confirmed/")
    # A form that works without JavaScript.
    assert '<form method="post" action="/book/confirmed/forget/"' in page.content.decode()
    assert b"Forget this booking here" in page.content

    # A link scanner or a GET forgets nothing.
    assert client.get("/book/confirmed/forget/")["Location"] == "/book/confirmed/"
    assert client.get("/book/confirmed/").status_code == 200

    forgotten = client.post("/book/confirmed/forget/")

    assert forgotten.status_code == 200
    assert forgotten.cookies["booking_confirmed"].value == ""
    assert "no-store" in forgotten["Cache-Control"]
    assert b"This browser has forgotten your booking" in forgotten.content
    assert client.get("/book/confirmed/")["Location"] == "/book/"
    assert client.get("/book/confirmed/consultation.ics").status_code == 404
    # The booking itself is untouched.
    assert Appointment.objects.get().status == Appointment.Status.BOOKED
