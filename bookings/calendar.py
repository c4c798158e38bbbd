"""iCalendar files: the patient's "Add to calendar" and e-mail attachments, and a practitioner's feed."""

from datetime import datetime, timedelta
from urllib.parse import urlparse

from django.conf import settings
from icalendar import Calendar, Event, vCalAddress


def appointment_uid(appointment) -> str:
    host = urlparse(settings.SITE_URL).hostname or "clinic.local"
    return f"appointment-{appointment.pk}@{host}"


# How far back a practitioner's calendar feed reaches.
FEED_PAST = timedelta(days=30)


def _event(appointment, *, uid: str, summary: str) -> Event:
    """The fields every event of ours carries: the time, the place, and a SEQUENCE that follows every change."""
    event = Event()
    event.add("uid", uid)
    event.add("sequence", appointment.sequence)
    event.add("dtstamp", appointment.updated_at)
    event.add("dtstart", appointment.slot.starts_at)
    event.add("dtend", appointment.slot.ends_at)
    event.add("summary", summary)
    event.add("location", settings.CLINIC_ADDRESS)
    return event


def appointment_ics(appointment, *, method: str = "PUBLISH") -> bytes:
    """One VEVENT with a stable UID; SEQUENCE follows every move or cancellation.

    METHOD is PUBLISH for a download, REQUEST for an invitation e-mail, CANCEL when cancelled.
    No health details: the summary says only "Free consultation".
    """
    calendar = Calendar()
    calendar.add("prodid", f"-//{settings.CLINIC_NAME}//Bookings//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = _event(appointment, uid=appointment_uid(appointment), summary=f"Free consultation - {settings.CLINIC_NAME}")
    event.add(
        "description",
        f"Free {settings.CONSULTATION_MINUTES}-minute consultation with {appointment.slot.practitioner.full_name}. "
        f"To change or cancel, use the link in your confirmation e-mail or call {settings.CLINIC_PHONE}.",
    )
    organizer = vCalAddress(f"mailto:{settings.CLINIC_EMAIL}")
    organizer.params["cn"] = settings.CLINIC_NAME
    event["organizer"] = organizer
    if appointment.email:
        # RFC 5546: a REQUEST (and a CANCEL) names its attendees; without one some clients drop the
        # invitation or show it as the clinic's own event. The patient booked the time themselves,
        # so they have accepted it and no reply is expected. CN is the first name only: what the
        # patient typed is quoted no further than the greeting.
        attendee = vCalAddress(f"mailto:{appointment.email}")
        attendee.params["cn"] = appointment.first_name
        attendee.params["role"] = "REQ-PARTICIPANT"
        attendee.params["partstat"] = "ACCEPTED"
        attendee.params["rsvp"] = "FALSE"
        event.add("attendee", attendee)
    event.add("status", "CANCELLED" if method == "CANCEL" or not appointment.is_live else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical()


def practitioner_feed_ics(*, practitioner, now: datetime) -> bytes:
    """A practitioner's live appointments from FEED_PAST ago to the end of the booking horizon.

    Only "Free consultation" and the patient's initials: no note, no phone, no health details.
    The UID differs from the patient's own event, so one calendar may hold both.
    """
    from bookings.models import Appointment

    appointments = (
        Appointment.objects.live()
        .for_practitioner(practitioner)
        .filter(
            slot__starts_at__gte=now - FEED_PAST,
            slot__starts_at__lt=now + timedelta(days=settings.BOOKING_HORIZON_DAYS + 1),
        )
        .select_related("slot")
        .order_by("slot__starts_at")
    )
    calendar = Calendar()
    calendar.add("prodid", f"-//{settings.CLINIC_NAME}//Practitioner calendar//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"{settings.CLINIC_NAME}: {practitioner.full_name}")
    for appointment in appointments:
        summary = f"Free consultation - {appointment.patient_initials}"
        calendar.add_component(_event(appointment, uid=f"practitioner-{appointment_uid(appointment)}", summary=summary))
    return calendar.to_ical()
