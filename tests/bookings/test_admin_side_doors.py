"""The admin is no side door around the booking rules: a slot's times and state change only through the services."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bookings.models import Slot
from tests.helpers import local, make_appointment, make_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def booked_slot(dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    make_appointment(slot, at=timezone.now())
    return slot


def test_the_admin_cannot_change_a_booked_slots_times_state_or_practitioner(admin_client, booked_slot, dr_okafor):
    before = Slot.objects.values().get(pk=booked_slot.pk)
    later = booked_slot.starts_at.astimezone(timezone.get_current_timezone()) + timedelta(hours=2)

    page = admin_client.get(f"/admin/bookings/slot/{booked_slot.pk}/change/").content.decode()
    for field in ("starts_at", "ends_at", "state", "practitioner"):
        assert f'name="{field}' not in page, field

    response = admin_client.post(
        f"/admin/bookings/slot/{booked_slot.pk}/change/",
        {
            "practitioner": dr_okafor.pk,
            "starts_at_0": f"{later:%Y-%m-%d}",
            "starts_at_1": f"{later:%H:%M:%S}",
            "ends_at_0": f"{later:%Y-%m-%d}",
            "ends_at_1": f"{later + timedelta(minutes=20):%H:%M:%S}",
            "state": Slot.State.RETIRED,
            "blocked_reason": "",
        },
    )

    assert response.status_code == 302
    after = Slot.objects.values().get(pk=booked_slot.pk)
    assert {key: after[key] for key in ("practitioner_id", "starts_at", "ends_at", "state")} == {
        key: before[key] for key in ("practitioner_id", "starts_at", "ends_at", "state")
    }


def test_the_admin_cannot_add_a_slot_outside_the_working_hours(admin_client):
    assert admin_client.get("/admin/bookings/slot/add/").status_code == 403
