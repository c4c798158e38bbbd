import time

from django.core.management import BaseCommand
from django.utils import timezone

from bookings.services import insights_refresh


class Command(BaseCommand):
    help = "Rebuild the Insights page's daily summaries from the appointments and slots (run it hourly or nightly)."

    def handle(self, *args, **options):
        started = time.monotonic()
        insights_refresh(now=timezone.now())
        self.stdout.write(f"Insights figures rebuilt in {time.monotonic() - started:.1f} s.")
