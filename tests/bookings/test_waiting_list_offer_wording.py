"""An offered time's page and e-mail say truly whom it went to: this person alone, or several (first to accept).

Found by hand: a time reception offered to one person said "A few people on the list have been offered it".
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.models import OutboundMessage
from bookings.notifications import send_due_messages
from bookings.services import waiting_list_offer_by_hand, waiting_list_scan
from tests.helpers import local, make_slot, waiting

pytestmark = pytest.mark.django_db

ALONE = "It is held for you alone until"
SEVERAL = "We have offered it to 3 people on the list, you included, and hold it for them until"


def _accept_link(email: str) -> str:
    token = OutboundMessage.objects.get(waiting_list_offer__entry__email=email).manage_token
    return reverse("waiting_list_offer", args=[token])


def _e_mail_to(mailoutbox, address: str):
    (message,) = [message for message in mailoutbox if message.to == [address]]
    return message.body, message.alternatives[0][0]


def test_a_time_offered_by_hand_to_one_person_says_it_is_held_for_them_alone(client, rita, dr_patel, mailoutbox):
    slot = make_slot(dr_patel, local(4, 10))
    entry, _ = waiting("wanda@example.org")
    waiting("xavier@example.org", first_name="Xavier")
    waiting_list_offer_by_hand(entry=entry, slot_id=slot.pk, now=timezone.now(), actor=rita)

    page = client.get(_accept_link("wanda@example.org")).content.decode()
    send_due_messages(now=timezone.now(), worker_id="worker")

    for text in (page, *_e_mail_to(mailoutbox, "wanda@example.org")):
        assert ALONE in text
        assert "few people" not in text
        assert "first to accept" not in text


def test_a_time_the_worker_offers_to_several_says_how_many_and_that_the_first_to_accept_gets_it(
    client, dr_patel, settings, mailoutbox
):
    settings.WAITING_LIST_BATCH = 3
    make_slot(dr_patel, local(4, 10))
    for minutes, name in enumerate(["wanda", "xavier", "yvonne", "zack"]):
        waiting(f"{name}@example.org", first_name=name.title(), joined=timezone.now() - timedelta(minutes=10 - minutes))
    waiting_list_scan(now=timezone.now())

    page = client.get(_accept_link("xavier@example.org")).content.decode()
    send_due_messages(now=timezone.now(), worker_id="worker")

    assert len(mailoutbox) == 3
    for text in (page, *_e_mail_to(mailoutbox, "xavier@example.org")):
        assert SEVERAL in text
        assert "the first to accept gets it" in text
        assert ALONE not in text


def test_the_offer_page_costs_the_same_query_whoever_the_time_went_to(
    client, rita, dr_patel, django_assert_num_queries
):
    slot = make_slot(dr_patel, local(4, 10))
    entry, _ = waiting("wanda@example.org")
    waiting_list_offer_by_hand(entry=entry, slot_id=slot.pk, now=timezone.now(), actor=rita)
    link = _accept_link("wanda@example.org")

    # 1. the offer by its token, with its entry, slot, practitioner and how many it went to;
    # 2. is its time booked (by reception) meanwhile?
    with django_assert_num_queries(2):
        page = client.get(link)

    assert ALONE in page.content.decode()
