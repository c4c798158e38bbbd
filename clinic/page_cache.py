"""Public pages rendered once per process and served again until what they show changes.

Why: every patient who opens the time page sees the same week, and every reader the same
article; rendering it again for each of them was most of the cost of those pages (see
docs/performance.md). Reception must still see a booking or a blocked slot disappear from
the public page at once, so a time-to-live alone would not do.

How it stays exact: each page depends on version counters that PostgreSQL triggers bump in the
same transaction as any change to the rows the page is built from (bookings migration 0006,
articles migration 0005). A page is rendered inside one REPEATABLE READ transaction together
with the version it was built from, so the two come from one snapshot and an old page can never
be stored under a newer version. Serving it again costs one query: the version now. Pages that
also change with the clock (a slot passing its minimum notice, a scheduled article) carry an
expiry time.

Only what is the same for everybody is kept: GET requests from visitors who are not signed in,
with no message waiting for them, whose page set no cookie, changed no session and used no CSRF
token. Anything else is rendered as usual.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse

# However exact the versions, a page is rendered again at least this often: the booking horizon
# moves with the clock, and a process should not serve one rendering for days.
MAX_AGE = timedelta(minutes=5)
MAX_ENTRIES_PER_CACHE = 500
_every_cache: list[PageCache] = []


def clear_all() -> None:
    """Forget every kept page in this process (tests: a page kept by one test must not meet the next)."""
    for cache in _every_cache:
        cache.clear()


class Dependency:
    """What a rendered page was built from: reads its version, now, from the database."""

    def version(self) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class Rendering:
    """A page and what it depends on: the rows behind `dependency`, and the clock until `expires_at`.

    `expires_at` may be a function: it is only worked out (in the rendering's snapshot) for a page
    that will be kept.
    """

    response: HttpResponse
    dependency: Dependency
    expires_at: datetime | Callable[[], datetime]


@dataclass(frozen=True)
class _Entry:
    content: bytes
    content_type: str
    dependency: Dependency
    version: int
    expires_at: datetime


class PageCache:
    """Rendered pages of one kind, per process, keyed by what the request asked for."""

    def __init__(self, name: str):
        self.name = name
        # Least recently served first: a flood of odd query strings evicts the cold pages, not every page.
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.renders = 0
        _every_cache.append(self)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.renders = 0

    def serve(self, request: HttpRequest, key: Hashable, *, now: datetime, render: Callable[[], Rendering]):
        """The page for KEY: the kept rendering if it is still exact, otherwise RENDER's (kept when it may be)."""
        if not settings.PAGE_CACHE_ENABLED or not _same_for_everybody(request) or connection.in_atomic_block:
            # Inside a transaction somebody else owns, a rendering could be rolled back with its version.
            return render().response
        entry = self._entries.get(key)
        if entry is not None and now < entry.expires_at and entry.dependency.version() == entry.version:
            self.hits += 1
            with self._lock, contextlib.suppress(KeyError):
                self._entries.move_to_end(key)
            return HttpResponse(entry.content, content_type=entry.content_type)

        session_was_modified = request.session.modified
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            rendering = render()
            response = rendering.response
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
            keep = _keepable(request, response, session_was_modified)
            if keep:
                version = rendering.dependency.version()
                expires_at = rendering.expires_at() if callable(rendering.expires_at) else rendering.expires_at
        self.renders += 1
        if keep:
            with self._lock:
                self._entries.pop(key, None)
                while len(self._entries) >= MAX_ENTRIES_PER_CACHE:
                    self._entries.popitem(last=False)
                self._entries[key] = _Entry(
                    content=response.content,
                    content_type=response["Content-Type"],
                    dependency=rendering.dependency,
                    version=version,
                    expires_at=min(expires_at, now + MAX_AGE),
                )
        return response


def _same_for_everybody(request: HttpRequest) -> bool:
    if request.method not in ("GET", "HEAD") or request.user.is_authenticated:
        return False
    return len(get_messages(request)) == 0


def _keepable(request: HttpRequest, response: HttpResponse, session_was_modified: bool) -> bool:
    return (
        response.status_code == 200
        and not response.cookies
        and not response.streaming
        and not request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
        and request.session.modified == session_was_modified
    )


class TableVersion(Dependency):
    """A one-row counter table kept by triggers (articles_contentversion)."""

    def __init__(self, table: str):
        self._sql = f"SELECT version FROM {table}"  # noqa: S608 - a table name from our own code

    def version(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(self._sql)
            return cursor.fetchone()[0]
