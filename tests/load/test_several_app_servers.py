"""Several app servers, one truth: two gunicorn instances, 16 patients racing for each of 50 slots.

The same harness, pointed at a throwaway database without the constraint and at servers whose
own settings (tests/load/unsafe_settings.py) swap the slot lock for a naive check-then-insert,
must find double bookings: that proves it can see them.
"""

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.load.conftest import (
    JUST_TAKEN,
    Patient,
    double_booked_slots,
    production_env,
    report,
    run_at_once,
    seed_schedule,
)

pytestmark = pytest.mark.slow

ROUNDS = 50
PATIENTS_PER_SLOT = 16
# Enough to see double bookings many times over (a first run found them in 46 of 50 slots), in a fraction of the time.
CONTROL_ROUNDS = 15


@dataclass
class RaceResult:
    rounds: int = 0
    attempts: int = 0
    statuses: Counter = field(default_factory=Counter)
    winners_per_round: list[int] = field(default_factory=list)
    losers_without_just_taken: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def race_for_slots(servers, slot_ids: list[int]) -> RaceResult:
    """For each slot: every patient passes the safety check and opens the details form (untimed),
    then all post the booking at the same moment, half of them to each app server.

    A patient prepares on one instance and books on the other: the flow cookie is signed with the secret both share.
    """
    patients = [Patient(port=servers[i % len(servers)].port) for i in range(PATIENTS_PER_SLOT)]
    result = RaceResult()
    started = time.monotonic()
    for slot_id in slot_ids:
        barrier = threading.Barrier(PATIENTS_PER_SLOT)

        def prepare_then_book(index, slot_id=slot_id, barrier=barrier):
            patient = patients[index]
            # A booking ends the patient's journey (its flow cookie is deleted): a winner starts again.
            if not patient.passed_safety_check:
                patient.pass_safety_check()
            form = patient.details_form(slot_id) | {"first_name": f"Patient {chr(ord('A') + index % 26)}"}
            barrier.wait(timeout=60)
            answer = patient.book(form, port=servers[(index + 1) % len(servers)].port)
            patient.passed_safety_check = answer.status != 302
            return answer

        answers = run_at_once(PATIENTS_PER_SLOT, prepare_then_book)
        result.rounds += 1
        winners = 0
        for answer in answers:
            if isinstance(answer, Exception):
                result.failures.append(f"slot {slot_id}: {answer!r}")
                continue
            result.attempts += 1
            result.statuses[answer.status] += 1
            if answer.status == 302 and answer.headers["Location"] == "/book/confirmed/":
                winners += 1
            elif answer.status != 409 or JUST_TAKEN not in answer.body:
                result.losers_without_just_taken += 1
        result.winners_per_round.append(winners)
    result.seconds = time.monotonic() - started
    return result


def test_two_app_servers_book_each_slot_exactly_once_and_a_control_without_protection_double_books(
    database_server, gunicorns, capsys
):
    setup_started = time.monotonic()
    protected_url = database_server.create_database("load_protected")
    slots = seed_schedule(protected_url, practitioners=2, slots=ROUNDS)
    # The control gets a copy (same slots), named so that its unsafe settings accept it; then the
    # backstop constraint goes.
    control_url = database_server.create_database("load_unsafe_control", template="load_protected")
    database_server.sql(
        "load_unsafe_control",
        "ALTER TABLE bookings_appointment DROP CONSTRAINT IF EXISTS appointment_one_live_per_slot;"
        " DROP INDEX IF EXISTS appointment_one_live_per_slot",
    )
    setup_seconds = time.monotonic() - setup_started

    env = production_env(protected_url)
    servers = [gunicorns(env, "protected-a"), gunicorns(env, "protected-b")]
    log_offset = database_server.server.log_path.stat().st_size
    protected = race_for_slots(servers, slots)
    for server in servers:
        server.stop()
    # 750 losers refused: none of them by a failing statement, which PostgreSQL would log with its values.
    with database_server.server.log_path.open("rb") as log:
        log.seek(log_offset)
        protected_log_errors = [line for line in log.read().decode("utf-8", "replace").splitlines() if "ERROR" in line]
    protected_doubles = double_booked_slots(database_server, "load_protected")
    unbooked = database_server.sql(
        "load_protected",
        "SELECT count(*) FROM bookings_slot s WHERE NOT EXISTS"
        " (SELECT 1 FROM bookings_appointment a WHERE a.slot_id = s.id AND a.status <> 'cancelled')",
    )[0][0]

    env = production_env(control_url, DJANGO_SETTINGS_MODULE="tests.load.unsafe_settings")
    servers = [gunicorns(env, "control-a"), gunicorns(env, "control-b")]
    control = race_for_slots(servers, slots[:CONTROL_ROUNDS])
    for server in servers:
        server.stop()
    control_doubles = double_booked_slots(database_server, "load_unsafe_control")

    report(
        capsys,
        [
            "Several app servers, one truth: 2 gunicorn instances x 2 workers, one PostgreSQL"
            f" (databases migrated and seeded in {setup_seconds:.1f} s)",
            f"  protected: {protected.rounds} rounds x {PATIENTS_PER_SLOT} patients = {protected.attempts} attempts"
            f" in {protected.seconds:.1f} s; statuses {dict(sorted(protected.statuses.items()))};"
            f" winners per slot {dict(Counter(protected.winners_per_round))};"
            f" slots with two live appointments (SQL): {len(protected_doubles)}",
            f"  control (no constraint, no slot lock): {control.rounds} rounds, {control.attempts} attempts"
            f" in {control.seconds:.1f} s; statuses {dict(sorted(control.statuses.items()))};"
            f" winners per slot {dict(Counter(control.winners_per_round))};"
            f" slots with two or more live appointments (SQL): {len(control_doubles)}"
            f" ({sum(count for _, count in control_doubles)} appointments)",
        ],
        "several_app_servers",
    )

    assert protected.failures == [], protected.failures[:5]
    assert protected.attempts == ROUNDS * PATIENTS_PER_SLOT
    assert protected.winners_per_round == [1] * ROUNDS
    assert protected.losers_without_just_taken == 0
    assert protected.statuses == Counter({302: ROUNDS, 409: ROUNDS * (PATIENTS_PER_SLOT - 1)})
    assert protected_doubles == []
    assert protected_log_errors == [], protected_log_errors[:5]
    assert unbooked == 0

    # The harness can see a double booking when the protection is off.
    assert control.failures == [], control.failures[:5]
    assert not any(status >= 500 for status in control.statuses)
    assert len(control_doubles) > 0
    assert sum(control.winners_per_round) > CONTROL_ROUNDS
