"""Reception's "Offer a time" list for an entry waiting to move a booking holds only times before that booking,
the rule the worker's matching keeps.

Found by hand: the list offered an entry moving a 12:00 booking the 15:00 the same day, and the days after.
"""

import pytest
from django.urls import reverse

from tests.helpers import local, make_slot, patient_books, waiting
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


def test_rita_is_offered_only_times_before_the_booking_an_entry_waits_to_move(client, rita, dr_patel, dr_okafor):
    booking = patient_books(make_slot(dr_patel, local(4, 12)), email="ann@example.org")
    entry, _ = waiting("ann@example.org", first_name="Ann", appointment=booking)
    earlier = [make_slot(dr_patel, local(4, 10)), make_slot(dr_okafor, local(3, 9))]
    later = [make_slot(dr_patel, local(4, 15)), make_slot(dr_okafor, local(4, 12)), make_slot(dr_patel, local(6, 9))]
    verified_login(client, rita)

    page = client.get(reverse("reception_waiting_list")).content.decode()
    choices = page.split(f'id="offer-slot-{entry.pk}"')[1].split("</select>")[0]

    for slot in earlier:
        assert f'value="{slot.pk}"' in choices
    for slot in later:
        assert f'value="{slot.pk}"' not in choices
    refused = client.post(reverse("reception_waiting_list_offer", args=[entry.pk]), {"slot": later[0].pk})
    assert refused.status_code == 400
    assert not entry.offers.exists()
