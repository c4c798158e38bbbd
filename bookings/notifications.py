"""Messages caused by appointment changes. Called inside the service's transaction."""


def appointment_changed(appointment, *, action: str, now, notify_patient: bool = True) -> None:
    """Record the messages this change causes (confirmation, moved, cancelled, reminders)."""
