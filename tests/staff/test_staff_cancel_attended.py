"""What happened stays recorded: reception cannot cancel an appointment marked arrived, completed or did not attend."""

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.models import Appointment, AppointmentEvent
from bookings.services import ChangeNotAllowed, appointment_cancel
from tests.helpers import local, make_appointment, make_slot
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db

ATTENDANCE = [Appointment.Status.ARRIVED, Appointment.Status.COMPLETED, Appointment.Status.NO_SHOW]


@pytest.fixture
def ada_seen_yesterday(dr_patel):
    """Ada's appointment yesterday, already marked (status set by each test)."""
    return make_appointment(make_slot(dr_patel, local(-1, 10)), at=timezone.now())


@pytest.mark.parametrize("status", ATTENDANCE)
def test_the_service_refuses_to_cancel_an_appointment_whose_attendance_is_recorded(rita, ada_seen_yesterday, status):
    Appointment.objects.filter(pk=ada_seen_yesterday.pk).update(status=status)

    with pytest.raises(ChangeNotAllowed):
        appointment_cancel(appointment=ada_seen_yesterday, now=timezone.now(), reason="Oops", actor=rita)

    ada_seen_yesterday.refresh_from_db()
    assert ada_seen_yesterday.status == status
    assert not ada_seen_yesterday.events.filter(action=AppointmentEvent.Action.CANCELLED).exists()


@pytest.mark.parametrize("status", ATTENDANCE)
def test_rita_sees_no_cancel_button_and_a_posted_cancel_is_refused_with_a_clear_message(
    client, rita, ada_seen_yesterday, status
):
    Appointment.objects.filter(pk=ada_seen_yesterday.pk).update(status=status)
    verified_login(client, rita)

    page = client.get(reverse("reception_appointment", args=[ada_seen_yesterday.pk])).content.decode()
    assert "Cancel this appointment" not in page
    assert "mark it back to booked first" in page

    response = client.post(
        reverse("reception_appointment_cancel", args=[ada_seen_yesterday.pk]),
        {"reason": "Clicked the wrong row", "notify_patient": "on"},
        follow=True,
    )
    assert "cannot be cancelled" in response.content.decode()
    ada_seen_yesterday.refresh_from_db()
    assert ada_seen_yesterday.status == status


def test_a_booked_appointment_still_shows_the_cancel_button(client, rita, dr_patel):
    ada = make_appointment(make_slot(dr_patel, local(3, 10)), at=timezone.now())
    verified_login(client, rita)

    page = client.get(reverse("reception_appointment", args=[ada.pk])).content.decode()

    assert "Cancel this appointment" in page
