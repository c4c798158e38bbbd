import functools

from django.conf import settings
from django.templatetags.static import static
from django.urls import get_script_prefix, reverse

# What every page's header and footer link to: (name in the templates, URL name or static file).
_PAGE_URLS = {
    "home": "home",
    "articles": "articles:list",
    "team": "team",
    "contact": "contact",
    "staff_home": "staff_home",
    "logout": "logout",
    "login": "login",
    "booking_start": "booking_start",
    "privacy": "privacy",
    "accessibility": "accessibility",
}
_STATIC_FILES = {
    "favicon": "img/favicon.svg",
    "bootstrap_css": "vendor/bootstrap/css/bootstrap.min.css",
    "site_css": "css/site.css",
    "bootstrap_js": "vendor/bootstrap/js/bootstrap.bundle.min.js",
    "htmx_js": "vendor/htmx/htmx.min.js",
    "site_js": "js/site.js",
}


# A few entries at most (one per prefix the site is served under): bounded, as the prefix comes from the request.
@functools.lru_cache(maxsize=8)
def _site_urls(script_prefix: str) -> dict[str, str]:
    """The header's and footer's URLs, worked out once per process (and script prefix, which reverse() prefixes):
    the same on every page, they were sixteen reverse() and static() calls on each, about 0.3 ms of every page."""
    return {name: reverse(url_name) for name, url_name in _PAGE_URLS.items()} | {
        name: static(path) for name, path in _STATIC_FILES.items()
    }


def clinic(request):
    return {
        "clinic": {
            "name": settings.CLINIC_NAME,
            "address": settings.CLINIC_ADDRESS,
            "phone": settings.CLINIC_PHONE,
            "email": settings.CLINIC_EMAIL,
            "opening_hours": settings.CLINIC_OPENING_HOURS,
            "directions": settings.CLINIC_DIRECTIONS,
            "emergency_guidance": settings.CLINIC_EMERGENCY_GUIDANCE,
            "consultation_minutes": settings.CONSULTATION_MINUTES,
            "manage_cutoff_hours": int(settings.MANAGE_CUTOFF.total_seconds() // 3600),
        },
        "site_url": settings.SITE_URL,
        "site_urls": _site_urls(get_script_prefix()),
    }
