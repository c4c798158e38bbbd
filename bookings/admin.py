from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Concat
from django.forms.models import BaseInlineFormSet
from django.utils import timezone

from bookings.forms import overlapping_periods_in
from bookings.models import (
    Appointment,
    AppointmentEvent,
    CallbackRequest,
    OutboundMessage,
    PatientDataAccess,
    PatientDataErasure,
    Practitioner,
    PurgeRun,
    Slot,
    TimeOff,
    WaitingListEntry,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
    WorkingHours,
    working_periods_overlap,
)
from bookings.phones import normalise_phone
from bookings.privacy import patient_data_access_record
from bookings.schedule import schedule_change_apply
from clinic.admin import ReadOnlyAdmin


def _apply(request, change) -> None:
    """Save CHANGE and regenerate the slots it touched (schedule_change_apply); say what happened."""
    report = schedule_change_apply(now=timezone.now(), change=change)
    messages.info(request, f"Slots updated: {report.created} created, {report.removed} removed.")
    if report.conflicts:
        messages.warning(
            request,
            f"{len(report.conflicts)} booked appointment(s) no longer fit the working hours or time off; "
            "they were left in place: move or cancel them from the reception calendar: "
            + ", ".join(str(slot) for slot in report.conflicts[:20])
            + ("..." if len(report.conflicts) > 20 else "."),
        )


class RegeneratesSlots:
    """Admin for rows that shape the schedule (hours, time off): every save or delete, including
    the "delete selected" action, regenerates the slots of the practitioner before and after."""

    def save_model(self, request, obj, form, change):
        save = super().save_model

        def save_and_touch():
            # Moved to another practitioner: the first one's time is free again.
            before = type(obj).objects.select_related("practitioner").get(pk=obj.pk).practitioner if change else None
            save(request, obj, form, change)
            return [obj.practitioner] + ([before] if change else [])

        _apply(request, save_and_touch)

    def delete_model(self, request, obj):
        delete = super().delete_model

        def delete_and_touch():
            practitioner = obj.practitioner
            delete(request, obj)
            return [practitioner]

        _apply(request, delete_and_touch)

    def delete_queryset(self, request, queryset):
        # The change form and the delete page run in the admin's own transaction; the
        # "delete selected" action does not: schedule_change_apply makes it all or nothing too.
        delete = super().delete_queryset

        def delete_and_touch():
            practitioners = [each.practitioner for each in queryset.select_related("practitioner")]
            delete(request, queryset)
            return practitioners

        _apply(request, delete_and_touch)


def _overlap_message(one: dict, other: dict) -> str:
    day = dict(WorkingHours.Weekday.choices)[one["weekday"]]
    return (
        f"This period overlaps another on {day} ({one['start_time']:%H:%M}-{one['end_time']:%H:%M} and "
        f"{other['start_time']:%H:%M}-{other['end_time']:%H:%M}): the slots would overlap. "
        "A lunch break is two periods that do not touch."
    )


_PERIOD_FIELDS = ["weekday", "start_time", "end_time", "valid_from", "valid_until"]


class WorkingHoursInlineFormSet(BaseInlineFormSet):
    """The practitioner's periods as edited together on their admin page: none may overlap another."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        overlapping = overlapping_periods_in(self)
        if overlapping:
            raise ValidationError(_overlap_message(*overlapping))


class WorkingHoursAdminForm(forms.ModelForm):
    """One period on its own admin page: it may not overlap the practitioner's other periods (reception's
    hours page would then refuse every save until someone found and removed it)."""

    class Meta:
        model = WorkingHours
        fields = ["practitioner", *_PERIOD_FIELDS]

    def clean(self):
        cleaned = super().clean()
        if self.errors or not cleaned.get("practitioner"):
            return cleaned
        others = WorkingHours.objects.filter(practitioner=cleaned["practitioner"]).exclude(pk=self.instance.pk)
        for other in others.values(*_PERIOD_FIELDS):
            if working_periods_overlap(cleaned, other):
                raise ValidationError(_overlap_message(cleaned, other))
        return cleaned


class WorkingHoursInline(admin.TabularInline):
    model = WorkingHours
    formset = WorkingHoursInlineFormSet
    extra = 1


@admin.register(Practitioner)
class PractitionerAdmin(admin.ModelAdmin):
    list_display = ["full_name", "profession", "is_active", "offers_free_consultation", "list_order"]
    list_editable = ["list_order"]
    list_filter = ["is_active", "offers_free_consultation"]
    search_fields = ["display_name", "profession"]
    inlines = [WorkingHoursInline]

    def save_related(self, request, form, formsets, change):
        save_related = super().save_related

        def save_and_touch():
            save_related(request, form, formsets, change)
            return [form.instance]

        _apply(request, save_and_touch)
        practitioner = form.instance
        if not practitioner.offers_consultations_online:
            self._warn_of_bookings_kept(request, practitioner)

    @staticmethod
    def _warn_of_bookings_kept(request, practitioner) -> None:
        """A practitioner who stops taking bookings keeps the ones they have (found by hand: nothing said so):
        reception moves or cancels them, and the patients are told by that."""
        kept = list(
            Appointment.objects.live()
            .filter(slot__practitioner=practitioner, slot__starts_at__gt=timezone.now())
            .select_related("slot")
            .order_by("slot__starts_at")
        )
        if kept:
            zone = timezone.get_current_timezone()
            messages.warning(
                request,
                f"{practitioner.full_name} is not taking online bookings but still has {len(kept)} upcoming "
                "appointment(s), left in place: move or cancel them from the reception calendar: "
                + ", ".join(f"{each.slot.starts_at.astimezone(zone):%a %d %b %H:%M}" for each in kept[:20])
                + ("..." if len(kept) > 20 else "."),
            )


@admin.register(WorkingHours)
class WorkingHoursAdmin(RegeneratesSlots, admin.ModelAdmin):
    form = WorkingHoursAdminForm
    list_display = ["practitioner", "weekday", "start_time", "end_time", "valid_from", "valid_until"]
    list_filter = ["practitioner", "weekday"]
    list_select_related = ["practitioner"]


@admin.register(TimeOff)
class TimeOffAdmin(RegeneratesSlots, admin.ModelAdmin):
    list_display = ["__str__", "practitioner", "starts_at", "ends_at", "reason"]
    list_filter = ["practitioner"]
    list_select_related = ["practitioner"]
    date_hierarchy = "starts_at"


@admin.register(Slot)
class SlotAdmin(admin.ModelAdmin):
    """Read-only times and state: slots come from working hours and time off (slots_generate), and a
    booked slot changes only through the services, which keep the history, e-mail the patient and
    bump the calendar SEQUENCE. Here a change would do none of that."""

    list_display = ["practitioner", "starts_at", "ends_at", "state", "blocked_reason"]
    list_filter = ["state", "practitioner"]
    date_hierarchy = "starts_at"
    list_select_related = ["practitioner"]
    readonly_fields = ["practitioner", "starts_at", "ends_at", "state", "blocked_by"]

    def has_add_permission(self, request):
        return False


class AppointmentEventInline(admin.TabularInline):
    model = AppointmentEvent
    extra = 0
    can_delete = False
    readonly_fields = ["at", "actor_label", "action", "from_value", "to_value", "detail"]
    exclude = ["actor"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Appointment)
class AppointmentAdmin(admin.ModelAdmin):
    """Read-only here: every change goes through the services, which keep the history."""

    list_display = ["__str__", "slot", "status", "source", "created_at"]
    list_filter = ["status", "source"]
    list_select_related = ["slot__practitioner"]
    # Searched by reception's own rule (AppointmentQuerySet.matching), in get_search_results.
    search_fields = ["last_name"]
    search_help_text = "Name, e-mail or phone, as reception's search finds them."
    inlines = [AppointmentEventInline]

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(pk__in=Appointment.objects.matching(search_term).values("pk")), False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The admin's page of an appointment shows the patient's details: recorded like reception's.
        if object_id and object_id.isdigit():
            patient_data_access_record(request, page="admin:bookings_appointment_change", appointments=[int(object_id)])
        return super().change_view(request, object_id, form_url, extra_context)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ReadOnlyAdmin):
    """The e-mail outbox, read-only: the worker owns every row. Staff can only ask for a retry."""

    list_display = [
        "created_at",
        "kind",
        "appointment",
        "waiting_list_offer",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["appointment", "waiting_list_offer"]
    date_hierarchy = "created_at"
    # Not the raw manage token: it is a password, shown to nobody.
    fields = readonly_fields = [
        "kind",
        "appointment",
        "waiting_list_offer",
        "recipient",
        "slot",
        "sequence",
        "created_at",
        "send_after",
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_by",
        "lease_expires_at",
        "sent_at",
        "last_error",
    ]
    actions = ["retry_now"]

    @admin.action(description="Try again now (failed messages only)")
    def retry_now(self, request, queryset):
        count = queryset.filter(status=OutboundMessage.Status.FAILED).update(
            status=OutboundMessage.Status.PENDING, attempts=0, next_attempt_at=timezone.now(), claimed_by=""
        )
        messages.info(request, f"{count} message(s) will be sent again by the e-mail worker.")


@admin.register(CallbackRequest)
class CallbackRequestAdmin(admin.ModelAdmin):
    """Call-back requests from the Contact page. Reception works them on its own screen; here an
    administrator finds an old one, or deletes one when a caller asks to be forgotten."""

    list_display = ["created_at", "name", "phone", "preferred_time", "done_at", "done_by"]
    list_filter = [("done_at", admin.EmptyFieldListFilter)]
    list_select_related = ["done_by"]
    search_fields = ["name", "phone"]
    date_hierarchy = "created_at"
    # Who asked when, and who called back, are records: only what the caller said can be corrected.
    readonly_fields = ["created_at", "done_at", "done_by"]

    def has_add_permission(self, request):
        return False


class WebhookSubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https", label="URL")
    events = forms.MultipleChoiceField(choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookSubscription
        fields = ["name", "url", "events", "include_contact_details", "is_active", "paused_at"]
        help_texts = {"url": "https:// only, to a public address. Checked again at every delivery."}


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    """Subscriptions; one that kept failing shows as paused (clear "paused at" to start it again)."""

    form = WebhookSubscriptionForm
    list_display = ["name", "url", "is_active", "paused_at", "failures_in_a_row", "last_error"]
    list_filter = ["is_active", ("paused_at", admin.EmptyFieldListFilter)]
    readonly_fields = ["failures_in_a_row", "last_error", "created_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            from bookings.webhooks import new_secret

            obj.secret = new_secret()
            obj.created_at = timezone.now()
        if change and "paused_at" in form.changed_data and obj.paused_at is None:
            obj.failures_in_a_row = 0
        super().save_model(request, obj, form, change)
        if not change:
            # Shown once: it is never displayed again.
            messages.warning(
                request, f"The signing secret, shown only this once: {obj.secret}. Copy it into the receiving system."
            )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["message_id", "event", "subscription", "status", "attempts", "created_at", "last_error"]
    list_filter = ["status", "event"]
    # The record of what was sent: not edited by hand.
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]


@admin.register(PatientDataAccess)
class PatientDataAccessAdmin(ReadOnlyAdmin):
    """Who opened which patients' details (bookings.privacy.patient_data_access_record), read-only.

    Filter by staff member on the right; by patient with the search box, which finds the patient's
    appointments by reception's own rule (and call-backs and waiting-list entries with that name, e-mail
    or phone) and lists every view that showed any of them.
    """

    list_display = [
        "at",
        "username",
        "page",
        "appointment_ids",
        "callback_ids",
        "waiting_list_entry_ids",
        "client_address",
    ]
    list_filter = ["username", "page"]
    date_hierarchy = "at"
    search_fields = ["username"]
    search_help_text = "A patient's name, e-mail or phone (reception's search rule)."

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        appointment_ids = list(Appointment.objects.matching(search_term).values_list("pk", flat=True)[:1000])
        callback_ids = list(
            CallbackRequest.objects.filter(name__icontains=search_term.strip()).values_list("pk", flat=True)[:1000]
        )
        term = search_term.strip()
        entry_match = models.Q(email__iexact=term) | models.Q(name_key__icontains=term)
        if phone := normalise_phone(term):
            entry_match |= models.Q(phone_normalised=phone)
        entry_ids = list(
            WaitingListEntry.objects.annotate(name_key=Concat("first_name", models.Value(" "), "last_name"))
            .filter(entry_match)
            .values_list("pk", flat=True)[:1000]
        )
        return queryset.filter(
            models.Q(appointment_ids__overlap=appointment_ids)
            | models.Q(callback_ids__overlap=callback_ids)
            | models.Q(waiting_list_entry_ids__overlap=entry_ids)
        ), False


@admin.register(PatientDataErasure)
class PatientDataErasureAdmin(ReadOnlyAdmin):
    """Erasures on request: who, when, the reference and the counts (never the data)."""

    list_display = ["at", "by_username", "reference", "counts"]
    search_fields = ["reference"]


@admin.register(PurgeRun)
class PurgeRunAdmin(ReadOnlyAdmin):
    """The daily retention purge's runs and what each anonymised."""

    list_display = ["at", "counts"]
