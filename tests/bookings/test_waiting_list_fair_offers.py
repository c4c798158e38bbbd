"""Who a time may be offered to: an entry moving a booking only times before it, wherever the offer comes from
(the worker, reception's hand, the accept link); and a time that comes free again goes first to those who lost it
to someone else, in joining order.

Found by hand: reception offered an entry moving a 12:00 booking the 15:00, and accepting moved the booking later;
and Kim, offered Friday 12:00 with two others and beaten to it by Jack, was skipped when reception cancelled
Jack's booking: Nina, who joined after her, got it "held for you alone".
"""

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.models import Appointment, OutboundMessage, PartOfDay, WaitingListEntry, WaitingListOffer
from bookings.services import (
    OfferNotPossible,
    appointment_cancel,
    appointment_move,
    waiting_list_offer_accept,
    waiting_list_offer_by_hand,
    waiting_list_scan,
)
from tests.helpers import days_ahead, local, make_slot, patient_books, waiting, works_at

pytestmark = pytest.mark.django_db


def accept_token_of(email: str, slot) -> str:
    """The raw accept token of the newest offer of SLOT to EMAIL, as its e-mail carries it."""
    return (
        OutboundMessage.objects.filter(
            kind=OutboundMessage.Kind.WAITING_LIST_OFFER,
            waiting_list_offer__slot=slot,
            waiting_list_offer__entry__email=email,
        )
        .latest("pk")
        .manage_token
    )


@pytest.fixture
def noon_booking(dr_patel):
    """Ann's booking at 12:00 in four days, and her entry waiting for something sooner (every time, any day)."""
    booking = patient_books(make_slot(dr_patel, local(4, 12)), first_name="Ann", email="ann@example.org")
    works_at(dr_patel, booking.slot.starts_at)
    entry, _ = waiting("ann@example.org", first_name="Ann", appointment=booking)
    return booking, entry


def test_reception_cannot_offer_a_time_after_the_booking_an_entry_waits_to_move(noon_booking, dr_patel, rita):
    booking, entry = noon_booking
    later = make_slot(dr_patel, local(4, 15))

    with pytest.raises(OfferNotPossible, match="only times before it"):
        waiting_list_offer_by_hand(entry=entry, slot_id=later.pk, now=timezone.now(), actor=rita)

    assert not WaitingListOffer.objects.exists()
    assert not OutboundMessage.objects.filter(kind=OutboundMessage.Kind.WAITING_LIST_OFFER).exists()


def test_reception_can_offer_a_time_before_the_booking_an_entry_waits_to_move(noon_booking, dr_patel, rita):
    _, entry = noon_booking
    earlier = make_slot(dr_patel, local(4, 10))

    offer = waiting_list_offer_by_hand(entry=entry, slot_id=earlier.pk, now=timezone.now(), actor=rita)

    assert (offer.entry_id, offer.slot_id) == (entry.pk, earlier.pk)


def test_accepting_an_offer_that_would_move_a_booking_later_is_refused_and_changes_nothing(
    client, noon_booking, dr_patel, rita
):
    booking, _ = noon_booking
    eleven = make_slot(dr_patel, local(4, 11))
    ten = make_slot(dr_patel, local(4, 10))
    ten.state = ten.State.BLOCKED
    ten.save(update_fields=["state"])
    now = timezone.now()
    waiting_list_scan(now=now)
    token = accept_token_of("ann@example.org", eleven)
    # After the offer, reception moves Ann's booking to 10:00 on the phone: 11:00 is now later than it.
    ten.state = ten.State.OPEN
    ten.save(update_fields=["state"])
    appointment_move(appointment=booking, new_slot_id=ten.pk, now=now, actor=rita)

    refused = waiting_list_offer_accept(token=token, now=now)

    assert refused.outcome == "not earlier"
    booking.refresh_from_db()
    assert booking.slot_id == ten.pk
    assert not Appointment.objects.live().filter(slot=eleven).exists()
    assert WaitingListEntry.objects.get(email="ann@example.org").status == WaitingListEntry.Status.WAITING
    page = client.post(reverse("waiting_list_offer", args=[token]))
    assert page.status_code == 409
    assert "would move your booking to a later time" in page.content.decode()
    booking.refresh_from_db()
    assert booking.slot_id == ten.pk


@pytest.fixture
def friday_noon(dr_patel):
    """A 12:00 with Dr Patel, and Kim, Jack and Lee (joined in that order) waiting for that day's afternoons."""
    slot = make_slot(dr_patel, local(5, 12))
    works_at(dr_patel, slot.starts_at)
    now = timezone.now()
    wishes = {"practitioner": dr_patel, "weekdays": [days_ahead(5).weekday()], "parts_of_day": [PartOfDay.AFTERNOON]}
    for minutes, name in enumerate(("kim", "jack", "lee")):
        waiting(
            f"{name}@example.org", first_name=name.title(), joined=now - timezone.timedelta(hours=3 - minutes), **wishes
        )
    return slot, wishes


def test_a_time_that_comes_free_again_goes_first_to_those_who_lost_it_to_someone_else(friday_noon, rita):
    slot, wishes = friday_noon
    now = timezone.now()
    waiting_list_scan(now=now)
    assert waiting_list_offer_accept(token=accept_token_of("jack@example.org", slot), now=now).outcome == "booked"
    appointment_cancel(appointment=Appointment.objects.get(slot=slot), now=now, actor=rita)
    waiting("nina@example.org", first_name="Nina", joined=now, **wishes)

    waiting_list_scan(now=now)

    holding = WaitingListOffer.objects.holding(now=now).filter(slot=slot)
    assert sorted(holding.values_list("entry__email", flat=True)) == [
        "kim@example.org",
        "lee@example.org",
        "nina@example.org",
    ]
    # Kim's new link books it; her old one (ended when Jack took it) no longer works.
    assert waiting_list_offer_accept(token=accept_token_of("kim@example.org", slot), now=now).outcome == "booked"
    assert Appointment.objects.live().get(slot=slot).email == "kim@example.org"


def test_reception_may_offer_again_a_time_someone_lost_to_another_but_not_one_they_let_run_out(friday_noon, rita):
    slot, _ = friday_noon
    now = timezone.now()
    waiting_list_scan(now=now)
    waiting_list_offer_accept(token=accept_token_of("jack@example.org", slot), now=now)
    appointment_cancel(appointment=Appointment.objects.get(slot=slot), now=now, actor=rita)
    kim, lee = (WaitingListEntry.objects.get(email=f"{name}@example.org") for name in ("kim", "lee"))

    offer = waiting_list_offer_by_hand(entry=kim, slot_id=slot.pk, now=now, actor=rita)

    assert offer.status == WaitingListOffer.Status.OFFERED and offer.offered_by == rita
    later = now + timezone.timedelta(minutes=20)
    waiting_list_scan(now=later)
    assert WaitingListOffer.objects.get(entry=kim, slot=slot).status == WaitingListOffer.Status.EXPIRED
    # Lee, who lost it to Jack, is offered it now; Kim let her hold run out and is not offered it again.
    assert WaitingListOffer.objects.get(entry=lee, slot=slot).status == WaitingListOffer.Status.OFFERED
    with pytest.raises(OfferNotPossible, match="already been offered"):
        waiting_list_offer_by_hand(entry=kim, slot_id=slot.pk, now=later, actor=rita)
