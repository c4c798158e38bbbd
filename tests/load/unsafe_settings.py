"""Settings of the load test's control run, and only of it: booking without the slot lock.

The shipped booking service has no unsafe branch. This module is the control's own settings
(DJANGO_SETTINGS_MODULE=tests.load.unsafe_settings, see tests/load/test_several_app_servers.py):
it adds one app whose `ready()` replaces the service's lock-and-check step, in the control
server's processes only, by what a naive booking does: read, check, a slow moment, insert.
With the backstop constraint dropped from its throwaway database, the harness must see
double bookings: that proves it could see them in the protected run.
"""

import time

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured

from clinic.settings import *  # noqa: F403
from clinic.settings import DATABASES, INSTALLED_APPS

if not str(DATABASES["default"]["NAME"]).endswith("_unsafe_control"):
    raise ImproperlyConfigured("tests.load.unsafe_settings is only for a throwaway *_unsafe_control database.")


def check_then_book_without_a_lock(slot_id, *, now, staff, submission_key=None, held_for=None, may_take_held=True):
    """The naive booking: no row lock, so two requests both see the slot free."""
    from bookings.models import Appointment, Slot
    from bookings.services import SlotUnavailable

    slot = Slot.objects.select_related("practitioner").get(pk=slot_id)
    if (
        not slot.offered_to_patients(now=now, held_for=held_for)
        or Appointment.objects.live().filter(slot=slot).exists()
    ):
        raise SlotUnavailable("taken")
    # Widens the window between the check and the insert, as a slow moment in production would.
    time.sleep(0.02)
    return slot


class UnsafeControlConfig(AppConfig):
    name = "tests.load"
    label = "load_unsafe_control"

    def ready(self):
        from bookings import services

        services._lock_bookable_slot = check_then_book_without_a_lock


INSTALLED_APPS = [*INSTALLED_APPS, "tests.load.unsafe_settings.UnsafeControlConfig"]
