"""The public-POST rate limit: one INSERT ... ON CONFLICT per POST, exact when POSTs arrive at once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from clinic import ratelimit
from clinic.models import RateLimitCounter


@pytest.mark.django_db(transaction=True)
def test_parallel_posts_from_one_address_let_exactly_the_limit_through(settings):
    settings.RATE_LIMIT_PUBLIC_POSTS = 5
    posts = 16
    barrier = threading.Barrier(posts)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def post_at_once():
        try:
            client = Client()
            barrier.wait(timeout=30)
            # An empty safety check: a 400 when let through, a 429 when limited.
            statuses.append(client.post("/book/", {}).status_code)
        except BaseException as error:  # reported below: a thread's failure must fail the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=post_at_once) for _ in range(posts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(statuses) == [400] * 5 + [429] * 11
    # Every POST was counted once, none lost to a concurrent increment.
    assert RateLimitCounter.objects.get(bucket="booking", address="127.0.0.1").count == posts


@pytest.mark.django_db
def test_a_limited_address_is_told_when_its_window_ends(client, settings):
    settings.RATE_LIMIT_PUBLIC_POSTS = 1
    settings.RATE_LIMIT_WINDOW_SECONDS = 600
    client.post("/book/", {})

    response = client.post("/book/", {})

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 600


@pytest.mark.django_db
def test_a_new_window_starts_counting_again(settings):
    settings.RATE_LIMIT_WINDOW_SECONDS = 60
    now = timezone.now()
    for _ in range(3):
        count, _ends = ratelimit.count_post("booking", "192.0.2.1", now=now)
    assert count == 3

    count, _ends = ratelimit.count_post("booking", "192.0.2.1", now=now + timedelta(seconds=60))

    assert count == 1


@pytest.mark.django_db
def test_windows_before_the_previous_one_are_pruned_now_and_then(settings, monkeypatch):
    settings.RATE_LIMIT_WINDOW_SECONDS = 60
    monkeypatch.setattr(ratelimit, "PRUNE_EVERY", 1)
    now = timezone.now()
    ratelimit.count_post("booking", "192.0.2.1", now=now - timedelta(minutes=10))
    ratelimit.count_post("booking", "192.0.2.2", now=now - timedelta(seconds=60))

    ratelimit.count_post("booking", "192.0.2.3", now=now)

    assert sorted(RateLimitCounter.objects.values_list("address", flat=True)) == ["192.0.2.2", "192.0.2.3"]


@pytest.mark.django_db
def test_the_counter_table_is_unlogged():
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = %s", [RateLimitCounter._meta.db_table])
        assert cursor.fetchone() == ("u",)
