"""Rita changes appointments (move, cancel, status) and blocks slots; every change is in the history."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from bookings.models import Appointment, AppointmentEvent, OutboundMessage, Slot
from bookings.services import ChangeNotAllowed, appointment_set_status
from tests.helpers import (
    appointment_in_the_past_or_today,
    days_ahead,
    local,
    make_slot,
    patient_books,
    today,
    works_at,
)
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(dr_patel):
    return patient_books(make_slot(dr_patel, local(days_ahead(3), 10)), first_name="Ada", last_name="Lovelace")


def test_rita_moves_ada_to_another_open_slot_and_the_history_says_from_where_to_where(client, rita, dr_okafor, ada):
    new_slot = make_slot(dr_okafor, local(days_ahead(4), 11))
    old_slot = ada.slot
    verified_login(client, rita)
    page = client.get(reverse("reception_appointment_move", args=[ada.pk]), {"date": days_ahead(4).isoformat()})
    assert f'name="slot" value="{new_slot.pk}"' in page.content.decode()

    response = client.post(reverse("reception_appointment_move", args=[ada.pk]), {"slot": new_slot.pk})

    assert response.status_code == 302
    ada.refresh_from_db()
    assert ada.slot == new_slot
    event = ada.events.get(action=AppointmentEvent.Action.MOVED)
    assert event.actor == rita
    assert "Dr Priya Patel" in event.from_value and "Dr Chidi Okafor" in event.to_value
    # The old slot is free again.
    assert not Appointment.objects.live().filter(slot=old_slot).exists()


def test_rita_loses_a_move_race_to_a_patient_and_nothing_changes(client, rita, dr_okafor, ada):
    wanted = make_slot(dr_okafor, local(days_ahead(4), 11))
    old_slot = ada.slot
    verified_login(client, rita)
    patient_books(wanted, first_name="Bob")

    response = client.post(reverse("reception_appointment_move", args=[ada.pk]), {"slot": wanted.pk})

    assert response.status_code == 409
    assert "Sorry, that time was just taken (or is no longer free). Nothing changed." in response.content.decode()
    ada.refresh_from_db()
    assert ada.slot == old_slot
    assert not ada.events.filter(action=AppointmentEvent.Action.MOVED).exists()


def test_rita_cancels_with_a_reason_and_tells_the_patient(client, rita, ada):
    verified_login(client, rita)

    response = client.post(
        reverse("reception_appointment_cancel", args=[ada.pk]), {"reason": "Practitioner ill", "notify_patient": "on"}
    )

    assert response.status_code == 302
    ada.refresh_from_db()
    assert (ada.status, ada.cancel_reason) == ("cancelled", "Practitioner ill")
    event = ada.events.get(action=AppointmentEvent.Action.CANCELLED)
    assert (event.actor, event.from_value, event.to_value, event.detail) == (
        rita,
        "Booked",
        "Cancelled",
        "Practitioner ill",
    )
    assert OutboundMessage.objects.filter(appointment=ada, kind=OutboundMessage.Kind.CANCELLED).exists()


def test_rita_cancels_without_telling_the_patient_when_she_already_told_them_on_the_phone(client, rita, ada):
    verified_login(client, rita)

    client.post(reverse("reception_appointment_cancel", args=[ada.pk]), {"reason": "Patient called"})

    ada.refresh_from_db()
    assert ada.status == "cancelled"
    assert not OutboundMessage.objects.filter(appointment=ada, kind=OutboundMessage.Kind.CANCELLED).exists()


def test_rita_must_give_a_reason_to_cancel(client, rita, ada):
    verified_login(client, rita)

    response = client.post(reverse("reception_appointment_cancel", args=[ada.pk]), {"reason": ""})

    assert response.status_code == 400
    ada.refresh_from_db()
    assert ada.status == "booked"


@pytest.mark.parametrize(
    ("status", "label"), [("arrived", "Arrived"), ("no_show", "Did not attend"), ("completed", "Completed")]
)
def test_rita_marks_ada_and_the_history_records_it(client, rita, ada, status, label):
    # On the day of the appointment (signed in that day): attendance is not recorded ahead of it.
    with time_machine.travel(ada.slot.starts_at, tick=False):
        verified_login(client, rita)
        client.post(reverse("reception_appointment_status", args=[ada.pk]), {"status": status})

    ada.refresh_from_db()
    assert ada.status == status
    event = ada.events.get(action=AppointmentEvent.Action.STATUS)
    assert (event.actor_label, event.from_value, event.to_value) == ("rita", "Booked", label)


def test_rita_cannot_mark_attendance_before_the_day_of_the_appointment(client, rita, ada):
    verified_login(client, rita)

    response = client.post(reverse("reception_appointment_status", args=[ada.pk]), {"status": "no_show"}, follow=True)

    ada.refresh_from_db()
    assert ada.status == "booked"
    assert b"completed and did not attend from the start" in response.content
    assert not ada.events.filter(action=AppointmentEvent.Action.STATUS).exists()


@pytest.mark.parametrize("status", [Appointment.Status.NO_SHOW, Appointment.Status.COMPLETED])
def test_did_not_attend_and_completed_cannot_be_recorded_twenty_minutes_before_the_start(rita, ada, status):
    with pytest.raises(ChangeNotAllowed):
        appointment_set_status(
            appointment=ada, status=status, now=ada.slot.starts_at - timedelta(minutes=20), actor=rita
        )

    ada.refresh_from_db()
    assert ada.status == Appointment.Status.BOOKED


@pytest.mark.parametrize("status", [Appointment.Status.NO_SHOW, Appointment.Status.COMPLETED])
def test_did_not_attend_and_completed_can_be_recorded_from_the_start(rita, ada, status):
    appointment_set_status(appointment=ada, status=status, now=ada.slot.starts_at, actor=rita)

    ada.refresh_from_db()
    assert ada.status == status


def test_an_early_patient_can_be_marked_arrived_from_thirty_minutes_before_the_start(rita, ada):
    with pytest.raises(ChangeNotAllowed):
        appointment_set_status(
            appointment=ada, status="arrived", now=ada.slot.starts_at - timedelta(minutes=31), actor=rita
        )

    appointment_set_status(
        appointment=ada, status="arrived", now=ada.slot.starts_at - timedelta(minutes=30), actor=rita
    )

    ada.refresh_from_db()
    assert ada.status == Appointment.Status.ARRIVED


def test_the_appointment_page_offers_only_arrived_twenty_minutes_before_the_start(client, rita, ada):
    with time_machine.travel(ada.slot.starts_at - timedelta(minutes=20), tick=False):
        verified_login(client, rita)
        page = client.get(reverse("reception_appointment", args=[ada.pk])).content.decode()

    assert 'name="status" value="arrived"' in page
    assert 'name="status" value="no_show"' not in page
    assert 'name="status" value="completed"' not in page


def test_rita_cannot_set_a_made_up_status(client, rita, ada):
    verified_login(client, rita)

    client.post(reverse("reception_appointment_status", args=[ada.pk]), {"status": "cancelled"})

    ada.refresh_from_db()
    assert ada.status == "booked"


def test_the_appointment_page_shows_the_history_and_offers_no_way_to_edit_it(client, rita, ada):
    with time_machine.travel(ada.slot.starts_at, tick=False):
        verified_login(client, rita)
        client.post(reverse("reception_appointment_status", args=[ada.pk]), {"status": "arrived"})
    verified_login(client, rita)

    response = client.get(reverse("reception_appointment", args=[ada.pk]))

    html = response.content.decode()
    history = html[html.index('id="history-heading"') :]
    assert "<td>patient</td>" in history and "<td>Booked</td>" in history
    assert "<td>rita</td>" in history and "<td>Status changed</td>" in history
    assert "<form" not in history
    # Nor in the admin: the history is an inline of read-only rows, not a model of its own.
    assert AppointmentEvent not in admin.site._registry


def test_rita_blocks_an_open_slot_with_a_reason_and_unblocks_it(client, rita, dr_patel):
    slot = make_slot(dr_patel, local(days_ahead(2), 10))
    works_at(dr_patel, slot.starts_at)
    verified_login(client, rita)

    response = client.post(reverse("reception_slot_block", args=[slot.pk]), {"reason": "Team meeting"})

    assert response.status_code == 302
    slot.refresh_from_db()
    assert (slot.state, slot.blocked_reason, slot.blocked_by) == (Slot.State.BLOCKED, "Team meeting", rita)
    assert not Slot.objects.bookable(now=timezone.now()).filter(pk=slot.pk).exists()

    client.post(reverse("reception_slot_unblock", args=[slot.pk]))

    slot.refresh_from_db()
    assert (slot.state, slot.blocked_reason, slot.blocked_by) == (Slot.State.OPEN, "", None)


def test_rita_cannot_block_a_booked_slot(client, rita, ada):
    verified_login(client, rita)

    client.post(reverse("reception_slot_block", args=[ada.slot.pk]), {"reason": "Oops"})

    ada.slot.refresh_from_db()
    assert ada.slot.state == Slot.State.OPEN
    assert Appointment.objects.live().filter(pk=ada.pk).exists()


def test_a_block_needs_a_reason(client, rita, dr_patel):
    slot = make_slot(dr_patel, local(days_ahead(2), 10))
    verified_login(client, rita)

    response = client.post(reverse("reception_slot_block", args=[slot.pk]), {"reason": ""})

    assert response.status_code == 400
    slot.refresh_from_db()
    assert slot.state == Slot.State.OPEN


def test_a_move_to_a_slot_number_too_big_for_the_database_changes_nothing(client, rita, ada):
    verified_login(client, rita)

    response = client.post(reverse("reception_appointment_move", args=[ada.pk]), {"slot": str(2**70)})

    assert response.status_code == 400
    ada.refresh_from_db()
    assert not ada.events.filter(action=AppointmentEvent.Action.MOVED).exists()


def test_rita_marks_a_patient_arrived_from_todays_grid_and_stays_on_the_day(client, rita, dr_patel):
    bob = appointment_in_the_past_or_today(make_slot(dr_patel, local(today(), 0, 20)), first_name="Bob")
    verified_login(client, rita)
    day_view = client.get(reverse("reception_day"))
    assert reverse("reception_appointment_status", args=[bob.pk]) in day_view.content.decode()

    response = client.post(
        reverse("reception_appointment_status", args=[bob.pk]), {"status": "arrived", "next": reverse("reception_day")}
    )

    assert response["Location"] == reverse("reception_day")
    bob.refresh_from_db()
    assert bob.status == "arrived"


def test_the_way_back_after_marking_never_leaves_the_site(client, rita, ada):
    verified_login(client, rita)

    response = client.post(
        reverse("reception_appointment_status", args=[ada.pk]), {"status": "arrived", "next": "https://evil.example/"}
    )

    assert response["Location"] == reverse("reception_appointment", args=[ada.pk])


def test_cancelling_a_caller_without_an_e_mail_tells_rita_to_phone_them(client, rita, dr_patel):
    from bookings.services import PatientDetails, appointment_book

    slot = make_slot(dr_patel, local(days_ahead(3), 11))
    caller = appointment_book(
        slot_id=slot.pk, patient=PatientDetails("Cal", "Ler", "07700 900444"), now=timezone.now(), booked_by=rita
    ).appointment
    verified_login(client, rita)

    response = client.post(
        reverse("reception_appointment_cancel", args=[caller.pk]),
        {"reason": "Called to cancel", "notify_patient": "on"},
        follow=True,
    )

    assert b"There is no e-mail on file: please phone the patient" in response.content


def test_the_day_view_offers_arrived_only_from_thirty_minutes_before_the_start(client, rita, dr_patel):
    with time_machine.travel(local(days_ahead(1), 12), tick=False):
        soon = appointment_in_the_past_or_today(make_slot(dr_patel, local(today(), 12, 20)), first_name="Bob")
        later = appointment_in_the_past_or_today(make_slot(dr_patel, local(today(), 15)), first_name="Cy")
        verified_login(client, rita)

        page = client.get(reverse("reception_day")).content.decode()

    # The service refuses "arrived" before then: the button would only lead to an error.
    assert reverse("reception_appointment_status", args=[soon.pk]) in page
    assert reverse("reception_appointment_status", args=[later.pk]) not in page
