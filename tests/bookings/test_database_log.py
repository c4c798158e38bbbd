"""PostgreSQL's own log stays free of patients' details: normal refusals are not failing statements.

PostgreSQL copies a failing statement into its log with its values. A booking that loses a race,
a double click, a move to a time just taken: each is refused under the slot lock by reading, so
the INSERT (or UPDATE) that would fail on a unique constraint is never sent.
"""

import time
import uuid
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from bookings.models import Appointment
from bookings.services import PatientDetails, SlotUnavailable, appointment_book, appointment_move
from clinic.embedded_db import EmbeddedServer
from tests.helpers import details_form, local, make_slot, pass_safety_check, run_at_once

RACERS = 12


def _patient(index: int) -> dict:
    return {
        # Names are letters only (bookings.forms.clean_person_name): the index as a letter.
        "first_name": f"Wilhelmina{chr(ord('a') + index)}",
        "last_name": "Quarrington",
        "email": f"wilhelmina{index}.quarrington@example.org",
        "phone": f"07700 955{index:03d}",
    }


def _server_log() -> Path:
    settings_dict = connection.settings_dict
    if settings_dict["ENGINE"] != "clinic.embedded_backend":
        pytest.skip("Reads the embedded PostgreSQL server's log; DATABASE_URL points elsewhere.")
    return EmbeddedServer.for_pgdata(settings_dict["EMBEDDED_PGDATA"]).log_path


def _written_since(log: Path, offset: int) -> list[str]:
    # The server writes its log line by line as it goes; a moment lets the last lines land.
    time.sleep(0.5)
    with log.open("rb") as file:
        file.seek(offset)
        return file.read().decode("utf-8", "replace").splitlines()


@pytest.mark.django_db(transaction=True)
def test_races_double_clicks_and_moves_to_a_taken_time_leave_no_patient_data_in_the_database_log(rita, dr_patel):
    log = _server_log()
    offset = log.stat().st_size
    now = timezone.now()

    # Twelve patients confirm the same time at once, through the site.
    raced = make_slot(dr_patel, local(3, 10))
    clients, forms = [], []
    for index in range(RACERS):
        client = Client(REMOTE_ADDR=f"192.0.2.{index + 1}")
        pass_safety_check(client)
        forms.append(details_form(client, raced) | _patient(index))
        clients.append(client)
    responses = run_at_once(RACERS, lambda i: clients[i].post("/book/details/", forms[i]))
    assert sorted(response.status_code for response in responses) == [302] + [409] * (RACERS - 1)

    # A double click racing itself, then the same form sent again later.
    clicked = make_slot(dr_patel, local(3, 11))
    key = uuid.uuid4()
    double_clicker = _patient(RACERS)

    def click(index):
        return appointment_book(
            slot_id=clicked.pk,
            patient=PatientDetails(double_clicker["first_name"], "Quarrington", double_clicker["phone"]),
            now=now,
            submission_key=key,
        )

    clicks = run_at_once(8, click)
    assert sum(1 for result in clicks if not result.replayed) == 1
    assert click(0).replayed

    # Reception books a caller into a time a patient has just taken.
    caller = _patient(RACERS + 1)
    with pytest.raises(SlotUnavailable):
        appointment_book(
            slot_id=raced.pk,
            patient=PatientDetails(caller["first_name"], "Quarrington", caller["phone"], caller["email"]),
            now=now,
            booked_by=rita,
        )
    # A patient moves to a time that is taken.
    mover = appointment_book(
        slot_id=make_slot(dr_patel, local(3, 12)).pk,
        patient=PatientDetails("Wilhelminazz", "Quarrington", "07700 955999", "wilhelmina99@example.org"),
        now=now,
    ).appointment
    with pytest.raises(SlotUnavailable):
        appointment_move(appointment=mover, new_slot_id=clicked.pk, now=now)

    assert Appointment.objects.live().count() == 3
    lines = _written_since(log, offset)
    details = [value for index in range(RACERS + 2) for value in _patient(index).values()] + ["Quarrington"]
    leaks = [line for line in lines if any(value in line for value in details)]
    assert leaks == [], leaks[:5]
    failed_inserts = [line for line in lines if "STATEMENT:" in line and "bookings_appointment" in line]
    assert failed_inserts == [], failed_inserts[:5]
    # Not even the error itself: a refusal in normal use is no failing statement at all.
    violations = [line for line in lines if "violates unique constraint" in line]
    assert violations == [], violations[:5]


@pytest.mark.django_db(transaction=True)
def test_any_practitioner_patients_racing_for_one_time_leave_no_patient_data_in_the_database_log(dr_patel, dr_okafor):
    from bookings.forms import start_time_value

    log = _server_log()
    offset = log.stat().st_size
    starts_at = local(3, 14)
    make_slot(dr_patel, starts_at), make_slot(dr_okafor, starts_at)
    clients, forms = [], []
    for index in range(RACERS):
        client = Client(REMOTE_ADDR=f"192.0.2.{index + 1}")
        pass_safety_check(client)
        page = client.get(f"/book/details/?at={start_time_value(starts_at)}")
        key = str(page.context["form"].initial["submission_key"])
        forms.append(
            {"at": start_time_value(starts_at), "submission_key": key, "consent": "on", "website": ""}
            | {"note": ""}
            | _patient(index)
        )
        clients.append(client)

    responses = run_at_once(RACERS, lambda i: clients[i].post("/book/details/", forms[i]))

    assert sorted(response.status_code for response in responses) == [302] * 2 + [409] * (RACERS - 2)
    lines = _written_since(log, offset)
    details = [value for index in range(RACERS) for value in _patient(index).values()] + ["Quarrington"]
    assert [line for line in lines if any(value in line for value in details)] == []
    assert [line for line in lines if "violates unique constraint" in line] == []
