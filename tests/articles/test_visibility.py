"""Article.objects.published() is the one rule of who sees what, on every page that lists articles."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_articles(make_article):
    return {
        "live": make_article(title="Live article about hips", slug="live"),
        "draft": make_article(title="Draft article about hips", slug="draft", status="draft", published_at=None),
        "future": make_article(
            title="Future article about hips", slug="future", published_at=timezone.now() + timedelta(days=2)
        ),
    }


def test_published_needs_both_the_status_and_a_past_date(three_articles):
    from articles.models import Article

    assert list(Article.objects.published().values_list("slug", flat=True)) == ["live"]
    later = timezone.now() + timedelta(days=3)
    assert set(Article.objects.published(now=later).values_list("slug", flat=True)) == {"live", "future"}


def test_the_public_reads_a_published_article(client, three_articles):
    response = client.get("/articles/live/")
    assert response.status_code == 200
    assert b"Live article about hips" in response.content
    assert b"Staff preview" not in response.content


@pytest.mark.parametrize("slug", ["draft", "future", "no-such-article"])
def test_drafts_future_articles_and_unknown_slugs_give_the_friendly_404(client, three_articles, slug):
    response = client.get(f"/articles/{slug}/")
    assert response.status_code == 404
    assert b"find that page" in response.content
    assert b"Draft article" not in response.content
    assert b"Future article" not in response.content


@pytest.mark.parametrize("url", ["/", "/articles/", "/articles/?q=hips", "/sitemap.xml", "/articles/feed.rss"])
def test_lists_sitemap_and_feeds_show_only_live_articles(client, three_articles, url):
    response = client.get(url)
    assert response.status_code == 200
    assert b"/articles/live/" in response.content
    assert b"/articles/draft/" not in response.content
    assert b"/articles/future/" not in response.content


def test_the_atom_feed_shows_only_live_articles(client, three_articles):
    response = client.get("/articles/feed.atom")
    assert response["Content-Type"].startswith("application/atom+xml")
    assert b"/articles/live/" in response.content
    assert b"/articles/draft/" not in response.content
    assert b"/articles/future/" not in response.content


def test_related_articles_never_include_drafts(client, make_article, three_articles):
    make_article(title="Another live one", slug="another", topics=["Hip"])
    three_articles["draft"].topics.add(*three_articles["live"].topics.all())
    response = client.get("/articles/another/")
    assert b"/articles/live/" in response.content
    assert b"/articles/draft/" not in response.content


def test_staff_who_edit_articles_preview_a_draft_on_its_public_url(client, django_user_model, three_articles):
    editor = django_user_model.objects.create_superuser("editor", "editor@example.org", "correct horse battery")
    verified_login(client, editor)
    response = client.get("/articles/draft/")
    assert response.status_code == 200
    assert b"Staff preview" in response.content
    assert b'<meta name="robots" content="noindex">' in response.content
    assert "no-store" in response["Cache-Control"]
    assert response["X-Robots-Tag"] == "noindex"


def test_staff_see_a_scheduled_article_announced_as_scheduled(client, django_user_model, three_articles):
    editor = django_user_model.objects.create_superuser("editor", "editor@example.org", "correct horse battery")
    verified_login(client, editor)
    response = client.get("/articles/future/")
    assert response.status_code == 200
    assert b"is scheduled for" in response.content


def test_mallory_with_an_account_but_no_staff_rights_gets_a_404_for_a_draft(client, mallory, three_articles):
    verified_login(client, mallory)
    assert client.get("/articles/draft/").status_code == 404


def test_rita_at_reception_is_not_an_editor_and_gets_a_404_for_a_draft(client, rita, three_articles):
    verified_login(client, rita)
    assert client.get("/articles/draft/").status_code == 404
