from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from bookings.models import Appointment, AppointmentEvent
from bookings.services import PatientDetails, appointment_book
from tests.helpers import local, make_slot, works_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def booking(dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    works_at(dr_patel, slot.starts_at)
    return appointment_book(
        slot_id=slot.pk, patient=PatientDetails("Pat", "Example", "07700 900123", "pat@example.org"), now=timezone.now()
    )


def test_opening_the_link_shows_the_booking_and_changes_nothing(client, booking):
    before = Appointment.objects.values().get()
    response = client.get(f"/manage/{booking.manage_token}/")
    assert response.status_code == 200
    assert b"Dr Priya Patel" in response.content
    assert b"Cancel my consultation" in response.content
    assert Appointment.objects.values().get() == before
    assert "no-store" in response["Cache-Control"]


def test_a_get_to_the_cancel_address_cancels_nothing(client, booking):
    response = client.get(f"/manage/{booking.manage_token}/cancel/")
    assert response.status_code == 302
    assert Appointment.objects.get().status == Appointment.Status.BOOKED


def test_the_patient_cancels_with_a_reason_and_the_history_keeps_it(client, booking):
    response = client.post(f"/manage/{booking.manage_token}/cancel/", {"reason": "Feeling better"})
    assert response.status_code == 302
    appointment = Appointment.objects.get()
    assert appointment.status == Appointment.Status.CANCELLED
    assert appointment.cancel_reason == "Feeling better"
    assert appointment.events.filter(action=AppointmentEvent.Action.CANCELLED, actor_label="patient").exists()
    # Nothing is deleted, and the slot is bookable again.
    from bookings.models import Slot

    assert Slot.objects.bookable(now=timezone.now()).filter(pk=appointment.slot_id).exists()
    page = client.get(f"/manage/{booking.manage_token}/")
    assert b"This consultation was cancelled" in page.content


def test_the_patient_moves_to_another_bookable_slot_and_the_old_one_is_freed(client, booking, dr_okafor):
    new_slot = make_slot(dr_okafor, local(4, 14))
    old_slot_id = booking.appointment.slot_id
    page = client.get(f"/manage/{booking.manage_token}/move/?week={local(4, 14).date().isoformat()}")
    assert f'value="{new_slot.pk}"'.encode() in page.content
    response = client.post(f"/manage/{booking.manage_token}/move/", {"slot": new_slot.pk})
    assert response.status_code == 302
    appointment = Appointment.objects.get()
    assert appointment.slot == new_slot
    assert appointment.sequence == 1
    assert appointment.events.filter(action=AppointmentEvent.Action.MOVED).count() == 1
    from bookings.models import Slot

    assert Slot.objects.bookable(now=timezone.now()).filter(pk=old_slot_id).exists()


def test_a_move_to_a_taken_slot_changes_nothing(client, booking, dr_okafor):
    taken = make_slot(dr_okafor, local(4, 14))
    appointment_book(slot_id=taken.pk, patient=PatientDetails("Other", "Person", "07700 900999"), now=timezone.now())
    response = client.post(f"/manage/{booking.manage_token}/move/", {"slot": taken.pk})
    assert response.status_code == 409
    assert b"that time has just been taken" in response.content
    assert Appointment.objects.get(pk=booking.appointment.pk).slot_id == booking.appointment.slot_id


def test_a_move_to_a_time_inside_the_minimum_notice_is_called_too_soon_not_taken(client, booking, dr_okafor):
    soon = make_slot(dr_okafor, timezone.now() + settings.BOOKING_MIN_NOTICE / 2)
    response = client.post(f"/manage/{booking.manage_token}/move/", {"slot": soon.pk})
    assert response.status_code == 409
    content = response.content.decode().replace("&#x27;", "'")
    assert "That time is too soon to book online" in content
    assert settings.CLINIC_PHONE in content
    assert "just been taken" not in content
    assert Appointment.objects.get(pk=booking.appointment.pk).slot_id == booking.appointment.slot_id


def test_a_move_to_the_time_already_held_says_it_is_the_current_time(client, booking):
    response = client.post(f"/manage/{booking.manage_token}/move/", {"slot": booking.appointment.slot_id})
    assert response.status_code == 409
    content = response.content.decode().replace("&#x27;", "'")
    assert "That's your current time" in content
    assert "just been taken" not in content
    assert Appointment.objects.get().sequence == 0


def test_changes_close_before_the_cutoff_and_the_page_gives_the_phone_number(client, dr_patel):
    soon = make_slot(dr_patel, timezone.now() + settings.MANAGE_CUTOFF - timedelta(minutes=10))
    # The patient booked it days ago (inside the notice now): book as of then.
    result = appointment_book(
        slot_id=soon.pk,
        patient=PatientDetails("Pat", "Example", "07700 900123"),
        now=timezone.now() - timedelta(days=2),
    )
    page = client.get(f"/manage/{result.manage_token}/")
    assert b"Cancel my consultation" not in page.content
    assert settings.CLINIC_PHONE.encode() in page.content
    response = client.post(f"/manage/{result.manage_token}/cancel/", {"reason": ""})
    assert response.status_code == 409
    other = make_slot(dr_patel, local(5, 10))
    response = client.post(f"/manage/{result.manage_token}/move/", {"slot": other.pk})
    assert response.status_code == 409
    assert Appointment.objects.get().status == Appointment.Status.BOOKED
    assert Appointment.objects.get().slot == soon


@pytest.mark.parametrize("suffix", ["x", "tampered", ""])
def test_a_wrong_or_tampered_token_gets_the_same_404_as_a_missing_booking(client, booking, suffix):
    tampered = booking.manage_token[:-1] + ("A" if booking.manage_token[-1] != "A" else "B") + suffix
    for url in [f"/manage/{tampered}/", f"/manage/{tampered}/cancel/", f"/manage/{tampered}/move/"]:
        response = client.post(url, {"reason": "x", "slot": 1}) if "cancel" in url else client.get(url)
        assert response.status_code == 404
        assert b"find that page" in response.content
    assert Appointment.objects.get().status == Appointment.Status.BOOKED


def test_a_link_for_a_long_past_appointment_has_expired(client, dr_patel):
    old = make_slot(dr_patel, local(-40, 10))
    result = appointment_book(
        slot_id=old.pk, patient=PatientDetails("Pat", "Example", "07700 900123"), now=old.starts_at - timedelta(days=3)
    )
    assert client.get(f"/manage/{result.manage_token}/").status_code == 404


def test_the_manage_token_is_not_stored_in_the_clear(booking):
    appointment = Appointment.objects.get()
    assert booking.manage_token not in str(Appointment.objects.values().get())
    assert appointment.manage_token_hash != booking.manage_token


def test_a_move_to_a_time_no_longer_in_the_diary_says_so_not_just_taken(client, booking):
    response = client.post(f"/manage/{booking.manage_token}/move/", {"slot": "999999"})

    assert "not in the diary any more" in response.content.decode()
    assert "just been taken" not in response.content.decode()
