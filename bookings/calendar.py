"""iCalendar files for appointments: the patient's "Add to calendar" and e-mail attachments."""

from urllib.parse import urlparse

from django.conf import settings
from icalendar import Calendar, Event, vCalAddress


def appointment_uid(appointment) -> str:
    host = urlparse(settings.SITE_URL).hostname or "clinic.local"
    return f"appointment-{appointment.pk}@{host}"


def appointment_ics(appointment, *, method: str = "PUBLISH") -> bytes:
    """One VEVENT with a stable UID; SEQUENCE follows every move or cancellation.

    METHOD is PUBLISH for a download, REQUEST for an invitation e-mail, CANCEL when cancelled.
    No health details: the summary says only "Free consultation".
    """
    calendar = Calendar()
    calendar.add("prodid", f"-//{settings.CLINIC_NAME}//Bookings//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", appointment_uid(appointment))
    event.add("sequence", appointment.sequence)
    event.add("dtstamp", appointment.updated_at)
    event.add("dtstart", appointment.slot.starts_at)
    event.add("dtend", appointment.slot.ends_at)
    event.add("summary", f"Free consultation - {settings.CLINIC_NAME}")
    event.add("location", settings.CLINIC_ADDRESS)
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
