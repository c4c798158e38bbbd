"""Rita's waiting list: who waits for what and since when, offers and outcomes; adding a caller, offering a
time by hand, removing an entry; a held slot on the day view."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.forms import SAFETY_QUESTIONS
from bookings.models import OutboundMessage, Slot, WaitingListEntry, WaitingListOffer
from bookings.services import waiting_list_scan
from tests.helpers import SAFE_ANSWERS, days_ahead, local, make_slot, waiting
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db
SIZES = [1, 10]
AROUND_THE_VIEW = 7

CALLER = {
    **SAFE_ANSWERS,
    "first_name": "Carol",
    "last_name": "Caller",
    "email": "carol@example.org",
    "phone": "07700 900321",
    "practitioner": "",
    "weekdays": ["0", "2"],
    "parts_of_day": ["evening"],
    "privacy_notice_told": "on",
}


def test_rita_sees_who_waits_for_what_since_when_and_the_offers_made(client, rita, dr_patel):
    slot = make_slot(dr_patel, local(4, 10))
    waiting("wanda@example.org", practitioner=dr_patel, weekdays=[0, 1, 2, 3, 4, 5, 6])
    waiting_list_scan(now=timezone.now())
    verified_login(client, rita)

    html = client.get(reverse("reception_waiting_list")).content.decode()

    assert "Wanda Waits" in html and "Dr Priya Patel" in html and "Mornings (before 12:00)" in html
    local_start = slot.starts_at.astimezone(local(0, 0).tzinfo)
    assert f"{local_start:%H:%M}, Dr Priya Patel: offered" in html


def test_rita_adds_a_caller_after_the_safety_questions(client, rita):
    verified_login(client, rita)
    form = {**CALLER, "wait_until": days_ahead(10).isoformat()}

    client.post(reverse("reception_waiting_list_add"), form)

    entry = WaitingListEntry.objects.get()
    assert (entry.email, entry.weekdays, entry.parts_of_day, entry.added_by) == (
        "carol@example.org",
        [0, 2],
        ["evening"],
        rita,
    )
    # Every question, each answered "no" (the one-box check of #18 records them all).
    assert entry.safety_answers["version"] and len(entry.safety_answers["answers"]) == len(SAFETY_QUESTIONS)
    assert {answer["answer"] for answer in entry.safety_answers["answers"]} == {"no"}


def test_a_yes_to_a_safety_question_adds_nobody_and_shows_the_urgent_advice(client, rita):
    verified_login(client, rita)
    form = {**CALLER, "wait_until": days_ahead(10).isoformat(), "red_flags": ["saddle_numbness"]}

    response = client.post(reverse("reception_waiting_list_add"), form)

    assert "Nothing was added. Read this to the caller now" in response.content.decode()
    assert not WaitingListEntry.objects.exists()


def test_rita_offers_a_chosen_time_to_a_chosen_person_and_it_is_held_for_them(client, rita, dr_patel):
    slot = make_slot(dr_patel, local(4, 10))
    # Wanda asked for evenings only: the worker would not offer her 10:00, Rita may.
    entry, _ = waiting("wanda@example.org", parts_of_day=["evening"])
    verified_login(client, rita)

    client.post(reverse("reception_waiting_list_offer", args=[entry.pk]), {"slot": slot.pk})

    offer = WaitingListOffer.objects.get()
    assert (offer.entry, offer.slot, offer.offered_by) == (entry, slot, rita)
    assert OutboundMessage.objects.get().recipient == "wanda@example.org"
    assert not Slot.objects.bookable(now=timezone.now()).filter(pk=slot.pk).exists()
    # The same time a second time: a clear message, no second offer.
    again = client.post(reverse("reception_waiting_list_offer", args=[entry.pk]), {"slot": slot.pk})
    assert again.status_code == 400 and WaitingListOffer.objects.count() == 1


def test_rita_removes_an_entry_and_its_held_time_is_free_again(client, rita, dr_patel):
    slot = make_slot(dr_patel, local(4, 10))
    entry, _ = waiting("wanda@example.org")
    waiting_list_scan(now=timezone.now())
    verified_login(client, rita)

    client.post(reverse("reception_waiting_list_remove", args=[entry.pk]))

    entry.refresh_from_db()
    assert entry.status == WaitingListEntry.Status.REMOVED
    assert WaitingListOffer.objects.get().status == WaitingListOffer.Status.WITHDRAWN
    assert Slot.objects.bookable(now=timezone.now()).filter(pk=slot.pk).exists()


def test_the_day_view_shows_a_held_slot_as_held_and_rita_can_still_book_it(client, rita, dr_patel):
    slot = make_slot(dr_patel, local(4, 10))
    waiting("wanda@example.org")
    waiting_list_scan(now=timezone.now())
    verified_login(client, rita)

    html = client.get(f"{reverse('reception_day')}?date={days_ahead(4).isoformat()}").content.decode()

    assert "Held for a waiting-list offer until" in html
    assert f"{reverse('reception_book')}?slot={slot.pk}" in html


@pytest.mark.parametrize("size", SIZES)
def test_the_waiting_list_costs_six_queries_at_any_size(client, rita, dr_patel, django_assert_num_queries, size):
    for index in range(size):
        make_slot(dr_patel, local(4, 9) + timedelta(minutes=20 * index))
        waiting(f"patient{index}@example.org")
        waiting(f"left{index}@example.org")
    WaitingListEntry.objects.filter(email__startswith="left").update(status="left", ended_at=timezone.now())
    waiting_list_scan(now=timezone.now())
    verified_login(client, rita)

    # The waiting entries; their offers; the recently ended entries; their offers; the next bookable times;
    # the access record (who looked).
    with django_assert_num_queries(AROUND_THE_VIEW + 6):
        response = client.get(reverse("reception_waiting_list"))

    assert len(response.context["waiting"]) == size


def test_rita_reads_the_caller_how_long_the_waiting_list_keeps_their_details(client, rita):
    verified_login(client, rita)

    page = client.get(reverse("reception_waiting_list_add")).content.decode()

    assert "Read out: We keep these details and your safety-check answers while you wait" in page
    assert "erase them 30 days after you leave the list" in page


def test_rita_sees_first_the_times_that_suit_what_the_caller_asked_for(client, rita, dr_patel, dr_okafor):
    from bookings.models import PartOfDay

    monday = days_ahead(7)
    monday -= timedelta(days=monday.weekday())
    monday_morning_okafor = make_slot(dr_okafor, local(monday, 10))
    monday_afternoon_okafor = make_slot(dr_okafor, local(monday, 14))
    monday_morning_patel = make_slot(dr_patel, local(monday, 10, 20))
    tuesday_morning_okafor = make_slot(dr_okafor, local(monday + timedelta(days=1), 10))
    entry, _ = waiting("hana@example.org", practitioner=dr_okafor, weekdays=[0], parts_of_day=[PartOfDay.MORNING])
    verified_login(client, rita)

    page = client.get(reverse("reception_waiting_list")).content.decode()

    suiting = page.split('label="Times that suit what they asked for"')[1].split("</optgroup>")[0]
    assert f'value="{monday_morning_okafor.pk}"' in suiting
    others = page.split('label="Other times (if they say one would do)"')[1].split("</optgroup>")[0]
    for unsuitable in (monday_afternoon_okafor, monday_morning_patel, tuesday_morning_okafor):
        assert f'value="{unsuitable.pk}"' not in suiting and f'value="{unsuitable.pk}"' in others
    offered = client.post(reverse("reception_waiting_list_offer", args=[entry.pk]), {"slot": monday_morning_okafor.pk})
    assert offered.status_code == 302
    assert WaitingListOffer.objects.get(entry=entry).slot == monday_morning_okafor


def test_a_caller_rita_put_on_the_list_is_told_to_phone_to_leave_it_not_to_use_a_link_they_never_had(
    client, rita, dr_patel, settings
):
    from django.core import mail

    from bookings.notifications import send_due_messages

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    slot = make_slot(dr_patel, local(4, 10))
    verified_login(client, rita)
    client.post(reverse("reception_waiting_list_add"), {**CALLER, "wait_until": days_ahead(10).isoformat()})
    entry = WaitingListEntry.objects.get()
    client.post(reverse("reception_waiting_list_offer", args=[entry.pk]), {"slot": slot.pk})

    send_due_messages(now=timezone.now(), worker_id="worker")

    (offer,) = mail.outbox
    for body in (offer.body, offer.alternatives[0][0]):
        assert "To leave the list, call us on" in body and "the link you were given" not in body
