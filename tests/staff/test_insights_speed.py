"""The Insights page over a year of history at 50 practitioners: rendered in at most 100 ms in-process.

Slow (it writes a year of a 50-practitioner clinic: about 270,000 slots): run on its own.
"""

import statistics
import time
from datetime import time as clock

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bookings.management.commands.load_demo_data import load_history
from bookings.models import Appointment, Practitioner, Slot, WorkingHours
from tests.staff_signin import verified_login

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

PRACTITIONERS = 50
CEILING_SECONDS = 0.100


@pytest.fixture
def a_year_at_fifty_practitioners(margaret):
    from io import StringIO

    call_command("import_articles", "--launch-content", stdout=StringIO())
    for number in range(PRACTITIONERS):
        user = User.objects.create_user(f"practitioner{number}")
        practitioner = Practitioner.objects.create(
            user=user, display_name=f"Practitioner {number}", profession="Physio"
        )
        WorkingHours.objects.bulk_create(
            WorkingHours(practitioner=practitioner, weekday=day, start_time=start, end_time=end)
            for day in range(5)
            for start, end in [(clock(9), clock(12, 40)), (clock(13, 40), clock(17))]
        )
    load_history(practitioners=list(Practitioner.objects.all()), now=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def test_a_year_at_fifty_practitioners_renders_in_at_most_100_ms(a_year_at_fifty_practitioners, margaret, capsys):
    client = Client()
    verified_login(client, margaret)
    url = f"{reverse('insights')}?weeks=52"
    assert client.get(url).status_code == 200  # warm: templates compiled, connection open
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        response = client.get(url)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200

    median = statistics.median(timings)
    with capsys.disabled():
        print(
            f"\nInsights, 52 weeks, {PRACTITIONERS} practitioners, {Slot.objects.count()} slots, "
            f"{Appointment.objects.count()} appointments: median {median * 1000:.0f} ms "
            f"(runs: {', '.join(f'{t * 1000:.0f}' for t in timings)} ms)"
        )
    assert median <= CEILING_SECONDS
