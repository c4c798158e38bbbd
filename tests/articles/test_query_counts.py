"""The list and article pages run the same number of queries with 2 articles as with 200."""

from datetime import timedelta

import pytest
from django.utils import timezone

from articles.models import Article, Topic
from articles.rendering import render_markdown

pytestmark = pytest.mark.django_db

BODY = "An introduction about hips.\n\n## Causes\n\nSome text about the back.\n\n## Help\n\nMore text."


@pytest.fixture(params=[2, 200], ids=["2-articles", "200-articles"])
def articles(request, dr_patel, dr_okafor):
    """`request.param` published articles, each with an author, a reviewer and two topics."""
    rendered = render_markdown(BODY)
    now = timezone.now()
    created = Article.objects.bulk_create(
        Article(
            title=f"Article {number} about hips",
            slug=f"article-{number}",
            summary="A summary.",
            body_markdown=BODY,
            body_html=rendered.html,
            toc=rendered.toc,
            status=Article.Status.PUBLISHED,
            published_at=now - timedelta(hours=number),
            author=dr_patel,
            reviewer=dr_okafor,
        )
        for number in range(request.param)
    )
    hip = Topic.objects.get(slug="hip")
    back = Topic.objects.get(slug="lower-back")
    Through = Article.topics.through
    Through.objects.bulk_create(Through(article=article, topic=topic) for article in created for topic in (hip, back))
    return created


def test_the_article_list_runs_four_queries(client, articles, django_assert_max_num_queries):
    # 1. count the published articles (for the paginator)
    # 2. the page of articles
    # 3. the topics of the articles on that page (prefetch)
    # 4. the topics that have published articles (the filter links)
    with django_assert_max_num_queries(4):
        response = client.get("/articles/")
    assert response.status_code == 200


def test_a_search_of_the_list_runs_four_queries(client, articles, django_assert_max_num_queries):
    # 1. count the matches, 2. the page of matches ranked, 3. their topics, 4. the topics for the filter links
    with django_assert_max_num_queries(4):
        response = client.get("/articles/", {"q": "hips", "topic": "hip"})
    assert len(response.context["articles"]) == min(len(articles), 10)


def test_the_article_page_runs_three_queries(client, articles, django_assert_max_num_queries):
    # 1. the article with its author and reviewer (joined)
    # 2. its topics (prefetch)
    # 3. up to three related articles, ranked by shared topics
    with django_assert_max_num_queries(3):
        response = client.get("/articles/article-1/")
    assert response.status_code == 200
    assert len(response.context["related_articles"]) == min(len(articles) - 1, 3)


def test_the_home_page_runs_one_query(client, articles, django_assert_max_num_queries):
    # 1. the three latest articles
    with django_assert_max_num_queries(1):
        response = client.get("/")
    assert response.status_code == 200


def test_the_feed_runs_two_queries(client, articles, django_assert_max_num_queries):
    # 1. the latest articles with their authors (joined), 2. their topics (prefetch)
    with django_assert_max_num_queries(2):
        response = client.get("/articles/feed.rss")
    assert response.status_code == 200


def test_the_sitemap_runs_two_queries(client, articles, django_assert_max_num_queries):
    # 1. count the published articles (the sitemap paginates), 2. their slugs and update times
    with django_assert_max_num_queries(2):
        response = client.get("/sitemap.xml")
    # Every article, then the home page, the article list, the team and the contact page.
    assert response.content.count(b"<loc>") == len(articles) + 4
