"""Dr Patel's own pages: her day, what's coming, and one appointment in full. Dr Okafor's are not hers."""

from datetime import timedelta

import pytest
from django.urls import reverse

from bookings.models import Appointment
from tests.helpers import (
    appointment_in_the_past_or_today,
    days_ahead,
    local,
    make_slot,
    patient_books,
    today,
)
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada_today(dr_patel):
    return appointment_in_the_past_or_today(
        make_slot(dr_patel, local(today(), 0, 20)),
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.org",
        note="Pain in the left hip when running.",
        safety_answers={
            "version": "2026-11",
            "answers": [{"key": "trauma", "question": "Did the pain start after a fall?", "answer": "no"}],
        },
    )


def test_dr_patel_sees_her_appointments_of_today_and_not_dr_okafors(client, dr_patel, dr_okafor, ada_today):
    appointment_in_the_past_or_today(make_slot(dr_okafor, local(today(), 0, 20)), first_name="Bob", last_name="Other")
    verified_login(client, dr_patel.user)

    response = client.get(reverse("practitioner_day"))

    assert [appointment.pk for appointment in response.context["appointments"]] == [ada_today.pk]
    assert "Ada Lovelace" in response.content.decode()
    assert "Bob Other" not in response.content.decode()


def test_dr_patel_sees_her_upcoming_appointments_in_order(client, dr_patel, dr_okafor):
    later = patient_books(make_slot(dr_patel, local(days_ahead(5), 10)), first_name="Later")
    sooner = patient_books(make_slot(dr_patel, local(days_ahead(2), 10)), first_name="Sooner")
    patient_books(make_slot(dr_okafor, local(days_ahead(3), 10)), first_name="Okafors")
    cancelled = patient_books(make_slot(dr_patel, local(days_ahead(4), 10)), first_name="Cancelled")
    Appointment.objects.filter(pk=cancelled.pk).update(status="cancelled", cancelled_at=cancelled.created_at)
    verified_login(client, dr_patel.user)

    response = client.get(reverse("practitioner_upcoming"))

    assert [appointment.pk for appointment in response.context["appointments"]] == [sooner.pk, later.pk]


def test_dr_patel_opens_an_appointment_with_contact_details_note_safety_answers_source_and_earlier_visits(
    client, dr_patel, dr_okafor, ada_today
):
    earlier = appointment_in_the_past_or_today(
        make_slot(dr_okafor, local(today() - timedelta(days=40), 10)), first_name="Ada", last_name="Lovelace"
    )
    verified_login(client, dr_patel.user)

    response = client.get(reverse("practitioner_appointment", args=[ada_today.pk]))

    html = response.content.decode()
    assert "07700 900123" in html and "ada@example.org" in html
    assert "Pain in the left hip when running." in html
    assert "Did the pain start after a fall?" in html
    assert "Online" in html
    assert [visit.pk for visit in response.context["earlier"]] == [earlier.pk]
    # An earlier visit with Dr Okafor is named, but is not a link into his appointments.
    assert reverse("practitioner_appointment", args=[earlier.pk]) not in html


def test_dr_okafor_gets_404_for_dr_patels_appointment(client, dr_okafor, ada_today):
    verified_login(client, dr_okafor.user)

    assert client.get(reverse("practitioner_appointment", args=[ada_today.pk])).status_code == 404


def test_rita_cannot_use_the_practitioners_pages(client, rita, ada_today):
    verified_login(client, rita)

    assert client.get(reverse("practitioner_appointment", args=[ada_today.pk])).status_code == 403
