"""The retention purge (bookings/privacy.py, `manage.py purge_expired`): what expired loses the patient's details,
everything else stays, and it gives the same result run twice or twice at once."""

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from bookings.models import (
    Appointment,
    AppointmentEvent,
    CallbackRequest,
    OutboundMessage,
    PatientDataAccess,
    PurgeRun,
    Slot,
    WaitingListEntry,
    WaitingListOffer,
)
from bookings.privacy import expired_data_purge, purge_if_due
from bookings.services import waiting_list_offer_by_hand
from tests.helpers import (
    QUILLON_STRINGS,
    a_patient_with_every_record,
    database_dump,
    days_ahead,
    local,
    make_slot,
    patient_books,
    waiting,
)

# Well past every retention period: three years ago.
LONG_AGO = timezone.now() - timedelta(days=3 * 365)


def _appointment_state():
    """What must survive a purge: every appointment's slot, status and times, the history's actions, counts per day."""
    return {
        "appointments": list(
            Appointment.objects.order_by("pk").values_list("pk", "slot_id", "status", "created_at", "cancelled_at")
        ),
        "history": list(
            AppointmentEvent.objects.order_by("pk").values_list(
                "appointment_id", "at", "action", "from_value", "to_value"
            )
        ),
        "slots": list(Slot.objects.order_by("pk").values_list("pk", "state", "starts_at")),
        "per_day": list(
            Appointment.objects.annotate(day=TruncDate("slot__starts_at"))
            .values("day", "status")
            .annotate(n=Count("pk"))
            .order_by("day", "status")
        ),
    }


def _details(appointment):
    appointment.refresh_from_db()
    return (appointment.first_name, appointment.last_name, appointment.email, appointment.phone, appointment.note)


@pytest.mark.django_db(transaction=True)
def test_after_the_purge_a_dump_of_the_database_holds_nothing_of_an_expired_patient(dr_patel, dr_okafor, rita):
    records = a_patient_with_every_record(dr_patel, first_seen=LONG_AGO, actor=rita)
    dump = database_dump()
    assert all(text in dump for text in QUILLON_STRINGS), "the patient should be in the dump before the purge"

    expired_data_purge(now=timezone.now())

    dump = database_dump()
    assert [text for text in QUILLON_STRINGS if text in dump] == []
    assert "Did the pain start after a fall?" not in dump
    attended = Appointment.objects.get(pk=records["attended"].pk)
    assert attended.anonymised_at is not None and attended.safety_answers == {}
    # The consent record stays: which notice they agreed to says nothing about who they are.
    assert attended.privacy_notice_version == "2026-11"
    entry = WaitingListEntry.objects.get(pk=records["waiting_list_entry"].pk)
    assert entry.anonymised_at is not None and entry.safety_answers == {} and entry.privacy_notice_version == "2026-11"
    assert set(
        OutboundMessage.objects.filter(waiting_list_offer__entry=entry).values_list("recipient", "manage_token")
    ) == {("", "")}


def test_the_purge_keeps_slots_history_counts_and_other_patients_and_the_one_booking_per_slot_rule(dr_patel, rita):
    a_patient_with_every_record(dr_patel, first_seen=LONG_AGO, actor=rita)
    recent = patient_books(make_slot(dr_patel, local(days_ahead(4), 10)), first_name="Hana", last_name="Recent")
    before = _appointment_state()

    counts = expired_data_purge(now=timezone.now())

    assert counts["appointments"] == 2 and counts["callbacks"] == 1 and counts["messages"] >= 2
    assert _appointment_state() == before
    assert _details(recent) == ("Hana", "Recent", "pat@example.org", "07700 900123", "")
    # The slot of the consultation that took place is still taken: the database refuses a second live booking in it.
    attended_slot = Appointment.objects.get(status=Appointment.Status.COMPLETED).slot
    with pytest.raises(IntegrityError), transaction.atomic():
        Appointment.objects.create(
            slot=attended_slot,
            first_name="Second",
            last_name="Booking",
            phone="07700 900000",
            manage_token_hash="x" * 64,
            created_at=timezone.now(),
            updated_at=timezone.now(),
        )


def test_what_has_not_expired_keeps_its_details(dr_patel, rita):
    """Attended 1 year ago (kept 2 years), an e-mail sent 10 days ago (kept 30), a call-back done a month ago."""
    records = a_patient_with_every_record(dr_patel, first_seen=timezone.now() - timedelta(days=365), actor=rita)
    OutboundMessage.objects.update(sent_at=timezone.now() - timedelta(days=10))
    CallbackRequest.objects.update(done_at=timezone.now() - timedelta(days=30))

    counts = expired_data_purge(now=timezone.now())

    # Only the cancelled one is past its 6 months (its e-mails go with it).
    assert counts["appointments"] == 1 and counts["callbacks"] == 0
    kept = OutboundMessage.objects.filter(appointment=records["attended"]).values_list("recipient", flat=True)
    assert set(kept) == {"quillon.marrowfield@example.net"}
    assert _details(records["attended"])[:2] == ("Quillon", "Marrowfield")
    assert _details(records["cancelled"]) == ("", "", "", "", "")
    assert CallbackRequest.objects.get().name == "Quillon Marrowfield"


def test_a_waiting_list_entry_loses_its_details_30_days_after_it_ended_and_its_offer_e_mail_after_30_days_sent(
    dr_patel, rita
):
    """Quillon left the list 31 days ago; Wanda left 29 days ago; Walter is still waiting since long ago."""
    now = timezone.now()
    records = a_patient_with_every_record(dr_patel, first_seen=now - timedelta(days=32), actor=rita)
    quillon = records["waiting_list_entry"]
    wanda, _ = waiting("wanda@example.org", joined=now - timedelta(days=40))
    WaitingListEntry.objects.filter(pk=wanda.pk).update(status="left", ended_at=now - timedelta(days=29))
    walter, _ = waiting("walter@example.org", first_name="Walter", joined=LONG_AGO)
    offer_email = OutboundMessage.objects.get(waiting_list_offer__entry=quillon)

    counts = expired_data_purge(now=now)

    assert counts["waiting_list_entries"] == 1
    quillon.refresh_from_db()
    assert (quillon.first_name, quillon.last_name, quillon.email, quillon.phone, quillon.phone_normalised) == (
        "",
        "",
        "",
        "",
        "",
    )
    assert quillon.safety_answers == {} and quillon.anonymised_at == now
    # The offer and its times stay, naming nobody: "a time was offered on the 3rd" identifies no one.
    assert WaitingListOffer.objects.filter(entry=quillon).count() == 1
    offer_email.refresh_from_db()
    assert (offer_email.recipient, offer_email.manage_token, offer_email.anonymised_at) == ("", "", now)
    assert WaitingListEntry.objects.get(pk=wanda.pk).email == "wanda@example.org"
    walter.refresh_from_db()
    assert (walter.first_name, walter.status, walter.anonymised_at) == ("Walter", "waiting", None)


def test_an_offer_e_mail_follows_the_messages_period_even_while_its_entry_is_kept(dr_patel, rita):
    """Wanda left the list 10 days ago (kept 30): the e-mail offering her a time was sent 31 days ago (kept 30)."""
    now = timezone.now()
    wanda, _ = waiting("wanda@example.org", joined=now - timedelta(days=40))
    slot = make_slot(dr_patel, now + timedelta(days=5))
    offer = waiting_list_offer_by_hand(entry=wanda, slot_id=slot.pk, now=now - timedelta(days=31), actor=rita)
    OutboundMessage.objects.filter(waiting_list_offer=offer).update(
        status=OutboundMessage.Status.SENT, sent_at=now - timedelta(days=31), manage_token=""
    )
    WaitingListEntry.objects.filter(pk=wanda.pk).update(status="left", ended_at=now - timedelta(days=10))

    counts = expired_data_purge(now=now)

    assert counts["waiting_list_entries"] == 0 and counts["messages"] == 1
    assert OutboundMessage.objects.get(waiting_list_offer=offer).recipient == ""
    assert WaitingListEntry.objects.get(pk=wanda.pk).email == "wanda@example.org"


def test_history_keeps_its_actions_but_loses_the_reason_typed_in(dr_patel, rita):
    records = a_patient_with_every_record(dr_patel, first_seen=LONG_AGO, actor=rita)

    expired_data_purge(now=timezone.now())

    cancelled = AppointmentEvent.objects.get(appointment=records["cancelled"], action=AppointmentEvent.Action.CANCELLED)
    assert (cancelled.detail, cancelled.to_value) == ("", "Cancelled")
    records["cancelled"].refresh_from_db()
    assert records["cancelled"].cancel_reason == ""


def test_old_sign_in_attempts_and_old_access_records_are_deleted(dr_patel, rita):
    from axes.models import AccessAttempt, AccessLog

    old = timezone.now() - timedelta(days=91)
    AccessAttempt.objects.create(username="mallory", ip_address="192.0.2.7", failures_since_start=3)
    AccessLog.objects.create(username="mallory", ip_address="192.0.2.7")
    # Their times are set on creation: made older afterwards.
    AccessAttempt.objects.update(attempt_time=old)
    AccessLog.objects.update(attempt_time=old)
    AccessLog.objects.create(username="rita", ip_address="192.0.2.8")
    PatientDataAccess.objects.create(at=timezone.now() - timedelta(days=731), username="rita", page="reception_day")
    PatientDataAccess.objects.create(at=timezone.now(), username="rita", page="reception_day")

    counts = expired_data_purge(now=timezone.now())

    assert counts["signin_attempts"] == 2 and counts["access_log"] == 1
    assert list(AccessLog.objects.values_list("username", flat=True)) == ["rita"]
    assert AccessAttempt.objects.count() == 0 and PatientDataAccess.objects.count() == 1


def _snapshot():
    return (
        list(Appointment.objects.order_by("pk").values()),
        list(AppointmentEvent.objects.order_by("pk").values()),
        list(OutboundMessage.objects.order_by("pk").values()),
        list(CallbackRequest.objects.order_by("pk").values()),
        list(WaitingListEntry.objects.order_by("pk").values()),
    )


def test_the_purge_run_twice_gives_the_same_result(dr_patel, rita):
    a_patient_with_every_record(dr_patel, first_seen=LONG_AGO, actor=rita)
    now = timezone.now()
    first = expired_data_purge(now=now)
    after_first = _snapshot()

    second = expired_data_purge(now=now + timedelta(hours=1))

    assert _snapshot() == after_first
    assert first["appointments"] == 2 and second["appointments"] == 0 and second["callbacks"] == 0
    assert first["waiting_list_entries"] == 1 and second["waiting_list_entries"] == 0
    assert second["messages"] == 0


@pytest.mark.django_db(transaction=True)
def test_two_purges_at_once_on_two_connections_anonymise_each_record_once(dr_patel, rita):
    for offset in range(4):
        a_patient_with_every_record(dr_patel, first_seen=LONG_AGO + timedelta(days=10 * offset), actor=rita)
    now = timezone.now()
    start = threading.Barrier(2)
    results, errors = [], []

    def purge():
        try:
            start.wait()
            results.append(expired_data_purge(now=now))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=purge) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(result["appointments"] for result in results) == 8
    assert sum(result["callbacks"] for result in results) == 4
    assert sum(result["waiting_list_entries"] for result in results) == 4
    assert not WaitingListEntry.objects.filter(anonymised_at__isnull=True).exists()
    assert not Appointment.objects.filter(anonymised_at__isnull=True).exists()
    assert set(Appointment.objects.values_list("first_name", "email", "note")) == {("", "", "")}
    assert sum(1 for result in results if result["appointments"]) >= 1


def test_the_command_purges_and_records_its_run(dr_patel, rita, capsys):
    a_patient_with_every_record(dr_patel, first_seen=LONG_AGO, actor=rita)

    call_command("purge_expired")

    assert "appointments: 2" in capsys.readouterr().out
    assert PurgeRun.objects.get().counts["appointments"] == 2
    assert not Appointment.objects.filter(anonymised_at__isnull=True).exists()


# Transactional: the command closes stale connections between batches, as a long-running worker must.
@pytest.mark.django_db(transaction=True)
def test_the_email_worker_runs_the_purge_once_a_day(dr_patel, rita):
    a_patient_with_every_record(dr_patel, first_seen=LONG_AGO, actor=rita)

    call_command("send_messages", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("send_messages", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert PurgeRun.objects.count() == 1
    assert not Appointment.objects.filter(anonymised_at__isnull=True).exists()
    # A day later it runs again.
    assert purge_if_due(now=timezone.now() + timedelta(hours=23)) is None
    assert purge_if_due(now=timezone.now() + timedelta(days=1, minutes=1)) is not None
