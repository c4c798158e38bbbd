"""Availability: `Slot.objects.bookable()` is the one rule, one indexed query at any size."""

import re
import time as clock
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction

from bookings.models import Appointment, Practitioner, Slot
from tests.helpers import make_appointment

LONDON = ZoneInfo("Europe/London")
# Monday 1 June 2026, 08:00: the clinic opens at 09:00.
NOW = datetime(2026, 6, 1, 8, 0, tzinfo=LONDON)
WEEKS = 26

pytestmark = pytest.mark.django_db


def _slot(practitioner, when, **extra):
    return Slot.objects.create(practitioner=practitioner, starts_at=when, ends_at=when + timedelta(minutes=20), **extra)


def _bookable(**kwargs):
    return list(Slot.objects.bookable(now=NOW, **kwargs))


# -- The rule ---------------------------------------------------------------------------------


def test_an_open_future_slot_is_bookable(dr_patel):
    slot = _slot(dr_patel, NOW + timedelta(days=1))
    assert _bookable() == [slot]


def test_blocked_and_retired_slots_are_not_bookable(dr_patel, rita):
    _slot(dr_patel, NOW + timedelta(days=1), state=Slot.State.BLOCKED, blocked_by=rita, blocked_reason="Meeting")
    _slot(dr_patel, NOW + timedelta(days=2), state=Slot.State.RETIRED)
    assert _bookable() == []


def test_a_booked_slot_is_not_bookable_whatever_the_live_status(dr_patel):
    for days, status in enumerate(["booked", "arrived", "completed", "no_show"], start=1):
        make_appointment(_slot(dr_patel, NOW + timedelta(days=days)), status=status, at=NOW)
    assert _bookable() == []


def test_a_slot_whose_appointment_was_cancelled_is_bookable_again(dr_patel):
    slot = _slot(dr_patel, NOW + timedelta(days=1))
    make_appointment(slot, status=Appointment.Status.CANCELLED, at=NOW)
    assert _bookable() == [slot]


def test_a_slot_needs_two_hours_notice(dr_patel, settings):
    settings.BOOKING_MIN_NOTICE = timedelta(hours=2)
    _slot(dr_patel, NOW - timedelta(hours=1))
    _slot(dr_patel, NOW + timedelta(minutes=100))
    just_in_time = _slot(dr_patel, NOW + timedelta(hours=2))
    assert _bookable() == [just_in_time]


def test_a_slot_beyond_the_booking_horizon_is_not_bookable(dr_patel, settings):
    settings.BOOKING_HORIZON_DAYS = 56
    last = _slot(dr_patel, NOW + timedelta(days=56) - timedelta(minutes=20))
    _slot(dr_patel, NOW + timedelta(days=56))
    assert _bookable() == [last]


def test_practitioners_who_left_or_offer_no_consultation_are_not_bookable(dr_patel, dr_okafor):
    _slot(dr_patel, NOW + timedelta(days=1))
    _slot(dr_okafor, NOW + timedelta(days=1))
    Practitioner.objects.filter(pk=dr_patel.pk).update(is_active=False)
    Practitioner.objects.filter(pk=dr_okafor.pk).update(offers_free_consultation=False)
    assert _bookable() == []


def test_bookable_slots_can_be_limited_to_a_window_and_a_practitioner(dr_patel, dr_okafor):
    tuesday = datetime(2026, 6, 2, 9, tzinfo=LONDON)
    wednesday = tuesday + timedelta(days=1)
    patel_tuesday = _slot(dr_patel, tuesday)
    _slot(dr_patel, wednesday)
    okafor_tuesday = _slot(dr_okafor, tuesday)

    assert _bookable(start=tuesday, end=wednesday) == [patel_tuesday, okafor_tuesday]
    assert _bookable(start=tuesday, end=wednesday, practitioner=dr_okafor) == [okafor_tuesday]
    # A window that starts in the past is still cut at the notice period.
    assert _bookable(start=NOW - timedelta(days=7), end=tuesday) == []


def test_bookable_slots_come_in_time_order_then_list_order(dr_patel, dr_okafor):
    Practitioner.objects.filter(pk=dr_okafor.pk).update(list_order=0)
    nine = datetime(2026, 6, 2, 9, tzinfo=LONDON)
    patel_nine_twenty = _slot(dr_patel, nine + timedelta(minutes=20))
    patel_nine = _slot(dr_patel, nine)
    okafor_nine = _slot(dr_okafor, nine)
    assert _bookable() == [okafor_nine, patel_nine, patel_nine_twenty]


# -- At scale ---------------------------------------------------------------------------------


def _add_practitioners_with_half_a_year_of_slots(count, weeks=WEEKS):
    """`count` more practitioners, each with 26 weeks of Monday-to-Friday 09:00-17:00 slots
    (24 a day, 3,120 each), some booked, some blocked. Built in SQL: 156,000 rows for fifty,
    in about ten seconds, nearly all of it spent keeping the exclusion constraint's index."""
    first = date(2026, 6, 1)
    last = first + timedelta(weeks=weeks) - timedelta(days=1)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bookings_practitioner (display_name, title, profession, bio, is_active,"
            " offers_free_consultation, list_order, calendar_token_hash)"
            " SELECT 'Practitioner ' || n, '', 'Physiotherapist', '', true, true, n, ''"
            " FROM generate_series(1, %s) n RETURNING id",
            [count],
        )
        practitioner_ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "INSERT INTO bookings_slot (practitioner_id, starts_at, ends_at, state, blocked_reason)"
            " SELECT p, (d + t) AT TIME ZONE 'Europe/London',"
            " (d + t + interval '20 minutes') AT TIME ZONE 'Europe/London', 'open', ''"
            " FROM unnest(%s::bigint[]) p,"
            " generate_series(%s::timestamp, %s::timestamp, interval '1 day') d,"
            " (SELECT interval '9 hours' + n * interval '20 minutes' FROM generate_series(0, 23) n) AS times(t)"
            " WHERE extract(isodow FROM d) <= 5",
            [practitioner_ids, first, last],
        )
        # One slot in seven booked (and one in thirteen booked then cancelled), one in eleven blocked.
        cursor.execute(
            "INSERT INTO bookings_appointment (slot_id, status, source, first_name, last_name, email, phone, note,"
            " safety_answers, privacy_notice_version, manage_token_hash, sequence, created_at, updated_at,"
            " cancelled_at, cancel_reason)"
            " SELECT id, CASE WHEN id %% 7 = 0 THEN 'booked' ELSE 'cancelled' END, 'online', 'Pat', 'Ient', '',"
            " '0', '', '{}', '', md5(random()::text || id), 0, now(), now(),"
            " CASE WHEN id %% 7 = 0 THEN NULL ELSE now() END, ''"
            " FROM bookings_slot WHERE practitioner_id = ANY(%s) AND (id %% 7 = 0 OR id %% 13 = 0)",
            [practitioner_ids],
        )
        cursor.execute(
            "UPDATE bookings_slot SET state = 'blocked', blocked_reason = 'Training'"
            " WHERE practitioner_id = ANY(%s) AND id %% 11 = 0 AND id %% 7 <> 0",
            [practitioner_ids],
        )
        cursor.execute("ANALYZE bookings_practitioner, bookings_slot, bookings_appointment")
    return practitioner_ids


def _second_week():
    start = datetime.combine(date(2026, 6, 8), time(0), tzinfo=LONDON)
    return {"start": start, "end": start + timedelta(weeks=1)}


def _expected_count(*, start, end, practitioner_id=None):
    """The same rule written by hand in SQL, to check the queryset finds every row it should."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM bookings_slot s WHERE s.state = 'open' AND s.starts_at >= %s AND s.starts_at < %s"
            " AND (%s::bigint IS NULL OR s.practitioner_id = %s)"
            " AND NOT EXISTS (SELECT 1 FROM bookings_appointment a WHERE a.slot_id = s.id AND a.status <> 'cancelled')",
            [start, end, practitioner_id, practitioner_id],
        )
        return cursor.fetchone()[0]


def test_a_week_of_availability_for_fifty_practitioners_is_an_index_scan():
    practitioner_ids = _add_practitioners_with_half_a_year_of_slots(50)
    assert Slot.objects.count() == 50 * WEEKS * 5 * 24
    week = _second_week()
    everyone = Slot.objects.bookable(now=NOW, **week)
    one_practitioner = Slot.objects.bookable(now=NOW, practitioner=practitioner_ids[0], **week)

    plan = everyone.explain()
    plan_for_one = one_practitioner.explain()

    assert "Seq Scan on bookings_slot" not in plan, plan
    # The partial index on open slots' start times finds the week (plain or bitmap index scan).
    assert re.search(r"(Index Scan using|Index Only Scan using|Bitmap Index Scan on) slot_open_starts_at_idx", plan), (
        plan
    )
    assert everyone.count() == _expected_count(**week) > 4000
    # One practitioner's week (their page) is found through an index as well, whichever one.
    assert "Seq Scan on bookings_slot" not in plan_for_one, plan_for_one
    assert re.search(r"(Index Scan using|Index Only Scan using|Bitmap Index Scan on) \w+", plan_for_one), plan_for_one
    assert one_practitioner.count() == _expected_count(**week, practitioner_id=practitioner_ids[0]) > 80


@pytest.mark.django_db(transaction=True)
def test_a_week_for_any_practitioner_is_read_from_the_index_alone():
    """The partial index on open slots' start times carries the slot and its practitioner: the week's 6,750 slots
    at 50 practitioners are read from the index, not from the table's pages too. Vacuumed, as autovacuum keeps a
    slot table (bookings change appointments, not slots), so the planner knows the pages are all visible; planned
    with table scans and merge joins off, so that the plan names the index whatever it thinks of a small table."""
    from bookings.views import _distinct_times

    _add_practitioners_with_half_a_year_of_slots(50, weeks=2)
    week_for_anyone = _distinct_times(Slot.objects.bookable(now=NOW, **_second_week())).values_list("pk", "starts_at")
    with connection.cursor() as cursor:
        # Until every page is marked all-visible: a snapshot held meanwhile (autovacuum's own ANALYZE of the
        # rows just inserted) keeps VACUUM from marking the newest pages, and the plan then reads the table too.
        for _ in range(50):
            cursor.execute("VACUUM ANALYZE bookings_slot")
            cursor.execute("SELECT relallvisible >= relpages FROM pg_class WHERE oid = 'bookings_slot'::regclass")
            if cursor.fetchone()[0]:
                break
            clock.sleep(0.2)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_mergejoin = off")
        plan = week_for_anyone.explain()
    assert "Index Only Scan using slot_open_starts_at_idx on bookings_slot" in plan, plan


def test_a_week_of_availability_costs_one_query_for_one_or_fifty_practitioners(django_assert_num_queries):
    week = _second_week()
    _add_practitioners_with_half_a_year_of_slots(1, weeks=2)
    # 1. The slots, joined to their practitioners, minus those with a live appointment.
    with django_assert_num_queries(1):
        one = list(Slot.objects.bookable(now=NOW, **week).select_related("practitioner"))
        names = {slot.practitioner.full_name for slot in one}
    assert len(names) == 1

    _add_practitioners_with_half_a_year_of_slots(49, weeks=2)
    # 1. The same single query, fifty times the rows.
    with django_assert_num_queries(1):
        fifty = list(Slot.objects.bookable(now=NOW, **week).select_related("practitioner"))
        names = {slot.practitioner.full_name for slot in fifty}
    assert len({slot.practitioner_id for slot in fifty}) == 50
    assert names
    assert len(fifty) > 40 * len(one)


def test_the_booking_locks_rule_for_one_slot_agrees_with_bookable_for_every_kind_of_slot(settings):
    """Slot.offered_to_patients (the booking's check on its locked row) is bookable() less "not booked"."""
    import itertools

    from bookings.models import bookable_window

    earliest, latest = bookable_window(NOW)
    starts = [
        NOW,  # inside the minimum notice
        earliest - timedelta(minutes=1),
        earliest,  # exactly at the notice: bookable
        earliest + timedelta(days=3),
        latest - timedelta(minutes=20),
        latest,  # the horizon itself: not bookable
        latest + timedelta(days=1),
    ]
    checked = 0
    people = {}
    for active, offers in itertools.product([True, False], [True, False]):
        people[active, offers] = Practitioner.objects.create(
            display_name=f"P {active} {offers}",
            profession="Physiotherapist",
            is_active=active,
            offers_free_consultation=offers,
        )
    for (key, person), state in itertools.product(people.items(), Slot.State.values):
        for start in starts:
            slot = _slot(person, start, state=state)
            slot = Slot.objects.select_related("practitioner").get(pk=slot.pk)
            in_bookable = Slot.objects.bookable(now=NOW).filter(pk=slot.pk).exists()
            assert slot.offered_to_patients(now=NOW) == in_bookable, (key, state, start)
            checked += 1
            slot.delete()
    assert checked == 4 * 3 * 7
    # And a booked slot: bookable() leaves it out, the lock's check leaves it to the unique index.
    slot = _slot(people[True, True], earliest + timedelta(days=1))
    make_appointment(slot, at=NOW)
    assert slot.offered_to_patients(now=NOW) and not Slot.objects.bookable(now=NOW).filter(pk=slot.pk).exists()


def test_the_pickers_compiled_statements_agree_with_bookable_for_every_kind_of_slot(dr_patel, dr_okafor, settings):
    """The time page runs bookable() as statements compiled once (views._bookable_rows): the same rows, in the
    same order, as the QuerySet, for any practitioner (one slot per time, the first in list order) and for each
    one, over the whole window and a week, across every state, notice and horizon edge, booking and hold."""
    import itertools
    import uuid

    from bookings import views
    from bookings.models import WaitingListOffer, bookable_window
    from tests.helpers import waiting

    # Dr Okafor first in the clinic's order though created second: "any practitioner" must pick by list order.
    Practitioner.objects.filter(pk=dr_okafor.pk).update(list_order=0)
    people = [dr_patel, dr_okafor]
    for active, offers in [(True, False), (False, True)]:
        people.append(
            Practitioner.objects.create(
                display_name=f"P {active} {offers}",
                profession="Physiotherapist",
                is_active=active,
                offers_free_consultation=offers,
            )
        )
    earliest, latest = bookable_window(NOW)
    starts = [NOW, earliest - timedelta(minutes=1), earliest, latest - timedelta(minutes=1), latest]
    starts += [earliest + timedelta(days=day, hours=hour) for day in (1, 2, 8) for hour in (0, 1, 2)]
    entry, _ = waiting("wanda@example.org", joined=NOW)
    # Each practitioner's slots at the same times, in turn: open, blocked, booked, booked then cancelled,
    # held by a waiting-list offer, once held (the hold ran out), offered and accepted.
    kinds = itertools.cycle(["open", "blocked", "booked", "cancelled", "held", "hold ended", "accepted", "open"])
    for offset, person in enumerate(people):
        for _ in range(offset):
            next(kinds)
        for start in starts:
            kind = next(kinds)
            slot = Slot.objects.create(
                practitioner=person,
                starts_at=start,
                ends_at=start + timedelta(minutes=1),
                state=Slot.State.BLOCKED if kind == "blocked" else Slot.State.OPEN,
            )
            if kind in ("booked", "cancelled"):
                status = Appointment.Status.CANCELLED if kind == "cancelled" else Appointment.Status.BOOKED
                make_appointment(slot, at=NOW, status=status, cancelled_at=NOW if kind == "cancelled" else None)
            elif kind in ("held", "hold ended", "accepted"):
                WaitingListOffer.objects.create(
                    entry=entry,
                    slot=slot,
                    batch=uuid.uuid4(),
                    offered_at=NOW - timedelta(hours=1),
                    held_until=NOW + timedelta(minutes=-1 if kind == "hold ended" else 30),
                    status=WaitingListOffer.Status.ACCEPTED if kind == "accepted" else WaitingListOffer.Status.OFFERED,
                    token_hash=uuid.uuid4().hex,
                )
    week = _second_week()
    windows = [{}, week, {"start": earliest + timedelta(days=2)}, {"end": earliest + timedelta(days=2)}]
    compared = 0
    for window, chosen in itertools.product(windows, [None, *people]):
        expected = Slot.objects.bookable(now=NOW, practitioner=chosen, **window)
        if chosen is None:
            expected = views._distinct_times(expected)
        rows = views._bookable_rows(views._bookable_times, now=NOW, chosen=chosen, **window)
        assert rows == list(expected.values_list("pk", "starts_at")), (window, chosen)
        first = views._bookable_rows(views._first_bookable_start, now=NOW, chosen=chosen, **window)
        assert first == list(expected.values_list("starts_at")[:1]), (window, chosen)
        compared += len(rows)
    # Not vacuous: times were found, and "any practitioner" chose between two at the same time.
    assert compared > 20
    assert views._bookable_rows(views._bookable_times, now=NOW, chosen=None, **week)
