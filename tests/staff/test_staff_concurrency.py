"""Real threads, real PostgreSQL: Rita on the phone and a patient online want the same slot at once."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bookings.models import Appointment
from bookings.services import BookingResult, PatientDetails, SlotUnavailable, appointment_book
from tests.helpers import SAFE_ANSWERS, days_ahead, local, make_slot
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db(transaction=True)
ROUNDS = 5


def _run_at_once(*work):
    barrier = threading.Barrier(len(work))
    results = [None] * len(work)

    def run(index):
        try:
            barrier.wait(timeout=30)
            results[index] = work[index]()
        except Exception as exc:  # recorded, asserted by the caller
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_rita_and_a_patient_book_the_same_slot_at_once_and_exactly_one_of_them_gets_it(rita, dr_patel):
    rita_client = Client()
    verified_login(rita_client, rita)
    winners = []
    for round_number in range(ROUNDS):
        slot = make_slot(dr_patel, local(days_ahead(2), 9) + timedelta(minutes=20 * round_number))
        caller = {
            "slot": slot.pk,
            "submission_key": f"5f0c6a52-96c5-4a8e-8a55-0c1f8d1b8e0{round_number}",
            "first_name": "Grace",
            "last_name": "Hopper",
            "phone": "07700 900456",
            **SAFE_ANSWERS,
            "privacy_notice_told": "on",
        }

        phone, online = _run_at_once(
            lambda caller=caller: rita_client.post(reverse("reception_book"), caller),
            lambda slot=slot: appointment_book(
                slot_id=slot.pk, patient=PatientDetails("Ada", "Lovelace", "07700 900123"), now=timezone.now()
            ),
        )

        [appointment] = Appointment.objects.filter(slot=slot)
        if appointment.first_name == "Grace":
            assert phone.status_code == 302 and isinstance(online, SlotUnavailable)
            winners.append("rita")
        else:
            assert phone.status_code == 409, phone
            assert b"Nothing was booked." in phone.content
            assert isinstance(online, BookingResult) and online.appointment == appointment, online
            winners.append("patient")
    # Every round has exactly one winner, and nobody was booked twice or anywhere else.
    assert Appointment.objects.count() == ROUNDS, winners
