import re
import unicodedata
import uuid
from datetime import UTC, date, datetime, timedelta

from django import forms
from django.conf import settings

from bookings.models import (
    PART_OF_DAY_STARTS,
    CallbackRequest,
    PartOfDay,
    Practitioner,
    WorkingHours,
    first_overlapping_periods,
    wants_a_time_before,
)
from bookings.phones import display_phone, normalise_phone
from bookings.schedule import clinic_zone
from bookings.services import PatientDetails, WaitingListRequest
from clinic.privacy_notices import current_privacy_notice_version, describe_period

# Red flags for back and hip pain, asked as one question ("Do any of these apply to you?") with a box
# each: any flag ticked means urgent medical help, not a booking.
SAFETY_QUESTION = "Do any of these apply to you?"
SAFETY_QUESTIONS = [
    (
        "bladder_bowel",
        "You have recently lost control of your bladder or bowel, or find it hard to pass urine",
    ),
    (
        "saddle_numbness",
        "You have new numbness or tingling around your bottom, genitals or inner thighs (the 'saddle' area)",
    ),
    ("leg_weakness", "Weakness in one or both legs is getting worse, or you are struggling to walk"),
    ("trauma", "The pain started after a fall, accident or other injury, and it is severe"),
    (
        "systemic",
        "You have a fever, feel generally unwell, or have lost weight without trying, along with the pain",
    ),
]
# The exclusive answer after the flags (the GOV.UK checkboxes "none" pattern).
NO_RED_FLAG = "none"
NO_RED_FLAG_LABEL = "No, none of these"
# 2026-12: one question with a box per red flag, worded as statements (before: five yes/no questions).
SAFETY_QUESTIONS_VERSION = "2026-12"
SAFETY_EMPTY = f'Please tick each one that applies to you, or "{NO_RED_FLAG_LABEL}".'
SAFETY_NONE_WITH_FLAG = f'You ticked "{NO_RED_FLAG_LABEL}" and a sign above it: please tick only what applies to you.'


# The database column's limit: a longer address would be a database error, not a message by the field.
EMAIL_MAX_LENGTH = 254
# Ids beyond PostgreSQL's bigint would be a database error, not a clear "not found".
DATABASE_ID_MAX = 2**63 - 1


def parse_database_id(value) -> int | None:
    """A positive database id from user input, or None (never a value PostgreSQL would reject)."""
    try:
        number = int(str(value).strip()[:20])
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= DATABASE_ID_MAX else None


# "Any practitioner": the time page links a start time, not one practitioner's slot, as UTC in a short
# fixed form (20261202T0940Z). A start time says nothing about a patient.
START_TIME_FORMAT = "%Y%m%dT%H%MZ"


def start_time_value(starts_at: datetime) -> str:
    return starts_at.astimezone(UTC).strftime(START_TIME_FORMAT)


def parse_start_time(value) -> datetime | None:
    """A start time from the time page's "any practitioner" link, or None for anything else."""
    try:
        return datetime.strptime(str(value)[:14], START_TIME_FORMAT).replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


SLUG_PATTERN = re.compile(r"[-a-zA-Z0-9_]+")


# A name is printed in e-mails the clinic sends to an address nobody has confirmed, so it must stay
# a name: one line of letters (any script, with their combining accents), spaces and the
# punctuation names use. No digits, no slashes or colons, no control, format or zero-width
# characters (Unicode categories Cc, Cf, Zl, Zp...), which could hide or break lines in a message.
# Hyphens (ASCII, Unicode, non-breaking), apostrophes (straight, curly, modifier letter) and the full stop.
NAME_PUNCTUATION = frozenset("-\u2010\u2011'\u2018\u2019\u02bc.")
# Spaces people paste (non-breaking, thin...: Unicode category Zs) count as one ordinary space.
PASTED_SPACES = re.compile("[\u0020\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
# "evil.example" or "www.x.co": letters, a dot, letters, with no space after the dot. Initials
# ("J.R.R. Smith", "St. John") have one letter before the dot, or a space after it.
WEB_ADDRESS = re.compile(r"[^\W\d_]{2,}\.[^\W\d_]{2,}", re.UNICODE)
WEB_WORDS = frozenset({"http", "https", "www"})
NAME_INVALID = "Please enter a name with letters, spaces, hyphens, apostrophes and full stops only, on one line."


def clean_person_name(value: str) -> str:
    """A patient's name as typed, or a ValidationError: see NAME_PUNCTUATION above for what a name may hold."""
    name = PASTED_SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip()
    if WEB_ADDRESS.search(name) or WEB_WORDS.intersection(name.lower().split()):
        raise forms.ValidationError("Please enter just your name, without a web address.")
    for character in name:
        category = unicodedata.category(character)
        if not (category[0] in "LM" or character == " " or character in NAME_PUNCTUATION):
            raise forms.ValidationError(NAME_INVALID)
    if not any(unicodedata.category(character)[0] == "L" for character in name):
        raise forms.ValidationError(NAME_INVALID)
    return name


class SafetyQuestionsMixin:
    """The red-flag question as a form field: the online safety check and reception's phone booking ask the same.

    One field, `red_flags`: a box per flag, then the exclusive "none". Without JavaScript the server
    refuses "none" ticked with a flag, and nothing ticked; with it, static/js/site.js unticks the other side.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["red_flags"] = forms.MultipleChoiceField(
            label=SAFETY_QUESTION,
            choices=[*SAFETY_QUESTIONS, (NO_RED_FLAG, NO_RED_FLAG_LABEL)],
            widget=forms.CheckboxSelectMultiple,
            error_messages={"required": SAFETY_EMPTY},
        )

    def clean_red_flags(self):
        ticked = self.cleaned_data["red_flags"]
        if NO_RED_FLAG in ticked and len(ticked) > 1:
            raise forms.ValidationError(SAFETY_NONE_WITH_FLAG)
        return ticked

    def red_flag_choices(self):
        """The flags' boxes, without the "none" box (the template puts a divider between them)."""
        return [box for box in self["red_flags"] if box.data["value"] != NO_RED_FLAG]

    def no_red_flag_choice(self):
        return next(box for box in self["red_flags"] if box.data["value"] == NO_RED_FLAG)

    def any_red_flag(self) -> bool:
        """A flag ticked (and not "none" with it), even while other fields still have errors: it comes first."""
        answered = getattr(self, "cleaned_data", {})  # none on an unbound form (an empty POST)
        return bool(answered.get("red_flags")) and NO_RED_FLAG not in answered["red_flags"]

    def recorded_answers(self) -> dict:
        """The answers as stored on the appointment, with the questions as they were asked."""
        ticked = self.cleaned_data["red_flags"]
        return {
            "version": SAFETY_QUESTIONS_VERSION,
            "answers": [
                {"key": key, "question": question, "answer": "yes" if key in ticked else "no"}
                for key, question in SAFETY_QUESTIONS
            ],
        }


class SafetyCheckForm(SafetyQuestionsMixin, forms.Form):
    # Carried from the link the patient followed. A mangled link must never trap them on this
    # page with an error they cannot see, so a bad value is simply dropped.
    article = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)
    practitioner = forms.CharField(required=False, max_length=20, widget=forms.HiddenInput)

    def clean_article(self):
        article = self.cleaned_data["article"]
        return article if SLUG_PATTERN.fullmatch(article) else ""

    def clean_practitioner(self):
        return parse_database_id(self.cleaned_data["practitioner"])

    @staticmethod
    def passed_answers() -> dict:
        """What a patient past the check answered: "none", stored as "no" to every flag (one flag stops the booking)."""
        return {
            "version": SAFETY_QUESTIONS_VERSION,
            "answers": [{"key": key, "question": question, "answer": "no"} for key, question in SAFETY_QUESTIONS],
        }


def clean_phone(value: str) -> str:
    """What was typed, tidied (bookings.phones), if it is a phone number; its normalised form is stored by the model."""
    if normalise_phone(value) is None:
        raise forms.ValidationError(
            "Please enter a phone number we can call, starting with 0 or +44 (for example 07700 900123), "
            "or with + and the country code for a number abroad."
        )
    return display_phone(value)


class PatientForm(forms.Form):
    """What every booking asks of a patient, online or on the phone, and its one-time submission key."""

    submission_key = forms.UUIDField(widget=forms.HiddenInput)
    first_name = forms.CharField(max_length=80, label="First name")
    last_name = forms.CharField(max_length=80, label="Last name")

    @staticmethod
    def new_submission_key() -> uuid.UUID:
        return uuid.uuid4()

    def fields_with_errors(self):
        """The visible fields to list in the error summary at the top of the form."""
        return [field for field in self.visible_fields() if field.errors]

    def clean_first_name(self):
        return clean_person_name(self.cleaned_data["first_name"])

    def clean_last_name(self):
        return clean_person_name(self.cleaned_data["last_name"])

    def clean_phone(self):
        return clean_phone(self.cleaned_data["phone"])

    def patient_details(self) -> PatientDetails:
        data = self.cleaned_data
        return PatientDetails(
            first_name=data["first_name"],
            last_name=data["last_name"],
            phone=data["phone"],
            email=data["email"],
            note=data["note"],
        )


class PatientDetailsForm(PatientForm):
    # The time chosen: one practitioner's slot, or ("any practitioner") a start time (`at`) that the
    # booking gives to a practitioner free then. The view reads which one the form carries.
    slot = forms.IntegerField(required=False, min_value=1, max_value=DATABASE_ID_MAX, widget=forms.HiddenInput)
    email = forms.EmailField(
        max_length=EMAIL_MAX_LENGTH, label="E-mail", help_text="We send your confirmation and a reminder here."
    )
    # type="tel": a phone shows its number pad and offers the number it knows (autocomplete="tel").
    phone = forms.CharField(
        max_length=32,
        label="Phone",
        help_text="In case we need to reach you on the day.",
        widget=forms.TextInput(attrs={"type": "tel"}),
    )
    note = forms.CharField(
        required=False,
        max_length=1000,
        label="Anything the practitioner should know? (optional)",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    consent = forms.BooleanField(
        label="I have read the privacy notice and agree that the clinic keeps these details to arrange my visit.",
        error_messages={"required": "Please tick to agree to the privacy notice, or call us to book."},
    )
    # A field people don't see (hidden by CSS and labelled for screen readers); bots fill it in.
    website = forms.CharField(required=False, label="Leave this field empty", max_length=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["first_name"].widget.attrs["autocomplete"] = "given-name"
        self.fields["last_name"].widget.attrs["autocomplete"] = "family-name"
        self.fields["email"].widget.attrs["autocomplete"] = "email"
        self.fields["phone"].widget.attrs.update({"autocomplete": "tel", "inputmode": "tel"})
        self.fields["website"].widget.attrs.update({"autocomplete": "off", "tabindex": "-1"})

    @property
    def filled_by_a_bot(self) -> bool:
        """The hidden field was filled in. Never a form error: the answer must not tell a bot what gave it away."""
        return bool(self.cleaned_data.get("website"))

    def waiting_list_request(self) -> WaitingListRequest:
        if self.booking is not None:
            self.cleaned_data |= {"email": self.booking.email, "phone": self.booking.phone}
        return super().waiting_list_request()

    @property
    def privacy_notice_version(self) -> str:
        return current_privacy_notice_version()


class CancelForm(forms.Form):
    reason = forms.CharField(
        required=False, max_length=300, label="Reason (optional)", widget=forms.Textarea(attrs={"rows": 2})
    )


class MoveForm(forms.Form):
    slot = forms.IntegerField(
        min_value=1, max_value=DATABASE_ID_MAX, error_messages={"required": "Please choose a new time."}
    )


# The patients' Contact page; the requests appear on reception's screen (staff/views.py).
class CallbackRequestForm(forms.ModelForm):
    """The public "call me back" form on the Contact page."""

    # A field people don't see (hidden by CSS); bots fill it in.
    website = forms.CharField(required=False, label="Leave this field empty", max_length=200)

    class Meta:
        model = CallbackRequest
        fields = ["name", "phone", "preferred_time", "message"]
        labels = {
            "name": "Your name",
            "phone": "Phone number",
            "preferred_time": "When suits you? (optional)",
            "message": "What would you like to talk about? (optional)",
        }
        help_texts = {"preferred_time": "For example: weekday mornings, or after 5pm."}
        widgets = {"message": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"].widget.attrs["autocomplete"] = "name"
        self.fields["phone"].widget.attrs.update({"autocomplete": "tel", "inputmode": "tel"})
        self.fields["website"].widget.attrs.update({"autocomplete": "off", "tabindex": "-1"})

    def clean_name(self):
        return clean_person_name(self.cleaned_data["name"])

    def clean_phone(self):
        return clean_phone(self.cleaned_data["phone"])

    @property
    def filled_by_a_bot(self) -> bool:
        """The hidden field was filled in. Never a form error: the answer must not tell a bot what gave it away."""
        return bool(self.cleaned_data.get("website"))


def overlapping_periods_in(formset) -> tuple[dict, dict] | None:
    """The first two working-hours periods of a formset (reception's hours page, the admin's practitioner
    page) that overlap, leaving out deleted and empty rows; None when none do."""
    periods = [
        form.cleaned_data
        for form in formset.forms
        if form.cleaned_data and not form.cleaned_data.get("DELETE") and form.cleaned_data.get("start_time")
    ]
    return first_overlapping_periods(periods)


class WaitingListForm(forms.Form):
    """What a patient asks the waiting list for (bookings.services.WaitingListRequest)."""

    first_name = forms.CharField(max_length=80, label="First name")
    last_name = forms.CharField(max_length=80, label="Last name")
    email = forms.EmailField(
        max_length=EMAIL_MAX_LENGTH, label="E-mail", help_text="Offers of a time come by e-mail, so this is needed."
    )
    phone = forms.CharField(max_length=32, label="Phone")
    practitioner = forms.ModelChoiceField(
        queryset=Practitioner.objects.offering_consultations(),
        required=False,
        empty_label="Any practitioner",
        label="Who would you like to see?",
    )
    weekdays = forms.TypedMultipleChoiceField(
        choices=WorkingHours.Weekday.choices,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        label="Which days suit you?",
        error_messages={"required": "Please tick at least one day."},
    )
    parts_of_day = forms.MultipleChoiceField(
        choices=PartOfDay.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Which times of day suit you?",
        error_messages={"required": "Please tick at least one time of day."},
    )
    wait_until = forms.DateField(
        label="Wait until",
        help_text="The last day you could come. You leave the list by yourself after it.",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Please enter a date, for example 2026-12-31."},
    )

    def __init__(self, *args, today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        self.last_day = today + timedelta(days=settings.BOOKING_HORIZON_DAYS)
        self.fields["wait_until"].widget.attrs.update({"min": today.isoformat(), "max": self.last_day.isoformat()})
        self.fields["first_name"].widget.attrs["autocomplete"] = "given-name"
        self.fields["last_name"].widget.attrs["autocomplete"] = "family-name"
        self.fields["email"].widget.attrs["autocomplete"] = "email"
        self.fields["phone"].widget.attrs.update({"autocomplete": "tel", "inputmode": "tel"})

    def fields_with_errors(self):
        return [field for field in self.visible_fields() if field.errors]

    def clean_first_name(self):
        return clean_person_name(self.cleaned_data["first_name"])

    def clean_last_name(self):
        return clean_person_name(self.cleaned_data["last_name"])

    def clean_phone(self):
        return clean_phone(self.cleaned_data["phone"])

    def clean_wait_until(self):
        day = self.cleaned_data["wait_until"]
        if day < self.today:
            raise forms.ValidationError("Please choose today or a later day.")
        if day > self.last_day:
            raise forms.ValidationError(
                f"We book up to {settings.BOOKING_HORIZON_DAYS} days ahead: please choose "
                f"{self.last_day:%d/%m/%Y} or an earlier day."
            )
        return day

    def waiting_list_request(self) -> WaitingListRequest:
        data = self.cleaned_data
        return WaitingListRequest(
            first_name=data["first_name"],
            last_name=data["last_name"],
            email=data["email"],
            phone=data["phone"],
            practitioner=data["practitioner"],
            weekdays=data["weekdays"],
            parts_of_day=data["parts_of_day"],
            wait_until=data["wait_until"],
        )


def working_times_by_practitioner(*, today: date) -> dict[int, dict[int, set[str]]]:
    """For each practitioner offering the consultation, the weekdays they work on and, for each, the parts of
    the day their hours cover (hours that have not ended by TODAY)."""
    times: dict[int, dict[int, set[str]]] = {}
    rows = (
        WorkingHours.objects.filter(practitioner__in=Practitioner.objects.offering_consultations())
        .exclude(valid_until__lt=today)
        .values_list("practitioner_id", "weekday", "start_time", "end_time")
        .distinct()
    )
    for practitioner_id, weekday, start_time, end_time in rows:
        parts = times.setdefault(practitioner_id, {}).setdefault(weekday, set())
        for part, (opens, closes) in PART_OF_DAY_STARTS.items():
            if (closes is None or start_time < closes) and end_time > opens:
                parts.add(part)
    return times


def waiting_list_keeping() -> str:
    """How long the waiting list keeps a patient's details, as settings.RETENTION (the purge) says: shown where
    they join, and read to a caller by reception."""
    return (
        "We keep these details and your safety-check answers while you wait, and erase them "
        f"{describe_period(settings.RETENTION['waiting_list'])} after you leave the list, accept a time or your "
        "last day passes. You can ask us to erase them sooner."
    )


class WaitingListJoinForm(WaitingListForm):
    consent = forms.BooleanField(
        label="I have read the privacy notice and agree that the clinic keeps these details to offer me a time.",
        error_messages={"required": "Please tick to agree to the privacy notice, or call us."},
    )

    def __init__(self, *args, booking=None, now: datetime | None = None, **kwargs):
        """BOOKING: the appointment an earlier time would move ("I'd like something sooner"), at NOW."""
        super().__init__(*args, **kwargs)
        self.booking, self.now = booking, now
        self.booking_start = booking.slot.starts_at if booking else None
        if booking is not None:
            # The manage link proves the booking's address and nothing else: offers go to the booking's own
            # e-mail (and reception calls its phone), never to what was typed. Another address joins through
            # the public form, which confirms it by e-mail. The names stay: how to greet, not where to reach.
            del self.fields["email"], self.fields["phone"]
        self.fields["consent"].help_text = waiting_list_keeping()
        # Only the days someone works: an entry for a day without hours would never be offered a time.
        self.times_by_practitioner = working_times_by_practitioner(today=self.today)
        self.days_by_practitioner = {pk: set(days) for pk, days in self.times_by_practitioner.items()}
        open_days = set().union(*self.days_by_practitioner.values())
        self.fields["weekdays"].choices = [
            (day, label) for day, label in WorkingHours.Weekday.choices if day in open_days
        ]
        self.fields["weekdays"].error_messages["invalid_choice"] = (
            "The clinic has no hours on one of the days ticked: please choose from those listed."
        )

    def clean(self):
        data = super().clean()
        practitioner, weekdays = data.get("practitioner"), data.get("weekdays")
        if practitioner and weekdays:
            works_on = self.days_by_practitioner.get(practitioner.pk, set())
            if not works_on.intersection(weekdays):
                days = ", ".join(WorkingHours.Weekday(day).label for day in sorted(works_on)) or "no day at the moment"
                self.add_error(
                    "weekdays", f"{practitioner.full_name} does not work on the days ticked: they work on {days}."
                )
        self._check_someone_works_then(data)
        self._check_a_time_before_the_booking(data)
        return data

    def _check_someone_works_then(self, data) -> None:
        """Wishes no working hours can meet would never be offered a time (found by hand: Dr Patel on Monday
        evenings, though she ends at 17:00; Thursdays only, with a Wednesday as the last day)."""
        weekdays, parts_of_day, wait_until = data.get("weekdays"), data.get("parts_of_day"), data.get("wait_until")
        if self.has_error("weekdays") or not (weekdays and parts_of_day and wait_until):
            return
        days_to_wait = (wait_until - self.today).days + 1
        days_in_reach = {(self.today + timedelta(days=offset)).weekday() for offset in range(min(7, days_to_wait))}
        wished_days = set(weekdays) & days_in_reach
        if not wished_days:
            self.add_error(
                "wait_until",
                f"None of the days ticked comes between today and {wait_until:%A} {wait_until.day} {wait_until:%B}: "
                "please choose a later last day, or other days.",
            )
            return
        practitioner = data.get("practitioner")
        if practitioner:
            worked = [self.times_by_practitioner.get(practitioner.pk, {})]
        else:
            worked = list(self.times_by_practitioner.values())
        if any(parts & set(parts_of_day) for days in worked for day, parts in days.items() if day in wished_days):
            return
        who = f"{practitioner.full_name} does not work" if practitioner else "None of our practitioners works"
        self.add_error(
            "parts_of_day",
            f"{who} at the times of day ticked on the days ticked: please tick other times of day or other days.",
        )

    def _check_a_time_before_the_booking(self, data) -> None:
        """Waiting to move a booking, only earlier times are offered: wishes all after it would never be offered."""
        wishes = (data.get("weekdays"), data.get("parts_of_day"), data.get("wait_until"))
        if self.booking_start is None or self.has_error("weekdays") or not all(wishes):
            return
        weekdays, parts_of_day, wait_until = wishes
        if wants_a_time_before(
            weekdays=weekdays, parts_of_day=parts_of_day, wait_until=wait_until, before=self.booking_start, now=self.now
        ):
            return
        local_start = self.booking_start.astimezone(clinic_zone())
        self.add_error(
            "weekdays",
            f"None of the days and times ticked comes before your booking on {local_start:%A} {local_start.day} "
            f"{local_start:%B} at {local_start:%H:%M}, and we only offer you earlier times (accepting one moves "
            "your booking). Please tick days or times of day before then. To move your booking to a later time, "
            "go back to your booking and choose another time.",
        )

    def waiting_list_request(self) -> WaitingListRequest:
        if self.booking is not None:
            self.cleaned_data |= {"email": self.booking.email, "phone": self.booking.phone}
        return super().waiting_list_request()

    @property
    def privacy_notice_version(self) -> str:
        return current_privacy_notice_version()


class WaitingListLinkForm(forms.Form):
    """ "Lost your link?": only the address the entry was made with."""

    email = forms.EmailField(
        max_length=EMAIL_MAX_LENGTH,
        label="E-mail",
        help_text="The address you joined the waiting list with. We e-mail its link there.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def fields_with_errors(self):
        return [field for field in self.visible_fields() if field.errors]
