"""A cache that trusts triggers has a guard: every table a kept page reads carries a version trigger.

clinic/page_cache.py serves a kept page again until a version counter moves, and only PostgreSQL
triggers move the counters (bookings migration 0006 for the time page, articles migration 0005
for the home page and the articles). A page that starts reading a table with no trigger would be
served stale after a change to that table, silently. So each kept page is rendered here with the
cache off, the tables its queries read are taken from the SQL, and each must carry a trigger of the
counter that page depends on.
"""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from articles.models import Article, Topic
from clinic import page_cache
from tests.helpers import local, make_slot, pass_safety_check

pytestmark = pytest.mark.django_db

# The trigger functions each counter is bumped by (the migrations named above).
AVAILABILITY = {
    "bookings_slot_availability_changed",
    "bookings_appointment_availability_changed",
    "bookings_availability_bump_everything",
    # A waiting-list offer holds its slot (bookings migration 0014).
    "bookings_waitlist_hold_changed",
}
CONTENT = {"articles_content_changed"}

# Tables a kept page may read with no trigger, each for a reason.
NEEDS_NO_TRIGGER = {
    # The counters themselves: the page's version is read from them, they are not what it shows.
    "bookings_availabilityversion",
    "articles_contentversion",
}

# Every PageCache in the code, by name: a new kept page must be added to KEPT_PAGES below.
CACHES_COVERED = {"time page", "articles", "API availability"}

TABLE_AFTER_FROM_OR_JOIN = re.compile(r'\b(?:FROM|JOIN)\s+"?([a-z_][a-z0-9_]*)"?', re.IGNORECASE)


def tables_read(queries) -> set[str]:
    """The tables named after FROM or JOIN in the queries (function calls and subqueries left out)."""
    known = set(connection.introspection.table_names())
    return {name for query in queries for name in TABLE_AFTER_FROM_OR_JOIN.findall(query["sql"]) if name in known}


def tables_with_trigger(functions: set[str]) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT c.relname
            FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
            WHERE NOT t.tgisinternal AND p.proname = ANY(%s)
            """,
            [sorted(functions)],
        )
        return {row[0] for row in cursor.fetchall()}


def untriggered_tables_read(render_page, functions: set[str]) -> set[str]:
    with CaptureQueriesContext(connection) as queries:
        render_page()
    assert len(queries) > 0, "the page read something"
    return tables_read(queries.captured_queries) - tables_with_trigger(functions) - NEEDS_NO_TRIGGER


@pytest.fixture
def content(dr_patel):
    """An article written by Dr Patel, in a topic: what the article pages show."""
    topic = Topic.objects.create(name="Hips", slug="hips")
    article = Article.objects.create(
        title="Hip pain on stairs",
        slug="hip-pain-on-stairs",
        summary="Why stairs hurt.",
        body_markdown="# Stairs\n\nSome words.",
        status=Article.Status.PUBLISHED,
        published_at=timezone.now(),
        author=dr_patel,
    )
    article.topics.add(topic)
    return article


def _get(client, url):
    def render_page():
        response = client.get(url)
        assert response.status_code == 200, url

    return render_page


def kept_pages(client, dr_patel, article):
    """(name, render, trigger functions) for every page a PageCache keeps."""
    make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)
    return [
        ("time page", _get(client, reverse("booking_time")), AVAILABILITY),
        (
            "time page, one practitioner",
            _get(client, f"{reverse('booking_time')}?practitioner={dr_patel.pk}"),
            AVAILABILITY,
        ),
        ("API availability", _get(client, "/api/v1/availability"), AVAILABILITY),
        (
            "API availability, one practitioner",
            _get(client, f"/api/v1/availability?practitioner={dr_patel.pk}"),
            AVAILABILITY,
        ),
        ("home", _get(client, reverse("home")), CONTENT),
        ("article list", _get(client, reverse("articles:list")), CONTENT),
        ("article list, a topic", _get(client, f"{reverse('articles:list')}?topic=hips"), CONTENT),
        ("article", _get(client, article.get_absolute_url()), CONTENT),
    ]


def test_every_table_a_kept_page_reads_carries_the_version_trigger_of_that_page(client, settings, dr_patel, content):
    settings.PAGE_CACHE_ENABLED = False

    untriggered = {
        name: tables
        for name, render_page, functions in kept_pages(client, dr_patel, content)
        if (tables := untriggered_tables_read(render_page, functions))
    }

    assert untriggered == {}


def test_every_page_cache_in_the_code_is_covered_here():
    assert {cache.name for cache in page_cache._every_cache} == CACHES_COVERED


def test_a_kept_page_that_started_reading_an_untriggered_table_would_fail(client, settings, dr_patel, content):
    """The guard itself: a home page that also listed call-back requests (a table no trigger watches)."""
    from bookings.models import CallbackRequest

    settings.PAGE_CACHE_ENABLED = False
    home = _get(client, reverse("home"))

    def home_with_callbacks():
        home()
        list(CallbackRequest.objects.all())

    assert untriggered_tables_read(home, CONTENT) == set()
    assert untriggered_tables_read(home_with_callbacks, CONTENT) == {"bookings_callbackrequest"}
    # And the time page's trigger does not stand in for the articles' one: the counters are separate.
    assert "articles_article" in untriggered_tables_read(_get(client, content.get_absolute_url()), AVAILABILITY)
