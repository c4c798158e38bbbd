import random
from datetime import datetime, time, timedelta

import holidays
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import BaseCommand, CommandError, call_command
from django.db import transaction
from django.utils import timezone

from articles.models import Article
from bookings.models import (
    MANAGER_GROUP,
    PRACTITIONER_GROUP,
    RECEPTION_GROUP,
    Appointment,
    AppointmentEvent,
    BookingStartCount,
    Practitioner,
    Slot,
    TimeOff,
    UrgentCareCount,
    WorkingHours,
    hash_token,
    new_token,
)
from bookings.phones import phone_key
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
    {"username": "margaret", "first_name": "Margaret", "last_name": "Manager", "group": MANAGER_GROUP},
]


class Command(BaseCommand):
    help = "Load demo practitioners, staff accounts, working hours, slots and the launch articles (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--quiet-logins", action="store_true", help="Do not print the demo logins.")
        parser.add_argument(
            "--history",
            action="store_true",
            help="Also a year of past slots and appointments (for the Insights page); skipped if already there.",
        )

    def handle(self, *args, quiet_logins=False, history=False, **options):
        if not settings.DEBUG:
            raise CommandError("Demo data has known passwords: it is only loaded with DJANGO_DEBUG on.")
        with transaction.atomic():
            created = self._load_people()
            closed = self._close_on_bank_holidays(now=timezone.now())
        self.stdout.write(f"Demo people: {created} created, the rest already there.")
        self.stdout.write(f"Bank holiday closures: {closed} added.")
        self._load_follow_ups()
        if history:
            with transaction.atomic():
                made = load_history(practitioners=list(Practitioner.objects.listed()), now=timezone.now())
            self.stdout.write(f"A year of history: {made} past appointments added.")
        # The Insights page reads daily summaries: rebuilt here so the demo shows today's figures.
        call_command("refresh_insights", stdout=self.stdout)
        if not quiet_logins:
            self.stdout.write(self.style.SUCCESS(f"Demo staff logins (password for all: {DEMO_PASSWORD}):"))
            self.stdout.write("  admin      superuser (Django admin)")
            self.stdout.write("  rita       reception")
            self.stdout.write("  margaret   clinic manager (Insights)")
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


# -- A year of history, for the Insights page -----------------------------------------------------------

HISTORY_NAMES = [
    ("Ada", "Lovelace"),
    ("Alan", "Turing"),
    ("Grace", "Hopper"),
    ("Edsger", "Dijkstra"),
    ("Barbara", "Liskov"),
    ("Donald", "Knuth"),
    ("Frances", "Allen"),
    ("Tony", "Hoare"),
]


def load_history(*, practitioners, now: datetime, weeks: int = 52, seed: int = 2026) -> int:
    """Past slots from each practitioner's working hours over WEEKS weeks, most of them booked weeks or days
    before, then completed, missed or cancelled (by the patient or reception); starts from the articles and
    urgent-care referrals in proportion. Written in bulk, without the services: the past cannot be booked.

    Practitioners who already have slots in the past are left as they are, so a second run adds nothing.
    Returns the number of appointments written.
    """
    rng = random.Random(seed)
    zone = clinic_zone()
    today = now.astimezone(zone).date()
    first_day = today - timedelta(weeks=weeks)
    length = timedelta(minutes=settings.CONSULTATION_MINUTES)
    staff = User.objects.filter(groups__name=RECEPTION_GROUP).first()
    articles = list(Article.objects.published(now=now))
    sources = [value for value in Appointment.Source.values if value != Appointment.Source.ONLINE]
    fresh = [
        p
        for p in practitioners
        if not Slot.objects.filter(practitioner=p, starts_at__lt=local_midnight(today)).exists()
    ]
    hours = {}
    for entry in WorkingHours.objects.filter(practitioner__in=fresh):
        hours.setdefault(entry.practitioner_id, []).append(entry)
    slots = []
    for practitioner in fresh:
        for offset in range((today - first_day).days):
            day = first_day + timedelta(days=offset)
            for entry in hours.get(practitioner.pk, []):
                if not entry.applies_on(day):
                    continue
                start = datetime.combine(day, entry.start_time, tzinfo=zone)
                end = datetime.combine(day, entry.end_time, tzinfo=zone)
                while start + length <= end:
                    blocked = rng.random() < 0.06
                    slots.append(
                        Slot(
                            practitioner=practitioner,
                            starts_at=start,
                            ends_at=start + length,
                            state=Slot.State.BLOCKED if blocked else Slot.State.OPEN,
                            blocked_reason="Meeting" if blocked else "",
                        )
                    )
                    start += length
    Slot.objects.bulk_create(slots, batch_size=5000)
    appointments, cancelled_by_patient = [], []
    starts, urgent = {}, {}
    for slot in slots:
        if slot.state != Slot.State.OPEN or rng.random() > 0.72:
            continue
        created_at = slot.starts_at - timedelta(days=min(rng.expovariate(1 / 6), 60), hours=rng.uniform(0, 8))
        online = rng.random() < 0.68 or not sources
        article = rng.choice(articles) if online and articles and rng.random() < 0.55 else None
        outcome = rng.random()
        if outcome < 0.80:
            status = Appointment.Status.COMPLETED
        elif outcome < 0.87:
            status = Appointment.Status.NO_SHOW
        else:
            status = Appointment.Status.CANCELLED
        first_name, last_name = rng.choice(HISTORY_NAMES)
        phone = f"07700 900{rng.randrange(1000):03d}"
        cancelled_at = created_at + (slot.starts_at - created_at) * rng.uniform(0.2, 0.95)
        appointments.append(
            Appointment(
                slot=slot,
                status=status,
                source=Appointment.Source.ONLINE if online else rng.choice(sources),
                source_article=article,
                first_name=first_name,
                last_name=last_name,
                phone=phone,
                phone_normalised=phone_key(phone),
                manage_token_hash=hash_token(new_token()),
                booked_by=None if online else staff,
                created_at=created_at,
                updated_at=created_at,
                cancelled_at=cancelled_at if status == Appointment.Status.CANCELLED else None,
                privacy_notice_version=settings.PRIVACY_NOTICE_VERSION,
            )
        )
        if status == Appointment.Status.CANCELLED:
            cancelled_by_patient.append(rng.random() < 0.7)
        if article:
            # A few people open the check from the article for each one who books.
            key = (article.pk, created_at.astimezone(zone).date())
            starts[key] = starts.get(key, 0) + rng.randint(1, 4)
        if rng.random() < 0.03:
            day = created_at.astimezone(zone).date()
            urgent[day] = urgent.get(day, 0) + 1
    Appointment.objects.bulk_create(appointments, batch_size=5000)
    cancelled = [a for a in appointments if a.status == Appointment.Status.CANCELLED]
    AppointmentEvent.objects.bulk_create(
        [
            AppointmentEvent(
                appointment=a,
                at=a.cancelled_at,
                actor=None if by_patient else staff,
                actor_label="patient" if by_patient or not staff else staff.get_username(),
                action=AppointmentEvent.Action.CANCELLED,
                from_value="Booked",
                to_value="Cancelled",
            )
            for a, by_patient in zip(cancelled, cancelled_by_patient, strict=True)
        ],
        batch_size=5000,
    )
    for (article_id, day), count in starts.items():
        row, _ = BookingStartCount.objects.get_or_create(article_id=article_id, day=day, defaults={"count": 0})
        BookingStartCount.objects.filter(pk=row.pk).update(count=row.count + count)
    for day, count in urgent.items():
        row, _ = UrgentCareCount.objects.get_or_create(day=day, defaults={"count": 0})
        UrgentCareCount.objects.filter(pk=row.pk).update(count=row.count + count)
    return len(appointments)
