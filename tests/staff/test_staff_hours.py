"""Rita edits working hours, time off and clinic closures; the slots follow at once, and a clash
with a booked appointment is shown to her instead of being dropped."""

from datetime import time, timedelta

import pytest
from django.urls import reverse

from bookings.models import Appointment, Slot, TimeOff, WorkingHours
from tests.helpers import days_ahead, local, patient_books
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


def _hours_form(periods, existing=()):
    """The working-hours formset as the browser posts it: existing rows first, then new ones."""
    data = {
        "hours-TOTAL_FORMS": str(len(existing) + len(periods)),
        "hours-INITIAL_FORMS": str(len(existing)),
        "hours-MIN_NUM_FORMS": "0",
        "hours-MAX_NUM_FORMS": "1000",
    }
    for index, (period, delete) in enumerate(existing):
        data |= {
            f"hours-{index}-id": str(period.pk),
            f"hours-{index}-weekday": str(period.weekday),
            f"hours-{index}-start_time": f"{period.start_time:%H:%M}",
            f"hours-{index}-end_time": f"{period.end_time:%H:%M}",
        }
        if delete:
            data[f"hours-{index}-DELETE"] = "on"
    for offset, (weekday, start, end) in enumerate(periods):
        index = len(existing) + offset
        data |= {
            f"hours-{index}-weekday": str(weekday),
            f"hours-{index}-start_time": start,
            f"hours-{index}-end_time": end,
        }
    return data


def _starts(day, practitioner=None, *, from_hour=0, until_hour=24):
    """The start times of the slots on a local day (optionally one practitioner, between two hours)."""
    end = local(day, 0) + timedelta(hours=until_hour)
    slots = Slot.objects.filter(starts_at__gte=local(day, from_hour), starts_at__lt=end)
    if practitioner is not None:
        slots = slots.filter(practitioner=practitioner)
    return sorted(slots.values_list("starts_at", flat=True))


def _keep(practitioner):
    """Post the practitioner's hours unchanged: the slots are generated from them."""
    return _hours_form([], [(period, False) for period in WorkingHours.objects.filter(practitioner=practitioner)])


def test_rita_adds_working_hours_and_the_slots_appear_at_once(client, rita, dr_patel):
    day = days_ahead(3)
    verified_login(client, rita)

    response = client.post(
        reverse("reception_practitioner_hours", args=[dr_patel.pk]), _hours_form([(day.weekday(), "09:00", "10:00")])
    )

    assert response.status_code == 302
    assert WorkingHours.objects.filter(practitioner=dr_patel).count() == 1
    assert _starts(day, dr_patel) == [local(day, 9), local(day, 9, 20), local(day, 9, 40)]
    page = client.get(response["Location"])
    assert "Saved. Slots updated:" in page.content.decode()


def test_rita_is_told_when_removing_hours_leaves_a_booked_appointment_outside_them(client, rita, dr_patel):
    day = days_ahead(3)
    period = WorkingHours.objects.create(
        practitioner=dr_patel, weekday=day.weekday(), start_time=time(9), end_time=time(10)
    )
    verified_login(client, rita)
    client.post(reverse("reception_practitioner_hours", args=[dr_patel.pk]), _hours_form([], [(period, False)]))
    ada = patient_books(Slot.objects.get(practitioner=dr_patel, starts_at=local(day, 9, 20)), last_name="Lovelace")

    response = client.post(
        reverse("reception_practitioner_hours", args=[dr_patel.pk]), _hours_form([], [(period, True)]), follow=True
    )

    html = response.content.decode()
    assert "1 booked appointment(s) no longer fit these hours" in html
    assert reverse("reception_appointment", args=[ada.pk]) in html
    assert Appointment.objects.live().filter(pk=ada.pk, slot__starts_at=local(day, 9, 20)).exists()
    # The free slots around it are gone.
    assert list(Slot.objects.filter(practitioner=dr_patel, starts_at__date=day).values_list("pk", flat=True)) == [
        ada.slot_id
    ]


def test_two_overlapping_periods_on_one_day_are_refused(client, rita, dr_patel):
    verified_login(client, rita)

    response = client.post(
        reverse("reception_practitioner_hours", args=[dr_patel.pk]),
        _hours_form([(0, "09:00", "12:00"), (0, "11:00", "13:00")]),
    )

    assert response.status_code == 400
    assert "Two periods on Monday overlap" in response.content.decode()
    assert not WorkingHours.objects.exists()


def test_a_period_that_ends_before_it_starts_is_refused(client, rita, dr_patel):
    verified_login(client, rita)

    response = client.post(
        reverse("reception_practitioner_hours", args=[dr_patel.pk]), _hours_form([(0, "12:00", "09:00")])
    )

    assert response.status_code == 400
    assert not WorkingHours.objects.exists()


@pytest.fixture
def patel_works_that_day(dr_patel, client, rita):
    day = days_ahead(3)
    verified_login(client, rita)
    client.post(
        reverse("reception_practitioner_hours", args=[dr_patel.pk]), _hours_form([(day.weekday(), "09:00", "11:00")])
    )
    return day


def test_rita_adds_time_off_and_the_free_slots_in_it_go_but_a_booking_is_reported(
    client, rita, dr_patel, patel_works_that_day
):
    day = patel_works_that_day
    ada = patient_books(Slot.objects.get(practitioner=dr_patel, starts_at=local(day, 9)), last_name="Lovelace")

    response = client.post(
        reverse("reception_time_off_add", args=[dr_patel.pk]),
        {"off-starts_at": f"{day}T08:00", "off-ends_at": f"{day}T10:00", "off-reason": "Dentist"},
        follow=True,
    )

    assert "1 booked appointment(s) no longer fit" in response.content.decode()
    assert reverse("reception_appointment", args=[ada.pk]) in response.content.decode()
    assert _starts(day, dr_patel) == [
        local(day, 9),
        local(day, 10),
        local(day, 10, 20),
        local(day, 10, 40),
    ]


def test_rita_removes_time_off_and_the_slots_come_back(client, rita, dr_patel, patel_works_that_day):
    day = patel_works_that_day
    client.post(
        reverse("reception_time_off_add", args=[dr_patel.pk]),
        {"off-starts_at": f"{day}T09:00", "off-ends_at": f"{day}T10:00", "off-reason": "Dentist"},
    )
    assert len(_starts(day, dr_patel, from_hour=9, until_hour=10)) == 0

    client.post(reverse("reception_time_off_delete", args=[TimeOff.objects.get().pk]))

    assert len(_starts(day, dr_patel, from_hour=9, until_hour=10)) == 3


def test_time_off_that_ends_before_it_starts_is_refused(client, rita, dr_patel):
    day = days_ahead(3)
    verified_login(client, rita)

    response = client.post(
        reverse("reception_time_off_add", args=[dr_patel.pk]),
        {"off-starts_at": f"{day}T12:00", "off-ends_at": f"{day}T09:00"},
    )

    assert response.status_code == 400
    assert "It must end after it starts: check the dates and times." in response.content.decode()
    assert not TimeOff.objects.exists()


def test_a_clinic_closure_takes_every_practitioners_free_slots_that_day(client, rita, dr_patel, dr_okafor):
    day = days_ahead(3)
    for practitioner in (dr_patel, dr_okafor):
        WorkingHours.objects.create(
            practitioner=practitioner, weekday=day.weekday(), start_time=time(9), end_time=time(10)
        )
    verified_login(client, rita)
    client.post(
        reverse("reception_practitioner_hours", args=[dr_okafor.pk]),
        _keep(dr_okafor),
    )
    client.post(
        reverse("reception_practitioner_hours", args=[dr_patel.pk]),
        _keep(dr_patel),
    )
    assert len(_starts(day)) == 6

    response = client.post(
        reverse("reception_hours"),
        {
            "closure-starts_at": f"{day}T00:00",
            "closure-ends_at": f"{day + timedelta(days=1)}T00:00",
            "closure-reason": "Bank holiday",
        },
    )

    assert response.status_code == 302
    assert TimeOff.objects.get().practitioner is None
    assert _starts(day) == []


NO_LONGER_FITS = "Outside hours or in time off: move or cancel"


def test_a_booking_that_no_longer_fits_stays_marked_on_the_day_and_week_until_rita_moves_it(
    client, rita, dr_patel, patel_works_that_day
):
    day = patel_works_that_day
    ada = patient_books(Slot.objects.get(practitioner=dr_patel, starts_at=local(day, 9)), last_name="Lovelace")
    grace = patient_books(Slot.objects.get(practitioner=dr_patel, starts_at=local(day, 10)), last_name="Hopper")
    client.post(
        reverse("reception_time_off_add", args=[dr_patel.pk]),
        {"off-starts_at": f"{day}T08:00", "off-ends_at": f"{day}T09:30", "off-reason": "Dentist"},
    )
    # The warning after the change has been shown; the views keep saying it.
    for _ in range(2):
        day_view = client.get(reverse("reception_day"), {"date": day.isoformat()}).content.decode()
        week_view = client.get(
            reverse("reception_week", args=[dr_patel.pk]), {"date": day.isoformat()}
        ).content.decode()
        assert day_view.count(NO_LONGER_FITS) == 1
        assert week_view.count(NO_LONGER_FITS) == 1
    rows = client.get(reverse("reception_day"), {"date": day.isoformat()}).context["rows"]
    marked = [cell.appointment for _, cells in rows for cell in cells if cell and cell.no_longer_fits]
    assert marked == [ada]
    assert grace not in marked

    client.post(
        reverse("reception_appointment_move", args=[ada.pk]),
        {"slot": Slot.objects.get(practitioner=dr_patel, starts_at=local(day, 10, 20)).pk},
    )

    assert NO_LONGER_FITS not in client.get(reverse("reception_day"), {"date": day.isoformat()}).content.decode()
    assert (
        NO_LONGER_FITS
        not in client.get(reverse("reception_week", args=[dr_patel.pk]), {"date": day.isoformat()}).content.decode()
    )


def test_a_booking_outside_new_hours_is_marked_until_rita_cancels_it(client, rita, dr_patel, patel_works_that_day):
    day = patel_works_that_day
    ada = patient_books(Slot.objects.get(practitioner=dr_patel, starts_at=local(day, 10, 40)), last_name="Lovelace")
    period = WorkingHours.objects.get(practitioner=dr_patel)
    client.post(
        reverse("reception_practitioner_hours", args=[dr_patel.pk]),
        _hours_form([(period.weekday, "09:00", "10:00")], [(period, True)]),
    )
    assert NO_LONGER_FITS in client.get(reverse("reception_day"), {"date": day.isoformat()}).content.decode()

    client.post(reverse("reception_appointment_cancel", args=[ada.pk]), {"reason": "Hours changed"})

    assert NO_LONGER_FITS not in client.get(reverse("reception_day"), {"date": day.isoformat()}).content.decode()
