"""The calendar's slots and appointments, read by statements prepared once per process (clinic.prepared), are
the rows their QuerySets give, in every state a cell can show."""

from datetime import timedelta

from django.utils import timezone

from bookings.models import Appointment, Slot
from bookings.schedule import local_midnight
from bookings.services import waiting_list_offer_by_hand
from staff import views
from tests.helpers import local, make_appointment, make_slot, patient_books, waiting


def test_the_calendars_prepared_reads_give_the_rows_of_their_querysets(dr_patel, dr_okafor, rita):
    now = timezone.now()
    day = local(3, 9).date()
    free, booked, cancelled, held, noted, phoned = (make_slot(dr_patel, local(3, hour)) for hour in range(9, 15))
    blocked = make_slot(dr_okafor, local(3, 9), state=Slot.State.BLOCKED, blocked_reason="Course")
    make_slot(dr_okafor, local(3, 10), state=Slot.State.RETIRED)
    patient_books(make_slot(dr_okafor, local(4, 9)))  # the next day
    again = make_slot(dr_okafor, local(3, 11))
    patient_books(again, email="pat@example.org")  # the same patient as on BOOKED
    patient_books(booked)
    make_appointment(cancelled, at=now, status=Appointment.Status.CANCELLED)
    patient_books(noted, note="Knee", email="sam@example.org", phone="07700 900555")
    phoned_appointment = patient_books(phoned, email="kim@example.org", phone="07700 900666")
    Appointment.objects.filter(pk=phoned_appointment.pk).update(
        source=Appointment.Source.PHONE, status=Appointment.Status.ARRIVED
    )
    entry, _ = waiting("wanda@example.org")
    waiting_list_offer_by_hand(entry=entry, slot_id=held.pk, now=now, actor=rita)
    start, end = local_midnight(day), local_midnight(day + timedelta(days=1))
    window_now = {"start": start, "end": end, "now": now}

    for at in (now, now + timedelta(days=30)):
        everyone = views._GRID_SLOTS_OF_EVERYONE.rows(start=start, end=end, now=at)
        assert everyone == list(views._grid_slot_rows(start=start, end=end, now=at))
        for practitioner in (dr_patel, dr_okafor):
            one = views._GRID_SLOTS_OF_ONE.rows(start=start, end=end, now=at, practitioner_id=practitioner.pk)
            assert one == list(views._grid_slot_rows(start=start, end=end, now=at, practitioner_id=practitioner.pk))
        slot_ids = [row[views._GRID_SLOT_ID] for row in everyone]
        window = {"slot_ids": slot_ids, "start": start, "end": end, "now": at}
        appointments = views._GRID_APPOINTMENTS.rows(**window)
        assert sorted(appointments) == sorted(views._grid_appointment_rows(**window))
        assert views._GRID_APPOINTMENTS.rows(**{**window, "slot_ids": []}) == []

    # What the rows hold: every shown slot of the day (not the retired one, not the next day's) ...
    shown = {free, blocked, booked, again, cancelled, held, noted, phoned}
    assert {row[views._GRID_SLOT_ID] for row in everyone} == {slot.pk for slot in shown}
    # Held until the offer runs out: held now, not a month on.
    held_until = {row[views._GRID_SLOT_ID]: row[-1] for row in views._GRID_SLOTS_OF_EVERYONE.rows(**window_now)}
    assert held_until[held.pk] is not None and held_until[free.pk] is None
    assert all(row[-1] is None for row in everyone)
    # ... and the live appointments on them, with the patient's upcoming consultations counted (here a month on,
    # when none is upcoming any more; then now).
    assert {row[1] for row in appointments} == {booked.pk, again.pk, noted.pk, phoned.pk}
    assert all(row[-3] == 0 for row in appointments)
    upcoming = {row[1]: row[-3] for row in views._GRID_APPOINTMENTS.rows(**{**window, "now": now})}
    # Pat: booked, again, and the next day.
    assert upcoming[booked.pk] == upcoming[again.pk] == 3 and upcoming[noted.pk] == 1


def test_the_grids_instances_are_what_from_db_makes_of_the_same_columns(dr_patel):
    from django.db import connection
    from django.db.models.signals import post_init

    slot = make_slot(dr_patel, local(3, 9), blocked_reason="Course")
    appointment = patient_books(slot)
    for model, columns, pk in (
        (Slot, views._GRID_SLOT_COLUMNS, slot.pk),
        (Appointment, views._GRID_APPOINTMENT_COLUMNS, appointment.pk),
    ):
        (values,) = model.objects.filter(pk=pk).values_list(*columns)
        made = views._loaded(model, connection.alias, columns, values)
        expected = model.from_db(connection.alias, columns, values)
        assert type(made) is model and made.get_deferred_fields() == expected.get_deferred_fields()
        assert (made._state.db, made._state.adding) == (expected._state.db, expected._state.adding)
        assert {k: v for k, v in vars(made).items() if k != "_state"} == {
            k: v for k, v in vars(expected).items() if k != "_state"
        }
        assert made.pk == pk

    # Someone listening for new instances hears of these too (from_db makes them then).
    heard = []

    def listener(sender, instance, **kwargs):
        heard.append(instance)

    post_init.connect(listener, sender=Slot)
    try:
        (values,) = Slot.objects.filter(pk=slot.pk).values_list(*views._GRID_SLOT_COLUMNS)
        made = views._loaded(Slot, connection.alias, views._GRID_SLOT_COLUMNS, values)
    finally:
        post_init.disconnect(listener, sender=Slot)
    assert heard == [made]


def test_the_undelivered_emails_read_once_prepared_show_what_needs_attention_gives(
    dr_patel, dr_okafor, rita, django_assert_num_queries
):
    from django.template.loader import render_to_string

    from bookings.models import OutboundMessage

    now = timezone.now()
    Status = OutboundMessage.Status
    for index in range(22):
        patient_books(
            make_slot(dr_patel if index % 2 else dr_okafor, local(3, 8) + timedelta(minutes=20 * index)),
            last_name=f"Patient{index:02d}",
            email=f"p{index}@example.org",
            phone=f"07700 900{index:03d}",
        )
    entry, _ = waiting("wanda@example.org")
    waiting_list_offer_by_hand(entry=entry, slot_id=make_slot(dr_patel, local(4, 9)).pk, now=now, actor=rita)
    messages = list(OutboundMessage.objects.order_by("pk"))
    an_hour_ago = now - timedelta(hours=1)
    for index, message in enumerate(messages):
        # Failed for good, still retrying, long overdue, or waiting in time (not shown), in turn.
        status, attempts, due = [
            (Status.FAILED, 5, an_hour_ago),
            (Status.PENDING, 3, now + timedelta(minutes=5)),
            (Status.PENDING, 0, an_hour_ago),
            (Status.PENDING, 0, now),
        ][index % 4]
        OutboundMessage.objects.filter(pk=message.pk).update(
            status=status,
            attempts=attempts,
            next_attempt_at=due,
            last_error="550 <unknown>" if status == Status.FAILED else "",
            created_at=an_hour_ago + timedelta(seconds=len(messages) - index),
        )
    offer_message = OutboundMessage.objects.get(kind=OutboundMessage.Kind.WAITING_LIST_OFFER)
    OutboundMessage.objects.filter(pk=offer_message.pk).update(status=Status.FAILED)

    needing_attention = list(OutboundMessage.objects.needs_attention(now=now))
    assert len(needing_attention) > views.UNDELIVERED_EMAILS_SHOWN
    shown, not_shown = views._undelivered_emails_to_show(now)
    assert [message.pk for message in shown] == [message.pk for message in needing_attention[:20]]
    assert not_shown == len(needing_attention) - 20
    assert offer_message.pk in {message.pk for message in shown}

    def panel(messages, count):
        return render_to_string(
            "bookings/_failed_messages.html", {"failed_messages": messages, "failed_messages_not_shown": count}
        )

    # The related rows came with the messages, as with select_related: showing them reads nothing more.
    with django_assert_num_queries(0):
        shown_panel = panel(shown, not_shown)
    assert shown_panel == panel(needing_attention[:20], len(needing_attention) - 20)
    # Nothing needs attention: nothing shown, nothing counted.
    OutboundMessage.objects.update(status=Status.SENT, sent_at=now)
    assert views._undelivered_emails_to_show(now) == ([], 0)


def test_the_day_views_practitioners_read_once_prepared_are_those_of_their_queryset(dr_patel, dr_okafor):
    from bookings.models import Practitioner

    day = local(3, 9).date()
    start, end = local_midnight(day), local_midnight(day + timedelta(days=1))
    left_with_slots, left_without = dr_okafor, Practitioner.objects.create(display_name="Gone", is_active=False)
    make_slot(left_with_slots, local(3, 10))
    Practitioner.objects.filter(pk=left_with_slots.pk).update(is_active=False, list_order=0)
    rows = views._DAY_PRACTITIONERS.rows(start=start, end=end)
    assert rows == list(views._day_practitioner_rows(start=start, end=end))
    assert [row[0] for row in rows] == [left_with_slots.pk, dr_patel.pk]
    assert left_without.pk not in {row[0] for row in rows}
