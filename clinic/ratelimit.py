"""Per-address rate limits for public POSTs, counted in the shared (database) cache."""

import functools

from django.conf import settings
from django.core.cache import cache
from django.shortcuts import render


def client_address(request) -> str:
    # Behind a proxy the last hop it appends is the client; trust it only when configured.
    if getattr(settings, "TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "unknown")


def rate_limited_post(bucket: str):
    """Answer 429 once an address has sent RATE_LIMIT_PUBLIC_POSTS POSTs to a bucket in the window."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method == "POST":
                key = f"ratelimit:{bucket}:{client_address(request)}"
                cache.add(key, 0, timeout=settings.RATE_LIMIT_WINDOW_SECONDS)
                try:
                    count = cache.incr(key)
                except ValueError:  # expired between add and incr
                    cache.set(key, 1, timeout=settings.RATE_LIMIT_WINDOW_SECONDS)
                    count = 1
                if count > settings.RATE_LIMIT_PUBLIC_POSTS:
                    response = render(request, "429.html", status=429)
                    response["Retry-After"] = str(settings.RATE_LIMIT_WINDOW_SECONDS)
                    return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
