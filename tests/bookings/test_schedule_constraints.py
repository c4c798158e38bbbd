"""The database itself refuses impossible slots: whatever code (or SQL) writes them."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, connection, transaction

from bookings.models import Appointment, Slot, hash_token, new_token
from tests.helpers import make_appointment

LONDON = ZoneInfo("Europe/London")
NINE = datetime(2026, 6, 8, 9, 0, tzinfo=LONDON)
TWENTY_MINUTES = timedelta(minutes=20)

pytestmark = pytest.mark.django_db


def _slot(practitioner, start, minutes=20, **extra):
    return Slot.objects.create(
        practitioner=practitioner, starts_at=start, ends_at=start + timedelta(minutes=minutes), **extra
    )


def _insert_raw(practitioner, start, end, state="open"):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bookings_slot (practitioner_id, starts_at, ends_at, state, blocked_reason)"
            " VALUES (%s, %s, %s, %s, '')",
            [practitioner.pk, start, end, state],
        )


def _appointment(slot, status=Appointment.Status.BOOKED):
    return make_appointment(slot, at=NINE - timedelta(days=1), status=status, cancelled_at=NINE - timedelta(hours=12))


def _rejected(write):
    """Run a write in its own savepoint and return the IntegrityError it raised (the test goes on)."""
    with pytest.raises(IntegrityError) as error, transaction.atomic():
        write()
    return str(error.value)


def test_a_slot_that_ends_before_it_starts_is_rejected_through_the_orm(dr_patel):
    message = _rejected(lambda: _slot(dr_patel, NINE, minutes=-20))
    assert "slot_end_after_start" in message


def test_a_slot_of_no_length_is_rejected_through_the_orm(dr_patel):
    message = _rejected(lambda: _slot(dr_patel, NINE, minutes=0))
    assert "slot_end_after_start" in message


def test_a_slot_that_ends_before_it_starts_is_rejected_in_raw_sql(dr_patel):
    message = _rejected(lambda: _insert_raw(dr_patel, NINE, NINE - TWENTY_MINUTES))
    assert "slot_end_after_start" in message
    assert not Slot.objects.exists()


def test_two_overlapping_slots_of_one_practitioner_are_rejected_through_the_orm(dr_patel):
    _slot(dr_patel, NINE)
    message = _rejected(lambda: _slot(dr_patel, NINE + timedelta(minutes=10)))
    assert "slot_no_overlap_per_practitioner" in message
    # The same start is the plainest overlap of all.
    message = _rejected(lambda: _slot(dr_patel, NINE))
    assert "slot_no_overlap_per_practitioner" in message
    # A slot that swallows another one whole.
    message = _rejected(lambda: _slot(dr_patel, NINE - TWENTY_MINUTES, minutes=60))
    assert "slot_no_overlap_per_practitioner" in message
    assert Slot.objects.count() == 1


def test_two_overlapping_slots_of_one_practitioner_are_rejected_in_raw_sql(dr_patel):
    _insert_raw(dr_patel, NINE, NINE + TWENTY_MINUTES)
    message = _rejected(lambda: _insert_raw(dr_patel, NINE + timedelta(minutes=19), NINE + timedelta(minutes=39)))
    assert "slot_no_overlap_per_practitioner" in message
    assert Slot.objects.count() == 1


def test_moving_a_slot_onto_another_is_rejected(dr_patel):
    _slot(dr_patel, NINE)
    later = _slot(dr_patel, NINE + TWENTY_MINUTES)
    later.starts_at = NINE + timedelta(minutes=5)
    later.ends_at = NINE + timedelta(minutes=25)
    message = _rejected(later.save)
    assert "slot_no_overlap_per_practitioner" in message


def test_a_blocked_slot_still_counts_as_an_overlap(dr_patel, rita):
    _slot(dr_patel, NINE, state=Slot.State.BLOCKED, blocked_by=rita, blocked_reason="Training")
    message = _rejected(lambda: _slot(dr_patel, NINE + timedelta(minutes=10)))
    assert "slot_no_overlap_per_practitioner" in message


def test_back_to_back_slots_do_not_overlap(dr_patel):
    # The range is half-open, [start, end): 09:20 ending one slot and starting the next is fine.
    _slot(dr_patel, NINE)
    _slot(dr_patel, NINE + TWENTY_MINUTES)
    _insert_raw(dr_patel, NINE + 2 * TWENTY_MINUTES, NINE + 3 * TWENTY_MINUTES)
    assert Slot.objects.count() == 3


def test_two_practitioners_may_hold_slots_at_the_same_time(dr_patel, dr_okafor):
    _slot(dr_patel, NINE)
    _slot(dr_okafor, NINE)
    assert Slot.objects.count() == 2


def test_a_retired_slot_may_lie_under_a_live_one(dr_patel):
    # A retired slot only carries the history of a cancelled appointment: it must not hold the time.
    _slot(dr_patel, NINE, state=Slot.State.RETIRED)
    _slot(dr_patel, NINE + timedelta(minutes=10))
    _insert_raw(dr_patel, NINE - timedelta(minutes=10), NINE + timedelta(minutes=10), state="retired")
    assert Slot.objects.count() == 3


def test_an_unknown_slot_state_is_rejected_in_raw_sql(dr_patel):
    message = _rejected(lambda: _insert_raw(dr_patel, NINE, NINE + TWENTY_MINUTES, state="gone"))
    assert "slot_state_valid" in message


def test_a_slot_holds_at_most_one_live_appointment(dr_patel):
    slot = _slot(dr_patel, NINE)
    _appointment(slot)
    message = _rejected(lambda: _appointment(slot))
    assert "appointment_one_live_per_slot" in message
    assert Appointment.objects.count() == 1


def test_a_slot_may_be_booked_again_after_a_cancellation(dr_patel):
    slot = _slot(dr_patel, NINE)
    _appointment(slot, status=Appointment.Status.CANCELLED)
    _appointment(slot, status=Appointment.Status.CANCELLED)
    _appointment(slot)
    assert Appointment.objects.live().get().slot == slot


def test_a_second_live_appointment_is_rejected_in_raw_sql(dr_patel):
    slot = _slot(dr_patel, NINE)
    _appointment(slot)

    def insert_second():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO bookings_appointment (slot_id, status, source, first_name, last_name, email, phone,"
                " note, safety_answers, privacy_notice_version, manage_token_hash, sequence, created_at,"
                " updated_at, cancel_reason)"
                " VALUES (%s, 'arrived', 'phone', 'Eve', 'Twice', '', '0', '', '{}', '', %s, 0, now(), now(), '')",
                [slot.pk, hash_token(new_token())],
            )

    message = _rejected(insert_second)
    assert "appointment_one_live_per_slot" in message
