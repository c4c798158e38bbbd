"""Forms for reception and practitioners. Every write they lead to goes through bookings/services.py
(appointments, slots) or is followed by `slots_generate` (working hours, time off)."""

from django import forms
from django.forms import BaseModelFormSet, modelformset_factory
from django.utils import timezone

from bookings.forms import (
    EMAIL_MAX_LENGTH,
    PatientForm,
    SafetyQuestionsMixin,
    WaitingListForm,
    overlapping_periods_in,
    waiting_list_keeping,
)
from bookings.models import Appointment, TimeOff, WorkingHours
from clinic.privacy_notices import current_privacy_notice_version
from staff.insights import Period

DATETIME_LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
# Dates from user input stay inside years that date arithmetic survives.
FIRST_YEAR, LAST_YEAR = 2000, 9000


def _check_year(day):
    if day and not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise forms.ValidationError(f"Please choose a date between {FIRST_YEAR} and {LAST_YEAR}.")
    return day


class DayForm(forms.Form):
    """The date picker of the day and week views; a missing or bad date means today."""

    date = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date", "class": "form-control"}, format="%Y-%m-%d")
    )

    def clean_date(self):
        return _check_year(self.cleaned_data["date"])


class PhoneBookingForm(SafetyQuestionsMixin, PatientForm):
    """A caller booked by reception: the same red-flag questions as online (any "yes": no booking, urgent
    advice to read out), the privacy notice told, and fewer details, because a person is on the line."""

    phone = forms.CharField(max_length=32, label="Phone")
    email = forms.EmailField(
        required=False,
        max_length=EMAIL_MAX_LENGTH,
        label="E-mail (optional)",
        help_text="For the confirmation e-mail.",
    )
    note = forms.CharField(
        required=False, max_length=1000, label="Note (optional)", widget=forms.Textarea(attrs={"rows": 3})
    )
    privacy_notice_told = forms.BooleanField(
        error_messages={"required": "Please tell the caller how we use their details, then tick this."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["privacy_notice_told"].label = (
            "I have told the caller how the clinic uses their details "
            f"(privacy notice, version {self.privacy_notice_version})."
        )

    @property
    def privacy_notice_version(self) -> str:
        return current_privacy_notice_version()


class StaffCancelForm(forms.Form):
    reason = forms.CharField(max_length=300, label="Reason", widget=forms.Textarea(attrs={"rows": 2}))
    notify_patient = forms.BooleanField(
        required=False, initial=True, label="Tell the patient (e-mail, when we have their address)"
    )


class StatusForm(forms.Form):
    STATUS_CHOICES = [
        (Appointment.Status.ARRIVED, "Arrived"),
        (Appointment.Status.COMPLETED, "Completed"),
        (Appointment.Status.NO_SHOW, "Did not attend"),
        (Appointment.Status.BOOKED, "Back to booked"),
    ]
    status = forms.ChoiceField(choices=STATUS_CHOICES)


class BlockForm(forms.Form):
    reason = forms.CharField(max_length=200, label="Reason", help_text="For example: team meeting. Staff only.")


class SearchForm(forms.Form):
    q = forms.CharField(
        max_length=120,
        min_length=2,
        label="Name, e-mail or phone",
        error_messages={
            "min_length": "Type at least 2 characters: one letter would find nearly everyone.",
            "max_length": "Type at most 120 characters: a name, an e-mail address or a phone number.",
        },
    )


class ExportForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    end = forms.DateField(label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    MAX_DAYS = 366

    def clean_start(self):
        return _check_year(self.cleaned_data["start"])

    def clean_end(self):
        return _check_year(self.cleaned_data["end"])

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if end < start:
                raise forms.ValidationError("The end date is before the start date.")
            if (end - start).days > self.MAX_DAYS:
                raise forms.ValidationError("Please export at most a year at a time.")
        return cleaned


SMALL_INPUT = "form-control form-control-sm"


class WorkingHoursForm(forms.ModelForm):
    """One period of a practitioner's week. An end before the start, or "valid until" before "valid from",
    is refused by the model's constraints, in the clinic's words (their violation_error_message)."""

    class Meta:
        model = WorkingHours
        fields = ["weekday", "start_time", "end_time", "valid_from", "valid_until"]
        # Rendered cell by cell in a table (not through crispy), so the Bootstrap classes are set here.
        widgets = {
            "start_time": forms.TimeInput(attrs={"type": "time", "class": SMALL_INPUT}, format="%H:%M"),
            "end_time": forms.TimeInput(attrs={"type": "time", "class": SMALL_INPUT}, format="%H:%M"),
            "valid_from": forms.DateInput(attrs={"type": "date", "class": SMALL_INPUT}, format="%Y-%m-%d"),
            "valid_until": forms.DateInput(attrs={"type": "date", "class": SMALL_INPUT}, format="%Y-%m-%d"),
        }


class BaseWorkingHoursFormSet(BaseModelFormSet):
    def add_fields(self, form, index):
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            form.fields["DELETE"].widget.attrs["class"] = "form-check-input"

    def clean(self):
        """Two periods of one weekday that overlap would lay out overlapping slots, which the database refuses."""
        super().clean()
        if any(self.errors):
            return
        overlapping = overlapping_periods_in(self)
        if overlapping:
            one, other = overlapping
            day = dict(WorkingHours.Weekday.choices)[one["weekday"]]
            raise forms.ValidationError(
                f"Two periods on {day} overlap ({one['start_time']:%H:%M}-{one['end_time']:%H:%M} and "
                f"{other['start_time']:%H:%M}-{other['end_time']:%H:%M}). A lunch break is two periods "
                "that do not touch."
            )


WorkingHoursFormSet = modelformset_factory(
    WorkingHours, form=WorkingHoursForm, formset=BaseWorkingHoursFormSet, extra=2, can_delete=True
)


class TimeOffForm(forms.ModelForm):
    """Time off for one practitioner, or a clinic closure (the view decides which). Times are clinic local time.

    An end before the start is refused by the model's constraint, in the clinic's words.
    """

    class Meta:
        model = TimeOff
        fields = ["starts_at", "ends_at", "reason"]
        labels = {"starts_at": "From", "ends_at": "Until"}
        widgets = {
            "starts_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL_FORMAT),
            "ends_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL_FORMAT),
        }

    def clean_ends_at(self):
        ends_at = self.cleaned_data["ends_at"]
        # A period already over changes no slot and would be listed nowhere: saying "saved" would mislead.
        if ends_at is not None and ends_at <= timezone.now():
            raise forms.ValidationError("That time is over already: time off and closures are for what lies ahead.")
        return ends_at


class ErasureForm(forms.Form):
    """Erasure on request (bookings.privacy.patient_data_erase): a reference to find the request by, never a name."""

    reference = forms.CharField(
        max_length=100,
        label="Request reference",
        help_text="The letter's or e-mail's date and your initials, for example 2026-12-01-RS. No names.",
    )
    notify_patient = forms.BooleanField(
        required=False,
        initial=True,
        label="Tell the patient their upcoming appointments are cancelled (e-mail, when we have their address)",
    )


class WaitingListCallerForm(SafetyQuestionsMixin, WaitingListForm):
    """A caller put on the waiting list by reception: the same red-flag questions as a phone booking (any
    "yes": not added, urgent advice to read out), and the privacy notice told."""

    privacy_notice_told = forms.BooleanField(
        error_messages={"required": "Please tell the caller how we use their details, then tick this."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].help_text = "Offers of a time go by e-mail: the caller must give one."
        self.fields["privacy_notice_told"].label = (
            "I have told the caller how the clinic uses their details "
            f"(privacy notice, version {self.privacy_notice_version})."
        )
        self.fields["privacy_notice_told"].help_text = f"Read out: {waiting_list_keeping()}"

    @property
    def privacy_notice_version(self) -> str:
        return current_privacy_notice_version()


class OfferByHandForm(forms.Form):
    """Reception offers one of the next bookable times (choices set by the view) to one waiting person."""

    slot = forms.TypedChoiceField(
        coerce=int,
        label="Time to offer",
        error_messages={
            "required": "Choose a time.",
            "invalid_choice": "That time can no longer be offered: choose one from the list.",
        },
    )

    def __init__(self, *args, slot_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slot"].choices = [("", "Choose a time")] + slot_choices


class InsightsPeriodForm(forms.Form):
    """The Insights page's period: the last 4, 12 or 52 weeks, or two dates (both, or neither)."""

    WEEKS = [(4, "Last 4 weeks"), (12, "Last 12 weeks"), (52, "Last 52 weeks")]
    DEFAULT_WEEKS = 12
    # Two dates at most a year and a week apart: 53 weekly bars, as many as "last 52 weeks" can touch.
    MAX_DAYS = 371

    weeks = forms.TypedChoiceField(label="Period", choices=WEEKS, coerce=int, required=False)
    start = forms.DateField(
        label="Or from", required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    end = forms.DateField(
        label="To (inclusive)", required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean_start(self):
        return _check_year(self.cleaned_data["start"])

    def clean_end(self):
        return _check_year(self.cleaned_data["end"])

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if self.errors:
            return cleaned
        if bool(start) != bool(end):
            raise forms.ValidationError("Please give both dates, or choose one of the periods.")
        if start and end:
            if end < start:
                raise forms.ValidationError("The end date is before the start date.")
            if (end - start).days >= self.MAX_DAYS:
                raise forms.ValidationError("Please choose at most a year (371 days) at a time.")
        return cleaned

    def period(self, *, today):
        """The chosen period (a valid form): the two dates if given, else the last N weeks to today."""
        if self.cleaned_data.get("start"):
            return Period(self.cleaned_data["start"], self.cleaned_data["end"])
        return Period.last_weeks(self.cleaned_data.get("weeks") or self.DEFAULT_WEEKS, today=today)
