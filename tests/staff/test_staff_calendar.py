"""Rita's day view and week view: slots shown as open, booked, blocked or past, in constant queries."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from bookings.models import Appointment, CallbackRequest, OutboundMessage, Practitioner, Slot
from tests.helpers import (
    days_ahead,
    local,
    make_slot,
    patient_books,
    today,
)
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


def test_rita_sees_one_column_per_practitioner_and_each_slot_state(client, rita, dr_patel, dr_okafor):
    day = days_ahead(3)
    booked = make_slot(dr_patel, local(day, 9, 0))
    patient_books(booked, first_name="Ada", last_name="Lovelace")
    make_slot(dr_patel, local(day, 9, 20), state=Slot.State.BLOCKED, blocked_reason="Team meeting")
    make_slot(dr_okafor, local(day, 9, 0))
    verified_login(client, rita)

    response = client.get(reverse("reception_day"), {"date": day.isoformat()})

    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("Dr Priya Patel") < html.index("Dr Chidi Okafor")
    assert "Ada Lovelace" in html
    assert "Booked" in html
    assert "Blocked</span>: Team meeting" in html
    assert f"{reverse('reception_book')}?slot=" in html
    assert response["Cache-Control"].startswith("max-age=0") and "no-store" in response["Cache-Control"]


def test_rita_sees_a_past_free_slot_as_past_and_cannot_book_it_from_the_grid(client, rita, dr_patel):
    past = make_slot(dr_patel, timezone.now() - timedelta(hours=30))
    verified_login(client, rita)

    response = client.get(
        reverse("reception_day"), {"date": past.starts_at.astimezone(local(today(), 0).tzinfo).date()}
    )

    assert 'class="text-body-secondary slot-past">Past' in response.content.decode()
    assert f"?slot={past.pk}" not in response.content.decode()


def test_rita_moves_by_day_and_today_is_one_click_away(client, rita, dr_patel):
    verified_login(client, rita)
    day = days_ahead(5)

    response = client.get(reverse("reception_day"), {"date": day.isoformat()})

    html = response.content.decode()
    assert f'href="?date={(day - timedelta(days=1)).isoformat()}"' in html
    assert f'href="?date={(day + timedelta(days=1)).isoformat()}"' in html
    assert f'<a class="btn btn-primary" href="{reverse("reception_day")}">Today</a>' in html


def test_a_nonsense_date_shows_today(client, rita):
    verified_login(client, rita)

    response = client.get(reverse("reception_day"), {"date": "not-a-date"})

    assert response.status_code == 200
    assert response.context["day"] == today()


def test_rita_sees_a_week_of_one_practitioner(client, rita, dr_patel, dr_okafor):
    day = days_ahead(7)
    monday = day - timedelta(days=day.weekday())
    make_slot(dr_patel, local(monday, 10))
    make_slot(dr_patel, local(monday + timedelta(days=2), 10))
    make_slot(dr_okafor, local(monday, 11))
    verified_login(client, rita)

    response = client.get(reverse("reception_week", args=[dr_patel.pk]), {"date": day.isoformat()})

    assert response.status_code == 200
    assert response.context["days"][0] == monday
    [(start, cells)] = response.context["rows"]
    assert start.hour == 10
    assert [cell is not None for cell in cells] == [True, False, True, False, False, False, False]


def _practitioners(count):
    group = Group.objects.get(name="Practitioner")
    people = []
    for number in range(count):
        user = User.objects.create_user(f"physio{number}", password="correct horse battery")
        user.groups.add(group)
        people.append(Practitioner.objects.create(user=user, display_name=f"Physio {number}", list_order=number))
    return people


def _fill_day(practitioners, day):
    """Every slot of a working day, a third booked, a third blocked."""
    for practitioner in practitioners:
        for index in range(24):
            slot = make_slot(practitioner, local(day, 9) + timedelta(minutes=20 * index))
            if index % 3 == 0:
                Appointment.objects.create(
                    slot=slot,
                    first_name="Pat",
                    last_name=f"Ient {index}",
                    phone="07700 900123",
                    manage_token_hash=f"{practitioner.pk}-{index}",
                    created_at=timezone.now(),
                    updated_at=timezone.now(),
                )
            elif index % 3 == 1:
                slot.state = Slot.State.BLOCKED
                slot.save()


@pytest.mark.parametrize(("practitioner_count", "full"), [(1, False), (1, True), (10, False), (10, True)])
def test_the_day_view_runs_the_same_queries_at_any_size(
    client, rita, django_assert_num_queries, practitioner_count, full
):
    day = days_ahead(4)
    practitioners = _practitioners(practitioner_count)
    if full:
        _fill_day(practitioners, day)
    CallbackRequest.objects.create(name="Bob", phone="07700 900999", created_at=timezone.now())
    verified_login(client, rita)

    # 1 the session, 2 Rita, 3 Rita's group (reception_required), 4 the practitioners, 5 the day's
    # slots with practitioner and blocker, 6 the day's live appointments (with each patient's
    # count of upcoming consultations and the bookings made from the same place around each, the
    # burst flag), 7 the working hours and 8 the time off that decide which booked slots no longer
    # fit, 9 open call-backs, 10 undelivered e-mails;
    # 11-13 the session saved again (idle expiry, StaffSessionIdleExpiryMiddleware): savepoint, update, release;
    # 14 the second factor's device named in the session (request.user.is_verified(), django-otp);
    # 15 the record that Rita saw these patients (bookings.privacy.patient_data_access_record).
    with django_assert_num_queries(15):
        response = client.get(reverse("reception_day"), {"date": day.isoformat()})

    assert response.status_code == 200
    assert len(response.context["practitioners"]) == practitioner_count
    assert len(response.context["rows"]) == (24 if full else 0)


@pytest.mark.parametrize("date", ["9999-12-31", "0001-01-01", "2026-02-30"])
def test_a_date_at_the_end_of_the_calendar_shows_today_instead_of_an_error(client, rita, date):
    verified_login(client, rita)

    response = client.get(reverse("reception_day"), {"date": date})

    assert response.status_code == 200
    assert response.context["day"] == today()


def test_a_slot_number_too_big_for_the_database_is_not_found(client, rita):
    verified_login(client, rita)

    assert client.get(reverse("reception_book"), {"slot": str(2**70)}).status_code == 404
    assert client.get(reverse("reception_book"), {"slot": "-1"}).status_code == 404


def test_the_day_view_lists_the_twenty_oldest_undelivered_emails_and_counts_the_others(
    client, rita, dr_patel, django_assert_max_num_queries
):
    """With no worker running, every booking's confirmation is soon overdue: the day view Rita keeps open
    shows the oldest twenty and how many more, in the same one query, rather than a list of hundreds."""
    slots = [make_slot(dr_patel, local(2, 9) + timedelta(minutes=20 * index)) for index in range(23)]
    for index, slot in enumerate(slots):
        patient_books(
            slot, last_name=f"Patient{index:02d}", phone=f"07700 900{index:03d}", email=f"p{index}@example.org"
        )
    an_hour_ago = timezone.now() - timedelta(hours=1)
    confirmations = OutboundMessage.objects.filter(kind=OutboundMessage.Kind.CONFIRMATION).order_by("pk")
    for index, message in enumerate(confirmations):
        OutboundMessage.objects.filter(pk=message.pk).update(
            next_attempt_at=an_hour_ago, created_at=an_hour_ago + timedelta(seconds=index)
        )
    assert OutboundMessage.objects.needs_attention(now=timezone.now()).count() == 23
    verified_login(client, rita)

    response = client.get(reverse("reception_day"))

    text = response.content.decode()
    shown = [index for index in range(23) if f"Patient{index:02d}," in text]
    assert shown == list(range(20))
    assert "And 3 more e-mails not delivered" in text
    # The same fifteen queries as with none (test_the_day_view_runs_the_same_queries_at_any_size lists them).
    with django_assert_max_num_queries(15):
        client.get(reverse("reception_day"))
