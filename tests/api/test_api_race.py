"""A booking through the API racing a patient on the website for one time: one wins, the other is told it is
taken, and the database holds one live appointment (real threads, real PostgreSQL)."""

import json
import threading
from functools import partial

import pytest
from django.db import connections
from django.test import Client

from bookings.models import Appointment
from tests.api.conftest import bearer, booking_body
from tests.helpers import details_form, local, make_slot, pass_safety_check

ROUNDS = 5


def _at_once(*works):
    barrier = threading.Barrier(len(works))
    results = [None] * len(works)

    def run(index):
        try:
            barrier.wait(timeout=30)
            results[index] = works[index]()
        except Exception as exc:  # recorded, asserted below
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(works))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_the_api_and_a_patient_race_for_one_time_and_exactly_one_gets_it(dr_patel, make_key):
    _, raw = make_key("appointments:write", name="Partner site")
    for round_ in range(ROUNDS):
        slot = make_slot(dr_patel, local(3, 9 + round_))
        patient = Client(REMOTE_ADDR=f"192.0.2.{round_ + 1}")
        pass_safety_check(patient)
        form = details_form(patient, slot)
        system = Client()
        body = json.dumps(booking_body(slot.pk))

        api_answer, site_answer = _at_once(
            partial(system.post, "/api/v1/appointments", body, content_type="application/json", **bearer(raw)),
            partial(patient.post, "/book/details/", form),
        )

        outcomes = sorted([("api", api_answer.status_code), ("site", site_answer.status_code)])
        assert outcomes in ([("api", 201), ("site", 409)], [("api", 409), ("site", 302)]), outcomes
        if api_answer.status_code == 409:
            assert api_answer.json()["code"] == "slot-unavailable"
        assert Appointment.objects.live().filter(slot=slot).count() == 1
