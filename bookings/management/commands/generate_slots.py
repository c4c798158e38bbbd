from django.core.management import BaseCommand
from django.utils import timezone

from bookings.schedule import clinic_zone, slots_generate


class Command(BaseCommand):
    help = "Fill the rolling booking horizon with slots from working hours minus time off (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help="Days ahead to fill (default: the booking horizon).")

    def handle(self, *args, days=None, **options):
        report = slots_generate(now=timezone.now(), days=days)
        self.stdout.write(f"Slots: {report.created} created, {report.removed} removed.")
        zone = clinic_zone()
        for slot in report.conflicts:
            self.stdout.write(
                self.style.WARNING(
                    f"  Booked slot outside working hours or in time off, left in place: "
                    f"{slot.practitioner} {slot.starts_at.astimezone(zone):%a %d %b %Y %H:%M}"
                )
            )
