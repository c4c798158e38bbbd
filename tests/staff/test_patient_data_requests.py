"""Access and erasure on request (UK GDPR): reception finds the patient by its own search rule, downloads
everything held about them, and erases it, with upcoming appointments cancelled through the booking service."""

import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.models import (
    Appointment,
    AppointmentEvent,
    CallbackRequest,
    OutboundMessage,
    PatientDataAccess,
    PatientDataErasure,
    Slot,
    WaitingListEntry,
    WaitingListOffer,
)
from bookings.notifications import send_due_messages
from bookings.privacy import expired_data_purge, patient_data_erase
from bookings.services import PatientDetails, appointment_book, waiting_list_offer_by_hand
from tests.helpers import (
    QUILLON,
    QUILLON_ANSWER,
    QUILLON_CALLBACK_MESSAGE,
    QUILLON_CANCEL_REASON,
    QUILLON_STRINGS,
    a_patient_with_every_record,
    database_dump,
    days_ahead,
    local,
    make_slot,
    waiting,
    works_at,
)
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db

# Two other patients with names close to Quillon Marrowfield's: a search for "Marrow" finds all three.
QUILLONNE = {
    "first_name": "Quillonne",
    "last_name": "Marrowfield",
    "email": "q.ne@example.com",
    "phone": "07700 900588",
    "note": "Other knee",
}
QUILLON_MARROW = {
    "first_name": "Quillon",
    "last_name": "Marrow",
    "email": "qm@example.com",
    "phone": "07700 900599",
    "note": "Shoulder",
}

# Someone else entirely, whose details share nothing with Quillon's.
HANA = {
    "first_name": "Hana",
    "last_name": "Other",
    "email": "hana@example.com",
    "phone": "07700 900312",
    "note": "Wrist",
}


@pytest.fixture
def rita_signed_in(client, rita):
    verified_login(client, rita)
    return client


@pytest.fixture
def three_patients(dr_patel, dr_okafor, rita):
    a_month_ago = timezone.now() - timedelta(days=30)
    quillon = a_patient_with_every_record(dr_patel, first_seen=a_month_ago, actor=rita)
    others = [
        a_patient_with_every_record(dr_okafor, first_seen=a_month_ago + timedelta(hours=offset), details=details)
        for offset, details in ((1, QUILLONNE), (2, QUILLON_MARROW))
    ]
    works_at(dr_patel, local(days_ahead(6), 11))
    upcoming = appointment_book(
        slot_id=make_slot(dr_patel, local(days_ahead(6), 11)).pk,
        patient=PatientDetails(**QUILLON),
        now=timezone.now(),
    ).appointment
    return {**quillon, "upcoming": upcoming, "others": others}


def _search(client, query):
    response = client.post(reverse("reception_search"), {"q": query})
    assert response.status_code == 200
    return response


def test_reception_finds_the_patient_by_its_search_and_downloads_every_record_held_about_them(
    rita_signed_in, three_patients
):
    results = _search(rita_signed_in, "Marrow").context["results"]
    assert len(results) == 7  # three appointments of Quillon, two of each of the others
    quillon_ids = {three_patients[key].pk for key in ("attended", "cancelled", "upcoming")}
    assert {a.pk for a in results} >= quillon_ids

    response = rita_signed_in.get(reverse("reception_patient_data_json", args=[three_patients["attended"].pk]))

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.content)
    # Every appointment, history row, e-mail and call-back request the database holds about them.
    assert {a["id"] for a in data["appointments"]} == quillon_ids
    for item in data["appointments"]:
        appointment = Appointment.objects.get(pk=item["id"])
        assert len(item["history"]) == AppointmentEvent.objects.filter(appointment=appointment).count() > 0
        assert len(item["emails"]) == OutboundMessage.objects.filter(appointment=appointment).count() > 0
        assert (item["email"], item["phone"], item["note"]) == (QUILLON["email"], QUILLON["phone"], QUILLON["note"])
    attended = next(a for a in data["appointments"] if a["id"] == three_patients["attended"].pk)
    assert attended["safety_answers"]["details"] == QUILLON_ANSWER
    assert attended["privacy_notice_version"] == "2026-11"
    assert attended["status"] == "Completed"
    assert any(e["status"] == "Sent" and e["sent_at"] for e in attended["emails"])
    cancelled = next(a for a in data["appointments"] if a["id"] == three_patients["cancelled"].pk)
    assert cancelled["cancel_reason"] == QUILLON_CANCEL_REASON
    assert any(e["detail"] == QUILLON_CANCEL_REASON for e in cancelled["history"])
    assert [c["id"] for c in data["callback_requests"]] == [three_patients["callback"].pk]
    assert data["callback_requests"][0]["message"] == QUILLON_CALLBACK_MESSAGE
    assert any(v["page"] == "reception_appointment" for v in data["staff_views_of_these_records"])
    # Their waiting-list entry, with its safety answers, the time offered and the offer e-mail's dates.
    (entry,) = data["waiting_list_entries"]
    assert entry["id"] == three_patients["waiting_list_entry"].pk
    assert (entry["email"], entry["phone"], entry["status"]) == (QUILLON["email"], QUILLON["phone"], "Left the list")
    assert entry["safety_answers"]["details"] == QUILLON_ANSWER and entry["privacy_notice_version"] == "2026-11"
    (offer,) = entry["offers"]
    (offer_email,) = offer["emails"]
    assert (offer_email["kind"], offer_email["to"], offer_email["status"]) == (
        "Waiting list: a time offered",
        QUILLON["email"],
        "Sent",
    )
    assert offer_email["sent_at"] and offer["offered_at"] and offer["starts_at"]
    # Nothing of the two patients with similar names.
    text = response.content.decode()
    for details in (QUILLONNE, QUILLON_MARROW):
        assert details["email"] not in text and details["phone"] not in text and details["note"] not in text
    assert "Quillonne" not in text and '"Marrow"' not in text


def test_the_readable_page_shows_the_same_records_and_is_itself_recorded(rita_signed_in, rita, three_patients):
    response = rita_signed_in.get(reverse("reception_patient_data", args=[three_patients["attended"].pk]))

    assert response.status_code == 200
    page = response.content.decode()
    for text in (QUILLON["note"], QUILLON["email"], QUILLON_CANCEL_REASON, QUILLON_CALLBACK_MESSAGE, QUILLON_ANSWER):
        assert text in page
    assert "Quillonne" not in page and QUILLON_MARROW["email"] not in page
    access = PatientDataAccess.objects.filter(page="reception_patient_data").get()
    assert access.user == rita
    assert set(access.appointment_ids) == {three_patients[k].pk for k in ("attended", "cancelled", "upcoming")}
    assert access.callback_ids == [three_patients["callback"].pk]
    assert access.waiting_list_entry_ids == [three_patients["waiting_list_entry"].pk]
    assert "Waiting-list entries (1)" in page and "waiting list: a time offered e-mail to " + QUILLON["email"] in page


def test_a_waiting_list_entry_is_theirs_by_e_mail_in_any_case_or_by_phone_and_name_never_by_phone_alone(
    rita_signed_in, three_patients
):
    """Quillon rejoined with his e-mail in capitals, and his wife Petra joined with his phone number."""
    by_email, _ = waiting(QUILLON["email"].upper(), first_name="Q.")
    by_phone_and_name = WaitingListEntry.objects.create(
        first_name="QUILLON",
        last_name="marrowfield",
        email="quillon@work.example.com",
        phone="+44 7700 900471",
        weekdays=[0],
        parts_of_day=["morning"],
        wait_until=days_ahead(10),
        token_hash="a" * 64,
        created_at=timezone.now(),
    )
    petra = WaitingListEntry.objects.create(
        first_name="Petra",
        last_name="Marrowfield",
        email="petra@example.com",
        phone=QUILLON["phone"],
        weekdays=[0],
        parts_of_day=["morning"],
        wait_until=days_ahead(10),
        token_hash="b" * 64,
        created_at=timezone.now(),
    )

    data = rita_signed_in.get(reverse("reception_patient_data_json", args=[three_patients["attended"].pk])).json()

    found = {entry["id"] for entry in data["waiting_list_entries"]}
    assert found == {three_patients["waiting_list_entry"].pk, by_email.pk, by_phone_and_name.pk}
    assert petra.pk not in found and "Petra" not in json.dumps(data)


def test_a_practitioner_cannot_open_a_patients_data_or_erase_it(client, dr_patel, three_patients):
    verified_login(client, dr_patel.user)
    pk = three_patients["attended"].pk
    for name in ("reception_patient_data", "reception_patient_data_json", "reception_patient_erase"):
        assert client.get(reverse(name, args=[pk])).status_code == 403
    assert client.post(reverse("reception_patient_erase", args=[pk]), {"reference": "X"}).status_code == 403
    assert not Appointment.objects.filter(anonymised_at__isnull=False).exists()


def test_an_erasure_without_a_reference_is_refused_with_a_message_and_erases_nothing(rita_signed_in, three_patients):
    response = rita_signed_in.post(
        reverse("reception_patient_erase", args=[three_patients["attended"].pk]), {"reference": "  "}
    )

    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert not Appointment.objects.filter(anonymised_at__isnull=False).exists()


def test_erasure_cancels_the_upcoming_appointment_tells_the_patient_then_erases_everything(
    rita_signed_in, rita, three_patients, mailoutbox
):
    upcoming = three_patients["upcoming"]
    confirm = rita_signed_in.get(reverse("reception_patient_erase", args=[upcoming.pk]))
    assert confirm.status_code == 200
    assert 'name="notify_patient"' in confirm.content.decode() and "checked" in confirm.content.decode()

    response = rita_signed_in.post(
        reverse("reception_patient_erase", args=[upcoming.pk]),
        {"reference": "2026-12-01-RS", "notify_patient": "on"},
        follow=True,
    )

    assert response.status_code == 200
    upcoming.refresh_from_db()
    assert upcoming.status == Appointment.Status.CANCELLED
    # The slot is free again for anyone.
    assert Slot.objects.bookable(now=timezone.now()).filter(pk=upcoming.slot_id).exists()
    # The cancellation e-mail is sent with their name and address, then nothing of them is left.
    mailoutbox.clear()
    send_due_messages(now=timezone.now(), worker_id="test")
    (sent,) = [sent for sent in mailoutbox if sent.subject.startswith("Cancelled")]
    assert sent.to == [QUILLON["email"]] and "Quillon" in sent.body
    expired_data_purge(now=timezone.now())
    assert not Appointment.objects.filter(email=QUILLON["email"]).exists()
    assert not Appointment.objects.filter(first_name="Quillon", last_name="Marrowfield").exists()
    assert (
        not CallbackRequest.objects.filter(name__icontains="Marrowfield", name__iendswith="Marrowfield")
        .exclude(name="Quillonne Marrowfield")
        .exists()
    )
    erasure = PatientDataErasure.objects.get()
    assert (erasure.reference, erasure.by, erasure.counts["cancelled"]) == ("2026-12-01-RS", rita, 1)
    assert "Quillon" not in json.dumps(erasure.counts)
    # The others are untouched.
    assert Appointment.objects.filter(email__in=[QUILLONNE["email"], QUILLON_MARROW["email"]]).count() == 4
    assert CallbackRequest.objects.filter(name__in=["Quillonne Marrowfield", "Quillon Marrow"]).count() == 2


def test_erasure_without_telling_the_patient_sends_nothing_and_erases_at_once(rita_signed_in, three_patients):
    rita_signed_in.post(
        reverse("reception_patient_erase", args=[three_patients["attended"].pk]), {"reference": "REQ-7"}
    )

    assert not OutboundMessage.objects.filter(
        appointment=three_patients["upcoming"], kind=OutboundMessage.Kind.CANCELLED
    ).exists()
    assert set(
        Appointment.objects.filter(
            pk__in=[three_patients[k].pk for k in ("attended", "cancelled", "upcoming")]
        ).values_list("first_name", "email", "phone", "note", "cancel_reason")
    ) == {("", "", "", "", "")}
    assert PatientDataErasure.objects.get().counts["appointments"] == 3
    # The waiting-list entry they left, and the e-mail that offered them a time.
    entry = WaitingListEntry.objects.get(pk=three_patients["waiting_list_entry"].pk)
    assert (entry.first_name, entry.last_name, entry.email, entry.phone, entry.phone_normalised) == ("",) * 5
    assert entry.safety_answers == {} and entry.anonymised_at is not None
    assert list(
        OutboundMessage.objects.filter(waiting_list_offer__entry=entry).values_list("recipient", flat=True)
    ) == [""]
    assert PatientDataErasure.objects.get().counts["waiting_list_entries"] == 1


def test_erasure_takes_them_off_the_waiting_list_frees_the_time_held_for_them_and_the_offer_e_mail_never_goes(
    rita_signed_in, rita, dr_patel, three_patients, mailoutbox
):
    """Quillon rejoined the list and Rita offered him a time: its e-mail is still waiting to go when he asks."""
    entry, token = waiting(QUILLON["email"], first_name="Quillon")
    works_at(dr_patel, local(days_ahead(5), 9))
    slot = make_slot(dr_patel, local(days_ahead(5), 9))
    offer = waiting_list_offer_by_hand(entry=entry, slot_id=slot.pk, now=timezone.now(), actor=rita)
    assert not Slot.objects.bookable(now=timezone.now()).filter(pk=slot.pk).exists()

    rita_signed_in.post(
        reverse("reception_patient_erase", args=[three_patients["attended"].pk]), {"reference": "REQ-9"}
    )

    entry.refresh_from_db()
    offer.refresh_from_db()
    assert (entry.status, entry.ended_at is not None, entry.anonymised_at is not None) == ("removed", True, True)
    assert (entry.first_name, entry.email, entry.phone, entry.safety_answers) == ("", "", "", {})
    assert offer.status == WaitingListOffer.Status.WITHDRAWN
    assert Slot.objects.bookable(now=timezone.now()).filter(pk=slot.pk).exists()
    offer_email = OutboundMessage.objects.get(waiting_list_offer=offer)
    assert (offer_email.status, offer_email.recipient, offer_email.manage_token) == ("skipped", "", "")
    mailoutbox.clear()
    send_due_messages(now=timezone.now(), worker_id="test")
    assert mailoutbox == []
    # His link to his place shows nothing any more; reception's list shows the entry without him.
    assert rita_signed_in.get(reverse("waiting_list_entry", args=[token])).status_code == 404
    assert "(details erased)" in rita_signed_in.get(reverse("reception_waiting_list")).content.decode()


@pytest.mark.django_db(transaction=True)
def test_after_erasure_a_dump_of_the_database_holds_nothing_of_the_patient(client, rita, dr_patel, dr_okafor):
    verified_login(client, rita)
    records = a_patient_with_every_record(dr_patel, first_seen=timezone.now() - timedelta(days=30), actor=rita)
    other = a_patient_with_every_record(dr_okafor, first_seen=timezone.now() - timedelta(days=29), details=HANA)
    client.get(reverse("reception_appointment", args=[records["attended"].pk]))
    assert all(text in database_dump() for text in QUILLON_STRINGS)

    client.post(reverse("reception_patient_erase", args=[records["attended"].pk]), {"reference": "REQ-8"})

    dump = database_dump()
    assert [line for line in dump.splitlines() if any(text in line for text in QUILLON_STRINGS)] == []
    # The other patient is all there.
    assert HANA["email"] in dump and HANA["note"] in dump
    other["attended"].refresh_from_db()
    assert other["attended"].first_name == "Hana"


def test_an_offer_e_mail_a_worker_is_sending_during_the_erasure_loses_its_address_at_the_next_purge(
    rita, dr_patel, three_patients
):
    entry, _ = waiting(QUILLON["email"], first_name="Quillon")
    works_at(dr_patel, local(days_ahead(5), 9))
    offer = waiting_list_offer_by_hand(
        entry=entry, slot_id=make_slot(dr_patel, local(days_ahead(5), 9)).pk, now=timezone.now(), actor=rita
    )
    OutboundMessage.objects.filter(waiting_list_offer=offer).update(
        status=OutboundMessage.Status.SENDING,
        claimed_by="worker-1",
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )

    patient_data_erase(appointment=three_patients["attended"], reference="REQ-10", actor=rita, now=timezone.now())

    message = OutboundMessage.objects.get(waiting_list_offer=offer)
    # The worker still holds it: its address stays until it is done.
    assert message.recipient == QUILLON["email"]
    OutboundMessage.objects.filter(pk=message.pk).update(
        status=OutboundMessage.Status.SENT, sent_at=timezone.now(), lease_expires_at=None
    )
    expired_data_purge(now=timezone.now())
    message.refresh_from_db()
    assert (message.recipient, message.manage_token) == ("", "")


# Transactional: the worker command closes stale connections between batches, as a long-running worker must.
@pytest.mark.django_db(transaction=True)
def test_the_e_mail_worker_finishes_an_erasure_as_soon_as_its_cancellation_e_mail_has_left(
    rita_signed_in, three_patients, mailoutbox
):
    from django.core.management import call_command

    from bookings.models import PurgeRun

    # Today's purge has run already: the finish must not wait for tomorrow's.
    PurgeRun.objects.create(at=timezone.now(), counts={})
    upcoming = three_patients["upcoming"]
    rita_signed_in.post(
        reverse("reception_patient_erase", args=[upcoming.pk]),
        {"reference": "2026-12-01-RS", "notify_patient": "on"},
    )
    upcoming.refresh_from_db()
    assert upcoming.first_name == "Quillon" and upcoming.erasure_requested_at is not None

    call_command("send_messages", "--once", stdout=io.StringIO())

    assert any(sent.subject.startswith("Cancelled") and sent.to == [QUILLON["email"]] for sent in mailoutbox)
    upcoming.refresh_from_db()
    assert (upcoming.first_name, upcoming.email, upcoming.anonymised_at is not None) == ("", "", True)
    assert PurgeRun.objects.count() == 1


def test_an_erased_patient_cannot_be_erased_again_and_the_appointment_page_says_they_were(
    rita_signed_in, three_patients
):
    upcoming = three_patients["upcoming"]
    rita_signed_in.post(reverse("reception_patient_erase", args=[upcoming.pk]), {"reference": "2026-12-01-RS"})
    assert PatientDataErasure.objects.count() == 1

    again = rita_signed_in.post(
        reverse("reception_patient_erase", args=[upcoming.pk]), {"reference": "zz"}, follow=True
    )

    assert PatientDataErasure.objects.count() == 1
    page = again.content.decode()
    assert "erased already" in page and "were erased on" in page
    assert "Not asked (booked by phone)" not in page
