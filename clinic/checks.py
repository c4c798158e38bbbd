"""System checks of our own settings, run by `manage.py check` (the deploy ones by `check --deploy`)."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def proxy_client_address_is_trusted(app_configs, **kwargs):
    """Behind a TLS proxy, REMOTE_ADDR is the proxy: every patient would share one rate limit.

    SECURE_PROXY_SSL_HEADER says a proxy is in front; without TRUST_X_FORWARDED_FOR the rate
    limits (and django-axes) count the proxy's address, so one person could block online
    booking and staff sign-in for everyone.
    """
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None) and not settings.TRUST_X_FORWARDED_FOR:
        return [
            Warning(
                "SECURE_PROXY_SSL_HEADER is set but TRUST_X_FORWARDED_FOR is off: behind the proxy every "
                "visitor has the proxy's address, so all patients share one rate limit.",
                hint="Have the proxy set X-Forwarded-For (nginx: proxy_set_header X-Forwarded-For "
                "$proxy_add_x_forwarded_for) and set TRUST_X_FORWARDED_FOR=true. See README.md, "
                "'Production deployment'.",
                id="clinic.W001",
            )
        ]
    return []


@register()
def privacy_notice_version_has_a_text(app_configs, **kwargs):
    """Every booking records PRIVACY_NOTICE_VERSION: it must be a version whose text the clinic keeps."""
    from clinic.privacy_notices import notice_has_text, privacy_notice

    notice = privacy_notice(settings.PRIVACY_NOTICE_VERSION)
    if notice is None or not notice_has_text(notice):
        return [
            Error(
                f"PRIVACY_NOTICE_VERSION is {settings.PRIVACY_NOTICE_VERSION!r}, which has no text.",
                hint="Name a version listed in clinic/privacy_notices.py, with its file under "
                "templates/clinic/privacy_notices/.",
                id="clinic.E001",
            )
        ]
    return []
