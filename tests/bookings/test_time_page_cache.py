"""The time page is rendered once and served again until its slots change: never a stale time.

These tests run outside a test transaction (transaction=True), as a server does: inside one the
cache stays out of the way, because a rendering could be rolled back together with its version.
"""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, connections, transaction
from django.utils import timezone

from bookings import views
from bookings.models import Appointment, Practitioner, Slot
from bookings.services import PatientDetails, appointment_book, appointment_cancel, slot_block, slot_unblock
from tests.helpers import local, make_slot, pass_safety_check, time_link, works_at
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db(transaction=True)
PATIENT = PatientDetails(first_name="Pat", last_name="Example", email="pat@example.org", phone="07700 900123")


def offered(client, path="/book/time/") -> set[int]:
    response = client.get(path)
    assert response.status_code == 200
    content = response.content.decode()
    # One practitioner's page links slots; "any practitioner" links start times (one practitioner each here).
    return {
        slot.pk for slot in Slot.objects.all() if f'?slot={slot.pk}"' in content or f'{time_link(slot)}"' in content
    }


def book(slot):
    return appointment_book(slot_id=slot.pk, patient=PATIENT, now=timezone.now(), safety_answers={"trauma": "no"})


@pytest.fixture
def patient(client):
    pass_safety_check(client)
    return client


def test_a_second_patient_gets_the_kept_page_for_one_query(patient, dr_patel, django_assert_num_queries):
    slot = make_slot(dr_patel, local(3, 10))
    assert offered(patient) == {slot.pk}
    hits = views._time_pages.hits

    # Only the availability version of the page's days: the safety check's pass is a signed cookie.
    with django_assert_num_queries(1):
        response = patient.get("/book/time/")
    assert f'{time_link(slot)}"' in response.content.decode()
    assert views._time_pages.hits == hits + 1


def test_a_time_booked_by_another_patient_disappears_at_once(patient, dr_patel):
    taken, free = make_slot(dr_patel, local(3, 10)), make_slot(dr_patel, local(3, 11))
    assert offered(patient) == {taken.pk, free.pk}

    book(taken)

    assert offered(patient) == {free.pk}


def test_a_cancelled_booking_offers_its_time_again_at_once(patient, dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    works_at(dr_patel, slot.starts_at)
    appointment = book(slot).appointment
    assert offered(patient) == set()

    appointment_cancel(appointment=appointment, now=timezone.now())

    assert offered(patient) == {slot.pk}


def test_blocking_and_unblocking_a_slot_show_at_once(patient, dr_patel, rita):
    slot, other = make_slot(dr_patel, local(3, 10)), make_slot(dr_patel, local(3, 11))
    works_at(dr_patel, slot.starts_at)
    assert offered(patient) == {slot.pk, other.pk}

    slot_block(slot=slot, now=timezone.now(), actor=rita, reason="Team meeting")
    assert offered(patient) == {other.pk}

    slot_unblock(slot=Slot.objects.get(pk=slot.pk), now=timezone.now(), actor=rita)
    assert offered(patient) == {slot.pk, other.pk}


def test_a_change_made_in_plain_sql_shows_at_once_too(patient, dr_patel):
    slot, other = make_slot(dr_patel, local(3, 10)), make_slot(dr_patel, local(3, 11))
    assert offered(patient) == {slot.pk, other.pk}

    with connection.cursor() as cursor:
        cursor.execute("UPDATE bookings_slot SET state = 'blocked' WHERE id = %s", [slot.pk])
    assert offered(patient) == {other.pk}

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM bookings_slot WHERE id = %s", [other.pk])
    assert offered(patient) == set()


def test_new_slots_from_working_hours_show_at_once(patient, dr_patel):
    first = make_slot(dr_patel, local(3, 10))
    assert offered(patient) == {first.pk}

    Slot.objects.bulk_create(
        [Slot(practitioner=dr_patel, starts_at=local(3, 11), ends_at=local(3, 11) + timedelta(minutes=20))]
    )

    assert len(offered(patient)) == 2


def test_a_renamed_practitioner_shows_at_once(patient, dr_patel):
    make_slot(dr_patel, local(3, 10))
    assert "Priya Patel" in patient.get("/book/time/").content.decode()

    Practitioner.objects.filter(pk=dr_patel.pk).update(display_name="Priya Patel-Shah")

    assert "Priya Patel-Shah" in patient.get("/book/time/").content.decode()


def test_a_booking_in_another_week_keeps_this_weeks_page(patient, dr_patel, dr_okafor):
    this_week = make_slot(dr_patel, local(3, 10))
    later = make_slot(dr_okafor, local(24, 10))
    offered(patient)
    renders = views._time_pages.renders

    book(later)

    assert offered(patient) == {this_week.pk}
    assert views._time_pages.renders == renders  # still the kept page: nothing in its days changed


def test_the_first_time_leaves_the_page_when_it_passes_its_minimum_notice(patient, dr_patel, settings):
    # Two minutes from the edge of the notice: well inside the kept page's five-minute limit (MAX_AGE),
    # so only the page's own expiry can take it away.
    now = timezone.now().replace(microsecond=0)
    soon = make_slot(dr_patel, now + settings.BOOKING_MIN_NOTICE + timedelta(minutes=2))
    later = make_slot(dr_patel, now + settings.BOOKING_MIN_NOTICE + timedelta(hours=1))
    assert offered(patient) == {soon.pk, later.pk}

    with time_machine.travel(now + timedelta(minutes=2, seconds=1), tick=False):
        assert offered(patient) == {later.pk}


def test_each_week_and_practitioner_is_its_own_page(patient, dr_patel, dr_okafor):
    patel, okafor = make_slot(dr_patel, local(3, 10)), make_slot(dr_okafor, local(3, 11))

    assert offered(patient) == {patel.pk, okafor.pk}
    assert offered(patient, f"/book/time/?practitioner={dr_okafor.pk}") == {okafor.pk}
    assert offered(patient, f"/book/time/?practitioner={dr_patel.pk}") == {patel.pk}


def test_a_page_with_a_message_for_one_patient_is_never_shown_to_another(client, dr_patel):
    from django.test import Client

    make_slot(dr_patel, local(3, 10))
    client.get("/book/time/")  # not past the safety check: sent back with a message
    pass_safety_check(client)
    assert "Please answer the short safety check" in client.get("/book/time/").content.decode()

    another_patient = Client()
    pass_safety_check(another_patient)
    assert "Please answer the short safety check" not in another_patient.get("/book/time/").content.decode()


def test_signed_in_staff_always_get_a_fresh_page(client, dr_patel, rita, monkeypatch):
    from clinic import page_cache

    make_slot(dr_patel, local(3, 10))
    # Whatever the rendered page holds (a staff page has a sign-out form with a CSRF token), being
    # signed in is enough: the page is not even considered for keeping.
    monkeypatch.setattr(page_cache, "_keepable", lambda *args: True)
    pass_safety_check(client)
    client.get("/book/time/")
    client.get("/book/time/")
    assert (views._time_pages.renders, views._time_pages.hits) == (1, 1)  # a patient's page is kept
    views._time_pages.clear()

    verified_login(client, rita)
    client.get("/book/time/")
    client.get("/book/time/")

    assert (views._time_pages.renders, views._time_pages.hits) == (0, 0)


def test_inside_a_transaction_nothing_is_kept(patient, dr_patel):
    make_slot(dr_patel, local(3, 10))
    with transaction.atomic():
        patient.get("/book/time/")
        patient.get("/book/time/")
    assert views._time_pages.hits == 0 and views._time_pages.renders == 0


def test_a_booking_committed_while_the_page_renders_is_never_hidden_behind_it(patient, dr_patel, monkeypatch):
    """The page and its version come from one snapshot: a booking committed between them shows next time.

    Without the REPEATABLE READ transaction the version would be read after the booking committed,
    and the page built before it would be kept under that newer version, offering a taken time.
    """
    slot, other = make_slot(dr_patel, local(3, 10)), make_slot(dr_patel, local(3, 11))
    real_context = views.slot_picker_context

    def context_then_another_patient_books(request, *, now):
        context = real_context(request, now=now)
        booker = threading.Thread(target=lambda: (book(slot), connections.close_all()))
        booker.start()
        booker.join()
        return context

    monkeypatch.setattr(views, "slot_picker_context", context_then_another_patient_books)
    assert offered(patient) == {slot.pk, other.pk}  # rendered before the booking committed
    monkeypatch.setattr(views, "slot_picker_context", real_context)

    assert Appointment.objects.live().filter(slot=slot).exists()
    assert offered(patient) == {other.pk}


def test_in_the_week_the_clocks_go_forward_a_booking_on_either_side_of_the_change_shows_at_once(patient, dr_patel):
    """The versions are kept per UTC day; the page's local week (23-29 March 2026) covers them across the change."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    london = ZoneInfo("Europe/London")
    before_change = make_slot(dr_patel, datetime(2026, 3, 28, 23, 40, tzinfo=london))  # Saturday, GMT
    after_change = make_slot(dr_patel, datetime(2026, 3, 29, 23, 20, tzinfo=london))  # Sunday, BST: 22:20 UTC
    with time_machine.travel(datetime(2026, 3, 23, 9, 0, tzinfo=london), tick=False):
        pass_safety_check(patient)
        week = "/book/time/?week=2026-03-23"
        assert offered(patient, week) == {before_change.pk, after_change.pk}

        book(after_change)
        assert offered(patient, week) == {before_change.pk}
        book(before_change)
        assert offered(patient, week) == set()


def test_a_kept_page_expires_at_the_real_notice_edge_across_the_spring_clock_change(dr_patel, settings, rf):
    """09:00 BST on Sunday 29 March 2026 minus 24 hours is 08:00 UTC on Saturday, not 09:00 on the wall clock."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    settings.BOOKING_MIN_NOTICE = timedelta(hours=24)
    london = ZoneInfo("Europe/London")
    sunday_morning = make_slot(dr_patel, datetime(2026, 3, 29, 9, 0, tzinfo=london))
    now = datetime(2026, 3, 27, 12, 0, tzinfo=london)

    context = views.slot_picker_context(rf.get("/book/time/?week=2026-03-23"), now=now)

    assert [time.pk for _, times in context["days"] for time in times] == [sunday_morning.pk]
    assert context["valid_until"] == datetime(2026, 3, 28, 8, 0, tzinfo=ZoneInfo("UTC"))
