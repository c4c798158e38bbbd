""" "Any practitioner" links a time; the booking gives it, under lock, to a practitioner free then, sharing the work.

Dr Patel is first in list order, Dr Okafor second and Sam Lee third: before, every "any" booking of a time went
to Dr Patel, and a patient whose Dr Patel slot was taken meanwhile heard "just taken" while a colleague was free.
"""

import re
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from bookings.forms import start_time_value
from bookings.models import Appointment, Practitioner, Slot
from bookings.services import PatientDetails, SlotUnavailable, appointment_book
from tests.helpers import PATIENT, local, make_slot, pass_safety_check, run_at_once

pytestmark = pytest.mark.django_db


@pytest.fixture
def sam_lee(db):
    user = get_user_model().objects.create_user(username="sam.lee", first_name="Sam", last_name="Lee")
    return Practitioner.objects.create(
        user=user, display_name="Sam Lee", title="", profession="Physiotherapist", list_order=3
    )


@pytest.fixture
def team(dr_patel, dr_okafor, sam_lee):
    return [dr_patel, dr_okafor, sam_lee]


def _book_any(starts_at, index=0, **extra):
    patient = PatientDetails(f"Patient{chr(ord('A') + index % 26)}", "Example", f"07700 900{index:03d}")
    return appointment_book(any_practitioner_at=starts_at, patient=patient, now=timezone.now(), **extra)


def _any_details_form(client, starts_at) -> dict:
    response = client.get(f"/book/details/?at={start_time_value(starts_at)}")
    assert response.status_code == 200, response.status_code
    key = response.context["form"].initial["submission_key"]
    return {**PATIENT, "at": start_time_value(starts_at), "submission_key": str(key)}


def test_the_time_page_links_any_practitioners_times_by_start_not_by_one_practitioners_slot(client, team):
    patel_slot = make_slot(team[0], local(3, 10))
    make_slot(team[1], local(3, 10))
    pass_safety_check(client)

    page = client.get("/book/time/").content.decode()

    assert f"/book/details/?at={start_time_value(local(3, 10))}" in page
    assert f"?slot={patel_slot.pk}" not in page


def test_thirty_any_bookings_at_times_when_three_practitioners_are_free_spread_ten_ten_ten(team):
    times = [local(3, 8) + timedelta(minutes=20 * index) for index in range(30)]
    for starts_at in times:
        for practitioner in team:
            make_slot(practitioner, starts_at)

    for index, starts_at in enumerate(times):
        _book_any(starts_at, index)

    shares = Counter(Appointment.objects.values_list("slot__practitioner__display_name", flat=True))
    print("any-practitioner shares:", dict(shares))
    assert shares == {"Priya Patel": 10, "Chidi Okafor": 10, "Sam Lee": 10}


def test_the_practitioner_with_fewest_consultations_that_day_gets_the_time_before_list_order(team):
    dr_patel, dr_okafor, sam_lee = team
    for hour in (9, 10):
        _book_one(make_slot(dr_patel, local(3, hour)), "Busy")
        _book_one(make_slot(sam_lee, local(3, hour)), "Busy")
    for practitioner in team:
        make_slot(practitioner, local(3, 14))

    booked = _book_any(local(3, 14)).appointment

    assert booked.slot.practitioner == dr_okafor


def test_between_equal_days_the_week_decides(team):
    dr_patel, dr_okafor, sam_lee = team
    # Monday to Sunday in the clinic's zone: the other days of the booked day's week.
    day = local(7, 12)
    monday = day - timedelta(days=day.weekday())
    other_day = monday if day.weekday() else monday + timedelta(days=1)
    _book_one(make_slot(dr_patel, other_day.replace(hour=9)), "Busy")
    _book_one(make_slot(dr_okafor, other_day.replace(hour=10)), "Busy")
    for practitioner in team:
        make_slot(practitioner, day)

    assert _book_any(day).appointment.slot.practitioner == sam_lee


def _book_one(slot, name):
    return appointment_book(slot_id=slot.pk, patient=PatientDetails(name, "X", "07700 900999"), now=timezone.now())


def test_nobody_free_at_that_time_is_slot_unavailable_and_books_nothing(team):
    slot = make_slot(team[0], local(3, 10))
    _book_one(slot, "First")

    with pytest.raises(SlotUnavailable):
        _book_any(local(3, 10), 1)
    assert Appointment.objects.count() == 1


def test_the_same_any_form_sent_twice_is_one_booking(team):
    for practitioner in team:
        make_slot(practitioner, local(3, 10))
    key = uuid.uuid4()

    first = _book_any(local(3, 10), 1, submission_key=key)
    again = _book_any(local(3, 10), 1, submission_key=key)

    assert again.replayed and again.appointment.pk == first.appointment.pk
    assert Appointment.objects.count() == 1


def test_when_the_first_choice_is_taken_between_the_page_and_the_post_the_booking_goes_to_a_colleague(client, team):
    dr_patel, dr_okafor, _ = team
    patel_slot, okafor_slot = make_slot(dr_patel, local(3, 10)), make_slot(dr_okafor, local(3, 10))
    pass_safety_check(client)
    form = _any_details_form(client, local(3, 10))
    # Meanwhile another patient's "any" booking takes the first choice.
    taken = _book_any(local(3, 10), 7).appointment.slot

    response = client.post("/book/details/", form)

    assert response.status_code == 302 and response["Location"] == "/book/confirmed/"
    mine = Appointment.objects.get(first_name=PATIENT["first_name"])
    assert {mine.slot, taken} == {patel_slot, okafor_slot}
    assert mine.slot.practitioner.full_name in client.get("/book/confirmed/").content.decode()


def test_when_the_first_practitioner_in_list_order_is_booked_by_name_an_any_patient_gets_a_colleague(client, team):
    dr_patel, dr_okafor, _ = team
    patel_slot, okafor_slot = make_slot(dr_patel, local(3, 10)), make_slot(dr_okafor, local(3, 10))
    pass_safety_check(client)
    form = _any_details_form(client, local(3, 10))
    _book_one(patel_slot, "Other")

    response = client.post("/book/details/", form)

    assert response.status_code == 302
    assert Appointment.objects.get(first_name=PATIENT["first_name"]).slot == okafor_slot


def test_an_any_time_with_nobody_free_any_more_says_just_taken_offers_the_nearest_and_keeps_the_details(client, team):
    slot = make_slot(team[0], local(3, 10))
    later = make_slot(team[1], local(3, 11))
    pass_safety_check(client)
    form = _any_details_form(client, local(3, 10))
    _book_one(slot, "Other")

    response = client.post("/book/details/", form)

    assert response.status_code == 409
    page = response.content.decode()
    assert "Sorry, that time has just been taken" in page
    assert f'value="{later.pk}"' in page
    assert PATIENT["email"] in page and PATIENT["phone"] in page
    assert Appointment.objects.count() == 1


def test_the_details_page_for_any_names_the_time_and_keeps_the_choice_open(client, team):
    make_slot(team[0], local(3, 10))
    make_slot(team[1], local(3, 10))
    pass_safety_check(client)

    page = client.get(f"/book/details/?at={start_time_value(local(3, 10))}").content.decode()

    assert "10:00" in page and "any practitioner free then" in page
    assert f'name="at" value="{start_time_value(local(3, 10))}"' in page
    assert "Priya Patel" not in page


@pytest.mark.parametrize("value", ["", "tomorrow", "20261302T0940Z", "99999999T9999Z", "2026-12-02T09:40"])
def test_a_mangled_any_time_is_not_found_never_a_500(client, team, value):
    pass_safety_check(client)

    assert client.get("/book/details/", {"at": value}).status_code == 404


def test_a_form_kept_across_a_new_safety_check_comes_back_to_the_same_any_time(client, team):
    make_slot(team[0], local(3, 10))
    pass_safety_check(client)
    form = _any_details_form(client, local(3, 10))
    client.cookies.pop("booking")

    assert client.post("/book/details/", form)["Location"] == "/book/"
    checked = pass_safety_check(client)

    assert checked["Location"] == f"/book/details/?at={start_time_value(local(3, 10))}"
    assert PATIENT["email"] in client.get(checked["Location"]).content.decode()


# -- Races: real threads, real PostgreSQL -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sixteen_patients_confirm_any_practitioner_at_one_time_three_are_free_and_each_gets_one(team):
    starts_at = local(3, 10)
    for practitioner in team:
        make_slot(practitioner, starts_at)
    clients, forms = [], []
    for index in range(16):
        # Sixteen patients, sixteen addresses and contacts: only the time is shared.
        client = Client(REMOTE_ADDR=f"192.0.2.{index + 1}")
        pass_safety_check(client)
        forms.append(
            _any_details_form(client, starts_at)
            | {"first_name": f"Patient{chr(ord('A') + index)}", "email": f"p{index}@example.org"}
            | {"phone": f"07700 900{index:03d}"}
        )
        clients.append(client)

    responses = run_at_once(16, lambda index: clients[index].post("/book/details/", forms[index]))

    statuses = Counter(getattr(response, "status_code", repr(response)) for response in responses)
    assert statuses == {302: 3, 409: 13}, statuses
    booked = Appointment.objects.live().filter(slot__starts_at=starts_at)
    assert sorted(booked.values_list("slot__practitioner__display_name", flat=True)) == [
        "Chidi Okafor",
        "Priya Patel",
        "Sam Lee",
    ]


@pytest.mark.django_db(transaction=True)
def test_sixteen_any_bookings_racing_in_the_service_make_exactly_three_one_each(team):
    starts_at = local(3, 11)
    for practitioner in team:
        make_slot(practitioner, starts_at)

    results = run_at_once(16, lambda index: _book_any(starts_at, index))

    booked = [result for result in results if not isinstance(result, Exception)]
    assert len(booked) == 3
    assert all(isinstance(result, SlotUnavailable) for result in results if isinstance(result, Exception)), results
    assert {result.appointment.slot.practitioner_id for result in booked} == {p.pk for p in team}


@pytest.mark.django_db(transaction=True)
def test_a_double_click_on_any_practitioner_racing_itself_for_the_last_free_time_is_one_booking_both_see(dr_patel):
    make_slot(dr_patel, local(3, 12))
    key = uuid.uuid4()

    results = run_at_once(8, lambda index: _book_any(local(3, 12), 1, submission_key=key))

    assert not [result for result in results if isinstance(result, Exception)], results
    assert {result.appointment.pk for result in results} == {Appointment.objects.get().pk}
    assert sum(1 for result in results if not result.replayed) == 1


def test_a_made_up_any_time_says_it_is_not_offered_keeps_the_details_and_offers_the_nearest(client, team):
    """A well-formed time at which no slot starts (a link edited by hand: 10:01) was never offered: the page
    says so rather than "just taken", on the link and when the form is sent, and keeps what was typed."""
    later = make_slot(team[1], local(3, 11))
    pass_safety_check(client)
    made_up = start_time_value(local(3, 10) + timedelta(minutes=1))

    opened = client.get("/book/details/", {"at": made_up})
    form = {**_any_details_form(client, later.starts_at), "at": made_up}
    sent = client.post("/book/details/", form)

    for response in (opened, sent):
        assert response.status_code == 404
        page = response.content.decode()
        assert "We do not offer a consultation at that time" in page
        assert "just been taken" not in page and "no longer available" not in page
        assert f'value="{later.pk}"' in page
    assert PATIENT["email"] in sent.content.decode()
    assert Appointment.objects.count() == 0


def _every_practitioner_works(team, times):
    for starts_at in times:
        for practitioner in team:
            make_slot(practitioner, starts_at)


def _taken_by_others(starts_at):
    for index, slot in enumerate(Slot.objects.filter(starts_at=starts_at)):
        _book_one(slot, f"Other{chr(ord('A') + index)}")


def test_an_any_time_taken_by_everyone_offers_the_nearest_times_that_day_before_the_next_days(client, team):
    """Found by hand: the last time of a day, everyone's slot taken while the patient typed; the answer offered
    two times that day, then the next morning's, not the nearer ones that afternoon (three practitioners free at
    each earlier time filled the five earlier candidates with two times)."""
    that_afternoon = [local(3, 15, 40) + timedelta(minutes=20 * index) for index in range(7)]
    wanted = that_afternoon[-1]
    next_morning = [local(4, 9), local(4, 9, 20)]
    _every_practitioner_works(team, that_afternoon + next_morning)
    pass_safety_check(client)
    form = _any_details_form(client, wanted)
    _taken_by_others(wanted)

    response = client.post("/book/details/", form)

    assert response.status_code == 409
    assert [slot.starts_at for slot in response.context["alternatives"]] == that_afternoon[1:-1]


def test_the_taken_page_sent_without_a_choice_still_offers_the_times_nearest_the_one_wanted(client, team):
    """Found by hand: "Confirm" on the taken page with no time ticked answered with the soonest times of all
    (another day), as if the patient had not asked for a time."""
    soonest = [local(1, 9), local(1, 9, 20)]
    wanted = local(5, 12)
    near = [local(5, 11, 20), local(5, 11, 40), local(5, 12, 20), local(5, 12, 40), local(5, 13)]
    _every_practitioner_works(team[:1], soonest + near + [local(5, 15)])
    _every_practitioner_works(team, [wanted])
    pass_safety_check(client)
    form = _any_details_form(client, wanted)
    _taken_by_others(wanted)
    taken = client.post("/book/details/", form).content.decode()
    sent_back = dict(re.findall(r'<input type="hidden" name="(wanted)" value="([^"]*)"', taken))
    without_choice = {key: value for key, value in form.items() if key != "at"} | sent_back

    response = client.post("/book/details/", without_choice)

    assert response.status_code == 400
    assert b"Please choose one of the times below" in response.content
    assert [slot.starts_at for slot in response.context["alternatives"]] == near
    assert PATIENT["email"] in response.content.decode()
