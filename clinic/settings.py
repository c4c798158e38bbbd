"""Settings for the clinic site, all from environment variables.

Safe defaults for local development; a bad value stops the process with a message that
names the variable. See README.md, "Configuration", for the full list.
"""

import os
import zoneinfo
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DATABASE_URL = env_str("DATABASE_URL")

# Debug defaults to on only for local development, which is what running without
# DATABASE_URL (on the embedded database) means. Production sets DATABASE_URL.
DEBUG = env_bool("DJANGO_DEBUG", default=not DATABASE_URL)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = "django-insecure-local-development-only-not-for-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must list the site's host names when DJANGO_DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# The public address of the site, for links in e-mails, canonical URLs and the sitemap. Without it, the
# development server's own address: `PORT=8911 make run` serves on PORT, so its e-mails must link there too.
PORT = env_int("PORT", 8000, minimum=1)
if PORT > 65535:
    raise ImproperlyConfigured(f"PORT must be a TCP port (1-65535), not {PORT}")
SITE_URL = (env_str("SITE_URL") or f"http://127.0.0.1:{PORT}").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.sitemaps",
    "csp",
    "crispy_forms",
    "crispy_bootstrap5",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "clinic",
    "articles",
    "bookings",
    "staff",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Errors under /api/ as problem details, whichever layer below made them; each API call logged.
    "api.middleware.ApiProblemMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "clinic.middleware.RejectNullBytesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "clinic.middleware.StaffSessionIdleExpiryMiddleware",
    # The second factor lives in the session: request.user.is_verified() (django-otp).
    "django_otp.middleware.OTPMiddleware",
    # A signed-in user reaches /staff/ and /admin/ only after the code step (or enrolment).
    "clinic.two_factor.StaffTwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "clinic.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "clinic.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "clinic.context_processors.clinic",
            ],
        },
    },
]

WSGI_APPLICATION = "clinic.wsgi.application"

# -- Database ---------------------------------------------------------------------------
CONN_MAX_AGE = env_int("DJANGO_CONN_MAX_AGE", 60)
if DATABASE_URL:
    import dj_database_url

    try:
        _database = dj_database_url.parse(DATABASE_URL, conn_max_age=CONN_MAX_AGE, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if _database["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_URL must point to PostgreSQL (postgres://...).")
    # dj-database-url puts a socket folder in OPTIONS; dbshell only reads HOST.
    if not _database.get("HOST") and "host" in _database.get("OPTIONS", {}):
        _database["HOST"] = _database["OPTIONS"].pop("host")
else:
    from clinic.embedded_db import EmbeddedServer

    _embedded = EmbeddedServer.for_pgdata(env_str("EMBEDDED_PGDATA") or None)
    _database = {
        "ENGINE": "clinic.embedded_backend",
        "EMBEDDED_PGDATA": str(_embedded.pgdata),
        **_embedded.connection_settings(),
        "CONN_MAX_AGE": CONN_MAX_AGE,
        # After a database restart, a pooled connection is checked before use instead of
        # costing each worker one failed request.
        "CONN_HEALTH_CHECKS": True,
    }
# Several test runs may share one server (e.g. two checkouts): the suffix keeps their test databases apart.
_database["TEST"] = {"NAME": f"test_{_database['NAME']}{env_str('CLINIC_TEST_DB_SUFFIX')}"}
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# -- Authentication ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes counts failed sign-ins; its backend comes first so a locked-out login stops there.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Lock out the pair (username, address), never the username alone: an attacker elsewhere
# cannot lock a colleague out, and one address cannot guess one account's password.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
# Failures are forgiven only once the whole sign-in (password, then code) succeeds: clinic/two_factor.py resets
# them. Resetting on the password step would let anyone holding the password guess codes without end.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_TEMPLATE = "axes/lockout.html"
# The attempted username is stored in a varchar(255): longer ones are cut to fit (clinic/signin.py).
AXES_USERNAME_CALLABLE = "clinic.signin.axes_username"
# Set when a proxy in front of the app sets X-Forwarded-For: the rate limits and axes then count the
# real client, the last hop the proxy appended.
TRUST_X_FORWARDED_FOR = env_bool("TRUST_X_FORWARDED_FOR", False)
if TRUST_X_FORWARDED_FOR:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
    AXES_IPWARE_PROXY_ORDER = "right-most"
LOGIN_URL = "login"
# Every staff account and the admin need a second factor (a code from an authenticator app) by default.
STAFF_REQUIRE_2FA = env_bool("STAFF_REQUIRE_2FA", True)
LOGIN_REDIRECT_URL = "staff_home"
LOGOUT_REDIRECT_URL = "home"

# Staff sessions end after an hour without activity.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 60 * 60, minimum=60)
# Signed-in staff sessions are saved on every request (idle expiry) by
# clinic.middleware.StaffSessionIdleExpiryMiddleware; a patient's only when it changes.
SESSION_SAVE_EVERY_REQUEST = False
SESSION_ENGINE = "clinic.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# -- Time -------------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
USE_I18N = True
USE_TZ = True
TIME_ZONE = env_str("CLINIC_TIME_ZONE", "Europe/London")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(f"CLINIC_TIME_ZONE {TIME_ZONE!r} is not a known time zone name.") from None

# -- Static files -----------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# -- Security ---------------------------------------------------------------------------
# Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto so Django
# knows the request was HTTPS; SECURE_SSL_REDIRECT can be switched off when the proxy redirects.
if env_str("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + env_str("SECURE_PROXY_SSL_HEADER").upper().replace("-", "_"), "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "clinic.views.csrf_failure"
X_FRAME_OPTIONS = "DENY"
# HSTS preloading is a commitment made by submitting the domain to browser vendors, so it
# is the clinic's decision (SECURE_HSTS_PRELOAD=true), not a default; the check that nags
# about it is silenced only while it is off.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# Content-Security-Policy (django-csp): everything from this site only, no inline script
# or style anywhere (templates use classes; JSON-LD is a data block, never executed).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# -- Caches ------------------------------------------------------------------------------
# Public pages (the time page, the articles) rendered once per process and served again until the
# rows they show change; exact, because PostgreSQL triggers version those rows (clinic/page_cache.py).
PAGE_CACHE_ENABLED = env_bool("PAGE_CACHE_ENABLED", True)

# Django's cache, in the database so every worker process sees the same values. (The
# public rate limit has its own one-statement counter table: clinic.models.RateLimitCounter.)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "clinic_cache",
    }
}

# -- E-mail -----------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "clinic@example.org")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
else:
    # Without a mail server, messages are written as files to read in development.
    EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
    EMAIL_FILE_PATH = BASE_DIR / "var" / "mail"
RECEPTION_NOTIFY_EMAIL = env_str("RECEPTION_NOTIFY_EMAIL")
# Booking e-mails go through an outbox sent by `manage.py send_messages` (bookings/notifications.py).
# 0 turns reminders off. A message that keeps failing is retried with backoff, then shown to staff.
REMINDER_HOURS_BEFORE = env_int("REMINDER_HOURS_BEFORE", 24)
MESSAGE_MAX_ATTEMPTS = env_int("MESSAGE_MAX_ATTEMPTS", 10, minimum=1)

# -- The clinic -------------------------------------------------------------------------
CLINIC_NAME = env_str("CLINIC_NAME", "Hip & Back Physiotherapy Clinic")
# The name an authenticator app shows next to the codes (django-otp).
OTP_TOTP_ISSUER = CLINIC_NAME
CLINIC_ADDRESS = env_str("CLINIC_ADDRESS", "12 Example Street, London, N1 1AA")
CLINIC_PHONE = env_str("CLINIC_PHONE", "020 7946 0000")
CLINIC_EMAIL = env_str("CLINIC_EMAIL", "hello@example.org")
CLINIC_OPENING_HOURS = env_str("CLINIC_OPENING_HOURS", "Monday to Friday 08:30-18:00")
CLINIC_DIRECTIONS = env_str(
    "CLINIC_DIRECTIONS", "Five minutes' walk from the station. Step-free entrance at the front."
)
CLINIC_EMERGENCY_GUIDANCE = env_str(
    "CLINIC_EMERGENCY_GUIDANCE",
    "Call 999 or go to your nearest A&E now. If you are unsure, call NHS 111 for urgent advice.",
)

# -- Booking rules ----------------------------------------------------------------------
CONSULTATION_MINUTES = env_int("CONSULTATION_MINUTES", 20, minimum=5)
BOOKING_MIN_NOTICE = timedelta(minutes=env_int("BOOKING_MIN_NOTICE_MINUTES", 120))
BOOKING_HORIZON_DAYS = env_int("BOOKING_HORIZON_DAYS", 56, minimum=1)
MANAGE_CUTOFF = timedelta(minutes=env_int("MANAGE_CUTOFF_MINUTES", 120))
# The privacy notice shown and agreed to: one of clinic/privacy_notices.py's versions (checked: clinic.E001).
PRIVACY_NOTICE_VERSION = env_str("PRIVACY_NOTICE_VERSION", "2026-12b")

# -- Retention of personal data (UK GDPR; bookings/privacy.py, `manage.py purge_expired`) --------------
# How long each kind of record keeps a person's details before the daily purge anonymises (or deletes)
# it; counts and the diary stay. The README and the privacy page give the same table.
RETENTION = {
    # A consultation that took place (or was booked and never marked): its clinical record lives in the
    # practice-management system, so the booking's own details are kept 2 years after the date, long enough
    # for a complaint or a query about the visit.
    "attended": timedelta(days=env_int("RETENTION_ATTENDED_DAYS", 730, minimum=1)),
    # Cancelled or did not attend: nothing clinical happened; 6 months after the date it was booked for.
    "not_attended": timedelta(days=env_int("RETENTION_NOT_ATTENDED_DAYS", 183, minimum=1)),
    # E-mails: the address (and any delivery error) 30 days after it was sent or given up, for delivery queries.
    "messages": timedelta(days=env_int("RETENTION_MESSAGES_DAYS", 30, minimum=1)),
    # Call-back requests: 6 months after reception marked them done.
    "callbacks": timedelta(days=env_int("RETENTION_CALLBACKS_DAYS", 183, minimum=1)),
    # Waiting-list entries: 30 days after they ended (booked, left, removed, waited until their last day),
    # long enough to answer "why wasn't I offered that time?"; their offer e-mails follow "messages".
    "waiting_list": timedelta(days=env_int("RETENTION_WAITING_LIST_DAYS", 30, minimum=1)),
    # Staff sign-in attempts (usernames, addresses): 90 days, enough to look into an attack.
    "signin_attempts": timedelta(days=env_int("RETENTION_SIGNIN_ATTEMPTS_DAYS", 90, minimum=1)),
    # The record of who looked at patients' details: 2 years, like the longest record it can be about.
    "access_log": timedelta(days=env_int("RETENTION_ACCESS_LOG_DAYS", 730, minimum=1)),
}
RATE_LIMIT_PUBLIC_POSTS = env_int("RATE_LIMIT_PUBLIC_POSTS", 30, minimum=1)
RATE_LIMIT_WINDOW_SECONDS = env_int("RATE_LIMIT_WINDOW_SECONDS", 600, minimum=1)
# Online bookings made from one client address in any hour (counted over this and the previous clock
# hour), far fewer than other POSTs: one address cannot empty the diary. Reception is not limited.
RATE_LIMIT_BOOKINGS_PER_HOUR = env_int("RATE_LIMIT_BOOKINGS_PER_HOUR", 4, minimum=1)
# Live upcoming online bookings per e-mail address and per phone number (a family may book two people);
# beyond it the patient is asked to phone, and reception can book more.
BOOKING_MAX_LIVE_PER_CONTACT = env_int("BOOKING_MAX_LIVE_PER_CONTACT", 2, minimum=1)
# Requests per API key in each RATE_LIMIT_WINDOW_SECONDS window (api/api.py); beyond it 429 with Retry-After.
API_KEY_REQUESTS_PER_WINDOW = env_int("API_KEY_REQUESTS_PER_WINDOW", 600, minimum=1)
# The waiting list (bookings.services.waiting_list_scan, run by the e-mail worker): a time that frees up is
# offered to this many matching people at once, in the order they joined, and held for them this long.
WAITING_LIST_BATCH = env_int("WAITING_LIST_BATCH", 3, minimum=1)
WAITING_LIST_HOLD = timedelta(minutes=env_int("WAITING_LIST_HOLD_MINUTES", 15, minimum=1))
# The Insights page's daily summaries are rebuilt by the e-mail worker this often (and by the page's button).
INSIGHTS_REFRESH_EVERY = timedelta(minutes=env_int("INSIGHTS_REFRESH_MINUTES", 60, minimum=1))

# -- Forms ------------------------------------------------------------------------------
CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# -- Logging ----------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "clinic.logging.RedactSecretsFilter"},
        "quiet_database_outage": {"()": "clinic.logging.DatabaseOutageWithoutTracebackFilter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["quiet_database_outage", "redact_secrets"]},
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
