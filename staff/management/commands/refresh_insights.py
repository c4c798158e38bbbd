import time

from django.core.management import BaseCommand
from django.utils import timezone

from staff.views import insights_refresh_and_draw


class Command(BaseCommand):
    help = "Rebuild the Insights summaries and draw the 4, 12 and 52 weeks pages (run it hourly or nightly)."

    def handle(self, *args, **options):
        started = time.monotonic()
        insights_refresh_and_draw(now=timezone.now())
        self.stdout.write(f"Insights figures rebuilt in {time.monotonic() - started:.1f} s.")
