"""Per-address rate limits for public POSTs, counted in one statement per POST (clinic.models.RateLimitCounter)."""

import functools
import itertools
import math
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.shortcuts import render
from django.utils import timezone
from django.utils.crypto import salted_hmac

from clinic.models import RateLimitCounter

# Counted POSTs per process between two prunes of finished windows.
PRUNE_EVERY = 500
_posts_counted = itertools.count(1)

COUNT_SQL = f"""
    INSERT INTO {RateLimitCounter._meta.db_table} AS counter (bucket, address, window_start, count)
    VALUES (%s, %s, %s, 1)
    ON CONFLICT (bucket, address, window_start) DO UPDATE SET count = counter.count + 1
    RETURNING count
"""


def client_address(request) -> str:
    # Behind a proxy the last hop it appends is the client; trust it only when configured.
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "unknown")


def client_address_key(request) -> str:
    """A keyed hash of the client's address: tells bookings from one place apart without storing the address."""
    return salted_hmac("clinic.client_address", client_address(request), algorithm="sha256").hexdigest()[:32]


# Bookings per address count in one-hour windows, this one and the previous one together: any
# 60 minutes lie within two clock hours, so no hour ever holds more than the limit.
BOOKINGS_BUCKET = "bookings-made"
BOOKINGS_WINDOW_SECONDS = 3600
COUNT_BOOKING_SQL = f"""
    WITH bumped AS (
        INSERT INTO {RateLimitCounter._meta.db_table} AS counter (bucket, address, window_start, count)
        VALUES (%(bucket)s, %(address)s, %(start)s, 1)
        ON CONFLICT (bucket, address, window_start) DO UPDATE SET count = counter.count + 1
        RETURNING count
    )
    SELECT (SELECT count FROM bumped) + COALESCE(
        (SELECT count FROM {RateLimitCounter._meta.db_table}
          WHERE bucket = %(bucket)s AND address = %(address)s AND window_start = %(previous)s), 0)
"""


def window_start(now: datetime, window_seconds: int) -> datetime:
    """The start of the fixed window NOW falls in (windows are aligned to the Unix epoch)."""
    seconds = int(now.timestamp())
    return datetime.fromtimestamp(seconds - seconds % window_seconds, tz=UTC)


def count_post(bucket: str, address: str, *, now: datetime) -> tuple[int, datetime]:
    """Count one POST from ADDRESS to BUCKET in the current window and return the window's count.

    One autocommitted statement: concurrent POSTs from one address queue on the counter's row
    lock, so each sees its own count and exactly RATE_LIMIT_PUBLIC_POSTS of them get through.
    Every PRUNE_EVERY counted POSTs (per process), windows that ended before the previous one
    are deleted: the table holds about two windows of addresses. Returns the count and when the
    window ends.
    """
    window = settings.RATE_LIMIT_WINDOW_SECONDS
    start = window_start(now, window)
    with connection.cursor() as cursor:
        cursor.execute(COUNT_SQL, [bucket[:40], address[:64], start])
        (count,) = cursor.fetchone()
    if next(_posts_counted) % PRUNE_EVERY == 0:
        hour_start = window_start(now, BOOKINGS_WINDOW_SECONDS)
        RateLimitCounter.objects.filter(
            Q(bucket=BOOKINGS_BUCKET, window_start__lt=hour_start - timedelta(seconds=BOOKINGS_WINDOW_SECONDS))
            | (~Q(bucket=BOOKINGS_BUCKET) & Q(window_start__lt=start - timedelta(seconds=window)))
        ).delete()
    return count, start + timedelta(seconds=window)


def count_booking(address_key: str, *, now: datetime) -> int:
    """Count one booking from ADDRESS_KEY and return the bookings from it in this clock hour and the last.

    Call it inside the booking's transaction: a booking that is refused or fails rolls its count back,
    so only bookings made count, and concurrent bookings from one address queue on the counter's row.
    """
    start = window_start(now, BOOKINGS_WINDOW_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(
            COUNT_BOOKING_SQL,
            {
                "bucket": BOOKINGS_BUCKET,
                "address": address_key[:64],
                "start": start,
                "previous": start - timedelta(seconds=BOOKINGS_WINDOW_SECONDS),
            },
        )
        (count,) = cursor.fetchone()
    return count


def rate_limited_post(bucket: str, *, per_user: bool = False):
    """Answer 429 once an address has sent RATE_LIMIT_PUBLIC_POSTS POSTs to a bucket in the window.

    PER_USER (staff pages behind the sign-in): each signed-in account has its own count from an address,
    so that staff sharing the clinic's one internet address do not use up each other's attempts.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method == "POST":
                now = timezone.now()
                counted = bucket
                if per_user and request.user.is_authenticated:
                    counted = f"{bucket}:{request.user.pk}"
                count, window_end = count_post(counted, client_address(request), now=now)
                if count > settings.RATE_LIMIT_PUBLIC_POSTS:
                    staff = request.path.startswith(("/staff/", "/admin/"))
                    response = render(request, "429.html", {"staff_page": staff}, status=429)
                    # Fixed windows: the address may try again when this one ends.
                    response["Retry-After"] = str(max(1, math.ceil((window_end - now).total_seconds())))
                    return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
