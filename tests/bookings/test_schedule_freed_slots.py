"""A slot freed inside time off or outside working hours is retired at once, whatever path frees it.

Issue 13: Dr Patel's 10:00 caller is kept through all-day time off (reception is told to act);
cancelling as told made that 10:00 bookable online, on a day Dr Patel is away.
"""

from datetime import time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.models import Slot, TimeOff, WorkingHours
from bookings.schedule import clinic_zone, slot_fits_schedule, slots_generate
from bookings.services import PatientDetails, appointment_book, appointment_cancel
from tests.helpers import local
from tests.helpers import slot_at as _slot
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


def _offered(slot) -> bool:
    return Slot.objects.bookable(now=timezone.now()).filter(pk=slot.pk).exists()


@pytest.fixture
def ada(patel_works, day):
    """Ada booked online at 10:00 (she has the manage link)."""
    result = appointment_book(
        slot_id=_slot(patel_works, local(day, 10)).pk,
        patient=PatientDetails(first_name="Ada", last_name="Lovelace", phone="07700 900123", email="ada@example.org"),
        now=timezone.now(),
    )
    result.appointment.manage_token = result.manage_token
    return result.appointment


@pytest.fixture
def patel_away_that_day(client, rita, patel_works, day, ada):
    """Rita adds all-day time off; the warning lists Ada's appointment, which stays booked."""
    verified_login(client, rita)
    response = client.post(
        reverse("reception_time_off_add", args=[patel_works.pk]),
        {"off-starts_at": f"{day}T00:00", "off-ends_at": f"{day + timedelta(days=1)}T00:00", "off-reason": "Ill"},
        follow=True,
    )
    assert "1 booked appointment(s) no longer fit" in response.content.decode()
    return day


def test_the_schedule_rule_says_a_slot_in_time_off_no_longer_fits(patel_works, day, ada):
    assert slot_fits_schedule(ada.slot)

    TimeOff.objects.create(practitioner=patel_works, starts_at=local(day, 10), ends_at=local(day, 10, 20))

    assert not slot_fits_schedule(ada.slot)
    assert slot_fits_schedule(_slot(patel_works, local(day, 10, 20)))


def test_rita_cancels_as_told_and_the_time_is_not_offered_online(client, rita, ada, patel_away_that_day):
    response = client.post(reverse("reception_appointment_cancel", args=[ada.pk]), {"reason": "Dr Patel is ill"})

    assert response.status_code == 302
    ada.slot.refresh_from_db()
    assert ada.slot.state == Slot.State.RETIRED
    assert not _offered(ada.slot)


def test_ada_cancels_by_her_link_and_the_time_is_not_offered_online(client, ada, patel_away_that_day):
    response = client.post(f"/manage/{ada.manage_token}/cancel/", {"reason": ""})

    assert response.status_code == 302
    assert not _offered(ada.slot)


def test_rita_moves_ada_away_and_the_old_time_is_not_offered_online(client, rita, dr_okafor, ada, patel_away_that_day):
    elsewhere = Slot.objects.create(
        practitioner=dr_okafor, starts_at=local(patel_away_that_day, 14), ends_at=local(patel_away_that_day, 14, 20)
    )

    response = client.post(reverse("reception_appointment_move", args=[ada.pk]), {"slot": elsewhere.pk})

    assert response.status_code == 302
    assert not _offered(ada.slot)


def test_ada_moves_by_her_link_and_the_old_time_is_not_offered_online(client, dr_okafor, ada, patel_away_that_day):
    elsewhere = Slot.objects.create(
        practitioner=dr_okafor, starts_at=local(patel_away_that_day, 14), ends_at=local(patel_away_that_day, 14, 20)
    )

    response = client.post(f"/manage/{ada.manage_token}/move/", {"slot": elsewhere.pk})

    assert response.status_code == 302
    assert not _offered(ada.slot)


def test_a_time_freed_outside_the_new_hours_is_not_offered_online(rita, patel_works, day, ada):
    WorkingHours.objects.filter(practitioner=patel_works).update(end_time=time(10))
    assert slots_generate(now=timezone.now(), practitioner=patel_works).conflicts == [ada.slot]

    appointment_cancel(appointment=ada, now=timezone.now(), reason="Hours changed", actor=rita)

    assert not _offered(ada.slot)


def test_a_time_freed_that_still_fits_is_offered_again(client, rita, ada):
    verified_login(client, rita)

    client.post(reverse("reception_appointment_cancel", args=[ada.pk]), {"reason": "Unwell"})

    assert _offered(ada.slot)


def test_a_slot_blocked_during_time_off_is_not_offered_when_unblocked(client, rita, patel_works, day):
    slot = _slot(patel_works, local(day, 9, 40))
    verified_login(client, rita)
    client.post(reverse("reception_slot_block", args=[slot.pk]), {"reason": "Staff meeting"})
    TimeOff.objects.create(practitioner=patel_works, starts_at=local(day, 9), ends_at=local(day, 11))
    slots_generate(now=timezone.now(), practitioner=patel_works)
    slot.refresh_from_db()
    assert slot.state == Slot.State.BLOCKED

    client.post(reverse("reception_slot_unblock", args=[slot.pk]))

    slot.refresh_from_db()
    assert slot.state == Slot.State.RETIRED
    assert not _offered(slot)


def test_a_slot_blocked_before_all_hours_were_removed_is_not_offered_when_unblocked(client, rita, patel_works, day):
    slot = _slot(patel_works, local(day, 9, 40))
    verified_login(client, rita)
    client.post(reverse("reception_slot_block", args=[slot.pk]), {"reason": "Staff meeting"})
    WorkingHours.objects.filter(practitioner=patel_works).delete()
    slots_generate(now=timezone.now(), practitioner=patel_works)

    client.post(reverse("reception_slot_unblock", args=[slot.pk]))

    assert not _offered(slot)


def test_a_slot_unblocked_within_the_hours_is_offered_again(client, rita, patel_works, day):
    slot = _slot(patel_works, local(day, 9, 40))
    verified_login(client, rita)
    client.post(reverse("reception_slot_block", args=[slot.pk]), {"reason": "Staff meeting"})

    client.post(reverse("reception_slot_unblock", args=[slot.pk]))

    assert _offered(slot)


def test_a_retired_time_comes_back_when_the_time_off_is_removed(client, rita, ada, patel_away_that_day):
    client.post(reverse("reception_appointment_cancel", args=[ada.pk]), {"reason": "Dr Patel is ill"})

    client.post(reverse("reception_time_off_delete", args=[TimeOff.objects.get().pk]))

    assert _offered(ada.slot)


def test_a_slot_blocked_during_time_off_cannot_be_opened_in_the_admin(admin_client, patel_works, day):
    slot = _slot(patel_works, local(day, 9, 40))
    Slot.objects.filter(pk=slot.pk).update(state=Slot.State.BLOCKED, blocked_reason="Staff meeting")
    TimeOff.objects.create(practitioner=patel_works, starts_at=local(day, 9), ends_at=local(day, 11))
    local_start = slot.starts_at.astimezone(clinic_zone())

    response = admin_client.post(
        f"/admin/bookings/slot/{slot.pk}/change/",
        {
            "practitioner": patel_works.pk,
            "starts_at_0": f"{local_start:%Y-%m-%d}",
            "starts_at_1": f"{local_start:%H:%M:%S}",
            "ends_at_0": f"{local_start:%Y-%m-%d}",
            "ends_at_1": f"{local_start + timedelta(minutes=20):%H:%M:%S}",
            "state": Slot.State.OPEN,
            "blocked_reason": "",
        },
    )

    # The state is read-only there (slots change through the services): the block stays.
    assert response.status_code == 302
    assert Slot.objects.get(pk=slot.pk).state == Slot.State.BLOCKED
    assert not _offered(slot)
