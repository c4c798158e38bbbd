from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import UpdateError

from clinic.middleware import is_database_unavailable


class SessionStore(db.SessionStore):
    """Database sessions in which a lost database stays a database outage.

    Django's store turns any DatabaseError while updating a session into UpdateError,
    which the session middleware reports as SessionInterrupted: a 400 that tells the
    visitor they logged out elsewhere. When the database is simply unreachable we raise
    the connection error instead, so the request answers 503 with Retry-After like every
    other outage (clinic.views.server_error).
    """

    def save(self, must_create=False):
        try:
            return super().save(must_create=must_create)
        except UpdateError as exc:
            if is_database_unavailable(exc.__context__):
                raise exc.__context__ from None
            raise
