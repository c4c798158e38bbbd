"""Issue 13's critical path in Chromium: Rita phone-books a caller with an e-mail, moves them, adds
time off over the old time; the page answers, and the nightly `generate_slots` still runs."""

import re
from datetime import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from bookings.models import Appointment, OutboundMessage, Slot, TimeOff, WorkingHours
from bookings.schedule import slots_generate
from tests.helpers import days_ahead, local
from tests.staff.test_staff_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_rita_moves_a_caller_then_adds_time_off_over_the_old_time_and_the_nightly_run_still_works(page, rita, dr_patel):
    day = days_ahead(3)
    WorkingHours.objects.create(practitioner=dr_patel, weekday=day.weekday(), start_time=time(9), end_time=time(11))
    slots_generate(now=timezone.now(), practitioner=dr_patel)
    nine = Slot.objects.get(practitioner=dr_patel, starts_at=local(day, 9))

    sign_in(page, "rita")
    page.wait_for_url("**/staff/reception/")
    page.goto(f"{reverse('reception_book')}?slot={nine.pk}")
    page.get_by_label("No, none of these").check()
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_label("Phone").fill("(020) 7946 0000")
    page.get_by_label("E-mail (optional)").fill("ada@example.org")
    page.get_by_label(re.compile("I have told the caller")).check()
    page.get_by_role("button", name="Book this slot").click()
    page.wait_for_url(re.compile(r"/staff/reception/appointments/\d+/$"))

    page.get_by_role("link", name="Move to another time").click()
    page.get_by_role("button", name=re.compile(r"^10:00")).click()
    page.wait_for_url(re.compile(r"/staff/reception/appointments/\d+/$"))
    assert "Moved Ada Lovelace." in page.inner_text("main")
    # The confirmation e-mail waiting in the outbox still describes 09:00.
    assert OutboundMessage.objects.filter(slot=nine).exists()

    page.goto(reverse("reception_practitioner_hours", args=[dr_patel.pk]))
    time_off = page.locator("form", has=page.get_by_role("button", name="Add time off"))
    time_off.get_by_label("From").fill(f"{day.isoformat()}T08:00")
    time_off.get_by_label("Until").fill(f"{day.isoformat()}T09:30")
    time_off.get_by_label("Reason").fill("Dentist")
    time_off.get_by_role("button", name="Add time off").click()

    # Waits for the answer: a 500 would never say it.
    expect(page.locator("main")).to_contain_text("Saved. Slots updated")
    assert TimeOff.objects.count() == 1
    nine.refresh_from_db()
    assert nine.state == Slot.State.RETIRED
    out = StringIO()
    call_command("generate_slots", stdout=out)
    assert out.getvalue().startswith("Slots: ")

    page.goto(f"{reverse('reception_day')}?date={day.isoformat()}")
    grid = page.locator("table.calendar-grid").inner_text()
    assert "Ada Lovelace" in grid
    assert "09:00" not in grid
    assert Appointment.objects.get().slot.starts_at == local(day, 10)
