"""Slot.taken, which PostgreSQL keeps equal to "a live appointment holds this slot" (migration 0026), whoever writes."""

import json
import random
import uuid

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from bookings.models import Appointment, Slot
from bookings.services import (
    ChangeNotAllowed,
    PatientDetails,
    SlotUnavailable,
    appointment_book,
    appointment_cancel,
    appointment_move,
    appointment_set_status,
)
from tests.helpers import local, make_appointment, make_slot, patient_books, run_at_once, works_at


def _slots_whose_flag_is_wrong() -> list[tuple[int, bool]]:
    """Every slot whose `taken` differs from the appointments, with the rule written by hand (Appointment.live)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.id, s.taken FROM bookings_slot s WHERE s.taken IS DISTINCT FROM EXISTS ("
            " SELECT 1 FROM bookings_appointment a WHERE a.slot_id = s.id AND a.status <> 'cancelled')"
        )
        return cursor.fetchall()


def _taken(slot) -> bool:
    return Slot.objects.values_list("taken", flat=True).get(pk=slot.pk)


def test_a_slot_is_taken_while_a_live_appointment_holds_it_through_every_service(rita, dr_patel, dr_okafor):
    first, second = make_slot(dr_patel, local(3, 9)), make_slot(dr_okafor, local(3, 10))
    works_at(dr_patel, local(3, 9)), works_at(dr_okafor, local(3, 10))
    assert not _taken(first)

    appointment = patient_books(first)
    assert _taken(first) and not _slots_whose_flag_is_wrong()

    appointment_move(appointment=appointment, new_slot_id=second.pk, now=timezone.now(), actor=rita)
    assert (_taken(first), _taken(second)) == (False, True)

    appointment_cancel(appointment=appointment, now=timezone.now(), actor=rita)
    assert (_taken(first), _taken(second)) == (False, False)

    again = patient_books(second, email="sam@example.org", phone="07700 900456")
    assert _taken(second)
    appointment_set_status(
        appointment=again, status=Appointment.Status.BOOKED, now=timezone.now(), actor=rita
    )  # still live
    assert _taken(second) and not _slots_whose_flag_is_wrong()


def test_a_slot_saved_from_a_copy_read_before_its_booking_stays_taken(dr_patel):
    slot = make_slot(dr_patel, local(3, 9))
    read_before = Slot.objects.get(pk=slot.pk)
    patient_books(slot)

    # A form or the admin saving its old copy (taken=False in memory), or a hand-written UPDATE: the slot's own
    # trigger recomputes the flag from the appointments.
    read_before.blocked_reason = "Note"
    read_before.save()
    Slot.objects.filter(pk=slot.pk).update(taken=False)

    assert _taken(slot)
    assert not _slots_whose_flag_is_wrong()


def test_any_sequence_of_writes_to_appointments_keeps_every_slots_flag_exact(dr_patel, dr_okafor):
    """Writes straight to the table, past the services: inserts, status changes both ways, moves, deletes,
    bulk updates, raw SQL. After each, every slot's flag is checked against the appointments."""
    slots = [make_slot(practitioner, local(3, hour)) for practitioner in (dr_patel, dr_okafor) for hour in range(8, 14)]
    chance = random.Random(20261202)
    live_statuses = [status for status in Appointment.Status if status != Appointment.Status.CANCELLED]
    for step in range(150):
        appointments = list(Appointment.objects.all())
        free = [slot for slot in slots if not Appointment.objects.live().filter(slot=slot).exists()]
        action = chance.choice(["book", "book", "cancel", "revive", "move", "delete", "bulk", "sql"])
        if action == "book" and free:
            status = chance.choice([*live_statuses, Appointment.Status.CANCELLED])
            make_appointment(chance.choice(free), at=timezone.now(), status=status)
        elif action == "cancel" and appointments:
            Appointment.objects.filter(pk=chance.choice(appointments).pk).update(
                status=Appointment.Status.CANCELLED, cancelled_at=timezone.now()
            )
        elif action == "revive" and appointments:
            appointment = chance.choice(appointments)
            if appointment.status == Appointment.Status.CANCELLED and appointment.slot in free:
                appointment.status = chance.choice(live_statuses)
                appointment.save()
        elif action == "move" and appointments and free:
            appointment = chance.choice(appointments)
            appointment.slot = chance.choice(free)
            appointment.save(update_fields=["slot"])
        elif action == "delete" and appointments:
            Appointment.objects.filter(pk=chance.choice(appointments).pk).delete()
        elif action == "bulk":
            Appointment.objects.filter(slot__practitioner=dr_okafor).update(
                status=Appointment.Status.CANCELLED, cancelled_at=timezone.now()
            )
        elif action == "sql" and appointments:
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE bookings_appointment SET status = 'cancelled', cancelled_at = now() WHERE id = %s",
                    [chance.choice(appointments).pk],
                )
        assert not _slots_whose_flag_is_wrong(), (step, action)
    assert Slot.objects.filter(taken=True).exists()


@pytest.mark.django_db(transaction=True)
def test_emptying_the_appointments_table_frees_every_slot(dr_patel):
    for hour in (9, 10):
        patient_books(make_slot(dr_patel, local(3, hour)), email=f"p{hour}@example.org", phone=f"07700 900{hour:03d}")
    assert Slot.objects.filter(taken=True).count() == 2

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE bookings_appointment CASCADE")

    assert not Slot.objects.filter(taken=True).exists()


@pytest.mark.django_db(transaction=True)
def test_patients_racing_for_slots_while_others_cancel_leave_every_flag_exact(dr_patel, dr_okafor):
    """Real threads on real PostgreSQL: bookings, cancellations and moves of the same slots at once."""
    slots = [make_slot(practitioner, local(3, hour)) for practitioner in (dr_patel, dr_okafor) for hour in range(8, 12)]
    works_at(dr_patel, local(3, 8)), works_at(dr_okafor, local(3, 8))
    booked = [patient_books(slot, email=f"p{slot.pk}@example.org", phone=f"07700 9{slot.pk:05d}") for slot in slots[:4]]

    def work(index):
        now = timezone.now()
        if index < 4:
            return appointment_cancel(appointment=booked[index], now=now, notify_patient=False)
        if index < 6:
            return appointment_move(appointment=booked[index - 4], new_slot_id=slots[index + 2].pk, now=now)
        target = slots[index % 8]
        return appointment_book(
            slot_id=target.pk,
            patient=PatientDetails(
                first_name="Race", last_name=f"R{index}", phone=f"07700 90{index:04d}", email=f"r{index}@example.org"
            ),
            now=now,
            submission_key=uuid.uuid4(),
            safety_answers={
                "version": "2026-11",
                "answers": [{"key": "trauma", "question": "Did the pain start after a fall?", "answer": "no"}],
            },
        )

    results = run_at_once(14, work)

    unexpected = [
        r for r in results if isinstance(r, Exception) and not isinstance(r, SlotUnavailable | ChangeNotAllowed)
    ]
    assert not unexpected, unexpected
    assert not _slots_whose_flag_is_wrong()
    assert Slot.objects.filter(taken=True).count() == Appointment.objects.live().count() > 0


def test_each_status_takes_the_slot_exactly_when_appointment_live_counts_it(dr_patel):
    # The triggers write "live" by hand (status <> 'cancelled'): they must agree with Appointment.objects.live().
    for hour, status in enumerate(Appointment.Status, start=8):
        appointment = make_appointment(make_slot(dr_patel, local(3, hour)), at=timezone.now(), status=status)
        is_live = Appointment.objects.live().filter(pk=appointment.pk).exists()
        assert _taken(appointment.slot) == is_live, status


def test_a_slot_written_after_its_live_appointment_in_the_same_transaction_is_taken(dr_patel):
    """Foreign keys are checked at commit: a restore or a fixture may write an appointment before its slot."""
    slot = make_slot(dr_patel, local(3, 9))
    appointment = make_appointment(slot, at=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE kept_slot AS SELECT * FROM bookings_slot WHERE id = %s", [slot.pk])
        cursor.execute(
            "CREATE TEMP TABLE kept_appt AS SELECT * FROM bookings_appointment WHERE id = %s", [appointment.pk]
        )
        cursor.execute("DELETE FROM bookings_appointment WHERE id = %s", [appointment.pk])
        cursor.execute("DELETE FROM bookings_slot WHERE id = %s", [slot.pk])
        cursor.execute("INSERT INTO bookings_appointment SELECT * FROM kept_appt")
        cursor.execute("INSERT INTO bookings_slot SELECT * FROM kept_slot")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # every key is satisfied

    assert _taken(slot)
    assert not _slots_whose_flag_is_wrong()


def test_a_slot_given_the_key_its_live_appointment_already_points_to_is_taken(dr_patel):
    slot = make_slot(dr_patel, local(3, 9))
    appointment = make_appointment(slot, at=timezone.now())
    new_key = slot.pk + 1000
    with connection.cursor() as cursor:
        cursor.execute("UPDATE bookings_appointment SET slot_id = %s WHERE id = %s", [new_key, appointment.pk])
        cursor.execute("UPDATE bookings_slot SET id = %s WHERE id = %s", [new_key, slot.pk])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    assert Slot.objects.get(pk=new_key).taken
    assert not _slots_whose_flag_is_wrong()


@pytest.mark.django_db(transaction=True)
def test_loading_a_fixture_that_lists_appointments_before_slots_keeps_every_flag(dr_patel, tmp_path):
    for hour in (9, 10):
        make_appointment(make_slot(dr_patel, local(3, hour)), at=timezone.now())
    fixture = tmp_path / "bookings.json"
    with fixture.open("w") as out:
        call_command("dumpdata", "bookings.Appointment", "bookings.Slot", stdout=out)
    assert [row["model"] for row in json.loads(fixture.read_text())][0] == "bookings.appointment"
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE bookings_slot CASCADE")

    call_command("loaddata", str(fixture), verbosity=0)

    assert Appointment.objects.live().count() == 2 == Slot.objects.filter(taken=True).count()
    assert not _slots_whose_flag_is_wrong()
