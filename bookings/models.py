import base64
import hashlib
import secrets
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import ArrayField, RangeBoundary, RangeOperators
from django.contrib.postgres.indexes import GinIndex
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, Count, Exists, F, Func, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Lower
from django.db.models.lookups import Exact
from django.utils.crypto import salted_hmac
from django.utils.timezone import localtime

from bookings.phones import phone_key, phone_search

RECEPTION_GROUP = "Reception"
PRACTITIONER_GROUP = "Practitioner"


def new_token() -> str:
    """A URL-safe random token of 256 bits."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def manage_token_for_submission(submission_key, browser_secret: str) -> str:
    """The manage-link token of an online booking, derived so that the browser that sent it can be shown it again.

    An HMAC (keyed by SECRET_KEY) of the form's one-time submission key and a random secret kept in that
    browser's signed booking cookie: 256 bits nobody can work out without all three. A repeated
    submission from the same browser (a double click whose second request left before the first's
    answer set its cookie) derives the same token, which matches the booking's stored hash; from any
    other browser it does not, and nothing about the booking is shown.
    """
    digest = salted_hmac("bookings.manage_token", f"{submission_key}:{browser_secret}", algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class TsTzRange(Func):
    function = "TSTZRANGE"
    output_field = models.DateTimeField()


class PractitionerQuerySet(models.QuerySet):
    def listed(self):
        return self.filter(is_active=True).order_by("list_order", "display_name")

    def offering_consultations(self):
        return self.listed().filter(offers_free_consultation=True)


class Practitioner(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="practitioner"
    )
    display_name = models.CharField(max_length=120)
    title = models.CharField(max_length=40, blank=True, help_text="For example Dr, or leave blank.")
    profession = models.CharField(max_length=120, help_text="For example Chartered Physiotherapist.")
    bio = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    offers_free_consultation = models.BooleanField(default=True)
    list_order = models.PositiveSmallIntegerField(default=0)
    calendar_token_hash = models.CharField(max_length=64, blank=True, editable=False)

    objects = PractitionerQuerySet.as_manager()

    class Meta:
        ordering = ["list_order", "display_name"]

    def __str__(self):
        return self.full_name

    @property
    def full_name(self) -> str:
        return practitioner_full_name(self.title, self.display_name)

    @property
    def offers_consultations_online(self) -> bool:
        """Whether this practitioner is among PractitionerQuerySet.offering_consultations: patients may book them."""
        return self.is_active and self.offers_free_consultation


def practitioner_full_name(title: str, display_name: str) -> str:
    """ "Dr Maya Patel", or the name alone without a title (also for rows read without a model instance)."""
    return f"{title} {display_name}".strip()


def working_periods_overlap(one: dict, other: dict) -> bool:
    """Whether two working-hours periods (as form data: weekday, start_time, end_time, valid_from,
    valid_until) overlap: the same weekday, crossing times and crossing date ranges. They would lay
    out overlapping slots, which the database refuses; every form that edits hours asks this first."""
    if one["weekday"] != other["weekday"]:
        return False
    if not (one["start_time"] < other["end_time"] and other["start_time"] < one["end_time"]):
        return False
    earliest, latest = date.min, date.max
    return (one.get("valid_from") or earliest) <= (other.get("valid_until") or latest) and (
        other.get("valid_from") or earliest
    ) <= (one.get("valid_until") or latest)


def first_overlapping_periods(periods: list[dict]) -> tuple[dict, dict] | None:
    """The first two of PERIODS (edited together in one form) that overlap, or None."""
    for index, one in enumerate(periods):
        for other in periods[index + 1 :]:
            if working_periods_overlap(one, other):
                return one, other
    return None


class WorkingHours(models.Model):
    """One period of one weekday (a lunch break is simply two periods), in clinic local time."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0
        TUESDAY = 1
        WEDNESDAY = 2
        THURSDAY = 3
        FRIDAY = 4
        SATURDAY = 5
        SUNDAY = 6

    practitioner = models.ForeignKey(Practitioner, on_delete=models.CASCADE, related_name="working_hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start_time = models.TimeField()
    end_time = models.TimeField()
    valid_from = models.DateField(null=True, blank=True, help_text="First day this pattern applies (optional).")
    valid_until = models.DateField(null=True, blank=True, help_text="Last day this pattern applies (optional).")

    class Meta:
        ordering = ["practitioner", "weekday", "start_time"]
        verbose_name_plural = "working hours"
        constraints = [
            # The messages are what a form shows (ModelForm checks these constraints), in the clinic's words.
            models.CheckConstraint(
                condition=Q(end_time__gt=F("start_time")),
                name="working_hours_end_after_start",
                violation_error_message="The period must end after it starts.",
            ),
            models.CheckConstraint(
                condition=Q(weekday__gte=0, weekday__lte=6),
                name="working_hours_weekday_valid",
                violation_error_message="Choose a day of the week, Monday to Sunday.",
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_until__gte=F("valid_from")),
                name="working_hours_valid_range",
                violation_error_message="'Valid until' is before 'valid from'.",
            ),
        ]

    def __str__(self):
        return f"{self.practitioner}: {self.get_weekday_display()} {self.start_time:%H:%M}-{self.end_time:%H:%M}"

    def applies_on(self, day) -> bool:
        return (
            day.weekday() == self.weekday
            and (self.valid_from is None or day >= self.valid_from)
            and (self.valid_until is None or day <= self.valid_until)
        )


class TimeOff(models.Model):
    """Time a practitioner is away, or, with no practitioner, a clinic closure (bank holiday)."""

    practitioner = models.ForeignKey(
        Practitioner,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="time_off",
        help_text="Leave empty for a clinic-wide closure.",
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True, help_text="Visible to staff only.")

    class Meta:
        ordering = ["starts_at"]
        verbose_name_plural = "time off"
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")),
                name="time_off_end_after_start",
                violation_error_message="It must end after it starts: check the dates and times.",
            ),
        ]

    def __str__(self):
        who = self.practitioner or "Whole clinic"
        return f"{who}: {localtime(self.starts_at):%Y-%m-%d %H:%M} to {localtime(self.ends_at):%Y-%m-%d %H:%M}"


def bookable_window(now: datetime) -> tuple[datetime, datetime]:
    """[earliest, latest): the start times a patient may book at NOW (minimum notice, booking horizon)."""
    return now + settings.BOOKING_MIN_NOTICE, now + timedelta(days=settings.BOOKING_HORIZON_DAYS)


def bookable_bounds(now: datetime, *, start: datetime | None = None, end: datetime | None = None):
    """[earliest, latest): the patients' window at NOW, narrowed to [start, end) when given."""
    earliest, latest = bookable_window(now)
    if start is not None:
        earliest = max(earliest, start)
    if end is not None:
        latest = min(latest, end)
    return earliest, latest


class SlotQuerySet(models.QuerySet):
    def bookable(self, *, now: datetime, start: datetime | None = None, end: datetime | None = None, practitioner=None):
        """The one definition of a slot a patient may book.

        Open, not booked, starting at least BOOKING_MIN_NOTICE after `now` and within the
        booking horizon, with an active practitioner who offers the free consultation.
        Optionally limited to [start, end) and to one practitioner.
        """
        earliest, latest = bookable_bounds(now, start=start, end=end)
        return self.bookable_between(now=now, earliest=earliest, latest=latest, practitioner=practitioner)

    def bookable_between(self, *, now: datetime, earliest: datetime, latest: datetime, practitioner=None):
        """bookable() for start times in [earliest, latest), which `bookable_bounds` worked out.

        Apart so that a statement compiled once (views.slot_picker_context) takes the bounds as values.
        """
        # Not booked: `taken`, which PostgreSQL keeps equal to "has a live appointment" (Slot.taken).
        slots = self.filter(
            state=Slot.State.OPEN,
            taken=False,
            starts_at__gte=earliest,
            starts_at__lt=latest,
            practitioner__is_active=True,
            practitioner__offers_free_consultation=True,
        )
        # Held for the people a waiting-list offer went to (WaitingListOffer), until they accept or the hold ends.
        slots = slots.exclude(Exists(WaitingListOffer.objects.holding(now=now).filter(slot=OuterRef("pk"))))
        if practitioner is not None:
            slots = slots.filter(practitioner=practitioner)
        return slots.order_by("starts_at", "practitioner__list_order", "practitioner_id")

    def staff_bookable(self, *, now: datetime):
        """Slots reception may book a caller into or move someone to: open, free and still ahead.

        Reception may book inside the patients' minimum notice (the service allows it), so this is
        wider than `bookable`; the service re-checks under a lock either way.
        """
        return (
            self.filter(state=Slot.State.OPEN, starts_at__gt=now, practitioner__is_active=True)
            .exclude(Exists(Appointment.objects.live().filter(slot=OuterRef("pk"))))
            .select_related("practitioner")
            .order_by("starts_at", "practitioner__list_order", "practitioner_id")
        )


class SlotState(models.TextChoices):
    OPEN = "open", "Open"
    BLOCKED = "blocked", "Blocked by reception"
    # No longer in working hours, but kept because a cancelled appointment points to it.
    RETIRED = "retired", "No longer offered"


class Slot(models.Model):
    State = SlotState

    practitioner = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="slots")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    blocked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    blocked_reason = models.CharField(max_length=200, blank=True)
    # Whether a live appointment holds the slot: kept by PostgreSQL (migration 0026's triggers), whoever writes the
    # appointment or the slot, so that the patients' availability reads it from the start-time index instead of
    # looking up every slot's appointments (most of a week's cost). The appointments stay the truth: the booking
    # decides on them under its lock, and the unique index on live appointments is the backstop.
    taken = models.BooleanField(default=False, db_default=False, editable=False)

    objects = SlotQuerySet.as_manager()

    class Meta:
        ordering = ["starts_at", "practitioner"]
        indexes = [
            # The availability query: open slots in a time window, across practitioners. With the slot, its
            # practitioner and whether it is taken in the index, a week for "any practitioner" (6,750 slots at 50
            # practitioners) is read from the index alone, not from the table's pages or the appointments as well.
            models.Index(
                fields=["starts_at"],
                include=["practitioner", "id", "taken"],
                condition=Q(state=SlotState.OPEN),
                name="slot_open_starts_at_idx",
            ),
            # Reception's calendar shows open and blocked slots (staff.views._calendar_slots, and the appointments
            # on them): it reads a day from this index and the one above. Without it each day view read the whole
            # slot table. Partial, not on every slot: a plain index on start times would compete with the one
            # above for the patients' availability, which must read open slots from the index alone.
            models.Index(fields=["starts_at"], condition=Q(state=SlotState.BLOCKED), name="slot_blocked_starts_at_idx"),
        ]
        constraints = [
            # The messages are what an admin form shows, in the clinic's words.
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")),
                name="slot_end_after_start",
                violation_error_message="The slot must end after it starts.",
            ),
            ExclusionConstraint(
                name="slot_no_overlap_per_practitioner",
                violation_error_message="This practitioner already has a slot that overlaps this time.",
                expressions=[
                    (TsTzRange("starts_at", "ends_at", RangeBoundary()), RangeOperators.OVERLAPS),
                    ("practitioner", RangeOperators.EQUAL),
                ],
                condition=~Q(state=SlotState.RETIRED),
            ),
            models.CheckConstraint(
                condition=Q(state__in=list(SlotState)),
                name="slot_state_valid",
                violation_error_message="Choose open, blocked or retired.",
            ),
        ]

    def __str__(self):
        # Clinic time, not UTC: 09:00 in June is stored as 08:00.
        return f"{self.practitioner} {localtime(self.starts_at):%Y-%m-%d %H:%M}"

    def offered_to_patients(self, *, now: datetime, held_for=None, held: bool | None = None) -> bool:
        """SlotQuerySet.bookable()'s rule for this one slot, except "not booked yet".

        A slot held by waiting-list offers is offered only through one of them (`held_for`, the offer accepted).
        HELD: whether it is held (`held_by_others`), when the caller has read that already; None reads it here.

        For the booking itself, on the locked row: whether the slot already has a live appointment
        is read after the lock (services._lock_bookable_slot), with the partial unique index as the
        backstop. Kept next to bookable(); tests/bookings/test_schedule_availability.py checks that
        the two agree.
        """
        earliest, latest = bookable_window(now)
        return (
            self.state == Slot.State.OPEN
            and earliest <= self.starts_at < latest
            and self.practitioner.is_active
            and self.practitioner.offers_free_consultation
            and not (held if held is not None else Slot.held_by_others(now=now, held_for=held_for, slot=self).exists())
        )

    @staticmethod
    def held_by_others(*, now: datetime, held_for=None, slot=None):
        """The offers holding SLOT (a slot, or an OuterRef to one) at NOW, other than HELD_FOR's batch."""
        return (
            WaitingListOffer.objects.holding(now=now)
            .filter(slot=slot)
            .exclude(batch=held_for.batch if held_for else None)
        )


# Apostrophes a name may be typed with (typographic, modifier letter, prime, grave, acute), all
# searched as the plain one: "O’Connor" from a phone's keyboard finds "O'Connor" typed at a desk.
APOSTROPHES = "\u2019\u2018\u02bc\u201b\u2032\u0060\u00b4"
PLAIN_APOSTROPHES = "'" * len(APOSTROPHES)


def fold_for_search(expression):
    """A name as reception's search compares it, in SQL: accents gone (PostgreSQL's unaccent: "Zoë Müller" is
    "Zoe Muller") and every apostrophe made plain ("O’Connor" from a phone's keyboard is "O'Connor")."""
    unaccented = Func(expression, function="unaccent")
    return Func(unaccented, Value(APOSTROPHES), Value(PLAIN_APOSTROPHES), function="translate")


class AppointmentQuerySet(models.QuerySet):
    def live(self):
        return self.exclude(status=Appointment.Status.CANCELLED)

    def upcoming(self, *, now: datetime):
        return self.live().filter(slot__starts_at__gte=now)

    def for_practitioner(self, practitioner):
        return self.filter(slot__practitioner=practitioner)

    def by_manage_token(self, token: str):
        """The appointment behind a manage link: the token it was booked with, or one a later e-mail carried."""
        token_hash = hash_token(token)
        issued_later = ManageLinkToken.objects.filter(token_hash=token_hash).values("appointment_id")
        return self.filter(Q(manage_token_hash=token_hash) | Q(pk__in=Subquery(issued_later)))

    def with_patient_keys(self):
        """Annotate the keys that identify a patient: e-mail in lower case, normalised phone, names in lower case."""
        return self.annotate(
            email_key=Lower("email"),
            phone_key=F("phone_normalised"),
            first_name_key=Lower("first_name"),
            last_name_key=Lower("last_name"),
        )

    def matching(self, query: str):
        """Appointments by patient name (any part, or "first last"), e-mail or phone (bookings.phones.phone_search).

        Names are compared with accents and apostrophes folded on both sides (fold_for_search).
        """
        query = query.strip()
        name = fold_for_search(Value(query))
        match = (
            Q(first_name_folded__icontains=name)
            | Q(last_name_folded__icontains=name)
            | Q(email__icontains=query)
            | Q(full_name__icontains=name)
        )
        # By the normalised number: +44 7700 900123, 07700 900123 and 0044 7700 900123 are one number.
        phone = phone_search(query)
        if phone is not None:
            lookup, value = phone
            match |= Q(**{f"phone_normalised__{lookup}": value})
        return (
            self.annotate(
                first_name_folded=fold_for_search(F("first_name")),
                last_name_folded=fold_for_search(F("last_name")),
                full_name=Func(F("first_name_folded"), Value(" "), F("last_name_folded"), function="CONCAT"),
            )
            .filter(match)
            .select_related("slot__practitioner")
            .order_by("-slot__starts_at")
        )

    def same_patient_as(self, appointment):
        """The appointments of the patient of `appointment` (itself included), by the one rule below."""
        return self.with_patient_keys().filter(
            same_patient(
                email=Value(appointment.email),
                phone=Value(appointment.phone_normalised),
                first_name=Value(appointment.first_name),
                last_name=Value(appointment.last_name),
            )
        )

    def with_upcoming_for_patient(self, *, now: datetime):
        """Annotate `upcoming_for_patient`: the patient's upcoming live consultations, this one included.

        A correlated subquery, so it adds no query. Reception sees a flag when it is above
        one, instead of the public pages refusing a second booking, which would tell anyone
        that an address has booked at the clinic.
        """
        same_patient_upcoming = (
            Appointment.objects.upcoming(now=now)
            .with_patient_keys()
            .filter(
                same_patient(
                    email=OuterRef("email"),
                    phone=OuterRef("phone_normalised"),
                    first_name=OuterRef("first_name"),
                    last_name=OuterRef("last_name"),
                )
            )
            .order_by()
            .values(total=Func(F("pk"), function="COUNT"))
        )
        return self.annotate(upcoming_for_patient=Subquery(same_patient_upcoming, output_field=models.IntegerField()))

    def with_burst_counts(self):
        """Annotate the two marks of one client filling the diary, among online bookings made within
        BURST_WINDOW either side of each one (itself included; a phone booking is never flagged):
        `bookings_from_same_place`, from its address (by the keyed hash), and `bookings_with_same_note`,
        with the same note (any case, not empty), however many addresses they came from.

        Correlated subqueries, so they add no query. Reception's calendar flags a burst (BURST_FLAG_AT or more).
        """
        nearby = (
            Appointment.objects.filter(
                created_at__gte=OuterRef("created_at") - BURST_WINDOW,
                created_at__lte=OuterRef("created_at") + BURST_WINDOW,
            )
            .exclude(client_key="")
            .order_by()
        )
        count = Func(F("pk"), function="COUNT")
        same_place = nearby.filter(client_key=OuterRef("client_key")).values(total=count)
        same_note = (
            nearby.annotate(note_key=Lower("note"))
            .filter(note_key=Lower(OuterRef("note")), note_key__gt="")
            .values(total=count)
        )
        return self.annotate(
            bookings_from_same_place=Subquery(same_place, output_field=models.IntegerField()),
            # Without a note there is nothing to compare: no subquery (it would read every booking of the hour).
            bookings_with_same_note=Case(
                When(note="", then=Value(0)),
                default=Subquery(same_note, output_field=models.IntegerField()),
                output_field=models.IntegerField(),
            ),
        )


# A burst: this many online bookings or more, from one address or with one note, within an hour of each other.
BURST_WINDOW = timedelta(hours=1)
BURST_FLAG_AT = 3


def same_patient(*, email, phone, first_name, last_name) -> Q:
    """The one rule of "the same patient", on rows annotated by `with_patient_keys`.

    The same e-mail (any case), or the same phone number (normalised: 07700 900123 is
    +44 7700 900123) and the same first and last name: a household sharing a landline is not one patient.
    """
    return Q(email_key=Lower(email), email_key__gt="") | Q(
        phone_key=phone,
        phone_key__gt="",
        first_name_key=Lower(first_name),
        last_name_key=Lower(last_name),
    )


def phone_contact_key(phone: str) -> str:
    """How two phone numbers compare for the per-contact booking limit: by their normalised form
    (bookings.phones.phone_key), so 07700 900123 and +44 7700 900123 are one number."""
    from bookings.phones import phone_key

    return phone_key(phone)


def same_phone_number(phone: str) -> Q:
    """A condition on appointments: booked with this phone number (compared as `phone_contact_key` says)."""
    return same_phone_key(phone_contact_key(phone))


def same_phone_key(key: str) -> Q:
    """`same_phone_number` for a number already made its `phone_contact_key`."""
    return Q(phone_normalised=key) & ~Q(phone_normalised="")


def same_email_address(email: str) -> Q:
    """A condition on appointments: booked with this e-mail address, in any case.

    LOWER() = LOWER(), as `same_patient` compares them, so that appointment_email_lower_idx finds the rows.
    """
    return Q(Exact(Lower("email"), Lower(Value(email)))) & ~Q(email="")


class AppointmentStatus(models.TextChoices):
    BOOKED = "booked", "Booked"
    ARRIVED = "arrived", "Arrived"
    COMPLETED = "completed", "Completed"
    NO_SHOW = "no_show", "Did not attend"
    CANCELLED = "cancelled", "Cancelled"


class Appointment(models.Model):
    Status = AppointmentStatus

    class Source(models.TextChoices):
        ONLINE = "online", "Online"
        PHONE = "phone", "Phone"
        # Booked by another system through /api/v1/ (api/), with an API key.
        API = "api", "API"
        WAITING_LIST = "waitlist", "Waiting list"

    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="appointments")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.BOOKED)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.ONLINE)
    source_article = models.ForeignKey(
        "articles.Article", null=True, blank=True, on_delete=models.SET_NULL, related_name="appointments"
    )
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)
    email = models.EmailField(blank=True)
    # As typed (tidied), for display and dialling; `phone_normalised` (bookings.phones, set on every
    # save) is what search and matching use. Its database default lets plain-SQL inserts (the load
    # tests, bench/) leave it out.
    phone = models.CharField(max_length=32)
    phone_normalised = models.CharField(max_length=32, blank=True, editable=False, db_default="")
    note = models.TextField(blank=True, max_length=1000)
    safety_answers = models.JSONField(default=dict, blank=True)
    privacy_notice_version = models.CharField(max_length=20, blank=True)
    # Unique through Meta.constraints: a unique CharField also gets a LIKE index on PostgreSQL, which an
    # equality lookup never uses and every booking would pay for.
    manage_token_hash = models.CharField(max_length=64, editable=False)
    # The hidden per-form key: a double click or a back-and-resubmit finds the first booking.
    submission_key = models.UUIDField(null=True, blank=True, unique=True, editable=False)
    # Bumped on every change the patient's calendar must follow (.ics SEQUENCE).
    sequence = models.PositiveIntegerField(default=0)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=300, blank=True)
    # Online bookings: a keyed hash of the address the booking came from (clinic.ratelimit.client_address_key),
    # never the address itself, so that reception sees many bookings from one place (a burst) on the day view.
    # A database default too, so that rows written by plain SQL (tests, benchmarks) need not name it.
    client_key = models.CharField(max_length=64, blank=True, default="", db_default="", editable=False)
    # Under UK GDPR (bookings/privacy.py): when the patient's details were erased (the row, its slot and its
    # history's actions stay), and when an erasure was asked for that waits for an e-mail still to be sent.
    anonymised_at = models.DateTimeField(null=True, blank=True, editable=False)
    erasure_requested_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = AppointmentQuerySet.as_manager()

    class Meta:
        ordering = ["slot__starts_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["slot"],
                condition=~Q(status=AppointmentStatus.CANCELLED),
                name="appointment_one_live_per_slot",
            ),
            models.UniqueConstraint(fields=["manage_token_hash"], name="appointment_manage_token_hash_unique"),
            models.CheckConstraint(
                condition=Q(status__in=list(AppointmentStatus)),
                name="appointment_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status=AppointmentStatus.CANCELLED, cancelled_at__isnull=False)
                | ~Q(status=AppointmentStatus.CANCELLED),
                name="appointment_cancelled_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["email"], name="appointment_email_idx"),
            models.Index(fields=["phone_normalised"], name="appointment_phone_norm_idx"),
            models.Index(
                fields=["client_key", "created_at"], condition=~Q(client_key=""), name="appointment_client_key_idx"
            ),
            # The e-mail worker's look for erasures waiting on their last e-mail (bookings.privacy): on every
            # loop, so only those rows are indexed.
            models.Index(
                fields=["erasure_requested_at"],
                condition=Q(erasure_requested_at__isnull=False),
                name="appointment_erasure_wait_idx",
            ),
            # E-mail addresses in any case (same_email_address, same_patient: LOWER() = LOWER()): without it the
            # online booking's per-contact count read every upcoming appointment (30 ms at 6,000), and reception's
            # day view every upcoming appointment for each one it shows (with_upcoming_for_patient).
            models.Index(Lower("email"), name="appointment_email_lower_idx"),
            # The burst flag's "same note" (with_burst_counts): the notes equal in any case, within the hour.
            models.Index(Lower("note"), "created_at", name="appointment_note_created_idx"),
        ]

    def __str__(self):
        return f"Appointment {self.pk} ({self.get_status_display()})"

    def save(self, *args, **kwargs):
        _keep_phone_normalised(self, kwargs)
        super().save(*args, **kwargs)

    @property
    def in_a_burst(self) -> bool:
        """One of many online bookings from one place, or with one note, in a short time (`with_burst_counts`)."""
        if not self.client_key:
            return False
        counts = (getattr(self, "bookings_from_same_place", 0), getattr(self, "bookings_with_same_note", 0))
        return max(count or 0 for count in counts) >= BURST_FLAG_AT

    @property
    def burst_label(self) -> str:
        """What reception's calendar says of a burst ("3 from one place"), or "" when there is none."""
        if not self.in_a_burst:
            return ""
        if (self.bookings_from_same_place or 0) >= (self.bookings_with_same_note or 0):
            return f"{self.bookings_from_same_place} from one place"
        return f"{self.bookings_with_same_note} with one note"

    @property
    def patient_name(self) -> str:
        if self.anonymised_at is not None:
            return "(details erased)"
        return f"{self.first_name} {self.last_name}"

    @property
    def patient_initials(self) -> str:
        return f"{self.first_name[:1]}{self.last_name[:1]}".upper()

    @property
    def is_live(self) -> bool:
        return self.status != self.Status.CANCELLED

    # Patients often come early: reception may note an arrival from this long before the start.
    ARRIVAL_NOTED_FROM = timedelta(minutes=30)

    def attendance_can_be_recorded(self, *, now: datetime, status: str = Status.ARRIVED) -> bool:
        """Whether STATUS may be recorded at NOW: arrived from ARRIVAL_NOTED_FROM before the start,
        completed and did not attend only from the start (before it, either is a guess)."""
        opens_at = self.slot.starts_at
        if status == self.Status.ARRIVED:
            opens_at -= self.ARRIVAL_NOTED_FROM
        return now >= opens_at

    def patient_can_change(self, *, now: datetime) -> bool:
        return self.status == self.Status.BOOKED and now < self.slot.starts_at - settings.MANAGE_CUTOFF

    @property
    def can_be_moved(self) -> bool:
        """Whether staff may move it to another time (`appointment_move`'s rule, which reception's pages show):
        a cancelled appointment is history, and an arrived, completed or missed one records what happened."""
        return self.status == self.Status.BOOKED


class UsedSafetyCheckPass(models.Model):
    """A safety-check pass that has made its one booking (bookings.services.appointment_book consumes it).

    The pass is a random secret in the patient's signed booking cookie; only its hash is kept. Inserted with
    ON CONFLICT DO NOTHING in the booking's transaction, so a copied or replayed cookie books nothing, and a
    booking that fails (time just taken) leaves the pass unused. Rows older than the cookie are pruned.
    """

    pass_hash = models.CharField(max_length=64, primary_key=True)
    used_at = models.DateTimeField()

    def __str__(self):
        return f"Safety-check pass used at {self.used_at:%Y-%m-%d %H:%M}"


class KeptBookingForm(models.Model):
    """What a patient typed into the details form when it had to go back to the safety check.

    A second tab, or more than an hour on the form, sends the booking back to the safety check: the
    fields wait here (never in a URL), behind a random key in a cookie of that browser, until the
    form is shown again, which deletes the row. Only the hash of the key is stored; rows expire with
    the cookie and are pruned.
    """

    key_hash = models.CharField(max_length=64, primary_key=True)
    fields = models.JSONField()
    expires_at = models.DateTimeField()

    def __str__(self):
        return f"Kept booking form until {self.expires_at:%Y-%m-%d %H:%M}"


class ManageLinkToken(models.Model):
    """A further manage link for an appointment, issued with each e-mail after the confirmation.

    Moved, cancelled and reminder e-mails each carry a fresh link, so a patient who deleted the
    confirmation can still change the booking; every link stays valid (as the appointment's own
    one does) until MANAGE_LINK_LIFETIME after the appointment, so the one already in use keeps
    working. Only the hash is stored; the raw token exists only in the e-mail being sent.
    """

    appointment = models.ForeignKey(Appointment, on_delete=models.PROTECT, related_name="manage_link_tokens")
    token_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token_hash"], name="manage_link_token_hash_unique"),
        ]

    def __str__(self):
        return f"Manage link for appointment {self.appointment_id} issued {self.created_at:%Y-%m-%d %H:%M}"

    @classmethod
    def issue(cls, *, appointment_id: int, now: datetime) -> str:
        """A new raw token for the appointment; only its hash is kept."""
        token = new_token()
        cls.objects.create(appointment_id=appointment_id, token_hash=hash_token(token), created_at=now)
        return token


class AppointmentEvent(models.Model):
    """The history of an appointment: who changed what, when, from what to what. Append-only."""

    class Action(models.TextChoices):
        BOOKED = "booked", "Booked"
        MOVED = "moved", "Moved"
        CANCELLED = "cancelled", "Cancelled"
        STATUS = "status", "Status changed"

    appointment = models.ForeignKey(Appointment, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=150, help_text="Staff username, or 'patient'.")
    action = models.CharField(max_length=12, choices=Action.choices)
    from_value = models.CharField(max_length=200, blank=True)
    to_value = models.CharField(max_length=200, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.get_action_display()}"


class CallbackRequest(models.Model):
    """A "please call me back" from the Contact page, for reception to handle."""

    name = models.CharField(max_length=120)
    # As typed (tidied); `phone_normalised` is what search uses.
    phone = models.CharField(max_length=32)
    phone_normalised = models.CharField(max_length=32, blank=True, editable=False, db_default="")
    preferred_time = models.CharField(max_length=120, blank=True, help_text="For example: weekday mornings.")
    message = models.TextField(blank=True, max_length=1000)
    created_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # When the caller's name, number and message were erased (bookings/privacy.py).
    anonymised_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["done_at", "-created_at"]
        indexes = [models.Index(fields=["created_at"], condition=Q(done_at__isnull=True), name="callback_open_idx")]

    def __str__(self):
        return f"Call-back request {self.pk}"

    def save(self, *args, **kwargs):
        _keep_phone_normalised(self, kwargs)
        super().save(*args, **kwargs)


def _keep_phone_normalised(instance, save_kwargs) -> None:
    """Every save of a row holding a patient's phone stores its normalised form beside it (bookings.phones)."""
    instance.phone_normalised = phone_key(instance.phone)
    update_fields = save_kwargs.get("update_fields")
    if update_fields is not None and "phone" in update_fields:
        save_kwargs["update_fields"] = {*update_fields, "phone_normalised"}


class OutboundMessageQuerySet(models.QuerySet):
    def due(self, *, now: datetime):
        """What a worker may claim: pending and due, or claimed by a worker whose lease ran out (it died)."""
        return self.filter(
            Q(status=OutboundMessage.Status.PENDING, next_attempt_at__lte=now)
            | Q(status=OutboundMessage.Status.SENDING, lease_expires_at__lte=now)
        )

    def needs_attention(self, *, now: datetime):
        """For reception, oldest first: given up on, still failing after a few tries, or long overdue.

        Overdue means no worker is sending: failures alone would never show a stopped worker.
        """
        return (
            self.filter(
                Q(status=OutboundMessage.Status.FAILED)
                | Q(status=OutboundMessage.Status.PENDING, attempts__gte=OutboundMessage.ATTENTION_AFTER_ATTEMPTS)
                | Q(status=OutboundMessage.Status.PENDING, next_attempt_at__lte=now - OutboundMessage.OVERDUE_AFTER)
            )
            .select_related("appointment", "slot__practitioner", "waiting_list_offer__entry")
            # What the panel shows (bookings/_failed_messages.html) and the access log's ids: an unsent e-mail
            # per booking piles up while no worker runs, and each row's appointment and entry would otherwise
            # bring their safety answers' JSON and contact details along.
            .only(
                "kind",
                "status",
                "attempts",
                "next_attempt_at",
                "last_error",
                "appointment__first_name",
                "appointment__last_name",
                "slot__starts_at",
                "slot__practitioner__title",
                "slot__practitioner__display_name",
                "waiting_list_offer__entry__first_name",
                "waiting_list_offer__entry__last_name",
            )
            .order_by("created_at", "pk")
        )


class OutboundMessageKind(models.TextChoices):
    CONFIRMATION = "confirmation", "Confirmation"
    MOVED = "moved", "Moved"
    CANCELLED = "cancelled", "Cancelled"
    REMINDER = "reminder", "Reminder"
    RECEPTION_BOOKED = "reception_booked", "Reception: new booking"
    RECEPTION_MOVED = "reception_moved", "Reception: booking moved"
    RECEPTION_CANCELLED = "reception_cancelled", "Reception: booking cancelled"
    WAITING_LIST_OFFER = "waiting_list_offer", "Waiting list: a time offered"
    WAITING_LIST_LINK = "waiting_list_link", "Waiting list: the entry's link"


class OutboundMessageStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Not needed any more"


class OutboundMessage(models.Model):
    """One e-mail caused by an appointment change: the outbox (see bookings/notifications.py).

    Recorded in the same transaction as the change; sent later by `manage.py send_messages`.
    The message describes the appointment as it was at that change: `slot` and `sequence`.
    """

    # Reception's list shows a message that has failed this many times, before it is given up.
    ATTENTION_AFTER_ATTEMPTS = 3
    # A message due this long ago and still waiting means no worker is sending.
    OVERDUE_AFTER = timedelta(minutes=15)

    Kind = OutboundMessageKind

    Status = OutboundMessageStatus

    kind = models.CharField(max_length=24, choices=Kind.choices)
    # Exactly one of the two (outbound_about_one_thing): an offer from the waiting list has no appointment yet.
    appointment = models.ForeignKey(
        Appointment, null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    waiting_list_offer = models.ForeignKey(
        "WaitingListOffer", null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    recipient = models.EmailField()
    # The entry whose link this is (kind WAITING_LIST_LINK: the raw token waits in manage_token).
    waiting_list_entry = models.ForeignKey(
        "WaitingListEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    # None only for an entry's link, which is about no time.
    slot = models.ForeignKey(Slot, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    sequence = models.PositiveIntegerField()
    # The raw manage-link token of a confirmation (the appointment keeps only its hash), or the raw accept-link
    # token of a waiting-list offer (the offer keeps only its hash).
    # Blanked as soon as the message is sent, skipped or failed for good.
    manage_token = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField()
    send_after = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_by = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # When the recipient's address (and any error quoting it) was erased (bookings/privacy.py).
    anonymised_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = OutboundMessageQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The worker's claim query: pending messages that are due, and leases that ran out.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status=OutboundMessageStatus.PENDING),
                name="outbound_pending_due_idx",
            ),
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status=OutboundMessageStatus.SENDING),
                name="outbound_sending_lease_idx",
            ),
            # Reception's undelivered e-mails (needs_attention), oldest first: every row it can show, in the order
            # it reads them, so the oldest twenty are the first twenty matches rather than a sort of the whole
            # backlog; what its filter tests is in the index, so counting them reads only the index.
            models.Index(
                fields=["created_at", "id"],
                include=["status", "attempts", "next_attempt_at"],
                condition=Q(status__in=[OutboundMessageStatus.PENDING, OutboundMessageStatus.FAILED]),
                name="outbound_attention_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=list(OutboundMessageStatus)),
                name="outbound_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=list(OutboundMessageKind)),
                name="outbound_kind_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status=OutboundMessageStatus.SENDING) | Q(lease_expires_at__isnull=False),
                name="outbound_sending_has_lease",
            ),
            models.CheckConstraint(
                condition=~Q(status=OutboundMessageStatus.SENT) | Q(sent_at__isnull=False),
                name="outbound_sent_has_time",
            ),
            models.CheckConstraint(
                condition=Q(appointment__isnull=False, waiting_list_offer__isnull=True, waiting_list_entry__isnull=True)
                | Q(appointment__isnull=True, waiting_list_offer__isnull=False, waiting_list_entry__isnull=True)
                | Q(appointment__isnull=True, waiting_list_offer__isnull=True, waiting_list_entry__isnull=False),
                name="outbound_about_one_thing",
            ),
            # Only an entry's link is about no time.
            models.CheckConstraint(
                condition=Q(slot__isnull=False) | Q(kind=OutboundMessageKind.WAITING_LIST_LINK),
                name="outbound_slot_unless_link",
            ),
            # At most one reminder waits per appointment: a move skips the old one first.
            models.UniqueConstraint(
                fields=["appointment"],
                condition=Q(kind=OutboundMessageKind.REMINDER, status=OutboundMessageStatus.PENDING),
                name="outbound_one_pending_reminder",
            ),
        ]

    def __str__(self):
        if self.appointment_id:
            about = f"appointment {self.appointment_id}"
        elif self.waiting_list_offer_id:
            about = f"offer {self.waiting_list_offer_id}"
        else:
            about = f"waiting list entry {self.waiting_list_entry_id}"
        return f"{self.get_kind_display()} for {about} ({self.get_status_display()})"


# -- Webhooks (bookings/webhooks.py): recorded in the change's transaction, sent by the worker --------------


class WebhookEvent(models.TextChoices):
    APPOINTMENT_BOOKED = "appointment.booked", "Appointment booked"
    APPOINTMENT_MOVED = "appointment.moved", "Appointment moved"
    APPOINTMENT_CANCELLED = "appointment.cancelled", "Appointment cancelled"
    APPOINTMENT_STATUS_CHANGED = "appointment.status_changed", "Appointment status changed"
    CALLBACK_REQUESTED = "callback.requested", "Call-back requested"


class WebhookSubscriptionQuerySet(models.QuerySet):
    def receiving(self, event: str):
        """Subscriptions that are on, not paused, and asked for EVENT."""
        return self.filter(is_active=True, paused_at__isnull=True, events__contains=[event])


class WebhookSubscription(models.Model):
    """Another system's URL that is told of changes, signed as the Standard Webhooks specification says.

    The secret is kept as it is (signing needs it), shown once in the admin when the subscription is made,
    and never again. The URL is checked when saved and again at every delivery (bookings/webhooks.py).
    """

    # Failed attempts in a row (across deliveries) after which the subscription is paused and shown to staff.
    PAUSE_AFTER_FAILURES = 10

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list)
    include_contact_details = models.BooleanField(
        default=False, help_text="Send the patient's name, e-mail and phone in appointment events."
    )
    secret = models.CharField(max_length=80, editable=False)
    is_active = models.BooleanField(default=True)
    paused_at = models.DateTimeField(null=True, blank=True, help_text="Set when deliveries kept failing.")
    failures_in_a_row = models.PositiveIntegerField(default=0, editable=False)
    last_error = models.CharField(max_length=300, blank=True, editable=False)
    created_at = models.DateTimeField()

    objects = WebhookSubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        from bookings.webhooks import UnsafeWebhookURL, check_url

        try:
            check_url(self.url)
        except UnsafeWebhookURL as refusal:
            raise ValidationError({"url": str(refusal)}) from None
        unknown = [event for event in self.events or [] if event not in WebhookEvent.values]
        if unknown or not self.events:
            raise ValidationError({"events": "Choose one or more of the events listed."})


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event for one subscription. `message_id` is the webhook-id header, the same on every retry."""

    Status = WebhookDeliveryStatus

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    message_id = models.CharField(max_length=40, editable=False)
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    payload = models.JSONField()
    created_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status=WebhookDeliveryStatus.PENDING),
                name="webhook_pending_due_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["message_id"], name="webhook_delivery_message_id_unique"),
            models.CheckConstraint(
                condition=Q(status__in=list(WebhookDeliveryStatus)), name="webhook_delivery_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status=WebhookDeliveryStatus.SENDING) | Q(lease_expires_at__isnull=False),
                name="webhook_delivery_sending_has_lease",
            ),
        ]

    def __str__(self):
        return f"{self.event} {self.message_id} ({self.get_status_display()})"


class PatientDataAccess(models.Model):
    """One staff page view that showed patients' details: who, when, which page, which records, from where.

    Written by bookings.privacy.patient_data_access_record, which every staff page showing patient data
    calls once; read-only in the admin; purged after RETENTION["access_log"].
    """

    at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too: the record outlives a deleted staff account.
    username = models.CharField(max_length=150)
    page = models.CharField(max_length=80, help_text="The staff page (its URL name).")
    appointment_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    callback_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    waiting_list_entry_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = "patient data access"
        verbose_name_plural = "patient data accesses"
        indexes = [
            GinIndex(fields=["appointment_ids"], name="patient_access_appts_gin"),
            # An access request lists every view of the patient's waiting-list entries too.
            GinIndex(fields=["waiting_list_entry_ids"], name="patient_access_waitlist_gin"),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.username} {self.page}"


class PatientDataErasure(models.Model):
    """An erasure on request, as recorded: who, when, reception's reference and how many records. Never the data."""

    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    by_username = models.CharField(max_length=150)
    reference = models.CharField(max_length=100, help_text="The request's reference (letter, ticket), no names.")
    counts = models.JSONField(default=dict)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self):
        return f"Erasure {self.reference} on {self.at:%Y-%m-%d}"


class PurgeRun(models.Model):
    """One run of the retention purge (bookings.privacy.expired_data_purge) and what it anonymised or deleted."""

    at = models.DateTimeField(db_index=True)
    counts = models.JSONField(default=dict)

    class Meta:
        ordering = ["-at"]

    def __str__(self):
        return f"Purge at {self.at:%Y-%m-%d %H:%M}"


# -- The waiting list ------------------------------------------------------------------------


class PartOfDay(models.TextChoices):
    """Parts of a clinic day a waiting patient may choose, by the local start time of a slot."""

    MORNING = "morning", "Mornings (before 12:00)"
    AFTERNOON = "afternoon", "Afternoons (12:00 to 17:00)"
    EVENING = "evening", "Evenings (from 17:00)"


# Where the parts of the day begin, in clinic time: before NOON is morning, from EVENING_FROM evening.
AFTERNOON_FROM_HOUR = 12
EVENING_FROM_HOUR = 17


def part_of_day(local_start: datetime) -> str:
    if local_start.hour < AFTERNOON_FROM_HOUR:
        return PartOfDay.MORNING
    if local_start.hour < EVENING_FROM_HOUR:
        return PartOfDay.AFTERNOON
    return PartOfDay.EVENING


# The local start times of each part of the day, as part_of_day reads them: from, and until (None: midnight).
PART_OF_DAY_STARTS = {
    PartOfDay.MORNING: (time(0), time(AFTERNOON_FROM_HOUR)),
    PartOfDay.AFTERNOON: (time(AFTERNOON_FROM_HOUR), time(EVENING_FROM_HOUR)),
    PartOfDay.EVENING: (time(EVENING_FROM_HOUR), None),
}


def wants_a_time_before(*, weekdays, parts_of_day, wait_until: date, before: datetime, now: datetime) -> bool:
    """Whether any time these wishes ask for (from NOW to the end of WAIT_UNTIL) starts before BEFORE.

    An entry waiting to move a booking is offered only times earlier than it (services.MATCHING_SQL): when
    this is False it could never be offered anything. Reads the wishes as the matching does: local weekdays
    (Monday 0) and parts of the day by their local start hour.
    """
    zone = ZoneInfo(settings.TIME_ZONE)
    day = now.astimezone(zone).date()
    last = min(wait_until, before.astimezone(zone).date())
    while day <= last:
        if day.weekday() in weekdays:
            for part in parts_of_day:
                opens, closes = PART_OF_DAY_STARTS[PartOfDay(part)]
                window_end = (
                    datetime.combine(day, closes, tzinfo=zone)
                    if closes
                    else datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
                )
                if datetime.combine(day, opens, tzinfo=zone) < before and window_end > now:
                    return True
        day += timedelta(days=1)
    return False


class WaitingListEntryStatus(models.TextChoices):
    # Asked online, its e-mailed link not opened yet: offered nothing, and expires
    # (services.WAITING_LIST_CONFIRM_WITHIN).
    PENDING = "pending", "Waiting for the e-mailed link to be opened"
    WAITING = "waiting", "Waiting"
    BOOKED = "booked", "Booked from an offer"
    BOOKED_ELSEWHERE = "elsewhere", "Booked another way"
    LEFT = "left", "Left the list"
    REMOVED = "removed", "Removed by reception"
    EXPIRED = "expired", "Waited until the date given"
    # Asked online, its e-mailed link not opened in time (services.WAITING_LIST_CONFIRM_WITHIN).
    LAPSED = "lapsed", "Its e-mailed link was not opened in time"
    # Asked online again before this request's link was opened, or another request of the address was confirmed
    # first: one open entry per address. (Found by hand: a replaced request said "Waited until the date given".)
    REPLACED = "replaced", "Replaced by a newer request"


# An entry not ended yet: waiting, or waiting for its e-mailed link to be opened.
OPEN_ENTRY_STATUSES = [WaitingListEntryStatus.PENDING, WaitingListEntryStatus.WAITING]


class WaitingListEntryQuerySet(models.QuerySet):
    def waiting(self):
        return self.filter(status=WaitingListEntry.Status.WAITING)

    def open(self):
        return self.filter(status__in=OPEN_ENTRY_STATUSES)

    def by_token(self, token: str):
        return self.filter(token_hash=hash_token(token))

    def same_email(self, email: str):
        return self.annotate(email_key=Lower("email")).filter(email_key=email.strip().lower())


class WaitingListEntry(models.Model):
    """A patient waiting for a time that suits them better than what the time page shows.

    Joined from the time page after the safety check (its answers, with their version, and the privacy
    notice version are kept here and go onto the booking an accepted offer makes), from a manage link
    (wanting something sooner than `appointment`, which is kept until an offer is accepted and then moved),
    or added by reception for a caller. The entry's own link is a token of which only the hash is kept.
    """

    Status = WaitingListEntryStatus

    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)
    email = models.EmailField()
    phone = models.CharField(max_length=32)
    phone_normalised = models.CharField(max_length=32, blank=True, editable=False, db_default="")
    # None: any practitioner.
    practitioner = models.ForeignKey(
        Practitioner, null=True, blank=True, on_delete=models.SET_NULL, related_name="waiting_list_entries"
    )
    # WorkingHours.Weekday values, and PartOfDay values: at least one of each (constraints below).
    weekdays = ArrayField(models.PositiveSmallIntegerField())
    parts_of_day = ArrayField(models.CharField(max_length=10))
    wait_until = models.DateField(help_text="The last day (clinic time) a time may be on.")
    # The booking an offer would move (an earlier time wanted), or None for a new booking.
    appointment = models.ForeignKey(
        "Appointment", null=True, blank=True, on_delete=models.PROTECT, related_name="waiting_list_entries"
    )
    safety_answers = models.JSONField(default=dict)
    privacy_notice_version = models.CharField(max_length=20, blank=True)
    token_hash = models.CharField(max_length=64, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    created_at = models.DateTimeField()
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    # Set when the patient's details were erased (on request, or RETENTION["waiting_list"] after it ended).
    anonymised_at = models.DateTimeField(null=True, blank=True)

    objects = WaitingListEntryQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name_plural = "waiting list entries"
        indexes = [
            # The matching walks the waiting entries in the order they joined (services.waiting_list_scan).
            models.Index(
                fields=["created_at", "id"],
                condition=Q(status=WaitingListEntryStatus.WAITING),
                name="waitlist_waiting_order_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["token_hash"], name="waitlist_token_hash_unique"),
            # One entry per e-mail address at a time (in any case).
            models.UniqueConstraint(
                Lower("email"),
                condition=Q(status=WaitingListEntryStatus.WAITING),
                name="waitlist_one_waiting_per_email",
            ),
            models.CheckConstraint(
                condition=Q(status__in=list(WaitingListEntryStatus)), name="waitlist_entry_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(weekdays__len__gt=0) & Q(weekdays__contained_by=list(WorkingHours.Weekday.values)),
                name="waitlist_weekdays_valid",
            ),
            models.CheckConstraint(
                condition=Q(parts_of_day__len__gt=0) & Q(parts_of_day__contained_by=list(PartOfDay.values)),
                name="waitlist_parts_of_day_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=OPEN_ENTRY_STATUSES, ended_at__isnull=True)
                | (~Q(status__in=OPEN_ENTRY_STATUSES) & Q(ended_at__isnull=False)),
                name="waitlist_ended_has_time",
            ),
            # An entry whose details are erased can be offered nothing: it is off the list first.
            models.CheckConstraint(
                condition=Q(anonymised_at__isnull=True) | ~Q(status__in=OPEN_ENTRY_STATUSES),
                name="waitlist_anonymised_not_waiting",
            ),
        ]

    def __str__(self):
        return f"Waiting list entry {self.pk} ({self.get_status_display()})"

    def save(self, *args, **kwargs):
        _keep_phone_normalised(self, kwargs)
        super().save(*args, **kwargs)

    @property
    def patient_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def weekday_labels(self) -> list[str]:
        return [WorkingHours.Weekday(day).label for day in sorted(self.weekdays)]

    def part_of_day_labels(self) -> list[str]:
        return [PartOfDay(part).label for part in PartOfDay.values if part in self.parts_of_day]

    def may_move_to(self, starts_at: datetime) -> bool:
        """Whether a time starting at STARTS_AT may be offered to this entry at all, whoever offers it.

        An entry waiting to move a booking is promised something sooner: only times before its booking, never
        one after (accepting would move the booking later). services.MATCHING_SQL keeps the same rule in the
        database; reception's list, a hand offer and accepting read it here. Reads `appointment.slot`: select
        it with the entry where several entries are asked.
        """
        return self.appointment_id is None or starts_at < self.appointment.slot.starts_at

    def wants_a_time_before(self, starts_at: datetime, *, now: datetime) -> bool:
        """Whether the entry asks for any time before STARTS_AT (its booking's, which only earlier times move)."""
        return wants_a_time_before(
            weekdays=self.weekdays,
            parts_of_day=self.parts_of_day,
            wait_until=self.wait_until,
            before=starts_at,
            now=now,
        )


class WaitingListOfferStatus(models.TextChoices):
    OFFERED = "offered", "Offered"
    ACCEPTED = "accepted", "Accepted"
    GONE = "gone", "Taken by someone else"
    EXPIRED = "expired", "Not accepted in time"
    WITHDRAWN = "withdrawn", "Withdrawn (left the list)"


class WaitingListOfferQuerySet(models.QuerySet):
    def holding(self, *, now: datetime):
        """Offers that hold their slot at NOW: offered, and their hold not yet run out."""
        return self.filter(status=WaitingListOffer.Status.OFFERED, held_until__gt=now)

    def keeping_the_slot_from_the_entry(self):
        """Offers after which their slot is not offered to their entry again: all but those GONE.

        An entry that let its hold run out (or holds it now, or left) is not offered the same time again, so
        that the time goes on to the next people; one whose offer ended because someone else took the time
        first did nothing wrong, and is offered it again, in joining order, when it comes free again.
        services.MATCHING_SQL keeps the same rule in the database.
        """
        return self.exclude(status=WaitingListOffer.Status.GONE)

    def by_token(self, token: str):
        return self.filter(token_hash=hash_token(token))

    def with_batch_size(self):
        """Each offer's `batch_size`: how many people its time was offered to together (1: held for one alone)."""
        return self.annotate(batch_size=offers_in_batch(slot_field="slot_id", batch_field="batch"))


def offers_in_batch(*, slot_field: str, batch_field: str) -> Subquery:
    """How many offers share the batch named by the outer query's fields: in the same statement, no query more.
    Through the slot's index (a batch is one slot's); a batch never grows once made."""
    return Subquery(
        WaitingListOffer.objects.filter(slot_id=OuterRef(slot_field), batch=OuterRef(batch_field))
        .order_by()
        .values("batch")
        .annotate(size=Count("pk"))
        .values("size")
    )


class WaitingListOffer(models.Model):
    """One slot offered to one waiting entry, with an accept link (only its hash kept).

    While an offer is OFFERED and before `held_until`, its slot is held: the public time page and
    `SlotQuerySet.bookable` leave it out; reception may still book it (the offer then finds it gone).
    Offers made together for one slot share a `batch`.
    """

    Status = WaitingListOfferStatus

    entry = models.ForeignKey(WaitingListEntry, on_delete=models.CASCADE, related_name="offers")
    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="waiting_list_offers")
    batch = models.UUIDField()
    offered_at = models.DateTimeField()
    held_until = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OFFERED)
    token_hash = models.CharField(max_length=64, editable=False)
    offered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = WaitingListOfferQuerySet.as_manager()

    class Meta:
        ordering = ["-offered_at", "pk"]
        indexes = [
            # Holds: is this slot held now? (bookable(), the lock check, the scan.)
            models.Index(
                fields=["slot", "held_until"],
                condition=Q(status=WaitingListOfferStatus.OFFERED),
                name="waitlist_offer_holding_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["token_hash"], name="waitlist_offer_token_hash_unique"),
            # One offer of a slot per entry: the next batch goes to the next people. An offer that someone else
            # took first (GONE) is made again in its row when the time comes free (services._offer_slot).
            models.UniqueConstraint(fields=["entry", "slot"], name="waitlist_offer_once_per_entry_and_slot"),
            models.CheckConstraint(
                condition=Q(status__in=list(WaitingListOfferStatus)), name="waitlist_offer_status_valid"
            ),
            models.CheckConstraint(condition=Q(held_until__gt=F("offered_at")), name="waitlist_offer_hold_after"),
        ]

    def __str__(self):
        return f"Offer {self.pk} of slot {self.slot_id} ({self.get_status_display()})"


MANAGER_GROUP = "Clinic manager"


class BookingStartCount(models.Model):
    """How many times the safety-check page was opened from an article's link, per clinic day.

    A count and nothing else: no cookie, no address, no time of day, so nobody can be followed from the
    article to their booking. Written by one INSERT ... ON CONFLICT DO UPDATE (services.booking_start_count).
    """

    article = models.ForeignKey("articles.Article", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["article", "day"], name="booking_start_count_one_per_day")]

    def __str__(self):
        return f"{self.article_id} {self.day}: {self.count}"


class UrgentCareCount(models.Model):
    """How many times the red-flag check sent someone to urgent care, per clinic day: a count, nothing about who."""

    day = models.DateField(unique=True)
    count = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.day}: {self.count}"


# -- The Insights page's daily summaries ---------------------------------------------------------
# Rebuilt together from the appointments and slots by services.insights_refresh (the page's button,
# `manage.py refresh_insights`): a year at 50 practitioners is ~270,000 slots, which no query can sum
# within the page's 100 ms, while a year of days per practitioner is ~13,000 rows. One row per clinic
# day, so that any period (whole weeks or two dates) adds them up. Nothing in them names a patient.


class InsightsBookingDay(models.Model):
    """Bookings made on a clinic day, by how they came and the article they came from."""

    day = models.DateField()
    source = models.CharField(max_length=12)
    article = models.ForeignKey("articles.Article", null=True, on_delete=models.CASCADE, related_name="+")
    count = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day"], name="insights_booking_day_idx")]

    def __str__(self):
        return f"{self.day} {self.source} {self.article_id}: {self.count}"


class InsightsDiaryDay(models.Model):
    """A practitioner's diary on a clinic day, in seconds: offered (open), booked (open with a live appointment)
    and blocked."""

    practitioner = models.ForeignKey(Practitioner, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    offered_seconds = models.PositiveIntegerField()
    booked_seconds = models.PositiveIntegerField()
    blocked_seconds = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day"], name="insights_diary_day_idx")]

    def __str__(self):
        return f"{self.practitioner_id} {self.day}"


class InsightsAttendanceDay(models.Model):
    """Appointments on a clinic day by what became of them (staff.insights.ATTENDANCE_COLUMNS)."""

    day = models.DateField()
    outcome = models.CharField(max_length=24)
    count = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day"], name="insights_attendance_day_idx")]

    def __str__(self):
        return f"{self.day} {self.outcome}: {self.count}"


class InsightsLeadDays(models.Model):
    """Bookings made on a clinic day (not cancelled), per practitioner and number of days ahead they were for:
    the median days from booking to appointment over any period, from a histogram."""

    practitioner = models.ForeignKey(Practitioner, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    lead_days = models.IntegerField()
    count = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day"], name="insights_lead_days_day_idx")]

    def __str__(self):
        return f"{self.practitioner_id} {self.day} +{self.lead_days}: {self.count}"


class InsightsRefresh(models.Model):
    """When the summaries above were last rebuilt (one row)."""

    refreshed_at = models.DateTimeField()

    def __str__(self):
        return f"{self.refreshed_at}"
