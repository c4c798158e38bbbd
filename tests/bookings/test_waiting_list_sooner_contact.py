"""Waiting for a sooner time from the manage link joins with the booking's own address and phone.

Found by hand: the "something sooner" form had an E-mail field. Typing someone else's address answered 409
"already on the waiting list" when that address waited (the public join form never tells), and otherwise joined
that address at once, unconfirmed, to be offered times whose link moved this booking.
"""

import pytest
from django.urls import reverse

from bookings.models import Appointment, WaitingListEntry, hash_token, new_token
from tests.helpers import days_ahead, local, make_slot, patient_books, waiting, works_on_weekdays

pytestmark = pytest.mark.django_db


def sooner_form(**changes) -> dict:
    return {
        "first_name": "Wanda",
        "last_name": "Waits",
        "email": "mallory@example.org",
        "phone": "07700 900999",
        "practitioner": "",
        "weekdays": ["0", "1", "2", "3", "4"],
        "parts_of_day": ["morning", "afternoon"],
        "consent": "on",
        "wait_until": days_ahead(20).isoformat(),
        **changes,
    }


@pytest.fixture
def booking(dr_patel):
    works_on_weekdays(dr_patel)
    return patient_books(make_slot(dr_patel, local(9, 10)), email="wanda@example.org", phone="07700 900123")


def sooner_link(booking) -> str:
    token = new_token()
    Appointment.objects.filter(pk=booking.pk).update(manage_token_hash=hash_token(token))
    return reverse("manage_sooner", args=[token])


def test_a_typed_address_and_phone_are_ignored_and_the_entry_has_the_bookings_own(client, booking):
    response = client.post(sooner_link(booking), sooner_form())

    assert response.status_code == 302
    entry = WaitingListEntry.objects.get()
    assert (entry.email, entry.phone, entry.appointment_id) == ("wanda@example.org", "07700 900123", booking.pk)


def test_a_typed_address_already_waiting_is_not_revealed(client, booking):
    waiting("mallory@example.org", first_name="Mallory")

    response = client.post(sooner_link(booking), sooner_form())

    assert response.status_code == 302
    assert "already on the waiting list" not in response.content.decode()
    assert WaitingListEntry.objects.filter(appointment=booking, email="wanda@example.org").exists()


def test_the_form_shows_the_bookings_address_and_no_field_to_type_another(client, booking):
    html = client.get(sooner_link(booking)).content.decode()

    assert 'name="email"' not in html
    assert 'name="phone"' not in html
    assert "wanda@example.org" in html


def test_a_booking_without_an_e_mail_address_cannot_wait_and_is_told_to_call(client, booking):
    Appointment.objects.filter(pk=booking.pk).update(email="")
    link = sooner_link(booking)

    response = client.post(link, sooner_form())

    assert response.status_code == 200
    assert "this booking has no e-mail address" in response.content.decode()
    assert not WaitingListEntry.objects.exists()
