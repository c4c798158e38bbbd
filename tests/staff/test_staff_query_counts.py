"""Every staff list runs the same queries with one row and with ten.

Each request starts with the same four (1 the session, 2 the user, 3 the second factor's device named in the
session, for request.user.is_verified(), 4 the group check) and
ends with the same three (the session saved again for idle expiry by
clinic.middleware.StaffSessionIdleExpiryMiddleware: savepoint, update, release); the comments name the ones in between.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.models import CallbackRequest
from tests.helpers import (
    appointment_in_the_past_or_today,
    days_ahead,
    local,
    make_slot,
    patient_books,
    today,
)
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db
SIZES = [1, 10]
AROUND_THE_VIEW = 7


def _slots(practitioner, count, day=None):
    day = day or days_ahead(2)
    return [make_slot(practitioner, local(day, 9) + timedelta(minutes=20 * index)) for index in range(count)]


@pytest.mark.parametrize("size", SIZES)
def test_the_next_free_slots_cost_one_query_at_any_size(client, rita, dr_patel, django_assert_num_queries, size):
    _slots(dr_patel, size)
    verified_login(client, rita)

    # The free slots with their practitioner (one query, the "no live appointment" rule inside it).
    with django_assert_num_queries(AROUND_THE_VIEW + 1):
        response = client.get(reverse("reception_next_free"))

    assert len(response.context["slots"]) == size


@pytest.mark.parametrize("size", SIZES)
def test_the_week_view_costs_six_queries_at_any_size(client, rita, dr_patel, django_assert_num_queries, size):
    for slot in _slots(dr_patel, size):
        patient_books(slot)
    verified_login(client, rita)

    # The practitioner; the week's slots; the week's live appointments; the practitioner's working
    # hours and the week's time off (which booked slots no longer fit).
    # And the record of who saw these patients (bookings.privacy.patient_data_access_record).
    with django_assert_num_queries(AROUND_THE_VIEW + 6):
        response = client.get(reverse("reception_week", args=[dr_patel.pk]), {"date": days_ahead(2).isoformat()})

    assert len(response.context["rows"]) == size


@pytest.mark.parametrize("size", SIZES)
def test_a_search_costs_two_queries_at_any_size(client, rita, dr_patel, django_assert_num_queries, size):
    for slot in _slots(dr_patel, size):
        patient_books(slot, last_name="Lovelace")
    verified_login(client, rita)

    # The matching appointments with slot and practitioner.
    # And the record of who saw these patients (bookings.privacy.patient_data_access_record).
    with django_assert_num_queries(AROUND_THE_VIEW + 2):
        response = client.post(reverse("reception_search"), {"q": "Lovelace"})

    assert len(response.context["results"]) == size


@pytest.mark.parametrize("size", SIZES)
def test_the_call_back_list_costs_three_queries_at_any_size(client, rita, django_assert_num_queries, size):
    now = timezone.now()
    for index in range(size):
        CallbackRequest.objects.create(name=f"Caller {index}", phone="07700 900999", created_at=now)
        CallbackRequest.objects.create(
            name=f"Done {index}", phone="07700 900999", created_at=now, done_at=now, done_by=rita
        )
    verified_login(client, rita)

    # The open requests; the recently done ones with who did them.
    # And the record of who saw these patients (bookings.privacy.patient_data_access_record).
    with django_assert_num_queries(AROUND_THE_VIEW + 3):
        response = client.get(reverse("reception_callbacks"))

    assert len(response.context["open_requests"]) == size


@pytest.mark.parametrize("size", SIZES)
def test_my_day_costs_three_queries_at_any_size(client, dr_patel, django_assert_num_queries, size):
    for slot in _slots(dr_patel, size, day=today()):
        appointment_in_the_past_or_today(slot)
    verified_login(client, dr_patel.user)

    # Dr Patel's practitioner record; her appointments of today with their slots.
    # And the record of who saw these patients (bookings.privacy.patient_data_access_record).
    with django_assert_num_queries(AROUND_THE_VIEW + 3):
        response = client.get(reverse("practitioner_day"))

    assert len(response.context["appointments"]) == size


@pytest.mark.parametrize("size", SIZES)
def test_upcoming_costs_three_queries_at_any_size(client, dr_patel, django_assert_num_queries, size):
    for slot in _slots(dr_patel, size):
        patient_books(slot)
    verified_login(client, dr_patel.user)

    # Dr Patel's practitioner record; her upcoming appointments with their slots.
    # And the record of who saw these patients (bookings.privacy.patient_data_access_record).
    with django_assert_num_queries(AROUND_THE_VIEW + 3):
        response = client.get(reverse("practitioner_upcoming"))

    assert len(response.context["appointments"]) == size
