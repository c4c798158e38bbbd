"""Rita opens the move page of an appointment that cannot be moved: it says so, offers no times and moves nothing.

Found by hand: a cancelled appointment's move page listed free times, and choosing one was then refused.
"""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.models import Appointment, AppointmentEvent, WaitingListOffer
from bookings.services import appointment_cancel
from tests.helpers import (
    appointment_in_the_past_or_today,
    days_ahead,
    local,
    make_slot,
    patient_books,
    today,
    waiting,
)
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def cancelled_ada(dr_patel):
    ada = patient_books(make_slot(dr_patel, local(days_ahead(3), 10)), first_name="Ada", last_name="Lovelace")
    return appointment_cancel(appointment=ada, now=timezone.now(), reason="Unwell", actor=None)


def _move_page(client, appointment, day):
    return client.get(reverse("reception_appointment_move", args=[appointment.pk]), {"date": day.isoformat()})


def test_a_cancelled_appointments_move_page_says_it_cannot_be_moved_and_lists_no_times(
    client, rita, dr_okafor, cancelled_ada
):
    free = make_slot(dr_okafor, local(days_ahead(3), 11))
    verified_login(client, rita)

    page = _move_page(client, cancelled_ada, days_ahead(3))

    assert page.status_code == 200
    html = page.content.decode()
    assert "This appointment is cancelled, so it cannot be moved." in html
    assert "book a new appointment" in html
    assert f'href="{reverse("reception_next_free")}"' in html
    assert f'value="{free.pk}"' not in html
    assert 'method="post"' not in html.split("</nav>", 1)[-1]


def test_a_move_posted_for_a_cancelled_appointment_is_refused_with_the_same_message_and_changes_nothing(
    client, rita, dr_okafor, cancelled_ada
):
    free = make_slot(dr_okafor, local(days_ahead(3), 11))
    old_slot = cancelled_ada.slot
    verified_login(client, rita)

    response = client.post(reverse("reception_appointment_move", args=[cancelled_ada.pk]), {"slot": free.pk})

    assert response.status_code == 409
    assert "This appointment is cancelled, so it cannot be moved." in response.content.decode()
    assert "Nothing changed." in response.content.decode()
    cancelled_ada.refresh_from_db()
    assert (cancelled_ada.slot, cancelled_ada.status) == (old_slot, Appointment.Status.CANCELLED)
    assert not cancelled_ada.events.filter(action=AppointmentEvent.Action.MOVED).exists()


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (Appointment.Status.ARRIVED, "marked arrived"),
        (Appointment.Status.COMPLETED, "marked completed"),
        (Appointment.Status.NO_SHOW, "marked did not attend"),
    ],
)
def test_an_appointment_with_its_attendance_recorded_cannot_be_moved_either(
    client, rita, dr_patel, dr_okafor, status, words
):
    grace = appointment_in_the_past_or_today(
        make_slot(dr_patel, local(today(), 0, 20)), first_name="Grace", status=status
    )
    free = make_slot(dr_okafor, local(days_ahead(1), 11))
    verified_login(client, rita)

    page = _move_page(client, grace, days_ahead(1))
    response = client.post(reverse("reception_appointment_move", args=[grace.pk]), {"slot": free.pk})

    for answer in (page, response):
        html = answer.content.decode()
        assert f"This appointment is {words}, so it cannot be moved." in html
        assert "mark it back to booked first" in html
        assert f'value="{free.pk}"' not in html
    assert response.status_code == 409
    grace.refresh_from_db()
    assert (grace.slot.starts_at, grace.status) == (local(today(), 0, 20), status)
    assert not grace.events.filter(action=AppointmentEvent.Action.MOVED).exists()


def test_the_move_page_marks_a_time_held_for_a_waiting_list_offer_as_the_day_view_does(client, rita, dr_okafor):
    """Found by hand: reception moved a patient into a time held for a waiter, who was then told someone else had
    taken it first; the day view marked the time as held, the move page did not."""
    ada = patient_books(make_slot(dr_okafor, local(days_ahead(3), 10)), first_name="Ada")
    held = make_slot(dr_okafor, local(days_ahead(3), 11))
    free = make_slot(dr_okafor, local(days_ahead(3), 12))
    entry, _ = waiting("wanda@example.org")
    now = timezone.now()
    WaitingListOffer.objects.create(
        entry=entry,
        slot=held,
        batch=uuid.uuid4(),
        offered_at=now,
        held_until=now + timedelta(minutes=30),
        token_hash=uuid.uuid4().hex,
    )
    verified_login(client, rita)

    html = _move_page(client, ada, days_ahead(3)).content.decode()

    held_button = html[html.index(f'value="{held.pk}"') :].split("</button>", 1)[0]
    free_button = html[html.index(f'value="{free.pk}"') :].split("</button>", 1)[0]
    assert "Held for a waiting-list offer until" in held_button
    assert "Held for a waiting-list offer" not in free_button
