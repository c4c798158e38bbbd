"""Article pages are rendered once and served again until an article, topic or author changes, or one goes live.

Outside a test transaction (transaction=True), as a server runs: inside one nothing is kept.
"""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from articles import views
from articles.models import Article, Topic
from bookings.models import Practitioner
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_second_reader_gets_the_kept_article_for_one_query(client, make_article, django_assert_num_queries):
    article = make_article(title="Sitting with a sore hip", slug="sitting")
    assert client.get("/articles/sitting/").status_code == 200

    with django_assert_num_queries(1):  # the content version
        response = client.get("/articles/sitting/")

    assert article.title in response.content.decode()
    assert views._article_pages.hits == 1


def test_an_edited_article_shows_at_once_on_its_page_the_list_and_home(client, make_article):
    article = make_article(title="Sitting with a sore hip", slug="sitting")
    for path in ("/", "/articles/", "/articles/sitting/"):
        assert "Sitting with a sore hip" in client.get(path).content.decode()

    article.title = "Sitting comfortably with a sore hip"
    article.save()

    for path in ("/", "/articles/", "/articles/sitting/"):
        assert "Sitting comfortably with a sore hip" in client.get(path).content.decode(), path


def test_a_new_topic_or_a_renamed_author_shows_at_once(client, make_article, dr_patel):
    article = make_article(title="Sitting with a sore hip", slug="sitting", author=dr_patel)
    assert "Priya Patel" in client.get("/articles/sitting/").content.decode()

    article.topics.add(Topic.objects.create(name="Desk work", slug="desk-work"))
    Practitioner.objects.filter(pk=dr_patel.pk).update(display_name="Priya Patel-Shah")

    content = client.get("/articles/sitting/").content.decode()
    assert "Desk work" in content and "Priya Patel-Shah" in content


def test_an_unpublished_article_is_gone_at_once(client, make_article):
    make_article(title="Sitting with a sore hip", slug="sitting")
    assert client.get("/articles/sitting/").status_code == 200

    Article.objects.filter(slug="sitting").update(status="draft", published_at=None)

    assert client.get("/articles/sitting/").status_code == 404


def test_a_scheduled_article_appears_at_its_time_without_any_change(client, make_article):
    make_article(title="Live now", slug="live")
    # Two minutes ahead: inside the kept page's five-minute limit, so only its own expiry can show it.
    going_live = timezone.now().replace(microsecond=0) + timedelta(minutes=2)
    make_article(title="Out in two minutes", slug="soon", published_at=going_live)
    assert "Out in two minutes" not in client.get("/").content.decode()

    with time_machine.travel(going_live + timedelta(seconds=1), tick=False):
        assert "Out in two minutes" in client.get("/").content.decode()


def test_searches_and_staff_previews_are_never_kept(client, make_article, rita, monkeypatch):
    from clinic import page_cache

    make_article(title="Sitting with a sore hip", slug="sitting")
    # Whatever the page holds (a staff page has a CSRF token), searching or being signed in is enough.
    monkeypatch.setattr(page_cache, "_keepable", lambda *args: True)
    client.get("/articles/?q=hip")
    client.get("/articles/?q=hip")
    verified_login(client, rita)
    client.get("/articles/sitting/")
    client.get("/articles/sitting/")

    assert (views._article_pages.renders, views._article_pages.hits) == (0, 0)


def test_when_full_the_page_served_longest_ago_goes_first(client, make_article, monkeypatch):
    from clinic import page_cache

    make_article(title="Sitting with a sore hip", slug="sitting")
    monkeypatch.setattr(page_cache, "MAX_ENTRIES_PER_CACHE", 2)
    client.get("/")
    client.get("/articles/sitting/")
    client.get("/")  # the home page is now the most recently served

    client.get("/articles/?topic=made-up")  # a third page: the article page goes, the home page stays
    renders = views._article_pages.renders
    client.get("/")
    assert views._article_pages.renders == renders
    client.get("/articles/sitting/")
    assert views._article_pages.renders == renders + 1
