import sys

from django.contrib.auth import views as auth_views
from django.db import connection
from django.http import HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache

from clinic.context_processors import clinic as clinic_context
from clinic.middleware import is_database_unavailable
from clinic.privacy_notices import current_privacy_notice_version, privacy_notice, retention_periods


def privacy(request):
    # The version patients agree to when they book (stored on each appointment): the page shows its text.
    version = current_privacy_notice_version()
    return render(
        request,
        "clinic/privacy.html",
        {"privacy_notice_version": version, "notice": privacy_notice(version), "retention": retention_periods()},
    )


def accessibility(request):
    return render(request, "clinic/accessibility.html")


@never_cache
def healthz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        response = JsonResponse({"status": "error", "database": "unavailable"}, status=503)
        response["Retry-After"] = "5"
        return response
    return JsonResponse({"status": "ok", "database": "ok"})


def _standalone(template_name: str) -> str:
    # Rendered without the request: error pages must not need the database (sessions, user).
    return render_to_string(template_name, clinic_context(None))


def database_unavailable_response() -> HttpResponse:
    response = HttpResponse(_standalone("503.html"), status=503)
    response["Retry-After"] = "5"
    response["Cache-Control"] = "no-store"
    return response


def server_error(request):
    # Django calls this handler inside its `except` block. A database that went away while a
    # middleware used it (sessions, the database cache) is still a 503 to retry, not a bug.
    if is_database_unavailable(sys.exc_info()[1]):
        return database_unavailable_response()
    return HttpResponseServerError(_standalone("500.html"))


def robots_txt(request):
    lines = [
        "User-agent: *",
        "Disallow: /staff/",
        "Disallow: /admin/",
        "Disallow: /book/",
        "Disallow: /manage/",
        f"Sitemap: {request.build_absolute_uri('/sitemap.xml')}",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain")


def csrf_failure(request, reason=""):
    return render(request, "403_csrf.html", status=403)


class SignOutView(auth_views.LogoutView):
    """Sign-out is a POST (a link or prefetch must not sign anyone out); a GET, say a typed
    address or a bookmark, shows the button instead of Django's blank 405."""

    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        return render(request, "registration/sign_out.html")
