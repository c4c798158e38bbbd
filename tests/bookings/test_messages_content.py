"""What each booking e-mail says, and the calendar file it carries."""

import email
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from icalendar import Calendar

from bookings.calendar import appointment_uid
from bookings.models import Appointment, OutboundMessage, Slot
from bookings.notifications import send_due_messages
from bookings.services import PatientDetails, appointment_book, appointment_cancel, appointment_move

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=LONDON)
MONDAY_NINE = datetime(2026, 6, 8, 9, 0, tzinfo=LONDON)
WEDNESDAY_TEN = datetime(2026, 6, 10, 10, 0, tzinfo=LONDON)
TWENTY_MINUTES = timedelta(minutes=20)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clinic_settings(settings):
    settings.SITE_URL = "https://clinic.example.org"
    settings.CLINIC_NAME = "Hip & Back Physiotherapy Clinic"
    settings.CLINIC_ADDRESS = "12 Example Street, London, N1 1AA"
    settings.CLINIC_PHONE = "020 7946 0000"
    settings.RECEPTION_NOTIFY_EMAIL = ""
    settings.REMINDER_HOURS_BEFORE = 24


def _slot(practitioner, start):
    return Slot.objects.create(practitioner=practitioner, starts_at=start, ends_at=start + TWENTY_MINUTES)


def _book(slot, *, email="pat.ient@example.com", now=NOW, **extra):
    patient = PatientDetails(
        first_name="Pat",
        last_name="O'Ient",
        phone="07700 900123",
        email=email,
        note="Sciatica down my left leg since March",
    )
    return appointment_book(slot_id=slot.pk, patient=patient, now=now, safety_answers={"numbness": "no"}, **extra)


def _send(now):
    return send_due_messages(now=now, worker_id="test-worker")


def _parts(message):
    """The sent e-mail parsed back as the recipient's client sees it."""
    parsed = email.message_from_bytes(message.message().as_bytes())
    text = html = ""
    calendars = []
    for part in parsed.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode()
        elif part.get_content_type() == "text/html":
            html = part.get_payload(decode=True).decode()
        elif part.get_content_type() == "text/calendar":
            calendars.append((part.get_param("method"), part.get_filename(), part.get_payload(decode=True)))
    return parsed, text, html, calendars


def _event(ics: bytes):
    calendar = Calendar.from_ical(ics)
    (event,) = calendar.walk("VEVENT")
    return calendar, event


def test_the_confirmation_carries_the_manage_link_and_an_invitation_for_the_booked_time(dr_patel, mailoutbox):
    result = _book(_slot(dr_patel, MONDAY_NINE))

    report = _send(NOW)

    assert report.sent == 1
    (sent,) = mailoutbox
    assert sent.to == ["pat.ient@example.com"]
    assert sent.subject == "Booked: your free consultation on Mon 8 Jun at 09:00"
    parsed, text, html, calendars = _parts(sent)
    manage_url = "https://clinic.example.org" + reverse("manage", args=[result.manage_token])
    assert manage_url in text
    assert f'href="{manage_url}"' in html
    assert "Hello Pat," in text
    assert "Monday 8 June 2026 at 09:00" in text
    assert "Dr Priya Patel" in text
    assert "Free consultation (20 minutes)" in text
    for part in (text, html):
        assert "Hip &amp; Back Physiotherapy Clinic" in part or "Hip & Back Physiotherapy Clinic" in part
        assert "12 Example Street, London, N1 1AA" in part
        assert "020 7946 0000" in part
    (method, filename, ics) = calendars[0]
    assert (method, filename) == ("REQUEST", "consultation.ics")
    calendar, event = _event(ics)
    assert calendar["method"] == "REQUEST"
    assert event.decoded("dtstart") == MONDAY_NINE
    assert event.decoded("dtend") == MONDAY_NINE + TWENTY_MINUTES
    assert str(event["uid"]) == appointment_uid(result.appointment)
    assert int(event["sequence"]) == 0
    assert str(event["status"]) == "CONFIRMED"


def test_the_plain_text_part_is_not_html_escaped(dr_patel, mailoutbox):
    _book(_slot(dr_patel, MONDAY_NINE))
    _send(NOW)

    _, text, html, _ = _parts(mailoutbox[0])

    assert "Hip & Back" in text and "&amp;" not in text
    assert "Hip &amp; Back" in html


def test_the_moved_message_updates_the_same_calendar_entry_with_a_higher_sequence(dr_patel, mailoutbox):
    result = _book(_slot(dr_patel, MONDAY_NINE))
    _send(NOW)
    mailoutbox.clear()

    appointment_move(appointment=result.appointment, new_slot_id=_slot(dr_patel, WEDNESDAY_TEN).pk, now=NOW)
    _send(NOW)

    (sent,) = mailoutbox
    assert sent.subject == "Moved: your free consultation is now on Wed 10 Jun at 10:00"
    _, text, _, calendars = _parts(sent)
    assert "Wednesday 10 June 2026 at 10:00" in text
    # A manage link of its own: the patient may have deleted the confirmation (see bookings/notifications.py).
    assert "https://clinic.example.org/manage/" in text
    method, _, ics = calendars[0]
    calendar, event = _event(ics)
    assert method == "REQUEST" and calendar["method"] == "REQUEST"
    assert str(event["uid"]) == appointment_uid(result.appointment)
    assert int(event["sequence"]) == 1
    assert event.decoded("dtstart") == WEDNESDAY_TEN
    assert event.decoded("dtend") == WEDNESDAY_TEN + TWENTY_MINUTES


def test_the_cancelled_message_cancels_the_calendar_entry(dr_patel, mailoutbox):
    result = _book(_slot(dr_patel, MONDAY_NINE))
    appointment_move(appointment=result.appointment, new_slot_id=_slot(dr_patel, WEDNESDAY_TEN).pk, now=NOW)
    appointment_cancel(appointment=result.appointment, now=NOW, reason="Feeling better")

    _send(NOW)

    subjects = [sent.subject for sent in mailoutbox]
    assert subjects == [
        "Booked: your free consultation on Mon 8 Jun at 09:00",
        "Moved: your free consultation is now on Wed 10 Jun at 10:00",
        "Cancelled: your free consultation on Wed 10 Jun at 10:00",
    ]
    _, text, _, calendars = _parts(mailoutbox[2])
    assert "Wednesday 10 June 2026 at 10:00 with Dr Priya Patel is cancelled" in text
    assert "https://clinic.example.org/book/" in text
    method, _, ics = calendars[0]
    calendar, event = _event(ics)
    assert method == "CANCEL" and calendar["method"] == "CANCEL"
    assert str(event["uid"]) == appointment_uid(result.appointment)
    assert int(event["sequence"]) == 2
    assert str(event["status"]) == "CANCELLED"
    assert event.decoded("dtstart") == WEDNESDAY_TEN


def test_each_message_describes_the_appointment_as_it_was_at_its_change(dr_patel, mailoutbox):
    """The worker was down during a booking and a move: the confirmation still shows the first time."""
    result = _book(_slot(dr_patel, MONDAY_NINE))
    appointment_move(appointment=result.appointment, new_slot_id=_slot(dr_patel, WEDNESDAY_TEN).pk, now=NOW)

    _send(NOW)

    confirmation, moved = mailoutbox
    assert _event(_parts(confirmation)[3][0][2])[1].decoded("dtstart") == MONDAY_NINE
    assert int(_event(_parts(confirmation)[3][0][2])[1]["sequence"]) == 0
    assert _event(_parts(moved)[3][0][2])[1].decoded("dtstart") == WEDNESDAY_TEN


def test_the_reminder_names_the_time_and_how_to_change_it_and_carries_no_calendar_file(dr_patel, mailoutbox):
    _book(_slot(dr_patel, MONDAY_NINE))

    _send(MONDAY_NINE - timedelta(hours=24))

    reminder = mailoutbox[-1]
    assert reminder.subject == "Reminder: your free consultation on Mon 8 Jun at 09:00"
    _, text, html, calendars = _parts(reminder)
    assert calendars == []
    assert "Monday 8 June 2026 at 09:00" in text and "Monday 8 June 2026 at 09:00" in html
    assert "12 Example Street, London, N1 1AA" in text
    assert "https://clinic.example.org/manage/" in text and 'href="https://clinic.example.org/manage/' in html


def test_no_message_mentions_the_patients_note_or_safety_answers(dr_patel, mailoutbox, settings):
    settings.RECEPTION_NOTIFY_EMAIL = "reception@clinic.example.org"
    result = _book(_slot(dr_patel, MONDAY_NINE))
    appointment_move(appointment=result.appointment, new_slot_id=_slot(dr_patel, WEDNESDAY_TEN).pk, now=NOW)
    appointment_cancel(appointment=result.appointment, now=NOW, reason="Sciatica is better")

    _send(NOW)

    assert len(mailoutbox) == 6
    for sent in mailoutbox:
        whole = sent.message().as_string()
        for private in ("Sciatica", "numbness", "07700", "left leg"):
            assert private not in whole, (sent.subject, private)


def test_reception_hears_of_new_moved_and_cancelled_bookings_when_an_address_is_set(
    dr_patel, rita, mailoutbox, settings
):
    settings.RECEPTION_NOTIFY_EMAIL = "reception@clinic.example.org"
    result = _book(_slot(dr_patel, MONDAY_NINE), email="")
    appointment_move(appointment=result.appointment, new_slot_id=_slot(dr_patel, WEDNESDAY_TEN).pk, now=NOW, actor=rita)
    appointment_cancel(appointment=result.appointment, now=NOW, actor=rita)

    _send(NOW)

    assert [(sent.to, sent.subject) for sent in mailoutbox] == [
        (["reception@clinic.example.org"], "New booking: Mon 8 Jun at 09:00 with Dr Priya Patel"),
        (["reception@clinic.example.org"], "Booking moved to Wed 10 Jun at 10:00 with Dr Priya Patel"),
        (["reception@clinic.example.org"], "Booking cancelled: Wed 10 Jun at 10:00 with Dr Priya Patel"),
    ]
    _, text, _, calendars = _parts(mailoutbox[0])
    assert "Patient: Pat O'Ient" in text
    assert "https://clinic.example.org/staff/" in text
    assert calendars == []


def test_reception_hears_nothing_when_no_address_is_set(dr_patel, mailoutbox):
    _book(_slot(dr_patel, MONDAY_NINE))

    _send(NOW)

    assert [sent.to for sent in mailoutbox] == [["pat.ient@example.com"]]


def test_a_phone_booking_without_an_email_address_sends_the_patient_nothing(dr_patel, rita, mailoutbox):
    _book(_slot(dr_patel, MONDAY_NINE), email="", booked_by=rita)

    _send(MONDAY_NINE - timedelta(hours=1))

    assert mailoutbox == []
    assert not OutboundMessage.objects.exists()


def test_a_cancellation_reception_chose_not_to_announce_sends_the_patient_nothing(dr_patel, rita, mailoutbox):
    result = _book(_slot(dr_patel, MONDAY_NINE))
    _send(NOW)
    mailoutbox.clear()

    appointment_cancel(appointment=result.appointment, now=NOW, actor=rita, notify_patient=False)
    _send(NOW)

    assert mailoutbox == []


def test_the_manage_token_is_forgotten_once_the_confirmation_is_sent(dr_patel, mailoutbox):
    result = _book(_slot(dr_patel, MONDAY_NINE))
    confirmation = OutboundMessage.objects.get(kind=OutboundMessage.Kind.CONFIRMATION)
    assert confirmation.manage_token == result.manage_token

    _send(NOW)

    confirmation.refresh_from_db()
    assert confirmation.status == OutboundMessage.Status.SENT
    assert confirmation.manage_token == ""


def test_the_manage_link_in_the_email_opens_the_patients_booking(dr_patel, client, mailoutbox):
    with time_machine.travel(NOW, tick=False):
        _book(_slot(dr_patel, MONDAY_NINE))
        _send(NOW)
        _, text, _, _ = _parts(mailoutbox[0])
        path = next(line for line in text.splitlines() if "/manage/" in line).removeprefix("https://clinic.example.org")

        response = client.get(path)

    assert response.status_code == 200
    assert response.context["appointment"] == Appointment.objects.get()


def test_in_development_emails_and_their_manage_link_are_readable_files(dr_patel, settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = tmp_path
    result = _book(_slot(dr_patel, MONDAY_NINE))

    _send(NOW)

    (written,) = tmp_path.iterdir()
    content = written.read_text()
    assert "Subject: Booked: your free consultation on Mon 8 Jun at 09:00" in content
    # Plain text, not base64: the link can be clicked or copied straight from the file.
    assert "https://clinic.example.org" + reverse("manage", args=[result.manage_token]) in content
    assert "BEGIN:VCALENDAR" in content


def test_the_invitation_and_the_cancellation_name_the_patient_as_attendee_by_first_name_only(dr_patel, mailoutbox):
    """RFC 5546: a REQUEST and a CANCEL name their attendees; the files still import, with their UID and SEQUENCE."""
    result = _book(_slot(dr_patel, MONDAY_NINE))
    appointment_cancel(appointment=result.appointment, now=NOW, reason="Feeling better")

    _send(NOW)

    confirmation, cancellation = mailoutbox
    for sent, method, sequence in ((confirmation, "REQUEST", 0), (cancellation, "CANCEL", 1)):
        calendar, event = _event(_parts(sent)[3][0][2])
        assert calendar["method"] == method
        assert str(event["uid"]) == appointment_uid(result.appointment)
        assert int(event["sequence"]) == sequence
        attendee = event["attendee"]
        assert str(attendee) == "mailto:pat.ient@example.com"
        assert dict(attendee.params) == {
            "CN": "Pat",
            "ROLE": "REQ-PARTICIPANT",
            "PARTSTAT": "ACCEPTED",
            "RSVP": "FALSE",
        }
        assert str(event["organizer"]).startswith("mailto:")
        assert "O'Ient" not in _parts(sent)[3][0][2].decode()


def _manage_path(text: str) -> str:
    line = next(line for line in text.splitlines() if "/manage/" in line)
    return line.strip().removeprefix("https://clinic.example.org")


def test_every_patient_email_carries_a_working_manage_link_and_quotes_nothing_else_the_patient_typed(
    dr_patel, client, mailoutbox
):
    """A patient who deleted the confirmation can still change the booking; the e-mails greet by first name only."""
    patient = PatientDetails(
        first_name="Pat",
        last_name="Quartermaine",
        phone="07700 900123",
        email="pat.ient@example.com",
        note="Sciatica down my left leg since March",
    )
    result = appointment_book(slot_id=_slot(dr_patel, MONDAY_NINE).pk, patient=patient, now=NOW)
    _send(NOW)
    appointment_move(appointment=result.appointment, new_slot_id=_slot(dr_patel, WEDNESDAY_TEN).pk, now=NOW)
    _send(NOW)
    _send(WEDNESDAY_TEN - timedelta(hours=24))
    appointment_cancel(appointment=result.appointment, now=WEDNESDAY_TEN - timedelta(hours=23))
    _send(WEDNESDAY_TEN - timedelta(hours=23))

    subjects = [sent.subject.split(":")[0] for sent in mailoutbox]
    assert subjects == ["Booked", "Moved", "Reminder", "Cancelled"]
    paths = []
    for sent in mailoutbox:
        _, text, html, calendars = _parts(sent)
        assert text.startswith("Hello Pat,\n") and "Hello Pat," in html
        path = _manage_path(text)
        assert f'href="https://clinic.example.org{path}"' in html
        paths.append(path)
        everything = " ".join([sent.subject, text, html, *(ics.decode() for _, _, ics in calendars)])
        for typed in ("Quartermaine", "Sciatica", "left leg", "07700", "900123"):
            assert typed not in everything, (sent.subject, typed)
    # A fresh link in each, and every one still opens the booking after the later ones were issued.
    assert len(set(paths)) == 4
    with time_machine.travel(NOW, tick=False):
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.context["appointment"].pk == result.appointment.pk
    # Only hashes are kept: no raw token waits in the outbox once sent.
    assert not OutboundMessage.objects.exclude(manage_token="").exists()
