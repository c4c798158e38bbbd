import logging

from django.db import DatabaseError, InterfaceError, OperationalError

logger = logging.getLogger(__name__)


def is_database_unavailable(exception: BaseException | None) -> bool:
    """True for errors that mean "cannot reach the database", as opposed to a bug in a query."""
    return isinstance(exception, (OperationalError, InterfaceError)) or (
        isinstance(exception, DatabaseError) and "connection" in str(exception).lower()
    )


class DatabaseUnavailableMiddleware:
    """Answer 503 with Retry-After, not 500, while the database cannot be reached.

    Django closes the broken connection at the end of the request, so the next request
    reconnects on its own once the database is back. This catches errors raised in views
    (and while rendering their templates); the 500 handler, ``clinic.views.server_error``,
    gives the same answer for one raised anywhere else, e.g. in another middleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if is_database_unavailable(exception):
            logger.warning("Database unavailable: %s", type(exception).__name__)
            from clinic.views import database_unavailable_response

            return database_unavailable_response()
        return None


class RejectNullBytesMiddleware:
    """Answer 400 to a request with a NUL character in its path or parameters.

    No person types one, PostgreSQL cannot store one in text, and a query with one raises
    a ValueError deep in the driver: refusing it here keeps every view free of that case.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or self._has_null(request.GET) or self._has_null(request.POST):
            from django.shortcuts import render

            return render(request, "400.html", status=400)
        return self.get_response(request)

    @staticmethod
    def _has_null(params) -> bool:
        return any("\x00" in key or any("\x00" in value for value in params.getlist(key)) for key in params)


class StaffSessionIdleExpiryMiddleware:
    """Save a signed-in user's session on every request, so it expires after SESSION_COOKIE_AGE idle.

    SESSION_SAVE_EVERY_REQUEST would do that for everyone, and cost every patient request an
    UPDATE and a commit for nothing: a patient's booking session is saved when it changes. Put
    right after AuthenticationMiddleware. It looks only when the request used the session (every
    staff page does, to know who is signed in), so it adds no query to a page that did not.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and session.accessed and request.user.is_authenticated:
            session.modified = True
        return response
