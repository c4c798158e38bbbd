"""Dr Patel's private calendar feed: her appointments as "Free consultation" and initials, nothing more."""

import pytest
from django.urls import reverse
from icalendar import Calendar

from bookings.models import Appointment, Practitioner
from tests.helpers import days_ahead, local, make_slot, patient_books
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


def _new_feed_url(client, practitioner) -> str:
    verified_login(client, practitioner.user)
    response = client.post(reverse("practitioner_calendar_reset"), follow=True)
    return response.context["new_feed_url"]


def test_dr_patel_makes_a_feed_url_that_is_shown_once(client, dr_patel):
    url = _new_feed_url(client, dr_patel)

    assert "/calendar-feed/" in url and url.endswith(".ics")
    assert client.get(reverse("practitioner_calendar")).context["new_feed_url"] is None
    # Only the hash is kept.
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    assert token not in Practitioner.objects.get(pk=dr_patel.pk).calendar_token_hash


def test_the_feed_shows_only_free_consultation_and_initials_of_her_live_appointments(client, dr_patel, dr_okafor):
    patient_books(
        make_slot(dr_patel, local(days_ahead(2), 10)), first_name="Ada", last_name="Lovelace", note="Secret knee"
    )
    cancelled = patient_books(make_slot(dr_patel, local(days_ahead(3), 10)), first_name="Carl")
    Appointment.objects.filter(pk=cancelled.pk).update(status="cancelled", cancelled_at=cancelled.created_at)
    patient_books(make_slot(dr_okafor, local(days_ahead(2), 11)), first_name="Bob", last_name="Other")
    url = _new_feed_url(client, dr_patel)
    client.logout()

    response = client.get(url)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert "no-store" in response["Cache-Control"]
    events = Calendar.from_ical(response.content).walk("VEVENT")
    assert [str(event["SUMMARY"]) for event in events] == ["Free consultation - AL"]
    body = response.content.decode()
    for private in ["Lovelace", "Secret knee", "07700", "pat@example.org", "Bob", "Carl"]:
        assert private not in body


def test_resetting_the_token_kills_the_old_url(client, dr_patel):
    old = _new_feed_url(client, dr_patel)
    new = _new_feed_url(client, dr_patel)

    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200


@pytest.mark.parametrize("leaves", ["practitioner", "account"])
def test_the_feed_stops_when_a_practitioner_leaves(client, dr_patel, leaves):
    from urllib.parse import urlparse

    path = urlparse(_new_feed_url(client, dr_patel)).path
    client.logout()
    assert client.get(path).status_code == 200
    if leaves == "practitioner":
        Practitioner.objects.filter(pk=dr_patel.pk).update(is_active=False)
    else:
        type(dr_patel.user).objects.filter(pk=dr_patel.user.pk).update(is_active=False)
    assert client.get(path).status_code == 404
