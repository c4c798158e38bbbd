"""Anonymise the personal data whose retention period has ended (settings.RETENTION; bookings/privacy.py).

    python manage.py purge_expired      # daily from cron; the e-mail worker also runs it once a day

Safe to run at any time, twice, or on two machines at once: a second run finds nothing left to do.
"""

from django.core.management.base import BaseCommand
from django.utils import timezone

from bookings.models import PurgeRun
from bookings.privacy import expired_data_purge


class Command(BaseCommand):
    help = "Anonymise appointments, e-mails and call-backs past their retention period; delete old sign-in records."

    def handle(self, **options):
        now = timezone.now()
        counts = expired_data_purge(now=now)
        PurgeRun.objects.create(at=now, counts=counts)
        self.stdout.write(", ".join(f"{kind.replace('_', ' ')}: {count}" for kind, count in counts.items()))
