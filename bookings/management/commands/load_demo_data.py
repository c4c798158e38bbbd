from datetime import time, timedelta

import holidays
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import BaseCommand, CommandError, call_command
from django.db import transaction
from django.utils import timezone

from bookings.models import PRACTITIONER_GROUP, RECEPTION_GROUP, Practitioner, TimeOff, WorkingHours
from bookings.schedule import clinic_zone, local_midnight
from clinic.models import TwoFactorExemption

# Demo credentials exist only here, and the command refuses to run with debug off.
DEMO_PASSWORD = "clinic-demo-2026"  # noqa: S105 - demo data only, refused with debug off

PRACTITIONERS = [
    {
        "username": "dr.patel",
        "first_name": "Priya",
        "last_name": "Patel",
        "title": "Dr",
        "display_name": "Priya Patel",
        "profession": "Consultant Physiotherapist (DPT)",
        "bio": "Priya leads the clinic's hip and lower-back service and has treated back pain for fifteen years.",
        # Monday to Friday, with a lunch break.
        "hours": [(day, time(9, 0), time(12, 40)) for day in range(5)]
        + [(day, time(13, 40), time(17, 0)) for day in range(5)],
    },
    {
        "username": "dr.okafor",
        "first_name": "Chidi",
        "last_name": "Okafor",
        "title": "Dr",
        "display_name": "Chidi Okafor",
        "profession": "Musculoskeletal Physiotherapist (PhD)",
        "bio": "Chidi specialises in hip problems in runners and in people returning to sport.",
        "hours": [(day, time(8, 30), time(13, 30)) for day in (0, 2, 4)]
        + [(day, time(12, 0), time(18, 0)) for day in (1, 3)],
    },
    {
        "username": "sam.lee",
        "first_name": "Sam",
        "last_name": "Lee",
        "title": "",
        "display_name": "Sam Lee",
        "profession": "Chartered Physiotherapist",
        "bio": "Sam runs the clinic's exercise classes and helps patients build strength after a flare-up.",
        # Monday to Friday, like the clinic's published opening hours.
        "hours": [(day, time(10, 0), time(16, 0)) for day in range(5)],
    },
]

STAFF = [
    {"username": "rita", "first_name": "Rita", "last_name": "Reception", "group": RECEPTION_GROUP},
]


class Command(BaseCommand):
    help = "Load demo practitioners, staff accounts, working hours, slots and the launch articles (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--quiet-logins", action="store_true", help="Do not print the demo logins.")

    def handle(self, *args, quiet_logins=False, **options):
        if not settings.DEBUG:
            raise CommandError("Demo data has known passwords: it is only loaded with DJANGO_DEBUG on.")
        with transaction.atomic():
            created = self._load_people()
            closed = self._close_on_bank_holidays(now=timezone.now())
        self.stdout.write(f"Demo people: {created} created, the rest already there.")
        self.stdout.write(f"Bank holiday closures: {closed} added.")
        self._load_follow_ups()
        if not quiet_logins:
            self.stdout.write(self.style.SUCCESS(f"Demo staff logins (password for all: {DEMO_PASSWORD}):"))
            self.stdout.write("  admin      superuser (Django admin)")
            self.stdout.write("  rita       reception")
            for person in PRACTITIONERS:
                self.stdout.write(f"  {person['username']:<10} practitioner")
            self.stdout.write(
                "  They skip the authenticator code while DJANGO_DEBUG is on (a demo exemption); "
                "set one up at /staff/two-factor/setup/ to try it."
            )

    def _close_on_bank_holidays(self, *, now) -> int:
        """The demo clinic, like most English clinics, is closed on England's bank holidays within the booking
        horizon: whole-clinic closures that reception can see and remove (a real clinic enters its own)."""
        today = now.astimezone(clinic_zone()).date()
        last = today + timedelta(days=settings.BOOKING_HORIZON_DAYS)
        england = holidays.country_holidays("GB", subdiv="ENG", years=range(today.year, last.year + 1))
        added = 0
        for day, name in sorted(england.items()):
            if today <= day <= last:
                _, created = TimeOff.objects.get_or_create(
                    practitioner=None,
                    starts_at=local_midnight(day),
                    ends_at=local_midnight(day + timedelta(days=1)),
                    defaults={"reason": f"Bank holiday: {name}"[:200]},
                )
                added += created
        return added

    def _load_follow_ups(self):
        """Slots and articles come from their own commands, which are idempotent too."""
        from django.core.management import get_commands

        commands = get_commands()
        if "generate_slots" in commands:
            call_command("generate_slots", stdout=self.stdout)
        if "import_articles" in commands:
            call_command("import_articles", "--launch-content", stdout=self.stdout)

    def _user(self, username, *, first_name="", last_name="", group=None, superuser=False):
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first_name,
                "last_name": last_name,
                "is_staff": superuser,
                "is_superuser": superuser,
                "email": f"{username}@example.org",
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        # The demo accounts may sign in without a second factor; honoured only with DJANGO_DEBUG on (README).
        TwoFactorExemption.objects.get_or_create(user=user)
        if group:
            user.groups.add(Group.objects.get(name=group))
        return user, created

    def _load_people(self) -> int:
        created_count = 0
        _, created = self._user("admin", first_name="Site", last_name="Admin", superuser=True)
        created_count += created
        for person in STAFF:
            _, created = self._user(
                person["username"],
                first_name=person["first_name"],
                last_name=person["last_name"],
                group=person["group"],
            )
            created_count += created
        for order, person in enumerate(PRACTITIONERS):
            user, created = self._user(
                person["username"],
                first_name=person["first_name"],
                last_name=person["last_name"],
                group=PRACTITIONER_GROUP,
            )
            created_count += created
            practitioner, created = Practitioner.objects.get_or_create(
                user=user,
                defaults={
                    "display_name": person["display_name"],
                    "title": person["title"],
                    "profession": person["profession"],
                    "bio": person["bio"],
                    "list_order": order,
                },
            )
            created_count += created
            if not practitioner.working_hours.exists():
                WorkingHours.objects.bulk_create(
                    WorkingHours(practitioner=practitioner, weekday=day, start_time=start, end_time=end)
                    for day, start, end in person["hours"]
                )
        return created_count
