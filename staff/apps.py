from django.apps import AppConfig


class StaffConfig(AppConfig):
    """Reception's and the practitioners' screens. No models: the data and its rules live in bookings."""

    name = "staff"
