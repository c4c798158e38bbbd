"""Reception's rules live beside the data (issue 15): what reception may book, the appointment search
and a practitioner's calendar feed are model methods and bookings/calendar.py, not staff views."""

from datetime import timedelta

import pytest
from django.utils import timezone
from icalendar import Calendar

from bookings.calendar import practitioner_feed_ics
from bookings.models import Appointment, Slot
from tests.helpers import days_ahead, local, make_slot, patient_books

pytestmark = pytest.mark.django_db


def test_reception_may_book_a_free_time_inside_the_patients_notice_but_not_a_booked_or_past_one(dr_patel):
    now = timezone.now()
    soon = make_slot(dr_patel, now + timedelta(minutes=30))
    taken = make_slot(dr_patel, local(days_ahead(3), 10))
    patient_books(taken)
    gone = make_slot(dr_patel, now - timedelta(hours=2))

    reception_may_book = set(Slot.objects.staff_bookable(now=now))

    assert soon in reception_may_book
    assert soon not in set(Slot.objects.bookable(now=now))
    assert taken not in reception_may_book and gone not in reception_may_book


def test_rita_finds_o_connor_typed_with_a_curly_apostrophe_or_by_the_phone_number_in_another_form(dr_patel):
    slot = make_slot(dr_patel, local(days_ahead(3), 10))
    appointment = patient_books(slot, first_name="Siobhan", last_name="O'Connor", phone="07700 900456")

    assert list(Appointment.objects.matching("O\u2019Connor")) == [appointment]
    assert list(Appointment.objects.matching("siobhan o\u2019connor")) == [appointment]
    assert list(Appointment.objects.matching("+44 7700 900456")) == [appointment]
    assert list(Appointment.objects.matching("Okafor")) == []


def test_dr_patels_feed_holds_his_appointments_by_initials_and_nobody_elses(dr_patel, dr_okafor):
    mine = patient_books(make_slot(dr_patel, local(days_ahead(3), 10)), first_name="Ada", last_name="Lovelace")
    patient_books(make_slot(dr_okafor, local(days_ahead(3), 11)))

    calendar = Calendar.from_ical(practitioner_feed_ics(practitioner=dr_patel, now=timezone.now()))

    events = calendar.walk("VEVENT")
    assert [str(event["summary"]) for event in events] == ["Free consultation - AL"]
    assert str(events[0]["uid"]).startswith(f"practitioner-appointment-{mine.pk}@")
    assert "Lovelace" not in practitioner_feed_ics(practitioner=dr_patel, now=timezone.now()).decode()
