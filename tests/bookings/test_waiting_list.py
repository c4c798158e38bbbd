"""The waiting list: who a freed time is offered to, holds, accepting, leaving (services; pages in the next file)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.models import (
    Appointment,
    OutboundMessage,
    PartOfDay,
    Slot,
    WaitingListEntry,
    WaitingListOffer,
)
from bookings.services import (
    AlreadyWaiting,
    PatientDetails,
    appointment_book,
    appointment_cancel,
    waiting_list_matches,
    waiting_list_offer_accept,
    waiting_list_scan,
)
from tests.helpers import local, make_slot, patient_books, waiting, works_at

pytestmark = pytest.mark.django_db


def offered_to(slot) -> list[str]:
    return list(
        WaitingListOffer.objects.filter(slot=slot).order_by("entry__created_at").values_list("entry__email", flat=True)
    )


def accept_token_of(offer_entry_email: str, slot) -> str:
    """The raw accept token, as the offer e-mail carries it (the offer keeps its hash)."""
    return OutboundMessage.objects.get(
        kind=OutboundMessage.Kind.WAITING_LIST_OFFER,
        waiting_list_offer__slot=slot,
        waiting_list_offer__entry__email=offer_entry_email,
    ).manage_token


@pytest.fixture
def freed_morning(dr_patel):
    """Dr Patel's 10:00 in four days' time, booked and then cancelled: a time that came free."""
    slot = make_slot(dr_patel, local(4, 10))
    works_at(dr_patel, slot.starts_at)
    appointment = patient_books(slot, email="first@example.org")
    appointment_cancel(appointment=appointment, now=timezone.now())
    return slot


def test_a_cancelled_time_is_offered_to_the_matching_people_only_in_order_of_joining(
    freed_morning, dr_patel, dr_okafor
):
    now = timezone.now()
    day = freed_morning.starts_at.astimezone(local(0, 0).tzinfo)
    other_days = [d for d in range(7) if d != day.weekday()]
    waiting("ann@example.org", joined=now - timedelta(hours=9))
    waiting("okafor.only@example.org", practitioner=dr_okafor, joined=now - timedelta(hours=8))
    waiting("other.days@example.org", weekdays=other_days, joined=now - timedelta(hours=7))
    waiting("afternoons@example.org", parts_of_day=[PartOfDay.AFTERNOON], joined=now - timedelta(hours=6))
    waiting("too.soon.done@example.org", wait_until=day.date() - timedelta(days=1), joined=now - timedelta(hours=5))
    waiting("bea@example.org", practitioner=dr_patel, joined=now - timedelta(hours=4))
    waiting("cy@example.org", weekdays=[day.weekday()], joined=now - timedelta(hours=3))
    waiting("dee@example.org", parts_of_day=[PartOfDay.MORNING], joined=now - timedelta(hours=2))

    report = waiting_list_scan(now=now)

    assert offered_to(freed_morning) == ["ann@example.org", "bea@example.org", "cy@example.org"]
    assert report.offers_made == 3
    # Held for them: patients no longer see it, and each of the three has one e-mail waiting in the outbox.
    assert not Slot.objects.bookable(now=now).filter(pk=freed_morning.pk).exists()
    assert not Slot.objects.get(pk=freed_morning.pk).offered_to_patients(now=now)
    recipients = OutboundMessage.objects.filter(kind=OutboundMessage.Kind.WAITING_LIST_OFFER).values_list(
        "recipient", flat=True
    )
    assert sorted(recipients) == ["ann@example.org", "bea@example.org", "cy@example.org"]


def test_when_the_hold_runs_out_the_worker_offers_the_next_batch_until_the_minimum_notice(freed_morning):
    now = timezone.now()
    for index, name in enumerate(["ann", "bea", "cy", "dee", "eve"]):
        waiting(f"{name}@example.org", joined=now - timedelta(hours=10 - index))
    waiting_list_scan(now=now)
    # Nothing new while the hold lasts.
    assert waiting_list_scan(now=now + timedelta(minutes=14)).offers_made == 0

    later = now + timedelta(minutes=15)
    report = waiting_list_scan(now=later)

    assert report.expired_offers == 3
    assert offered_to(freed_morning)[3:] == ["dee@example.org", "eve@example.org"]
    assert set(
        WaitingListOffer.objects.filter(entry__email__in=["ann@example.org", "bea@example.org"]).values_list(
            "status", flat=True
        )
    ) == {WaitingListOffer.Status.EXPIRED}
    # Inside the minimum notice the time is no longer offered to anyone.
    waiting("fay@example.org", joined=now)
    inside_notice = freed_morning.starts_at - timedelta(minutes=119)
    assert waiting_list_scan(now=inside_notice).offers_made == 0


def test_entries_leave_the_list_by_themselves_after_their_last_day(dr_patel):
    entry, _ = waiting("ann@example.org", wait_until=local(2, 0).date())
    waiting_list_scan(now=local(3, 9))
    entry.refresh_from_db()
    assert entry.status == WaitingListEntry.Status.EXPIRED


def test_one_entry_per_email_address_at_a_time_in_any_case(db):
    waiting("ann@example.org")
    with pytest.raises(AlreadyWaiting):
        waiting("ANN@example.org")


def test_a_patient_who_books_online_or_by_phone_is_taken_off_the_list(dr_patel, rita):
    ann, _ = waiting("ann@example.org")
    bea, _ = waiting("bea@example.org")
    patient_books(make_slot(dr_patel, local(5, 9)), email="Ann@Example.org")
    appointment_book(
        slot_id=make_slot(dr_patel, local(5, 10)).pk,
        patient=PatientDetails("Bea", "Waits", "07700 900456", email="bea@example.org"),
        now=timezone.now(),
        booked_by=rita,
    )
    ann.refresh_from_db()
    bea.refresh_from_db()
    assert (ann.status, bea.status) == (WaitingListEntry.Status.BOOKED_ELSEWHERE,) * 2


def test_the_first_to_accept_gets_the_time_with_their_safety_answers_and_the_others_are_told_it_has_gone(
    freed_morning,
):
    now = timezone.now()
    for name in ["ann", "bea"]:
        waiting(f"{name}@example.org", first_name=name.title())
    waiting_list_scan(now=now)

    won = waiting_list_offer_accept(token=accept_token_of("bea@example.org", freed_morning), now=now)
    lost = waiting_list_offer_accept(token=accept_token_of("ann@example.org", freed_morning), now=now)

    assert (won.outcome, lost.outcome) == ("booked", "gone")
    appointment = Appointment.objects.live().get(slot=freed_morning)
    assert (appointment.first_name, appointment.source) == ("Bea", Appointment.Source.WAITING_LIST)
    assert appointment.safety_answers == {"version": "2026-11", "answers": []}
    assert appointment.privacy_notice_version == "2026-11"
    statuses = dict(WaitingListEntry.objects.values_list("email", "status"))
    assert statuses == {"ann@example.org": "waiting", "bea@example.org": "booked"}
    # The link works once.
    assert waiting_list_offer_accept(token=accept_token_of("bea@example.org", freed_morning), now=now).outcome == "used"


def test_an_accept_link_works_only_while_the_time_is_held(freed_morning):
    now = timezone.now()
    waiting("ann@example.org")
    waiting_list_scan(now=now)
    token = accept_token_of("ann@example.org", freed_morning)

    late = waiting_list_offer_accept(token=token, now=now + timedelta(minutes=15))

    assert late.outcome == "expired"
    assert not Appointment.objects.live().filter(slot=freed_morning).exists()
    assert waiting_list_offer_accept(token="forged" + token[6:], now=now).outcome == "unknown"


def test_accepting_moves_an_existing_booking_and_its_old_time_is_offered_on(dr_patel):
    now = timezone.now()
    later_slot = make_slot(dr_patel, local(9, 10))
    earlier_slot = make_slot(dr_patel, local(4, 10))
    Slot.objects.filter(pk=earlier_slot.pk).update(state=Slot.State.BLOCKED)
    booking = patient_books(later_slot, email="ann@example.org")
    waiting("ann@example.org", appointment=booking)
    waiting("bea@example.org", joined=now + timedelta(seconds=1))
    works_at(dr_patel, later_slot.starts_at)
    # A time after Ann's booking is no improvement: it is offered to Bea only.
    even_later = make_slot(dr_patel, local(10, 10))
    waiting_list_scan(now=now)
    assert offered_to(even_later) == ["bea@example.org"]
    WaitingListOffer.objects.filter(slot=even_later).update(status=WaitingListOffer.Status.EXPIRED)
    Slot.objects.filter(pk=earlier_slot.pk).update(state=Slot.State.OPEN)
    waiting_list_scan(now=now)
    assert offered_to(earlier_slot) == ["ann@example.org", "bea@example.org"]

    result = waiting_list_offer_accept(token=accept_token_of("ann@example.org", earlier_slot), now=now)

    assert result.outcome == "moved"
    booking.refresh_from_db()
    assert booking.slot_id == earlier_slot.pk
    assert Appointment.objects.count() == 1
    # The freed later time goes to the next scan; Bea's offer of the earlier time is gone.
    waiting_list_scan(now=now)
    assert "bea@example.org" in offered_to(later_slot)
    assert WaitingListOffer.objects.get(slot=earlier_slot, entry__email="bea@example.org").status == "gone"


def test_reception_can_book_a_held_time_for_a_caller_and_the_offer_then_says_it_has_gone(freed_morning, rita):
    now = timezone.now()
    waiting("ann@example.org")
    waiting_list_scan(now=now)

    appointment_book(
        slot_id=freed_morning.pk, patient=PatientDetails("Cal", "Ler", "07700 900789"), now=now, booked_by=rita
    )

    assert waiting_list_offer_accept(token=accept_token_of("ann@example.org", freed_morning), now=now).outcome == "gone"
    assert WaitingListEntry.objects.get().status == WaitingListEntry.Status.WAITING


def test_an_online_booking_cannot_take_a_held_time(freed_morning):
    now = timezone.now()
    waiting("ann@example.org")
    waiting_list_scan(now=now)
    from bookings.services import SlotUnavailable

    with pytest.raises(SlotUnavailable):
        patient_books(freed_morning, email="someone.else@example.org")


@pytest.mark.parametrize("size", [6, 300])
def test_the_matching_runs_the_same_queries_whatever_the_length_of_the_list(
    dr_patel, dr_okafor, django_assert_num_queries, size
):
    now = timezone.now()
    for hour in (9, 10):
        make_slot(dr_patel, local(4, hour))
    # SIZE matching people for Dr Patel, and as many for Dr Okafor only (who has no free time).
    for index in range(size):
        waiting(f"patel{index}@example.org", joined=now - timedelta(minutes=size - index))
        waiting(f"okafor{index}@example.org", practitioner=dr_okafor)

    # One query finds who each free time goes to.
    with django_assert_num_queries(1):
        matches = waiting_list_matches(now=now, batch=3)
    assert (
        list(matches.values())
        == [list(WaitingListEntry.objects.filter(email__startswith="patel").values_list("pk", flat=True)[:3])] * 2
    )

    # The scan: 1 holds ended, 2 offers for booked slots ended, 3 entries past their date, 4 the matching;
    # then per free time offered: savepoint, the slot locked, held?, booked?, the entries locked, the offers,
    # their e-mails, release (8). Two free times, the same 20 queries with 12 or 600 people waiting.
    with django_assert_num_queries(4 + 2 * 8):
        report = waiting_list_scan(now=now)
    assert (report.slots_offered, report.offers_made) == (2, 6)
    # Each free time to the next three in joining order: the first three the 09:00, the next three the 10:00.
    first_six = list(WaitingListEntry.objects.filter(email__startswith="patel").values_list("email", flat=True)[:6])
    assert offered_to(Slot.objects.get(starts_at=local(4, 9))) == first_six[:3]
    assert offered_to(Slot.objects.get(starts_at=local(4, 10))) == first_six[3:]


def test_accepting_an_offer_for_another_person_keeps_the_online_limit_per_contact(client, freed_morning, dr_patel):
    """Found by hand: two bookings online, then a third through the list ("for another person") was booked."""
    for hour in (9, 11):
        patient_books(make_slot(dr_patel, local(5, hour)), email="ann@example.org", phone=f"07700 900{hour:03d}")
    waiting("ANN@example.org", first_name="Ann")
    waiting_list_scan(now=timezone.now())
    token = accept_token_of("ANN@example.org", freed_morning)

    refused = waiting_list_offer_accept(token=token, now=timezone.now())

    assert refused.outcome == "limit"
    assert not Appointment.objects.live().filter(slot=freed_morning).exists()
    assert WaitingListOffer.objects.get(slot=freed_morning).status == WaitingListOffer.Status.OFFERED
    assert WaitingListEntry.objects.get(email="ANN@example.org").status == WaitingListEntry.Status.WAITING
    page = client.post(reverse("waiting_list_offer", args=[token]))
    assert page.status_code == 409
    assert "Please phone us to book this time" in page.content.decode()
    # Below the limit the same offer books: one of the two is cancelled.
    appointment_cancel(
        appointment=Appointment.objects.live().filter(email="ann@example.org").first(), now=timezone.now()
    )
    assert waiting_list_offer_accept(token=token, now=timezone.now()).outcome == "booked"


def test_a_new_booking_with_the_address_leaves_a_place_waiting_to_move_a_booking_alone(dr_patel):
    """Found by hand: anyone who booked online with a patient's e-mail address ended that patient's "something
    sooner" place ("booked another way"), though their own booking had not moved."""
    carol_booking = patient_books(make_slot(dr_patel, local(6, 15)), email="carol@example.org")
    carol, _ = waiting("carol@example.org", appointment=carol_booking)

    earlier = make_slot(dr_patel, local(6, 14))
    patient_books(earlier, first_name="Mallory", email="Carol@Example.org", phone="07700 900999")

    carol.refresh_from_db()
    assert carol.status == WaitingListEntry.Status.WAITING
    assert carol.appointment_id == carol_booking.pk
