from datetime import datetime

from django.db import models
from django.db.models import Q

from bookings.models import hash_token, new_token


class ApiScope(models.TextChoices):
    AVAILABILITY_READ = "availability:read", "Read availability (when a key is sent to the public endpoints)"
    APPOINTMENTS_READ = "appointments:read", "Read appointments, with the patient's details"
    APPOINTMENTS_WRITE = "appointments:write", "Book, move, cancel and record attendance"


class ApiKeyQuerySet(models.QuerySet):
    def usable(self):
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A key another system sends as "Authorization: Bearer <key>". Only its hash is stored; the key itself is
    shown once, in the admin, when it is made. Revoking sets `revoked_at`: the key answers 401 from then on."""

    PREFIX = "clk_"

    name = models.CharField(max_length=100, help_text="Which system uses it: shown in the call log.")
    key_hash = models.CharField(max_length=64, editable=False)
    # The first characters, to tell keys apart in the admin without storing the key.
    key_start = models.CharField(max_length=12, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"
        constraints = [
            models.UniqueConstraint(fields=["key_hash"], name="api_key_hash_unique"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(revoked_at__isnull=True), name="api_key_live_name_unique"
            ),
        ]

    def __str__(self):
        return self.name

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])

    @classmethod
    def issue(cls, *, name: str, scopes: list[str], now: datetime) -> tuple["ApiKey", str]:
        """A new key: the row (holding the hash) and the raw key, to show once."""
        raw = cls.PREFIX + new_token()
        key = cls.objects.create(
            name=name, scopes=list(scopes), key_hash=hash_token(raw), key_start=raw[:10], created_at=now
        )
        return key, raw

    @classmethod
    def find(cls, raw: str):
        """The key behind RAW, revoked or not, or None."""
        if not raw.startswith(cls.PREFIX) or len(raw) > 100:
            return None
        return cls.objects.filter(key_hash=hash_token(raw)).first()
