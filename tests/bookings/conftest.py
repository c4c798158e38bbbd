"""Fixtures the schedule tests share: a day a few days ahead, and Dr Patel working that morning."""

from datetime import time

import pytest
from django.utils import timezone

from bookings.models import WorkingHours
from bookings.schedule import slots_generate
from tests.helpers import days_ahead


@pytest.fixture
def day():
    return days_ahead(3)


@pytest.fixture
def patel_works(dr_patel, day):
    """Dr Patel works 09:00 to 11:00 that day: six slots."""
    WorkingHours.objects.create(practitioner=dr_patel, weekday=day.weekday(), start_time=time(9), end_time=time(11))
    slots_generate(now=timezone.now(), practitioner=dr_patel)
    return dr_patel
