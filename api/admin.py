from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from api.models import ApiKey, ApiScope


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "revoked_at"]
        help_texts = {"revoked_at": "Set a time to revoke the key: it stops working at once."}


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "key_start", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    readonly_fields = ["key_start", "created_at", "last_used_at"]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = ApiKey.issue(name=obj.name, scopes=form.cleaned_data["scopes"], now=timezone.now())
        obj.pk = key.pk
        obj.__dict__.update(key.__dict__)
        # Shown once: only the hash is kept.
        messages.warning(request, f"The key, shown only this once: {raw}. Copy it into the other system now.")

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        messages.info(request, f"{revoked} key(s) revoked.")
