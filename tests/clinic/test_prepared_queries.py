"""clinic.prepared: a QuerySet's statement built once, sent again with new values, and refused when it cannot be."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Count, Q

from bookings.models import Slot
from clinic.prepared import PreparedInsert, PreparedQuery
from tests.helpers import local, make_slot

TIMES = (datetime(1901, 1, 1, tzinfo=UTC), datetime(1902, 2, 2, tzinfo=UTC))


def test_it_sends_the_querysets_statement_with_the_values_of_each_run(dr_patel, dr_okafor):
    for day in (1, 2, 3):
        make_slot(dr_patel, local(day, 9))
    make_slot(dr_okafor, local(2, 9))
    starting = PreparedQuery(
        lambda practitioner_id, after: (
            Slot.objects.filter(practitioner_id=practitioner_id, starts_at__gt=after)
            .order_by("starts_at")
            .values_list("pk", "starts_at")
        ),
        samples={"practitioner_id": (-1, -2), "after": TIMES},
    )
    for practitioner, after in [(dr_patel, local(1, 12)), (dr_okafor, local(1, 12)), (dr_patel, local(3, 12))]:
        expected = list(
            Slot.objects.filter(practitioner_id=practitioner.pk, starts_at__gt=after)
            .order_by("starts_at")
            .values_list("pk", "starts_at")
        )
        assert starting.rows(practitioner_id=practitioner.pk, after=after) == [tuple(row) for row in expected]


def test_it_prepares_an_aggregate_too(dr_patel):
    make_slot(dr_patel, local(1, 9))
    make_slot(dr_patel, local(1, 10), state=Slot.State.BLOCKED)
    counts = PreparedQuery(
        lambda after: Slot.objects.filter(starts_at__gt=after).aggregate(
            every=Count("pk"), blocked=Count("pk", filter=Q(state=Slot.State.BLOCKED))
        ),
        samples={"after": TIMES},
    )
    assert counts.rows(after=local(0, 0)) == [(2, 1)]
    assert counts.rows(after=local(1, 9)) == [(1, 1)]


def test_a_value_derived_from_an_argument_is_refused(dr_patel):
    later = PreparedQuery(
        lambda now: Slot.objects.filter(starts_at__gt=now + timedelta(hours=2)), samples={"now": TIMES}
    )
    with pytest.raises(ValueError, match="neither one argument nor a constant"):
        later.prepare()


def test_an_argument_the_statement_does_not_send_as_given_is_refused(dr_patel):
    # lower(): the samples have capitals, so the parameter sent is not the argument.
    named = PreparedQuery(
        lambda name: Slot.objects.filter(blocked_reason=name.lower()),
        samples={"name": ("Sample One", "Sample Two")},
    )
    with pytest.raises(ValueError):
        named.prepare()


def test_a_statement_whose_sql_depends_on_the_values_is_refused(dr_patel):
    among = PreparedQuery(lambda count: Slot.objects.filter(pk__in=range(1, count + 1)), samples={"count": (2, 3)})
    with pytest.raises(ValueError, match="depends on the values"):
        among.prepare()


def test_none_is_refused_at_each_run(dr_patel):
    blocked = PreparedQuery(lambda reason: Slot.objects.filter(blocked_reason=reason), samples={"reason": ("A", "B")})
    with pytest.raises(ValueError, match="None"):
        blocked.rows(reason=None)
    with pytest.raises(TypeError):
        blocked.rows(other="A")


def test_an_insert_of_a_model_with_its_own_save_must_say_what_that_save_adds(db):
    from bookings.models import Appointment

    with pytest.raises(TypeError, match="overrides save"):
        PreparedInsert(Appointment)


def test_an_insert_refuses_a_field_left_to_its_database_default(dr_patel):
    from bookings.models import Appointment

    slot = make_slot(dr_patel, local(3, 9))
    now = datetime.now(UTC)
    appointment = Appointment(slot=slot, first_name="Pat", last_name="Ient", phone="07700 900123")
    appointment.manage_token_hash, appointment.created_at, appointment.updated_at = "a" * 64, now, now
    # Its save() would set phone_normalised; this BEFORE_INSERT forgets to.
    with pytest.raises(TypeError, match="DEFAULT"):
        PreparedInsert(Appointment, before_insert=lambda appointment: None).insert(appointment)


def test_preparing_counts_as_no_query(dr_patel, django_assert_num_queries):
    blocked = PreparedQuery(lambda reason: Slot.objects.filter(blocked_reason=reason), samples={"reason": ("A", "B")})
    with django_assert_num_queries(1) as captured:
        assert blocked.rows(reason="Course") == []
    assert captured.captured_queries[0]["sql"].startswith("SELECT")


def test_it_prepares_on_a_processs_first_connection_which_sends_statements_of_its_own(transactional_db):
    # A new process's first connection looks up hstore's and citext's types (django.contrib.postgres) before
    # anything else: when that happened inside the capture, preparing raised ValueError (a server error).
    from django.contrib.postgres.signals import get_citext_oids, get_hstore_oids
    from django.db import connection

    connection.close()
    get_hstore_oids.cache_clear()
    get_citext_oids.cache_clear()
    blocked = PreparedQuery(lambda reason: Slot.objects.filter(blocked_reason=reason), samples={"reason": ("A", "B")})
    assert blocked.rows(reason="Course") == []


def test_a_childs_key_to_a_parent_inserted_in_the_same_statement_is_the_parents_new_key(dr_patel):
    """PreparedInsert.statement with PARENT: the children's foreign key reads the WITH query that inserts the
    parent; `returned` then gives each instance its key and the children their parent's."""
    from django.db import connection

    from bookings.models import Appointment, AppointmentEvent

    now = datetime.now(UTC)
    slot = make_slot(dr_patel, local(3, 9))
    appointment = Appointment(
        slot=slot, first_name="Pat", last_name="Ient", phone="07700 900123", phone_normalised="+447700900123"
    )
    appointment.manage_token_hash, appointment.created_at, appointment.updated_at = "a" * 64, now, now
    appointment.client_key = ""
    events = [
        AppointmentEvent(appointment=appointment, at=now, actor_label="patient", action=action)
        for action in ("booked", "cancelled")
    ]
    parent = PreparedInsert(Appointment, before_insert=lambda appointment: None)
    child = PreparedInsert(AppointmentEvent)
    parent_sql, parent_params = parent.statement(appointment)
    child_sql, child_params = child.statement(*events, parent=appointment, parent_cte="parent")
    assert child_sql.count('(SELECT "id" FROM parent)') == 2
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH parent AS ({parent_sql}), child AS ({child_sql}) "
            "SELECT 0, parent.id FROM parent UNION ALL SELECT 1, child.id FROM child",
            parent_params + child_params,
        )
        rows = cursor.fetchall()
    # The parent's returned fields, as its own RETURNING gives them.
    returning = [field.attname for field in Appointment._meta.db_returning_fields]
    parent.returned([appointment], [Appointment.objects.values_list(*returning).get()])
    child.returned(events, [row[1:] for row in rows if row[0] == 1])
    assert [row[1] for row in rows if row[0] == 0] == [appointment.pk]
    for event in events:
        assert event.appointment_id == appointment.pk and not event._state.adding
    saved = AppointmentEvent.objects.order_by("pk").values_list("pk", "appointment_id", "action")
    assert list(saved) == [(events[0].pk, appointment.pk, "booked"), (events[1].pk, appointment.pk, "cancelled")]


def test_a_child_with_another_unsaved_related_instance_is_refused_as_the_orm_refuses_it(dr_patel):
    from bookings.models import Appointment, OutboundMessage, WaitingListOffer

    appointment = Appointment(slot=make_slot(dr_patel, local(3, 9)))
    message = OutboundMessage(appointment=appointment, waiting_list_offer=WaitingListOffer(), recipient="a@b.c")
    with pytest.raises(ValueError, match="unsaved related object 'waiting_list_offer'"):
        PreparedInsert(OutboundMessage).statement(message, parent=appointment, parent_cte="parent")
