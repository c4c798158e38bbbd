"""The article list: newest first, paginated, filtered by topic, searched with PostgreSQL full-text search."""

from datetime import timedelta

import pytest
from django.utils import timezone

from articles.models import Article

pytestmark = pytest.mark.django_db


def test_search_finds_an_article_by_a_word_in_its_body(client, make_article):
    make_article(title="Walking well", slug="walking", body_markdown="Keep your iliopsoas muscles moving.")
    make_article(title="Lifting well", slug="lifting", body_markdown="Bend your knees.")
    response = client.get("/articles/", {"q": "iliopsoas"})
    assert [article.slug for article in response.context["articles"]] == ["walking"]


def test_search_stems_words_so_a_plural_finds_the_singular(make_article):
    make_article(slug="stretch", body_markdown="One gentle stretch for the hip.")
    assert list(Article.objects.search("stretches").values_list("slug", flat=True)) == ["stretch"]


def test_a_title_match_ranks_above_body_matches_even_when_the_body_one_is_newer(client, make_article):
    now = timezone.now()
    make_article(
        title="Hip bursitis explained",
        slug="in-title",
        body_markdown="What inflames the bursa.",
        published_at=now - timedelta(days=30),
    )
    make_article(
        title="Running and your hips",
        slug="in-body",
        summary="Running without pain.",
        body_markdown="Runners often meet bursitis. Bursitis can follow overuse.",
        published_at=now - timedelta(minutes=1),
    )
    response = client.get("/articles/", {"q": "bursitis"})
    assert [article.slug for article in response.context["articles"]] == ["in-title", "in-body"]


def test_websearch_syntax_excludes_words_with_a_minus(make_article):
    make_article(slug="sciatica-and-hips", body_markdown="Sciatica and the hip.")
    make_article(slug="sciatica-alone", body_markdown="Sciatica on its own.")
    assert list(Article.objects.search("sciatica -hip").values_list("slug", flat=True)) == ["sciatica-alone"]


def test_nothing_found_is_a_clear_state_with_a_way_on(client, make_article):
    make_article()
    response = client.get("/articles/", {"q": "xylophone"})
    assert response.status_code == 200
    assert b"Nothing found" in response.content
    assert "matching “xylophone”".encode() in response.content
    assert b'href="/articles/"' in response.content
    assert b'<meta name="robots" content="noindex, follow">' in response.content


def test_the_list_is_newest_first_and_paginated_by_ten(client, make_article):
    now = timezone.now()
    for day in range(12):
        make_article(slug=f"day-{day}", published_at=now - timedelta(days=day))
    first = client.get("/articles/")
    second = client.get("/articles/", {"page": 2})
    assert [a.slug for a in first.context["articles"]] == [f"day-{day}" for day in range(10)]
    assert [a.slug for a in second.context["articles"]] == ["day-10", "day-11"]
    assert b'rel="next"' in first.content
    assert b"Page 2 of 2" in second.content


def test_a_page_past_the_end_is_a_404(client, make_article):
    make_article()
    assert client.get("/articles/", {"page": 9}).status_code == 404


def test_the_topic_filter_shows_only_that_topic_and_combines_with_search(client, make_article):
    make_article(slug="hip-one", topics=["Hip"], body_markdown="Stiffness in the morning.")
    make_article(slug="hip-two", topics=["Hip"], body_markdown="Pain on stairs.")
    make_article(slug="back-one", topics=["Lower back"], body_markdown="Stiffness when sitting.")
    by_topic = client.get("/articles/", {"topic": "hip"})
    both = client.get("/articles/", {"topic": "hip", "q": "stiffness"})
    assert {a.slug for a in by_topic.context["articles"]} == {"hip-one", "hip-two"}
    assert [a.slug for a in both.context["articles"]] == ["hip-one"]
    assert by_topic.context["selected_topic"].name == "Hip"


def test_an_unknown_topic_shows_nothing_found(client, make_article):
    make_article(topics=["Hip"])
    response = client.get("/articles/", {"topic": "knees"})
    assert response.status_code == 200
    assert b"Nothing found" in response.content


def test_pagination_links_keep_the_search_and_topic(client, make_article):
    for number in range(11):
        make_article(slug=f"hip-{number}", topics=["Hip"], body_markdown="About the hip.")
    response = client.get("/articles/", {"q": "hip", "topic": "hip"})
    assert b"?q=hip&amp;topic=hip&amp;page=2" in response.content
