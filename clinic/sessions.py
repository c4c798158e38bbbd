import re

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import UpdateError

from clinic.middleware import is_database_unavailable

# What Django generates: 32 characters from lowercase letters and digits.
SESSION_KEY_PATTERN = re.compile(r"[a-z0-9]{8,40}")


class SessionStore(db.SessionStore):
    """Database sessions in which a lost database stays a database outage.

    Django's store turns any DatabaseError while updating a session into UpdateError,
    which the session middleware reports as SessionInterrupted: a 400 that tells the
    visitor they logged out elsewhere. When the database is simply unreachable we raise
    the connection error instead, so the request answers 503 with Retry-After like every
    other outage (clinic.views.server_error).
    """

    def _validate_session_key(self, key):
        # Django only checks the length; a cookie can carry anything, and a NUL character
        # in a key PostgreSQL is asked about is a driver error on every page, not "no session".
        return bool(key) and SESSION_KEY_PATTERN.fullmatch(key) is not None

    def save(self, must_create=False):
        try:
            return super().save(must_create=must_create)
        except UpdateError as exc:
            if is_database_unavailable(exc.__context__):
                raise exc.__context__ from None
            raise
