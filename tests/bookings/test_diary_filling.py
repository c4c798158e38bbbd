"""Mallory tries to fill the diary from one address: one safety-check pass makes one booking, each address
makes a handful an hour, each e-mail address and phone number holds two live bookings, and the hidden
field answers like any other refusal. A family booking two people still can."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bookings.models import Appointment, UsedSafetyCheckPass
from bookings.services import BookingLimitReached, OnlineBookingGuard, PatientDetails, appointment_book
from clinic.ratelimit import BOOKINGS_WINDOW_SECONDS, window_start
from tests.helpers import PATIENT, SAFE_ANSWERS, details_form, local, make_slot, pass_safety_check
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db

FIRST_NAMES = ["Ann", "Bea", "Cal", "Dee", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kit", "Lou"]


def _slots(practitioner, count):
    return [make_slot(practitioner, local(2 + index // 6, 9 + index % 6)) for index in range(count)]


def _fresh_details(index):
    """What a script would type: a new name, e-mail and phone number each time."""
    return {
        "first_name": FIRST_NAMES[index],
        "last_name": "Mallory",
        "email": f"m{index}@example.net",
        "phone": f"07700 9001{index:02d}",
    }


def _book(client, slot, **changes):
    pass_safety_check(client)
    return client.post("/book/details/", details_form(client, slot) | changes)


def test_a_scripted_attacker_from_one_address_books_at_most_the_hourly_limit(client, dr_patel, settings):
    assert settings.RATE_LIMIT_BOOKINGS_PER_HOUR == 4  # the default
    slots = _slots(dr_patel, 10)

    answers = [_book(client, slot, **_fresh_details(index)) for index, slot in enumerate(slots)]

    booked = [answer for answer in answers if answer.status_code == 302]
    assert len(booked) == 4
    assert Appointment.objects.count() == 4
    refused = answers[4:]
    assert {answer.status_code for answer in refused} == {429}
    assert b"Please phone us" in refused[0].content
    # Somebody at another address is not affected.
    neighbour = Client(REMOTE_ADDR="192.0.2.7")
    assert _book(neighbour, slots[9]).status_code == 302


def test_a_replayed_safety_check_cookie_books_nothing(client, dr_patel):
    first_slot, second_slot = _slots(dr_patel, 2)
    pass_safety_check(client)
    copied_cookies = {name: morsel.value for name, morsel in client.cookies.items()}
    assert client.post("/book/details/", details_form(client, first_slot)).status_code == 302

    replay = Client()
    replay.cookies.load(copied_cookies)
    form = {**details_form(replay, second_slot), **_fresh_details(1)}
    response = replay.post("/book/details/", form)

    assert response.status_code == 302 and response["Location"] == "/book/"
    assert list(Appointment.objects.values_list("slot", flat=True)) == [first_slot.pk]
    assert UsedSafetyCheckPass.objects.count() == 1


def test_a_pass_is_not_used_up_by_a_time_that_was_just_taken(client, dr_patel, dr_okafor):
    slot, other_slot = _slots(dr_patel, 2)
    pass_safety_check(client)
    form = details_form(client, slot)
    appointment_book(slot_id=slot.pk, patient=PatientDetails("Zoë", "Quick", "07700 900999"), now=timezone.now())

    assert client.post("/book/details/", form).status_code == 409
    assert client.post("/book/details/", form | {"slot": other_slot.pk}).status_code == 302


def test_the_hidden_field_answers_exactly_like_a_refusal_for_contact_details_and_gives_nothing_away(client, dr_patel):
    slots = _slots(dr_patel, 4)
    bot = Client(REMOTE_ADDR="192.0.2.66")
    honeypot = _book(bot, slots[0], website="http://spam.example")
    # A real refusal: a third live booking for one e-mail address.
    _book(client, slots[1])
    _book(client, slots[2])
    refused = _book(client, slots[3])

    assert honeypot.status_code == refused.status_code == 409
    assert honeypot.content == refused.content
    assert b"empty" not in honeypot.content.lower() and b"website" not in honeypot.content.lower()
    assert Appointment.objects.count() == 2


def test_a_family_books_two_people_with_one_e_mail_and_phone_but_not_a_third(client, dr_patel, settings):
    assert settings.BOOKING_MAX_LIVE_PER_CONTACT == 2  # the default
    slots = _slots(dr_patel, 3)

    mum = _book(client, slots[0], first_name="Siân")
    son = _book(client, slots[1], first_name="Rhys")
    third = _book(client, slots[2], first_name="Cerys")

    assert (mum.status_code, son.status_code, third.status_code) == (302, 302, 409)
    page = third.content.decode()
    assert "Please phone us" in page and settings.CLINIC_PHONE in page
    # Nothing about the bookings already made, or what was typed.
    for detail in ["Siân", "Rhys", "Cerys", PATIENT["email"], "Dr Priya Patel"]:
        assert detail not in page


def test_the_same_phone_typed_differently_from_another_address_counts_as_the_same_number(client, dr_patel):
    slots = _slots(dr_patel, 3)
    _book(client, slots[0], email="one@example.org", phone="07700 900123")
    _book(client, slots[1], email="two@example.org", phone="07700900123")

    elsewhere = Client(REMOTE_ADDR="198.51.100.4")
    response = _book(elsewhere, slots[2], email="three@example.org", phone="07700-900-123")

    assert response.status_code == 409
    assert Appointment.objects.count() == 2


def test_the_same_e_mail_in_capitals_counts_as_the_same_address(client, dr_patel):
    slots = _slots(dr_patel, 3)
    _book(client, slots[0], phone="07700 900001")
    _book(client, slots[1], phone="07700 900002")

    response = _book(client, slots[2], phone="07700 900003", email=PATIENT["email"].upper())

    assert response.status_code == 409


def test_cancelled_and_past_bookings_do_not_count_towards_the_limit(client, dr_patel):
    slots = _slots(dr_patel, 3)
    _book(client, slots[0])
    _book(client, slots[1])
    first = Appointment.objects.get(slot=slots[0])
    from bookings.services import appointment_cancel

    appointment_cancel(appointment=first, now=timezone.now())

    assert _book(client, slots[2]).status_code == 302


def test_rita_books_a_caller_beyond_the_limits(client, rita, dr_patel):
    slots = _slots(dr_patel, 3)
    _book(client, slots[0])
    _book(client, slots[1])
    verified_login(client, rita)
    caller = {
        **SAFE_ANSWERS,
        "privacy_notice_told": "on",
        "slot": slots[2].pk,
        "submission_key": "5f0c6a52-96c5-4a8e-8a55-0c1f8d1b8e01",
        "first_name": "Pat",
        "last_name": "Example",
        "phone": PATIENT["phone"],
        "email": PATIENT["email"],
        "note": "",
    }

    assert client.post(reverse("reception_book"), caller).status_code == 302
    assert Appointment.objects.count() == 3


def test_a_double_click_at_the_limit_still_confirms_the_booking_it_made(client, dr_patel, settings):
    settings.BOOKING_MAX_LIVE_PER_CONTACT = 1
    settings.RATE_LIMIT_BOOKINGS_PER_HOUR = 1
    [slot] = _slots(dr_patel, 1)
    pass_safety_check(client)
    form = details_form(client, slot)
    cookies_before = {name: morsel.value for name, morsel in client.cookies.items()}
    first = client.post("/book/details/", form)
    second_click = Client()
    second_click.cookies.load(cookies_before)

    second = second_click.post("/book/details/", form)

    assert first["Location"] == second["Location"] == "/book/confirmed/"
    assert Appointment.objects.count() == 1


def test_any_sixty_minutes_hold_at_most_the_hourly_limit_across_the_clock_hour(dr_patel, settings):
    settings.RATE_LIMIT_BOOKINGS_PER_HOUR = 2
    slots = _slots(dr_patel, 4)
    hour = window_start(timezone.now(), BOOKINGS_WINDOW_SECONDS)
    late_in_the_hour, early_next_hour = hour + timedelta(minutes=55), hour + timedelta(minutes=65)

    def book(slot, at, index):
        details = PatientDetails(FIRST_NAMES[index], "Mallory", f"07700 9002{index:02d}", f"x{index}@example.net")
        guard = OnlineBookingGuard(safety_pass=f"pass-{index}", client_key="one-address")
        return appointment_book(slot_id=slot.pk, patient=details, now=at, online_guard=guard)

    book(slots[0], late_in_the_hour, 0)
    book(slots[1], late_in_the_hour, 1)
    with pytest.raises(BookingLimitReached):
        book(slots[2], early_next_hour, 2)
    # Two hours on, the address may book again.
    book(slots[2], early_next_hour + timedelta(hours=1), 2)
    assert Appointment.objects.count() == 3


def test_rita_sees_a_burst_of_online_bookings_from_one_place_flagged_on_the_day_view(client, rita, dr_patel):
    slots = [make_slot(dr_patel, local(3, 9 + index)) for index in range(5)]
    for index, slot in enumerate(slots[:3]):
        _book(client, slot, **_fresh_details(index), note="")
    neighbour = Client(REMOTE_ADDR="192.0.2.7")
    _book(neighbour, slots[3], **_fresh_details(3), note="")
    appointment_book(
        slot_id=slots[4].pk,
        patient=PatientDetails("Grace", "Hopper", "07700 900456"),
        now=timezone.now(),
        booked_by=rita,
    )
    staff = Client()
    verified_login(staff, rita)

    response = staff.get(reverse("reception_day"), {"date": local(3, 9).date().isoformat()})

    cells = [cell for _, row in response.context["rows"] for cell in row if cell and cell.appointment]
    flagged = {cell.appointment.first_name for cell in cells if cell.appointment.in_a_burst}
    assert flagged == {"Ann", "Bea", "Cal"}
    assert response.content.decode().count("Burst: 3 from one place") == 3
    # Only a keyed hash of the address is stored, never the address itself.
    keys = set(Appointment.objects.exclude(client_key="").values_list("client_key", flat=True))
    assert len(keys) == 2 and not any("127.0.0.1" in key or "192.0.2.7" in key for key in keys)
    assert Appointment.objects.get(first_name="Grace").client_key == ""


def test_rita_sees_bookings_from_many_places_with_one_note_flagged_as_a_burst(client, rita, dr_patel):
    slots = [make_slot(dr_patel, local(3, 9 + index)) for index in range(4)]
    for index, slot in enumerate(slots[:3]):
        _book(Client(REMOTE_ADDR=f"203.0.113.{index + 1}"), slot, **_fresh_details(index), note="Book me in")
    _book(Client(REMOTE_ADDR="203.0.113.9"), slots[3], **_fresh_details(3), note="Left hip, worse on stairs")
    staff = Client()
    verified_login(staff, rita)

    response = staff.get(reverse("reception_day"), {"date": local(3, 9).date().isoformat()})

    cells = [cell for _, row in response.context["rows"] for cell in row if cell and cell.appointment]
    assert {cell.appointment.first_name for cell in cells if cell.appointment.in_a_burst} == {"Ann", "Bea", "Cal"}
    assert response.content.decode().count("Burst: 3 with one note") == 3
