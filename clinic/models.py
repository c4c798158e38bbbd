import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import models
from django_otp.models import Device, ThrottlingMixin


class RateLimitCounter(models.Model):
    """POSTs one address sent to one bucket in one fixed window (clinic.ratelimit counts them).

    The table is UNLOGGED (migration 0001): a counter is cheap to write, is not replicated, and
    after a database crash starts again from empty, which only forgives a few POSTs.
    """

    pk = models.CompositePrimaryKey("bucket", "address", "window_start")
    bucket = models.CharField(max_length=40)
    address = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.bucket} {self.address} {self.window_start:%H:%M:%S}: {self.count}"


class BackupCodeDevice(ThrottlingMixin, Device):
    """Ten single-use backup codes for when the phone is lost, stored hashed.

    django-otp's StaticDevice keeps its tokens in plain text: anyone who reads the table (a backup, a replica)
    could sign in with them. Here each code is kept as a salted PBKDF2 hash, and a used code is deleted.
    """

    def get_throttle_factor(self):
        return 1

    def verify_token(self, token):
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        normalised = normalise_backup_code(token)
        for code in self.codes.all():
            if normalised and code.matches(normalised):
                code.delete()
                self.throttle_reset(commit=False)
                self.save()
                return True
        self.throttle_increment(commit=True)
        return False


def normalise_backup_code(token) -> str:
    # People type them with or without the hyphens, in either case.
    return "".join(ch for ch in str(token).lower() if ch.isalnum())


class BackupCode(models.Model):
    device = models.ForeignKey(BackupCodeDevice, related_name="codes", on_delete=models.CASCADE)
    salt = models.CharField(max_length=32)
    code_hash = models.CharField(max_length=64)

    ITERATIONS = 20_000

    def __str__(self):
        return "backup code (hashed)"

    @classmethod
    def hash(cls, code: str, salt: str) -> str:
        return hashlib.pbkdf2_hmac("sha256", code.encode(), salt.encode(), cls.ITERATIONS).hex()

    @classmethod
    def for_code(cls, device, code: str) -> "BackupCode":
        salt = secrets.token_hex(16)
        return cls(device=device, salt=salt, code_hash=cls.hash(normalise_backup_code(code), salt))

    def matches(self, normalised: str) -> bool:
        return hmac.compare_digest(self.hash(normalised, self.salt), self.code_hash)


class TwoFactorEvent(models.Model):
    """Who enrolled or reset whose second factor, and when: the audit the issue asks for."""

    class Kind(models.TextChoices):
        ENROLLED = "enrolled", "Enrolled an authenticator app"
        RESET_OWN = "reset_own", "Reset their own second factor"
        RESET_BY_SUPERUSER = "reset_by_superuser", "Second factor reset by a superuser (admin)"
        RESET_BY_COMMAND = "reset_by_command", "Second factor reset with manage.py reset_2fa"

    at = models.DateTimeField()
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # Who did it: None for the command line, which has no signed-in person (the shell's user is in `note`).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    subject = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_kind_display()}"


class TwoFactorExemption(models.Model):
    """A demo account that may skip the second factor, honoured only with DEBUG on (load_demo_data makes them)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    def __str__(self):
        return f"Demo exemption for {self.user}"
