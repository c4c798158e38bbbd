"""A practitioner who has left (inactive): nobody can be booked with them, and their future open slots go."""

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from bookings.forms import start_time_value
from bookings.models import Appointment, Practitioner, Slot, WorkingHours
from bookings.schedule import slots_generate
from bookings.services import PatientDetails, SlotUnavailable, appointment_book, appointment_move
from tests.helpers import PATIENT, local, make_appointment, make_slot, pass_safety_check
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")
# Sunday noon; the admin saves with the wall clock, so the admin test stops it here.
NOW = datetime(2026, 6, 7, 12, 0, tzinfo=LONDON)
MONDAY = date(2026, 6, 8)


def _leaves(practitioner):
    Practitioner.objects.filter(pk=practitioner.pk).update(is_active=False)
    practitioner.refresh_from_db()


def test_rita_cannot_book_a_caller_with_a_practitioner_who_has_left(rita, dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    _leaves(dr_patel)

    with pytest.raises(SlotUnavailable):
        appointment_book(
            slot_id=slot.pk,
            patient=PatientDetails("Ada", "Lovelace", "07700 900123"),
            now=timezone.now(),
            booked_by=rita,
        )
    assert not Appointment.objects.exists()


def test_rita_cannot_move_someone_to_a_practitioner_who_has_left(rita, dr_patel, dr_okafor):
    ada = make_appointment(make_slot(dr_okafor, local(3, 9)), at=timezone.now())
    slot = make_slot(dr_patel, local(3, 10))
    _leaves(dr_patel)

    with pytest.raises(SlotUnavailable):
        appointment_move(appointment=ada, new_slot_id=slot.pk, now=timezone.now(), actor=rita)


def test_the_day_view_offers_no_book_button_on_an_inactive_practitioners_slot(client, rita, dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    _leaves(dr_patel)
    verified_login(client, rita)

    page = client.get(reverse("reception_day"), {"date": local(3, 10).date().isoformat()}).content.decode()

    assert f"?slot={slot.pk}" not in page
    assert "Not offered (practitioner inactive)" in page


def test_the_daily_generation_takes_a_leavers_open_slots_off_and_reports_their_bookings(dr_patel, dr_okafor):
    open_slot = make_slot(dr_patel, local(3, 10))
    booked = make_slot(dr_patel, local(3, 11))
    make_appointment(booked, at=timezone.now())
    okafors = make_slot(dr_okafor, local(3, 10))
    WorkingHours.objects.create(
        practitioner=dr_okafor, weekday=okafors.starts_at.weekday(), start_time=time(9), end_time=time(18)
    )
    _leaves(dr_patel)

    report = slots_generate(now=timezone.now(), days=7)

    assert not Slot.objects.filter(pk=open_slot.pk, state=Slot.State.OPEN).exists()
    assert report.conflicts == [booked]
    assert Appointment.objects.live().get().slot == booked
    assert Slot.objects.filter(pk=okafors.pk, state=Slot.State.OPEN).exists()


def test_deactivating_a_practitioner_in_the_admin_takes_their_open_slots_off_and_lists_their_bookings(
    admin_client, dr_patel, settings
):
    settings.BOOKING_HORIZON_DAYS = 6
    hours = WorkingHours.objects.create(practitioner=dr_patel, weekday=0, start_time=time(9), end_time=time(10))
    with time_machine.travel(NOW, tick=False):
        slots_generate(now=NOW)
        booked = Slot.objects.get(practitioner=dr_patel, starts_at=datetime.combine(MONDAY, time(9), tzinfo=LONDON))
        make_appointment(booked, at=NOW)

        response = admin_client.post(
            f"/admin/bookings/practitioner/{dr_patel.pk}/change/",
            {
                "user": dr_patel.user_id,
                "display_name": dr_patel.display_name,
                "title": dr_patel.title,
                "profession": dr_patel.profession,
                "bio": "",
                "offers_free_consultation": "on",
                "list_order": dr_patel.list_order,
                "working_hours-TOTAL_FORMS": "1",
                "working_hours-INITIAL_FORMS": "1",
                "working_hours-MIN_NUM_FORMS": "0",
                "working_hours-MAX_NUM_FORMS": "1000",
                "working_hours-0-id": hours.pk,
                "working_hours-0-practitioner": dr_patel.pk,
                "working_hours-0-weekday": "0",
                "working_hours-0-start_time": "09:00",
                "working_hours-0-end_time": "10:00",
            },
            follow=True,
        )

    assert response.status_code == 200
    dr_patel.refresh_from_db()
    assert not dr_patel.is_active
    assert list(Slot.objects.filter(practitioner=dr_patel).exclude(state=Slot.State.RETIRED)) == [booked]
    messages = [str(message) for message in response.context["messages"]]
    assert any(
        "1 booked appointment(s) no longer fit" in message and "2026-06-08 09:00" in message for message in messages
    ), messages


# -- A patient on the way when the practitioner stops taking bookings (found by hand) ------


def _sent_back(page: str) -> dict:
    """The hidden fields the details page's form sends back besides what was typed (the chosen time's start)."""
    return dict(re.findall(r'<input type="hidden" name="(wanted)" value="([^"]*)"', page))


def _details_form_as_sent(client, slot) -> dict:
    response = client.get(f"/book/details/?slot={slot.pk}")
    assert response.status_code == 200, response.status_code
    key = response.context["form"].initial["submission_key"]
    return {**PATIENT, "slot": slot.pk, "submission_key": str(key), **_sent_back(response.content.decode())}


def _leaves_as_the_admin_saves_it(practitioner):
    """Inactive, and the schedule brought in line as the admin's save does: their open slots go from the diary."""
    _leaves(practitioner)
    slots_generate(now=timezone.now(), practitioner=practitioner)


def test_a_patient_whose_practitioner_leaves_while_they_type_keeps_the_details_and_gets_the_nearest_times(
    client, dr_patel, dr_okafor
):
    patels = make_slot(dr_patel, local(3, 10))
    near = make_slot(dr_okafor, local(3, 10, 20))
    far = make_slot(dr_okafor, local(6, 10))
    pass_safety_check(client)
    form = _details_form_as_sent(client, patels)
    _leaves_as_the_admin_saves_it(dr_patel)
    assert not Slot.objects.filter(pk=patels.pk).exists()

    response = client.post("/book/details/", form)

    assert response.status_code == 409
    page = response.content.decode()
    assert "Sorry, that time is no longer available" in page
    assert all(PATIENT[name] in page for name in ("first_name", "email", "phone", "note"))
    assert response.context["alternatives"] == [near, far]
    assert Appointment.objects.count() == 0


def test_a_slot_still_in_the_diary_of_a_practitioner_who_left_is_no_longer_available_not_just_taken(
    client, dr_patel, dr_okafor
):
    patels = make_slot(dr_patel, local(3, 10))
    okafors = make_slot(dr_okafor, local(3, 10))
    pass_safety_check(client)
    form = _details_form_as_sent(client, patels)
    _leaves(dr_patel)

    response = client.post("/book/details/", form)

    assert response.status_code == 409
    page = response.content.decode()
    assert "Sorry, that time is no longer available" in page and "just been taken" not in page
    assert response.context["alternatives"] == [okafors]
    assert PATIENT["email"] in page


def test_the_details_sent_with_a_mistake_for_a_practitioner_who_left_come_back_with_the_nearest_times(
    client, dr_patel, dr_okafor
):
    patels = make_slot(dr_patel, local(3, 10))
    okafors = make_slot(dr_okafor, local(3, 11))
    pass_safety_check(client)
    form = _details_form_as_sent(client, patels) | {"phone": ""}
    _leaves_as_the_admin_saves_it(dr_patel)

    response = client.post("/book/details/", form)

    assert response.status_code == 400
    assert response.context["alternatives"] == [okafors]
    assert PATIENT["email"] in response.content.decode()


# -- The time page for a practitioner not taking online bookings (found by hand) -----------


def test_the_time_page_for_a_practitioner_who_left_says_so_and_shows_everyone_elses_times(client, dr_patel, dr_okafor):
    patels = make_slot(dr_patel, local(3, 10))
    okafors = make_slot(dr_okafor, local(3, 11))
    _leaves(dr_patel)
    pass_safety_check(client)

    response = client.get("/book/time/", {"practitioner": dr_patel.pk})

    assert response.status_code == 200
    page = response.content.decode()
    assert "Dr Priya Patel is not taking online bookings at the moment" in page
    assert start_time_value(okafors.starts_at) in page
    assert start_time_value(patels.starts_at) not in page and f"slot={patels.pk}" not in page


def test_the_time_page_for_a_practitioner_offering_no_consultations_online_says_so(client, dr_patel, dr_okafor):
    make_slot(dr_okafor, local(3, 11))
    Practitioner.objects.filter(pk=dr_patel.pk).update(offers_free_consultation=False)
    pass_safety_check(client)

    page = client.get("/book/time/", {"practitioner": dr_patel.pk}).content.decode()

    assert "Dr Priya Patel is not taking online bookings at the moment" in page


def test_the_time_page_for_a_made_up_practitioner_says_it_could_not_find_them_and_shows_everyones_times(
    client, dr_okafor
):
    okafors = make_slot(dr_okafor, local(3, 11))
    pass_safety_check(client)

    response = client.get("/book/time/", {"practitioner": 987654})

    assert response.status_code == 200
    page = response.content.decode()
    assert "We could not find that practitioner" in page
    assert start_time_value(okafors.starts_at) in page


def test_the_time_page_for_a_practitioner_taking_bookings_says_nothing_of_the_sort(client, dr_patel):
    make_slot(dr_patel, local(3, 11))
    pass_safety_check(client)

    page = client.get("/book/time/", {"practitioner": dr_patel.pk}).content.decode()

    assert "not taking online bookings" not in page and "could not find that practitioner" not in page
