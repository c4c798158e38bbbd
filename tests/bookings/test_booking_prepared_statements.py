"""The booking's statements prepared once per process (clinic.prepared) give what their QuerySets give."""

import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from bookings import services
from bookings.models import Appointment, Slot, phone_contact_key
from bookings.services import _lock_bookable_slot, waiting_list_offer_by_hand
from tests.helpers import local, make_appointment, make_slot, patient_books, waiting


def test_the_locked_slot_and_its_practitioner_are_the_rows_the_orm_reads(dr_patel, dr_okafor):
    dr_okafor.offers_free_consultation = False
    dr_okafor.save()
    for slot in (make_slot(dr_patel, local(3, 9)), make_slot(dr_okafor, local(4, 10), blocked_reason="Course")):
        with transaction.atomic():
            locked = _lock_bookable_slot(slot.pk, now=timezone.now(), staff=True)
        expected = Slot.objects.select_related("practitioner").get(pk=slot.pk)
        assert locked._state.db == expected._state.db and not locked._state.adding
        for field in Slot._meta.concrete_fields:
            assert getattr(locked, field.attname) == getattr(expected, field.attname), field.name
        for field in type(expected.practitioner)._meta.concrete_fields:
            assert getattr(locked.practitioner, field.attname) == getattr(expected.practitioner, field.attname)


def test_the_read_under_the_lock_agrees_with_its_queryset_for_every_state(dr_patel, rita):
    now = timezone.now()
    free, booked, cancelled, held = (make_slot(dr_patel, local(3, hour)) for hour in (9, 10, 11, 12))
    make_appointment(booked, at=now)
    make_appointment(cancelled, at=now, status=Appointment.Status.CANCELLED)
    entry, _ = waiting("wanda@example.org")
    waiting_list_offer_by_hand(entry=entry, slot_id=held.pk, now=now, actor=rita)
    earlier = patient_books(make_slot(dr_patel, local(3, 13)))
    earlier.submission_key = uuid.uuid4()
    earlier.save()
    seen = set()
    for slot in (free, booked, cancelled, held):
        for at in (now, now + timedelta(days=30)):
            for key in (None, earlier.submission_key, uuid.uuid4()):
                expected = services._slot_facts(slot_id=slot.pk, now=at, submission_key=key).get()
                if key is None:
                    (prepared,) = services._SLOT_FACTS.rows(slot_id=slot.pk, now=at)
                else:
                    (prepared,) = services._SLOT_FACTS_WITH_KEY.rows(slot_id=slot.pk, now=at, submission_key=key)
                assert prepared == expected, (slot, at, key)
                seen.add(prepared)
    # Each fact was both true and false somewhere above.
    assert {taken for taken, _, _ in seen} == {True, False}
    assert {held for _, held, _ in seen} == {True, False}
    assert {earlier_id for _, _, earlier_id in seen} == {None, earlier.pk}


def test_the_contact_counts_agree_with_their_queryset(dr_patel):
    now = timezone.now()
    slots = [make_slot(dr_patel, local(3, hour)) for hour in (9, 10, 11, 12)]
    patient_books(slots[0], email="Pat.Ient@Example.org", phone="07700 900123")
    patient_books(slots[1], email="other@example.org", phone="+44 7700 900123")
    patient_books(slots[2], email="pat.ient@example.org", phone="07700 900999")
    gone = patient_books(slots[3], email="pat.ient@example.org", phone="07700 900123")
    Appointment.objects.filter(pk=gone.pk).update(status=Appointment.Status.CANCELLED, cancelled_at=now)
    cases = [
        ("PAT.IENT@example.org", "07700 900123"),
        ("nobody@example.org", "+447700900123"),
        ("", "07700 900999"),
        ("other@example.org", ""),
    ]
    seen = []
    for email, phone in cases:
        for at in (now, local(3, 10)):
            expected = services._contact_counts(now=at, email=email, phone_key=phone_contact_key(phone))
            prepared = services._CONTACT_COUNTS.rows(now=at, email=email, phone_key=phone_contact_key(phone))
            assert prepared == [(expected["same_email"], expected["same_phone"])], (email, phone, at)
            seen.append(prepared[0])
    assert (2, 2) in seen and len(set(seen)) >= 4


def test_the_open_waiting_list_entries_of_an_address_agree_with_their_queryset(dr_patel):
    from bookings.models import WaitingListEntry

    left, _ = waiting("wanda@example.org", first_name="Left")
    services.waiting_list_leave(entry=left, now=timezone.now())
    waiting("Wanda@Example.org")
    waiting("someone.else@example.org")
    for email in ("wanda@example.org", " WANDA@example.ORG ", "nobody@example.org"):
        expected = sorted(WaitingListEntry.objects.open().same_email(email).values_list("pk", flat=True))
        prepared = sorted(pk for (pk,) in services._OPEN_ENTRIES_WITH_EMAIL.rows(email_key=email.strip().lower()))
        assert prepared == expected
        assert len(prepared) == (0 if email.startswith("nobody") else 1)


def test_the_subscriptions_receiving_each_event_agree_with_their_queryset(db):
    from bookings.models import WebhookEvent, WebhookSubscription
    from bookings.webhooks import _RECEIVING

    now = timezone.now()
    made = [
        ({"events": [WebhookEvent.APPOINTMENT_BOOKED]}),
        (
            {
                "events": [WebhookEvent.APPOINTMENT_BOOKED, WebhookEvent.APPOINTMENT_MOVED],
                "include_contact_details": True,
            }
        ),
        ({"events": list(WebhookEvent.values), "paused_at": now}),
        ({"events": [WebhookEvent.APPOINTMENT_CANCELLED], "is_active": False}),
        ({"events": [WebhookEvent.CALLBACK_REQUESTED]}),
    ]
    for number, fields in enumerate(made):
        WebhookSubscription.objects.create(
            name=f"Hook {number}", url="https://example.org/hook", secret="whsec_x", created_at=now, **fields
        )
    for event in WebhookEvent.values:
        expected = list(WebhookSubscription.objects.receiving(event).values_list("pk", "include_contact_details"))
        assert _RECEIVING[event].rows() == expected, event
    assert len(_RECEIVING[WebhookEvent.APPOINTMENT_BOOKED].rows()) == 2


def _row(model, pk) -> dict:
    return {key: value for key, value in model.objects.filter(pk=pk).values().get().items() if key != "id"}


def test_the_prepared_inserts_write_the_rows_the_orm_writes(dr_patel):
    """The appointment (its save() keeps the normalised phone), its history row and its messages."""
    from bookings.models import AppointmentEvent, OutboundMessage
    from bookings.notifications import _INSERT_MESSAGES
    from bookings.services import _INSERT_APPOINTMENT, _INSERT_EVENT

    now = timezone.now()
    slot = make_slot(dr_patel, local(3, 9))
    details = {
        "slot": slot,
        "first_name": "Pat",
        "last_name": "Ient",
        "email": "Pat@Example.org",
        "phone": "+44 7700 900123",
        "note": "Knee",
        "safety_answers": {"version": "2026-11", "answers": [{"key": "trauma", "answer": "no"}]},
        "privacy_notice_version": "2026-11",
        "manage_token_hash": "a" * 64,
        "submission_key": uuid.uuid4(),
        "client_key": "b" * 32,
        "created_at": now,
        "updated_at": now,
    }
    by_orm = Appointment.objects.create(**details)
    expected = _row(Appointment, by_orm.pk)
    Appointment.objects.filter(pk=by_orm.pk).delete()
    prepared = Appointment(**details)
    _INSERT_APPOINTMENT.insert(prepared)
    assert prepared.pk is not None and not prepared._state.adding
    assert _row(Appointment, prepared.pk) == expected
    assert expected["phone_normalised"] == "+447700900123"

    event = {"appointment": prepared, "at": now, "actor_label": "patient", "action": "booked", "to_value": "Mon"}
    by_orm = AppointmentEvent.objects.create(**event)
    made = AppointmentEvent(**event)
    _INSERT_EVENT.insert(made)
    assert _row(AppointmentEvent, made.pk) == _row(AppointmentEvent, by_orm.pk)

    message = {"kind": "confirmation", "appointment": prepared, "recipient": "pat@example.org", "slot_id": slot.pk}
    message |= {"sequence": 0, "manage_token": "t", "created_at": now, "send_after": now, "next_attempt_at": now}
    (by_orm,) = OutboundMessage.objects.bulk_create([OutboundMessage(**message)])
    made = [OutboundMessage(**message), OutboundMessage(**message | {"kind": "reminder"})]
    _INSERT_MESSAGES.insert(*made)
    assert _row(OutboundMessage, made[0].pk) == _row(OutboundMessage, by_orm.pk)
    assert _row(OutboundMessage, made[1].pk)["kind"] == "reminder"


def test_an_online_booking_writes_and_reads_after_its_checks_in_one_statement(dr_patel):
    """The appointment, its history row, its messages, the subscriptions told of it and the patient's waiting-list
    entries: one statement (services._insert_booking), whose rows are those the ORM would have written."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bookings.models import (
        AppointmentEvent,
        OutboundMessage,
        WaitingListEntry,
        WebhookDelivery,
        WebhookEvent,
        WebhookSubscription,
    )
    from bookings.services import OnlineBookingGuard, PatientDetails, appointment_book

    now = timezone.now()
    told = WebhookSubscription.objects.create(
        name="Told",
        url="https://example.org/hook",
        secret="whsec_x",
        created_at=now,
        events=[WebhookEvent.APPOINTMENT_BOOKED],
        include_contact_details=True,
    )
    WebhookSubscription.objects.create(
        name="Not told",
        url="https://example.org/other",
        secret="whsec_y",
        created_at=now,
        events=[WebhookEvent.APPOINTMENT_CANCELLED],
    )
    entry, _ = waiting("Pat@Example.org")
    someone_else, _ = waiting("someone.else@example.org")
    slot = make_slot(dr_patel, local(4, 10))
    with CaptureQueriesContext(connection) as captured:
        result = appointment_book(
            slot_id=slot.pk,
            patient=PatientDetails(first_name="Pat", last_name="Ient", phone="07700 900123", email="pat@example.org"),
            now=now,
            submission_key=uuid.uuid4(),
            online_guard=OnlineBookingGuard(safety_pass="a pass", client_key="an address"),
        )
    statements = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # The lock, the read under it, the pass and the contact's locks, the contact's count, the address's count;
    # then the INSERTs and the two reads in one; then the delivery, and the entry ended with its offers withdrawn.
    assert len(statements) == 9, [sql[:60] for sql in statements]
    assert statements[5].startswith("WITH part_0 AS (INSERT INTO")
    booked = result.appointment
    assert booked.pk is not None and not booked._state.adding
    assert booked.phone_normalised == "+447700900123" and booked.client_key == "an address"
    assert Appointment.objects.get(pk=booked.pk).slot_id == slot.pk
    (event,) = AppointmentEvent.objects.filter(appointment=booked)
    assert (event.action, event.actor_label) == ("booked", "patient")
    messages = OutboundMessage.objects.filter(appointment=booked).order_by("pk")
    assert [message.kind for message in messages] == ["confirmation", "reminder"]
    assert messages[0].manage_token == result.manage_token
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.subscription_id == told.pk
    assert delivery.payload["data"]["patient"]["email"] == "pat@example.org"
    assert delivery.payload["data"]["appointment_id"] == booked.pk
    entry.refresh_from_db()
    someone_else.refresh_from_db()
    assert entry.status == WaitingListEntry.Status.BOOKED_ELSEWHERE
    assert someone_else.status == WaitingListEntry.Status.WAITING
