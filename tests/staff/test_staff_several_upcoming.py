"""Reception sees a patient with more than one upcoming free consultation; the public pages never tell."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.models import Appointment
from bookings.services import PatientDetails, appointment_book, appointment_cancel
from tests.helpers import local, make_slot
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


def _book(slot, *, email="pat@example.org", phone="07700 900123", first="Pat"):
    return appointment_book(
        slot_id=slot.pk, patient=PatientDetails(first, "Example", phone, email), now=timezone.now()
    ).appointment


def test_the_day_view_flags_a_patient_who_booked_twice_by_email_in_any_case(client, rita, dr_patel, dr_okafor):
    first = _book(make_slot(dr_patel, local(3, 10)))
    _book(make_slot(dr_okafor, local(5, 11)), email="PAT@Example.org", phone="07700 900999")
    other = _book(make_slot(dr_okafor, local(3, 10)), email="sam@example.org", phone="07700 900555", first="Sam")
    verified_login(client, rita)
    response = client.get(reverse("reception_day"), {"date": local(3, 10).date().isoformat()})
    content = response.content.decode()
    assert content.count("2+ upcoming") == 1
    cells = {a.pk: a.upcoming_for_patient for a in Appointment.objects.with_upcoming_for_patient(now=timezone.now())}
    assert cells[first.pk] == 2 and cells[other.pk] == 1


def test_the_same_phone_written_differently_is_the_same_patient(rita, dr_patel):
    _book(make_slot(dr_patel, local(3, 10)), email="", phone="07700 900123")
    _book(make_slot(dr_patel, local(4, 10)), email="", phone="07700900123")
    counts = set(
        Appointment.objects.with_upcoming_for_patient(now=timezone.now()).values_list("upcoming_for_patient", flat=True)
    )
    assert counts == {2}


def test_a_cancelled_or_past_booking_does_not_count(client, rita, dr_patel):
    kept = _book(make_slot(dr_patel, local(3, 10)))
    cancelled = _book(make_slot(dr_patel, local(4, 10)))
    appointment_cancel(appointment=cancelled, now=timezone.now(), reason="", actor=rita)
    verified_login(client, rita)
    page = client.get(reverse("reception_appointment", args=[kept.pk]))
    assert b"more than one upcoming free consultation" not in page.content
    _book(make_slot(dr_patel, local(6, 10)))
    page = client.get(reverse("reception_appointment", args=[kept.pk]))
    assert b"more than one upcoming free consultation" in page.content


def test_a_household_sharing_a_phone_is_not_one_patient(client, dr_patel, dr_okafor):
    husband = _book(make_slot(dr_patel, local(3, 10)), email="", phone="020 7946 0001", first="Tom")
    earlier_slot = make_slot(dr_okafor, local(-2, 10))
    appointment_book(
        slot_id=earlier_slot.pk,
        patient=PatientDetails("Ann", "Example", "020 7946 0001", ""),
        now=earlier_slot.starts_at - timedelta(days=3),
    )
    verified_login(client, dr_patel.user)
    page = client.get(reverse("practitioner_appointment", args=[husband.pk]))
    assert page.status_code == 200
    assert list(page.context["earlier"]) == []
    counts = Appointment.objects.with_upcoming_for_patient(now=timezone.now()).get(pk=husband.pk)
    assert counts.upcoming_for_patient == 1


def test_the_appointment_page_links_to_the_patients_bookings_without_their_details_in_the_url(client, rita, dr_patel):
    first = _book(make_slot(dr_patel, local(3, 10)))
    second = _book(make_slot(dr_patel, local(4, 10)))
    verified_login(client, rita)
    page = client.get(reverse("reception_appointment", args=[first.pk]))
    link = f"{reverse('reception_search')}?appointment={first.pk}"
    assert link.encode() in page.content
    assert b"search/?q=" not in page.content
    results = client.get(link).context["results"]
    assert {appointment.pk for appointment in results} == {first.pk, second.pk}
