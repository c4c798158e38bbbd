"""The offer page says what is true when a time cannot be accepted: a hold that ran out, or a practitioner who has
stopped taking bookings.

Found by hand: (a) a hold that simply ran out said the time "has now been offered to others" though nobody else
had been offered it; (b) an open offer for a practitioner since made inactive still showed "Accept this time",
and accepting said "Someone else took it first".
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.models import Appointment, OutboundMessage, Practitioner, WaitingListEntry, WaitingListOffer
from bookings.services import waiting_list_scan
from tests.helpers import local, make_slot, waiting

pytestmark = pytest.mark.django_db


@pytest.fixture
def held_slot(dr_patel):
    """Dr Patel's 10:00 in four days, offered to Wanda alone by the worker: held for her."""
    slot = make_slot(dr_patel, local(4, 10))
    waiting("wanda@example.org")
    waiting_list_scan(now=timezone.now())
    return slot


def offer_link(slot) -> str:
    token = OutboundMessage.objects.get(waiting_list_offer__slot=slot).manage_token
    return reverse("waiting_list_offer", args=[token])


def test_a_hold_that_ran_out_says_so_and_links_the_free_times_without_saying_others_were_offered_it(client, held_slot):
    ago = timezone.now() - timedelta(minutes=20)
    WaitingListOffer.objects.update(offered_at=ago, held_until=ago + timedelta(minutes=15))

    response = client.get(offer_link(held_slot))

    assert response.status_code == 410
    html = response.content.decode()
    assert "offered to others" not in html
    assert "that hold has ended" in html
    assert f"{reverse('booking_time')}?week=" in html and f"practitioner={held_slot.practitioner_id}" in html


@pytest.mark.parametrize("change", [{"is_active": False}, {"offers_free_consultation": False}])
def test_an_offer_from_a_practitioner_no_longer_taking_bookings_has_no_accept_button(client, held_slot, change):
    Practitioner.objects.filter(pk=held_slot.practitioner_id).update(**change)

    response = client.get(offer_link(held_slot))

    assert response.status_code == 410
    html = response.content.decode()
    assert "this time is no longer available" in html and "not taking bookings" in html
    assert "Accept this time" not in html


def test_accepting_an_offer_from_a_practitioner_who_has_left_says_so_and_changes_nothing(client, held_slot):
    Practitioner.objects.filter(pk=held_slot.practitioner_id).update(is_active=False)

    response = client.post(offer_link(held_slot))

    assert response.status_code == 410
    html = response.content.decode()
    assert "not taking bookings" in html and "Someone else took it first" not in html
    assert not Appointment.objects.exists()
    assert WaitingListOffer.objects.get().status == WaitingListOffer.Status.OFFERED
    assert WaitingListEntry.objects.get().status == WaitingListEntry.Status.WAITING
