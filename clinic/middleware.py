import logging

from django.db import DatabaseError, InterfaceError, OperationalError

logger = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    """Answer 503 with Retry-After, not 500, while the database cannot be reached.

    Django closes the broken connection at the end of the request, so the next request
    reconnects on its own once the database is back.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, (OperationalError, InterfaceError)) or (
            isinstance(exception, DatabaseError) and "connection" in str(exception).lower()
        ):
            logger.warning("Database unavailable: %s", type(exception).__name__)
            from clinic.views import database_unavailable_response

            return database_unavailable_response()
        return None
