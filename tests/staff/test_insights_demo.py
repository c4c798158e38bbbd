"""`load_demo_data --history`: a year of past bookings so that Margaret's charts show something in `make run`."""

from datetime import date, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse

from bookings.models import MANAGER_GROUP, Appointment, InsightsBookingDay, UrgentCareCount
from bookings.schedule import clinic_zone
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


def test_the_demo_history_fills_every_week_of_a_year_and_a_rerun_adds_nothing(settings, client, django_user_model):
    settings.DEBUG = True
    settings.BOOKING_HORIZON_DAYS = 14
    monday = datetime(2026, 6, 1, 8, 0, tzinfo=clinic_zone())

    with time_machine.travel(monday, tick=False):
        call_command("load_demo_data", "--quiet-logins", "--history", stdout=StringIO())
        made = Appointment.objects.count()
        call_command("load_demo_data", "--quiet-logins", "--history", stdout=StringIO())

    assert Appointment.objects.count() == made > 5000
    weeks_with_bookings = {
        day - timedelta(days=day.weekday()) for day in InsightsBookingDay.objects.values_list("day", flat=True)
    }
    assert {date(2025, 6, 2) + timedelta(weeks=n) for n in range(52)} <= weeks_with_bookings
    assert set(Appointment.objects.values_list("status", flat=True)) == {"completed", "no_show", "cancelled"}
    assert UrgentCareCount.objects.exists()
    margaret = django_user_model.objects.get(username="margaret")
    assert margaret.groups.filter(name=MANAGER_GROUP).exists()
    verified_login(client, margaret)
    with time_machine.travel(monday, tick=False):
        page = client.get(reverse("insights"), {"weeks": "52"}).content.decode()
    assert page.count("<rect ") > 52 * 2
