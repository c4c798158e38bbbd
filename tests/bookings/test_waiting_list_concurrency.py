"""Real threads, real PostgreSQL: two accepts of one offered time, and a cancellation racing an accept."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bookings.models import Appointment, OutboundMessage, WaitingListEntry, WaitingListOffer
from bookings.services import (
    ChangeNotAllowed,
    PatientDetails,
    SlotUnavailable,
    appointment_book,
    appointment_cancel,
    waiting_list_leave,
    waiting_list_offer_accept,
    waiting_list_scan,
)
from tests.helpers import local, make_slot, patient_books, run_at_once, waiting, works_at

ROUNDS = 5


def token_of(email: str, slot) -> str:
    return OutboundMessage.objects.get(
        waiting_list_offer__slot=slot, waiting_list_offer__entry__email=email
    ).manage_token


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_patients_accept_the_same_time_at_once_and_exactly_one_gets_it(dr_patel, round_):
    slot = make_slot(dr_patel, local(4, 10))
    now = timezone.now()
    waiting("ann@example.org", joined=now - timedelta(minutes=1))
    waiting("bea@example.org")
    waiting_list_scan(now=now)
    tokens = [token_of("ann@example.org", slot), token_of("bea@example.org", slot)]

    results = run_at_once(2, lambda index: waiting_list_offer_accept(token=tokens[index], now=now))

    assert sorted(getattr(result, "outcome", repr(result)) for result in results) == ["booked", "gone"]
    assert Appointment.objects.live().filter(slot=slot).count() == 1
    winner = Appointment.objects.live().get(slot=slot).email
    statuses = dict(WaitingListEntry.objects.values_list("email", "status"))
    loser = ({"ann@example.org", "bea@example.org"} - {winner}).pop()
    assert (statuses[winner], statuses[loser]) == ("booked", "waiting")
    assert sorted(WaitingListOffer.objects.values_list("status", flat=True)) == ["accepted", "gone"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_cancellation_racing_an_accept_that_moves_the_same_booking_leaves_a_consistent_state(dr_patel, round_):
    now = timezone.now()
    later = make_slot(dr_patel, local(9, 10))
    works_at(dr_patel, later.starts_at)
    booking = patient_books(later, email="ann@example.org")
    earlier = make_slot(dr_patel, local(4, 10))
    waiting("ann@example.org", appointment=booking)
    waiting_list_scan(now=now)
    token = token_of("ann@example.org", earlier)

    def work(index):
        if index == 0:
            return waiting_list_offer_accept(token=token, now=now)
        return appointment_cancel(appointment=booking, now=now)

    accepted, cancelled = run_at_once(2, work)

    # No deadlock, no error: each finished in one of the two orders.
    assert getattr(accepted, "outcome", None) in ("moved", "booked"), accepted
    assert not isinstance(cancelled, Exception) or isinstance(cancelled, ChangeNotAllowed), cancelled
    booking.refresh_from_db()
    assert booking.status == Appointment.Status.CANCELLED
    for slot in (earlier, later):
        assert Appointment.objects.live().filter(slot=slot).count() <= 1
    assert WaitingListOffer.objects.get().status == WaitingListOffer.Status.ACCEPTED
    assert WaitingListEntry.objects.get().status == WaitingListEntry.Status.BOOKED
    if accepted.outcome == "moved":
        # Moved first, then the cancellation cancelled it at its new time: nothing live.
        assert booking.slot_id == earlier.pk and not Appointment.objects.live().exists()
    else:
        # Cancelled first: the accept booked the earlier time afresh, and the later one is free.
        assert Appointment.objects.live().get().slot_id == earlier.pk


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_rita_booking_a_held_time_for_a_caller_while_the_patient_accepts_leaves_one_booking(dr_patel, rita, round_):
    slot = make_slot(dr_patel, local(4, 10))
    now = timezone.now()
    waiting("ann@example.org")
    waiting_list_scan(now=now)
    token = token_of("ann@example.org", slot)

    def work(index):
        if index == 0:
            return waiting_list_offer_accept(token=token, now=now)
        return appointment_book(
            slot_id=slot.pk, patient=PatientDetails("Cal", "Ler", "07700 900789"), now=now, booked_by=rita
        )

    accepted, phoned = run_at_once(2, work)

    assert Appointment.objects.live().filter(slot=slot).count() == 1
    entry = WaitingListEntry.objects.get()
    if accepted.outcome == "booked":
        assert isinstance(phoned, SlotUnavailable) and entry.status == "booked"
    else:
        assert accepted.outcome == "gone" and not isinstance(phoned, Exception)
        assert entry.status == "waiting" and WaitingListOffer.objects.get().status == "gone"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_patient_leaving_the_list_while_accepting_never_deadlocks(dr_patel, round_):
    slot = make_slot(dr_patel, local(4, 10))
    now = timezone.now()
    entry, _ = waiting("ann@example.org")
    waiting_list_scan(now=now)
    token = token_of("ann@example.org", slot)

    def work(index):
        if index == 0:
            return waiting_list_offer_accept(token=token, now=now)
        return waiting_list_leave(entry=entry, now=now)

    accepted, left = run_at_once(2, work)

    assert not isinstance(left, Exception), left
    assert accepted.outcome in ("booked", "left"), accepted
    entry.refresh_from_db()
    assert entry.status == ("booked" if accepted.outcome == "booked" else "left")
    assert Appointment.objects.live().filter(slot=slot).count() == (1 if accepted.outcome == "booked" else 0)
