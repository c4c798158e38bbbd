from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinic.models import TwoFactorEvent
from clinic.two_factor import two_factor_reset


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record kept as it was written (an audit trail, an outbox): listed and read, never added, edited or deleted."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TwoFactorEvent)
class TwoFactorEventAdmin(ReadOnlyAdmin):
    """The audit of enrolments and resets: read only, nobody edits or deletes the record."""

    list_display = ["at", "kind", "subject", "actor", "note"]
    list_filter = ["kind"]
    list_select_related = ["subject", "actor"]


# django-otp's own admin shows and edits each authenticator's secret: anyone who reads it can make the codes.
# Superusers reset an account's second factor with the action below instead.
admin.site.unregister(TOTPDevice)

User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class ClinicUserAdmin(UserAdmin):
    actions = ["reset_two_factor"]

    @admin.action(description="Reset two-factor sign-in (lost phone)", permissions=["reset_two_factor"])
    def reset_two_factor(self, request, queryset):
        now = timezone.now()
        for subject in queryset:
            two_factor_reset(
                subject=subject,
                actor=request.user,
                kind=TwoFactorEvent.Kind.RESET_BY_SUPERUSER,
                now=now,
                keep_session_key=request.session.session_key,
            )
        self.message_user(
            request,
            f"Reset the second factor of {len(queryset)} account(s): they set up an app at next sign-in.",
            messages.SUCCESS,
        )

    def has_reset_two_factor_permission(self, request):
        return request.user.is_superuser
