"""The reads that look a patient up among all the appointments stay index reads as the diary fills.

With thousands of upcoming appointments, the online booking's per-contact count read every one of them (30 ms a
booking) and reception's day view read them all again for each appointment it shows (4.6 s a page at 8,000). The
statements are taken as the site runs them and planned with sequential scans switched off: PostgreSQL then uses
an index wherever one fits the condition, so the plan names the index only if the condition still matches it
(say, an e-mail compared with UPPER() against an index on LOWER()). A test database is too small to show the time.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bookings.services import OnlineBookingGuard, PatientDetails, appointment_book
from tests.helpers import local, make_slot, patient_books
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db

OTHER_PATIENTS = 600
BACKLOG = 400


@pytest.fixture
def a_full_diary(dr_okafor):
    """Other patients' upcoming appointments, as a clinic's diary holds them: with a handful of rows the planner
    rightly prefers any index with a filter, and the plan would say nothing about the conditions."""
    from bookings.models import Appointment, Slot

    start = local(10, 8)
    slots = Slot.objects.bulk_create(
        Slot(
            practitioner=dr_okafor,
            starts_at=start + timedelta(minutes=20 * i),
            ends_at=start + timedelta(minutes=20 * i + 20),
        )
        for i in range(OTHER_PATIENTS)
    )
    # Booked a month ago: the hour's burst counts look only at recent bookings.
    now = timezone.now() - timedelta(days=30)
    Appointment.objects.bulk_create(
        Appointment(
            slot=slot,
            first_name="Other",
            last_name=f"Patient{i}",
            email=f"other{i}@example.org",
            phone=f"07800 9{i:05d}",
            phone_normalised=f"+4478009{i:05d}",
            note=f"note {i}",
            manage_token_hash=f"other-{i}",
            created_at=now,
            updated_at=now,
        )
        for i, slot in enumerate(slots)
    )


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        # Statistics of this test's own rows, not of what earlier tests left in the table's counters: the plan
        # would otherwise depend on the order the suite runs in.
        cursor.execute("ANALYZE bookings_appointment, bookings_slot")
        cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute(f"EXPLAIN {sql}")
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan")


def _statement(captured, *, starting: str, containing: str) -> str:
    found = [q["sql"] for q in captured.captured_queries if q["sql"].startswith(starting) and containing in q["sql"]]
    assert len(found) == 1, [q["sql"][:80] for q in captured.captured_queries]
    return found[0]


def test_a_patients_online_booking_counts_their_other_bookings_by_index(dr_patel, a_full_diary):
    patient_books(make_slot(dr_patel, local(3, 10)), email="Pat@Example.org")
    with CaptureQueriesContext(connection) as captured:
        appointment_book(
            slot_id=make_slot(dr_patel, local(4, 10)).pk,
            patient=PatientDetails(first_name="Pat", last_name="Ient", phone="07700 900123", email="pat@example.org"),
            now=timezone.now(),
            online_guard=OnlineBookingGuard(safety_pass="a pass", client_key="an address"),
        )
    count = _statement(captured, starting="SELECT COUNT(", containing="bookings_appointment")
    plan = _plan(count)
    assert "appointment_email_lower_idx" in plan
    assert "appointment_phone_norm_idx" in plan


def test_reception_day_view_finds_each_patients_other_bookings_and_same_notes_by_index(
    client, rita, dr_patel, a_full_diary
):
    patient_books(make_slot(dr_patel, local(3, 10)), note="Knee")
    patient_books(make_slot(dr_patel, local(3, 11)), email="sam@example.org", phone="07700 900555")
    verified_login(client, rita)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("reception_day"), {"date": local(3, 10).date().isoformat()})
    assert response.status_code == 200
    appointments = _statement(captured, starting='SELECT "bookings_appointment"', containing="upcoming_for_patient")
    plan = _plan(appointments)
    assert "appointment_email_lower_idx" in plan
    # The same-note count's index (appointment_note_created_idx) is left to the planner: on a test-sized diary it
    # may rightly choose another with a filter, so its plan proves nothing either way.


def test_a_booking_without_a_note_is_not_compared_with_the_hours_notes(rita, dr_patel):
    """The same-note count of a booking without a note is 0 without reading anything (CASE, not a subquery)."""
    from bookings.models import Appointment

    for hour in (9, 10, 11):
        patient_books(make_slot(dr_patel, local(3, hour)))
    Appointment.objects.update(client_key="one place", created_at=timezone.now() - timedelta(minutes=5))
    counts = Appointment.objects.with_burst_counts().values_list("bookings_with_same_note", "bookings_from_same_place")
    assert set(counts) == {(0, 3)}
    sql = str(Appointment.objects.with_burst_counts().query)
    assert "CASE WHEN" in sql


def test_reception_day_view_reads_only_the_days_slots_by_index(client, rita, dr_patel, a_full_diary):
    """The day's slots, the practitioners with slots that day and the day's appointments: each reads the slots of
    that day through the partial indexes on open and on blocked slots' start times, not every slot of the diary."""
    patient_books(make_slot(dr_patel, local(3, 10)))
    make_slot(dr_patel, local(3, 11))
    verified_login(client, rita)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("reception_day"), {"date": local(3, 10).date().isoformat()})
    assert response.status_code == 200
    for starting, containing in [
        ('SELECT "bookings_slot"', "held_until"),
        ('SELECT "bookings_practitioner"', "bookings_slot"),
        ('SELECT "bookings_appointment"', "upcoming_for_patient"),
    ]:
        plan = _plan(_statement(captured, starting=starting, containing=containing))
        assert "slot_open_starts_at_idx" in plan and "slot_blocked_starts_at_idx" in plan, (starting, plan)


def test_reception_day_view_reads_the_oldest_undelivered_emails_in_index_order_and_counts_them_once(
    client, rita, dr_patel
):
    """With no worker running every booking's confirmation is soon overdue: the panel reads the oldest twenty in
    the order of outbound_attention_idx and stops, and counts the rest in a subquery run once, rather than
    joining the whole backlog to its appointments and slots for a window count and sorting it (26 ms at 3,400)."""
    from bookings.models import OutboundMessage

    patient_books(make_slot(dr_patel, local(3, 9)))
    # A backlog, as a day without a worker leaves: with a handful of rows a sort is rightly cheaper.
    overdue = OutboundMessage.objects.get(kind=OutboundMessage.Kind.CONFIRMATION)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    OutboundMessage.objects.bulk_create(
        OutboundMessage(
            kind=overdue.kind,
            appointment_id=overdue.appointment_id,
            recipient=overdue.recipient,
            slot_id=overdue.slot_id,
            sequence=overdue.sequence,
            created_at=an_hour_ago + timedelta(seconds=index),
            send_after=an_hour_ago,
            next_attempt_at=an_hour_ago,
        )
        for index in range(BACKLOG)
    )
    verified_login(client, rita)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("reception_day"), {"date": local(3, 10).date().isoformat()})
    assert response.status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE bookings_outboundmessage")
    plan = _plan(_statement(captured, starting='SELECT "bookings_outboundmessage"', containing="LIMIT"))
    assert "outbound_attention_idx" in plan
    assert "WindowAgg" not in plan and "Sort" not in plan, plan
