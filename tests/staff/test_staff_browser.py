"""Rita and Dr Patel in Chromium: sign in through the form, then do a day's work with the mouse."""

import re
from datetime import timedelta

import pytest

from bookings.models import Appointment, AppointmentEvent, Slot
from tests.helpers import (
    PASSWORD,
    appointment_in_the_past_or_today,
    days_ahead,
    local,
    make_slot,
    patient_books,
    today,
)
from tests.staff_signin import browser_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, username):
    browser_sign_in(page, username, PASSWORD)


def test_rita_books_a_caller_into_the_next_free_slot_and_then_moves_them(page, rita, dr_patel, dr_okafor):
    day = days_ahead(2)
    taken = make_slot(dr_patel, local(day, 9))
    patient_books(taken, first_name="Ada", last_name="Lovelace")
    soonest = make_slot(dr_okafor, local(day, 9, 10))
    later = make_slot(dr_patel, local(day, 11))

    sign_in(page, "rita")
    page.wait_for_url("**/staff/reception/")
    page.get_by_role("link", name="Next free slots for a caller").click()
    page.locator("main table").get_by_role("link", name=re.compile(r"^Book")).first.click()
    page.get_by_label("No, none of these").check()
    page.get_by_label("First name").fill("Grace")
    page.get_by_label("Last name").fill("Hopper")
    page.get_by_label("Phone").fill("07700 900456")
    page.get_by_label("Note (optional)").fill("Left hip, worse on stairs.")
    page.get_by_label(re.compile("I have told the caller")).check()
    page.get_by_role("button", name="Book this slot").click()

    page.wait_for_url(re.compile(r"/staff/reception/appointments/\d+/$"))
    assert "Booked Grace Hopper with Dr Chidi Okafor by phone." in page.inner_text("main")
    appointment = Appointment.objects.get(first_name="Grace")
    assert (appointment.slot, appointment.source, appointment.booked_by) == (soonest, "phone", rita)

    page.get_by_role("link", name="Move to another time").click()
    page.get_by_role("button", name=re.compile(r"^11:00")).click()

    page.wait_for_url(re.compile(r"/staff/reception/appointments/\d+/$"))
    assert "Moved Grace Hopper." in page.inner_text("main")
    appointment.refresh_from_db()
    assert appointment.slot == later
    assert [event.action for event in appointment.events.all()] == [
        AppointmentEvent.Action.BOOKED,
        AppointmentEvent.Action.MOVED,
    ]
    assert "Moved" in page.locator("#history-heading ~ .table-responsive table").inner_text()


def test_dr_patel_signs_in_and_opens_todays_appointment(page, dr_patel):
    ada = appointment_in_the_past_or_today(
        make_slot(dr_patel, local(today(), 0, 20)), first_name="Ada", last_name="Lovelace", note="Left hip."
    )

    sign_in(page, "dr.patel")
    page.wait_for_url("**/staff/me/")
    page.get_by_role("link", name="Ada Lovelace").click()

    page.wait_for_url(f"**/staff/me/appointments/{ada.pk}/")
    main = page.inner_text("main")
    assert "07700 900123" in main
    assert "Left hip." in main


def test_the_day_view_fits_a_1280_pixel_screen(page, rita, dr_patel, dr_okafor, django_user_model):
    from django.contrib.auth.models import Group

    from bookings.models import Practitioner

    user = django_user_model.objects.create_user("sam.lee", password=PASSWORD)
    user.groups.add(Group.objects.get(name="Practitioner"))
    sam = Practitioner.objects.create(user=user, display_name="Sam Lee", list_order=3)
    day = days_ahead(1)
    names = iter([("Ada", "Lovelace"), ("Grace", "Hopper"), ("Alan", "Turing"), ("Katherine", "Johnson")])
    for index, practitioner in enumerate([dr_patel, dr_okafor, sam]):
        for step in range(18):
            slot = make_slot(practitioner, local(day, 9) + timedelta(minutes=20 * step + 10 * index))
            if (step + index) % 4 == 0:
                first_name, last_name = next(names, ("Pat", "Ient"))
                patient_books(slot, first_name=first_name, last_name=last_name)
            elif step == 7:
                Slot.objects.filter(pk=slot.pk).update(state=Slot.State.BLOCKED, blocked_reason="Team meeting")
    page.set_viewport_size({"width": 1280, "height": 900})

    sign_in(page, "rita")
    page.wait_for_url("**/staff/reception/")
    page.goto(f"/staff/reception/?date={day.isoformat()}")
    page.screenshot(path="/tmp/dayview.png", full_page=True)

    # No sideways scrolling at 1280 pixels with three practitioners.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    table = page.locator("table.calendar-grid")
    assert table.locator("thead th").count() == 4
    assert table.bounding_box()["width"] <= 1280


def test_a_very_long_name_wraps_inside_its_column_of_the_day_view(page, rita, dr_patel, dr_okafor, django_user_model):
    """Found by hand: an 80-letter first name (the form takes up to 100) widened its column past the screen."""
    from django.contrib.auth.models import Group

    from bookings.models import Practitioner

    user = django_user_model.objects.create_user("sam.lee", password=PASSWORD)
    user.groups.add(Group.objects.get(name="Practitioner"))
    sam = Practitioner.objects.create(user=user, display_name="Sam Lee", list_order=3)
    day = days_ahead(1)
    for index, practitioner in enumerate([dr_patel, dr_okafor, sam]):
        for step in range(6):
            make_slot(practitioner, local(day, 9) + timedelta(minutes=20 * step + 10 * index))
    patient_books(Slot.objects.filter(practitioner=dr_patel).first(), first_name="L" * 80, last_name="Long")
    page.set_viewport_size({"width": 1280, "height": 900})

    sign_in(page, "rita")
    page.wait_for_url("**/staff/reception/")
    page.goto(f"/staff/reception/?date={day.isoformat()}")

    table = page.locator("table.calendar-grid")
    assert "L" * 20 in table.inner_text()
    # The grid keeps to the page's width: nothing to scroll sideways, inside its box or outside.
    assert table.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth"), table.evaluate(
        "t => [t.scrollWidth, t.parentElement.clientWidth]"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
