"""The privacy notice's versions: each one's text is a file, templates/clinic/privacy_notices/<version>.html,
published on the date listed here. A booking stores the version the patient agreed to
(`current_privacy_notice_version`), so every version ever shown is kept, and staff can read it again.

To publish a new version: add its file and a line below, then set PRIVACY_NOTICE_VERSION to it (the default
is the newest). `manage.py check` refuses a version without a file (clinic.E001).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.template.loader import get_template


@dataclass(frozen=True)
class PrivacyNotice:
    version: str
    published_on: date

    @property
    def template_name(self) -> str:
        return f"clinic/privacy_notices/{self.version}.html"


# Oldest first. Never edit or remove a published one: bookings point at it.
NOTICES = [
    PrivacyNotice("2026-11", date(2026, 11, 1)),
    PrivacyNotice("2026-12", date(2026, 12, 1)),
    # The waiting list (merged the same day) keeps details 2026-12 does not mention: a new version, not an edit.
    PrivacyNotice("2026-12b", date(2026, 12, 1)),
]


def current_privacy_notice_version() -> str:
    """The version the privacy page shows and every booking records (online and by phone)."""
    return settings.PRIVACY_NOTICE_VERSION


def privacy_notice(version: str) -> PrivacyNotice | None:
    return next((notice for notice in NOTICES if notice.version == version), None)


def current_privacy_notice() -> PrivacyNotice:
    notice = privacy_notice(current_privacy_notice_version())
    if notice is None:
        raise LookupError("PRIVACY_NOTICE_VERSION names no notice in clinic/privacy_notices.py")
    return notice


def notice_has_text(notice: PrivacyNotice) -> bool:
    try:
        get_template(notice.template_name)
    except Exception:  # TemplateDoesNotExist, or a syntax error: either way there is no text to show
        return False
    return True


def describe_period(period: timedelta) -> str:
    """A retention period as the notice says it: 2 years, 6 months, 30 days."""
    days = period.days
    if days >= 365 and days % 365 == 0:
        years = days // 365
        return f"{years} year{'s' if years != 1 else ''}"
    months = round(days / 30.44)
    if days >= 60 and abs(months * 30.44 - days) < 2:
        return f"{months} months"
    return f"{days} day{'s' if days != 1 else ''}"


def retention_periods() -> dict[str, str]:
    """settings.RETENTION in words, for the privacy notice: its table always says what the purge does."""
    return {kind: describe_period(period) for kind, period in settings.RETENTION.items()}
