"""Editors work on articles in the Django admin."""

import pytest

from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor_client(client, django_user_model):
    editor = django_user_model.objects.create_superuser("editor", "editor@example.org", "correct horse battery")
    verified_login(client, editor)
    return client


def test_the_changelist_has_filters_and_search(editor_client, make_article):
    make_article(title="Sciatica explained")
    make_article(title="Desk posture", status="draft", published_at=None)
    response = editor_client.get("/admin/articles/article/", {"q": "sciatica"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Sciatica explained" in html
    assert "Desk posture" not in html
    assert "By visible to the public" in html
    assert "By status" in html


def test_the_visibility_filter_separates_live_scheduled_and_hidden(editor_client, make_article):
    from datetime import timedelta

    from django.utils import timezone

    make_article(title="Live one")
    make_article(title="Scheduled one", published_at=timezone.now() + timedelta(days=1))
    make_article(title="Draft one", status="draft", published_at=None)
    scheduled = editor_client.get("/admin/articles/article/", {"visible": "scheduled"}).content.decode()
    hidden = editor_client.get("/admin/articles/article/", {"visible": "no"}).content.decode()
    assert "Scheduled one" in scheduled and "Live one" not in scheduled and "Draft one" not in scheduled
    assert "Scheduled one" in hidden and "Draft one" in hidden and "Live one" not in hidden


def test_the_add_form_prefills_the_slug_from_the_title(editor_client):
    html = editor_client.get("/admin/articles/article/add/").content.decode()
    assert "prepopulated_fields.json" in html or "data-prepopulated-fields" in html or "prepopulated" in html
    assert "&quot;dependency_ids&quot;: [&quot;#id_title&quot;]" in html


def test_the_change_form_shows_the_rendered_preview_and_the_public_link(editor_client, make_article):
    article = make_article(status="draft", published_at=None, body_markdown="## Warm up\n\n<script>x()</script>")
    html = editor_client.get(f"/admin/articles/article/{article.pk}/change/").content.decode()
    assert '<div class="article-preview"><h2 id="warm-up">Warm up</h2>' in html
    assert "<script>x()" not in html
    assert f'href="/articles/{article.slug}/"' in html
    assert "only staff can see it until it is published" in html


def test_an_editor_publishes_a_draft_through_the_admin(editor_client, make_article):
    article = make_article(status="draft", published_at=None)
    editor_client.post(
        "/admin/articles/article/", {"action": "publish_now", "_selected_action": [article.pk]}, follow=True
    )
    article.refresh_from_db()
    assert article.is_published()


def test_the_admin_saves_a_new_article_and_renders_it(editor_client):
    response = editor_client.post(
        "/admin/articles/article/add/",
        {
            "title": "Knees and hips",
            "slug": "knees-and-hips",
            "summary": "How they share the load.",
            "body_markdown": "Intro.\n\n## Load\n\n| a | b |\n|---|---|\n| 1 | 2 |",
            "status": "published",
            "published_at_0": "",
            "published_at_1": "",
        },
    )
    assert response.status_code == 302
    from articles.models import Article

    article = Article.objects.get(slug="knees-and-hips")
    assert article.is_published()
    assert "<table>" in article.body_html
