"""The schedule's screens: the public team page, the admin for superusers, and the demo data."""

from datetime import date, datetime, time
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db.models import Max

from bookings.models import Appointment, Practitioner, Slot, TimeOff, WorkingHours
from bookings.schedule import slots_generate
from tests.helpers import patient_books
from tests.staff_signin import verified_login

LONDON = ZoneInfo("Europe/London")
# Sunday noon; the admin saves with the wall clock, so these tests stop it here.
NOW = datetime(2026, 6, 7, 12, 0, tzinfo=LONDON)
MONDAY = date(2026, 6, 8)

pytestmark = pytest.mark.django_db


def _at(day, hour, minute=0):
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON)


def _local_starts(practitioner):
    slots = Slot.objects.filter(practitioner=practitioner).order_by("starts_at")
    return [f"{slot.starts_at.astimezone(LONDON):%a %H:%M}" for slot in slots]


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def mondays(dr_patel, dr_okafor, settings):
    """Both doctors work Monday 09:00-10:00, with slots for the week ahead: one Monday."""
    settings.BOOKING_HORIZON_DAYS = 6
    for practitioner in (dr_patel, dr_okafor):
        WorkingHours.objects.create(practitioner=practitioner, weekday=0, start_time=time(9), end_time=time(10))
    slots_generate(now=NOW)


# -- Our team ---------------------------------------------------------------------------------


def test_the_team_page_lists_active_practitioners_in_list_order(client, dr_patel, dr_okafor):
    Practitioner.objects.filter(pk=dr_okafor.pk).update(list_order=0)
    Practitioner.objects.create(display_name="Former Colleague", profession="Physiotherapist", is_active=False)

    response = client.get("/team/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Former Colleague" not in html
    assert 0 < html.index("Dr Chidi Okafor") < html.index("Dr Priya Patel")
    assert list(response.context["practitioners"]) == [dr_okafor, dr_patel]


def test_the_team_page_costs_the_same_queries_for_one_or_many_practitioners(
    client, dr_patel, django_assert_num_queries
):
    # 1. The listed practitioners (bio, profession and the booking link need nothing more).
    with django_assert_num_queries(1):
        assert client.get("/team/").status_code == 200
    for order in range(10):
        Practitioner.objects.create(display_name=f"Colleague {order}", profession="Physiotherapist", list_order=order)
    with django_assert_num_queries(1):
        response = client.get("/team/")
    assert len(response.context["practitioners"]) == 11


def test_the_team_page_links_only_practitioners_who_offer_the_free_consultation(client, dr_patel, dr_okafor):
    Practitioner.objects.filter(pk=dr_okafor.pk).update(offers_free_consultation=False)

    html = client.get("/team/").content.decode()

    assert "Book a free consultation with Dr Priya Patel" in html
    assert "Dr Chidi Okafor" in html
    assert "Book a free consultation with Dr Chidi Okafor" not in html


# -- The admin --------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["practitioner", "workinghours", "timeoff", "slot"])
def test_the_schedule_changelists_load_for_a_superuser(admin_client, mondays, dr_patel, model):
    TimeOff.objects.create(practitioner=None, starts_at=_at(MONDAY, 0), ends_at=_at(MONDAY, 23), reason="Bank holiday")

    response = admin_client.get(f"/admin/bookings/{model}/")

    assert response.status_code == 200
    assert response.context["cl"].result_count > 0


@pytest.mark.parametrize("model", ["practitioner", "workinghours", "timeoff", "slot"])
def test_the_schedule_admin_is_closed_to_reception(client, rita, model):
    verified_login(client, rita)

    response = client.get(f"/admin/bookings/{model}/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_saving_time_off_in_the_admin_removes_the_affected_open_slots(admin_client, clock, mondays, dr_patel):
    response = admin_client.post(
        "/admin/bookings/timeoff/add/",
        {
            "practitioner": dr_patel.pk,
            "starts_at_0": "2026-06-08",
            "starts_at_1": "09:20:00",
            "ends_at_0": "2026-06-08",
            "ends_at_1": "10:00:00",
            "reason": "Dentist",
        },
        follow=True,
    )

    assert response.status_code == 200
    assert TimeOff.objects.get().reason == "Dentist"
    assert "Slots updated: 0 created, 2 removed." in [str(message) for message in response.context["messages"]]
    assert _local_starts(dr_patel) == ["Mon 09:00"]


def test_a_clinic_closure_saved_in_the_admin_removes_everyones_slots(admin_client, clock, mondays, dr_patel, dr_okafor):
    admin_client.post(
        "/admin/bookings/timeoff/add/",
        {"starts_at_0": "2026-06-08", "starts_at_1": "00:00", "ends_at_0": "2026-06-09", "ends_at_1": "00:00"},
    )

    assert TimeOff.objects.get().practitioner is None
    assert Slot.objects.count() == 0


def test_time_off_over_a_booking_saved_in_the_admin_warns_reception(admin_client, clock, mondays, dr_patel):
    booked = Slot.objects.get(practitioner=dr_patel, starts_at=_at(MONDAY, 9))
    Appointment.objects.create(
        slot=booked,
        first_name="Pat",
        last_name="Ient",
        phone="0",
        manage_token_hash="x",
        created_at=NOW,
        updated_at=NOW,
    )

    response = admin_client.post(
        "/admin/bookings/timeoff/add/",
        {
            "practitioner": dr_patel.pk,
            "starts_at_0": "2026-06-08",
            "starts_at_1": "00:00",
            "ends_at_0": "2026-06-09",
            "ends_at_1": "00:00",
        },
        follow=True,
    )

    messages = [str(message) for message in response.context["messages"]]
    assert any("1 booked appointment(s) no longer fit" in message for message in messages)
    assert _local_starts(dr_patel) == ["Mon 09:00"]


def test_deleting_time_off_in_the_admin_brings_the_slots_back(admin_client, clock, mondays, dr_patel):
    time_off = TimeOff.objects.create(practitioner=dr_patel, starts_at=_at(MONDAY, 0), ends_at=_at(MONDAY, 23))
    slots_generate(now=NOW)
    assert _local_starts(dr_patel) == []

    admin_client.post(f"/admin/bookings/timeoff/{time_off.pk}/delete/", {"post": "yes"})

    assert _local_starts(dr_patel) == ["Mon 09:00", "Mon 09:20", "Mon 09:40"]


def test_deleting_time_off_with_the_admin_action_brings_the_slots_back(admin_client, clock, mondays, dr_patel):
    time_off = TimeOff.objects.create(practitioner=dr_patel, starts_at=_at(MONDAY, 0), ends_at=_at(MONDAY, 23))
    slots_generate(now=NOW)

    admin_client.post(
        "/admin/bookings/timeoff/", {"action": "delete_selected", "_selected_action": [time_off.pk], "post": "yes"}
    )

    assert not TimeOff.objects.exists()
    assert _local_starts(dr_patel) == ["Mon 09:00", "Mon 09:20", "Mon 09:40"]


def test_moving_time_off_to_another_practitioner_in_the_admin_gives_the_first_one_their_slots_back(
    admin_client, clock, mondays, dr_patel, dr_okafor
):
    time_off = TimeOff.objects.create(practitioner=dr_patel, starts_at=_at(MONDAY, 0), ends_at=_at(MONDAY, 23))
    slots_generate(now=NOW)

    admin_client.post(
        f"/admin/bookings/timeoff/{time_off.pk}/change/",
        {
            "practitioner": dr_okafor.pk,
            "starts_at_0": "2026-06-08",
            "starts_at_1": "00:00",
            "ends_at_0": "2026-06-08",
            "ends_at_1": "23:00",
        },
    )

    assert _local_starts(dr_patel) == ["Mon 09:00", "Mon 09:20", "Mon 09:40"]
    assert _local_starts(dr_okafor) == []


def test_saving_working_hours_in_the_admin_regenerates_the_slots(admin_client, clock, mondays, dr_patel):
    hours = WorkingHours.objects.get(practitioner=dr_patel)

    response = admin_client.post(
        f"/admin/bookings/workinghours/{hours.pk}/change/",
        {"practitioner": dr_patel.pk, "weekday": 0, "start_time": "09:20", "end_time": "10:20"},
    )

    assert response.status_code == 302
    assert _local_starts(dr_patel) == ["Mon 09:20", "Mon 09:40", "Mon 10:00"]


def _practitioner_page(practitioner, hours, *, second: tuple[int, str, str]) -> dict:
    """The practitioner's admin page as sent back: their existing period HOURS and a SECOND (weekday, start, end)."""
    weekday, start, end = second
    return {
        "user": practitioner.user_id,
        "display_name": "Priya Patel",
        "title": "Dr",
        "profession": "Physiotherapist",
        "bio": "",
        "is_active": "on",
        "offers_free_consultation": "on",
        "list_order": 1,
        "working_hours-TOTAL_FORMS": 2,
        "working_hours-INITIAL_FORMS": 1,
        "working_hours-MIN_NUM_FORMS": 0,
        "working_hours-MAX_NUM_FORMS": 1000,
        "working_hours-0-id": hours.pk,
        "working_hours-0-practitioner": practitioner.pk,
        "working_hours-0-weekday": hours.weekday,
        "working_hours-0-start_time": f"{hours.start_time:%H:%M}",
        "working_hours-0-end_time": f"{hours.end_time:%H:%M}",
        "working_hours-1-practitioner": practitioner.pk,
        "working_hours-1-weekday": weekday,
        "working_hours-1-start_time": start,
        "working_hours-1-end_time": end,
    }


def test_adding_working_hours_on_the_practitioner_page_adds_their_slots(admin_client, clock, mondays, dr_patel):
    hours = WorkingHours.objects.get(practitioner=dr_patel)
    form = _practitioner_page(dr_patel, hours, second=(1, "14:00", "14:40"))

    response = admin_client.post(f"/admin/bookings/practitioner/{dr_patel.pk}/change/", form)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert _local_starts(dr_patel) == ["Mon 09:00", "Mon 09:20", "Mon 09:40", "Tue 14:00", "Tue 14:20"]


def test_the_admin_refuses_working_hours_that_overlap_the_practitioners_others(admin_client, clock, mondays, dr_patel):
    # Saved, it would make reception's hours page refuse every save until someone found this period.
    response = admin_client.post(
        "/admin/bookings/workinghours/add/",
        {"practitioner": dr_patel.pk, "weekday": 0, "start_time": "09:30", "end_time": "11:00"},
    )

    assert response.status_code == 200
    assert "overlaps another on Monday (09:30-11:00 and 09:00-10:00)" in response.content.decode()
    assert WorkingHours.objects.filter(practitioner=dr_patel).count() == 1


def test_the_admin_refuses_two_overlapping_periods_on_the_practitioner_page(admin_client, clock, mondays, dr_patel):
    hours = WorkingHours.objects.get(practitioner=dr_patel)
    form = _practitioner_page(dr_patel, hours, second=(0, "09:40", "10:40"))

    response = admin_client.post(f"/admin/bookings/practitioner/{dr_patel.pk}/change/", form)

    assert response.status_code == 200
    assert "overlaps another on Monday" in response.content.decode()
    assert WorkingHours.objects.filter(practitioner=dr_patel).count() == 1


def test_the_admin_names_slots_and_time_off_in_clinic_time(admin_client, dr_patel):
    # 09:00 in June is 08:00 UTC: a superuser reading the appointment list must see 09:00.
    slot = Slot(practitioner=dr_patel, starts_at=_at(MONDAY, 9), ends_at=_at(MONDAY, 9, 20))
    time_off = TimeOff(practitioner=None, starts_at=_at(MONDAY, 9), ends_at=_at(MONDAY, 17, 30))

    assert str(slot) == "Dr Priya Patel 2026-06-08 09:00"
    assert str(time_off) == "Whole clinic: 2026-06-08 09:00 to 2026-06-08 17:30"


# -- Demo data --------------------------------------------------------------------------------


def _footprint():
    """Row counts and highest ids of every table the demo data writes to: any new row shows."""
    tables = [User, Practitioner, WorkingHours, TimeOff, Slot, Appointment]
    return {model.__name__: (model.objects.count(), model.objects.aggregate(Max("pk"))["pk__max"]) for model in tables}


def test_the_demo_data_gives_its_practitioners_hours_and_eight_weeks_of_slots_and_a_rerun_changes_nothing(settings):
    settings.DEBUG = True
    settings.BOOKING_HORIZON_DAYS = 56
    monday = datetime(2026, 6, 1, 8, 0, tzinfo=LONDON)

    with time_machine.travel(monday, tick=False):
        call_command("load_demo_data", "--quiet-logins", stdout=StringIO())
        footprint = _footprint()
        rows = list(Slot.objects.order_by("pk").values_list("pk", "practitioner", "starts_at", "ends_at", "state"))
        out = StringIO()
        call_command("load_demo_data", "--quiet-logins", stdout=out)

    assert _footprint() == footprint
    assert list(Slot.objects.order_by("pk").values_list("pk", "practitioner", "starts_at", "ends_at", "state")) == rows
    assert "Slots: 0 created, 0 removed." in out.getvalue()
    practitioners = list(Practitioner.objects.listed())
    assert [p.user.username for p in practitioners] == ["dr.patel", "dr.okafor", "sam.lee"]
    for practitioner in practitioners:
        assert practitioner.working_hours.exists()
        local_days = {slot.starts_at.astimezone(LONDON).date() for slot in practitioner.slots.all()}
        # A slot in each of the eight weeks ahead, and none past the horizon.
        weeks = {(day - date(2026, 6, 1)).days // 7 for day in local_days}
        assert weeks == set(range(8)) | ({8} if date(2026, 7, 27) in local_days else set())
        assert max(local_days) <= date(2026, 7, 27)
    # Dr Patel: 21 slots a weekday (09:00-12:40 and 13:40-17:00), 41 weekdays from 1 June to 27 July.
    patel = practitioners[0]
    assert patel.slots.count() == 41 * 21
    # All open: bookable but for the three before 10:00 today (two hours' notice) and the 21 on the
    # last day, which the horizon (56 days from 08:00 today) has not reached yet.
    assert Slot.objects.bookable(now=monday).filter(practitioner=patel).count() == 41 * 21 - 3 - 21


def test_the_demo_clinic_is_closed_on_englands_bank_holidays_and_a_rerun_adds_no_second_closure(settings):
    settings.DEBUG = True
    settings.BOOKING_HORIZON_DAYS = 56
    first_of_december = datetime(2026, 12, 1, 8, 0, tzinfo=LONDON)

    with time_machine.travel(first_of_december, tick=False):
        call_command("load_demo_data", "--quiet-logins", stdout=StringIO())
        call_command("load_demo_data", "--quiet-logins", stdout=StringIO())

    closed = {
        closure.starts_at.astimezone(LONDON).date() for closure in TimeOff.objects.filter(practitioner__isnull=True)
    }
    # Christmas Day (a Friday), Boxing Day (a Saturday) and its substitute Monday 28 December, New Year's Day.
    assert closed == {date(2026, 12, 25), date(2026, 12, 26), date(2026, 12, 28), date(2027, 1, 1)}
    assert TimeOff.objects.count() == 4
    slot_days = {slot.starts_at.astimezone(LONDON).date() for slot in Slot.objects.all()}
    assert not slot_days & closed
    assert date(2026, 12, 24) in slot_days


def test_making_a_practitioner_inactive_in_the_admin_warns_of_the_appointments_they_still_have(
    admin_client, clock, mondays, dr_patel
):
    """Found by hand: the bookings stayed (reception moves or cancels them) and nothing said so."""
    booked = Slot.objects.filter(practitioner=dr_patel).order_by("starts_at").first()
    patient_books(booked, first_name="Ada", last_name="Lovelace")
    form = _practitioner_page(dr_patel, WorkingHours.objects.get(practitioner=dr_patel), second=(1, "14:00", "14:40"))
    del form["is_active"]

    response = admin_client.post(f"/admin/bookings/practitioner/{dr_patel.pk}/change/", form, follow=True)

    messages = [str(message) for message in response.context["messages"]]
    warning = "is not taking online bookings but still has 1 upcoming appointment(s)"
    assert any(warning in message and "Mon 08 Jun 09:00" in message for message in messages), messages
    assert Appointment.objects.live().filter(slot=booked).exists()


def test_an_active_practitioners_page_saved_in_the_admin_says_nothing_of_kept_appointments(
    admin_client, clock, mondays, dr_patel
):
    booked = Slot.objects.filter(practitioner=dr_patel).order_by("starts_at").first()
    patient_books(booked, first_name="Ada", last_name="Lovelace")
    form = _practitioner_page(dr_patel, WorkingHours.objects.get(practitioner=dr_patel), second=(1, "14:00", "14:40"))

    response = admin_client.post(f"/admin/bookings/practitioner/{dr_patel.pk}/change/", form, follow=True)

    assert not any("still has" in str(message) for message in response.context["messages"])
