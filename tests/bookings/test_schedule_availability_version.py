"""PostgreSQL keeps the availability versions itself: every change to what a patient may book moves one."""

from datetime import UTC

import pytest
from django.db import connection
from django.utils import timezone

from bookings.models import Appointment, Slot
from bookings.schedule import AvailabilityVersion
from bookings.services import PatientDetails, appointment_book, appointment_move
from tests.helpers import local, make_slot

pytestmark = pytest.mark.django_db(transaction=True)
PATIENT = PatientDetails(first_name="Pat", last_name="Example", email="pat@example.org", phone="07700 900123")


def day_version(slot) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(max(version), 0) FROM bookings_availabilityversion"
            " WHERE day = %s AND practitioner_id = %s",
            [slot.starts_at.astimezone(UTC).date(), slot.practitioner_id],
        )
        return cursor.fetchone()[0]


def list_version() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT version FROM bookings_availabilityversion WHERE day = '-infinity'")
        return cursor.fetchone()[0]


def test_creating_blocking_and_deleting_a_slot_each_move_its_days_version(dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    created = day_version(slot)
    assert created >= 1

    Slot.objects.filter(pk=slot.pk).update(state=Slot.State.BLOCKED)
    blocked = day_version(slot)
    Slot.objects.filter(pk=slot.pk).delete()

    assert created < blocked < day_version(slot)


def test_an_update_that_changes_nothing_a_patient_sees_leaves_the_version(dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    before = day_version(slot)

    Slot.objects.filter(pk=slot.pk).update(blocked_reason="")

    assert day_version(slot) == before


def test_booking_cancelling_and_moving_move_the_versions_of_both_days(dr_patel):
    slot, other_day = make_slot(dr_patel, local(3, 10)), make_slot(dr_patel, local(4, 10))
    before_booking = day_version(slot)

    appointment = appointment_book(slot_id=slot.pk, patient=PATIENT, now=timezone.now()).appointment
    after_booking = day_version(slot)
    other_before_move = day_version(other_day)
    appointment_move(appointment=appointment, new_slot_id=other_day.pk, now=timezone.now())

    assert before_booking < after_booking < day_version(slot)
    assert other_before_move < day_version(other_day)


def test_an_appointment_note_or_reminder_change_leaves_the_version(dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    appointment = appointment_book(slot_id=slot.pk, patient=PATIENT, now=timezone.now()).appointment
    before = day_version(slot)

    Appointment.objects.filter(pk=appointment.pk).update(note="Prefers mornings")

    assert day_version(slot) == before


def test_a_practitioner_change_moves_the_list_version(dr_patel):
    before = list_version()

    dr_patel.display_name = "Priya Patel-Shah"
    dr_patel.save()

    assert list_version() > before


def test_a_pages_version_is_the_sum_over_its_days_and_grows_with_any_of_them(dr_patel, dr_okafor):
    monday, friday = make_slot(dr_patel, local(3, 10)), make_slot(dr_okafor, local(5, 10))
    whole = AvailabilityVersion(starts=monday.starts_at, ends=friday.starts_at, practitioner_id=None)
    just_patel = AvailabilityVersion(starts=monday.starts_at, ends=friday.starts_at, practitioner_id=dr_patel.pk)
    whole_before, patel_before = whole.version(), just_patel.version()

    appointment_book(slot_id=friday.pk, patient=PATIENT, now=timezone.now())

    assert whole.version() > whole_before
    assert just_patel.version() == patel_before  # Dr Okafor's booking is not on Dr Patel's page
