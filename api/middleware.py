"""Every answer under /api/ that is an error is a problem (RFC 9457), whoever made it; every call is logged
with the key's name (never the key, the query string or a body: they may hold patient data)."""

import logging

from api.api import PROBLEM, generic_problem

logger = logging.getLogger("api.calls")


class ApiProblemMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith("/api/"):
            return response
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(PROBLEM):
            # Django's own answers (405 from a view, 400 from a middleware, 500 from a crash, 503 with the
            # database down) keep their status and headers (Allow, Retry-After, the security headers).
            kept = {
                name: value
                for name, value in response.items()
                if name.lower() not in ("content-type", "content-length", "content-language")
            }
            response = generic_problem(response.status_code, headers=kept)
        key_name = getattr(request, "api_key_name", None)
        logger.info(
            "API %s %s -> %s (key: %s)", request.method, request.path[:200], response.status_code, key_name or "none"
        )
        return response
