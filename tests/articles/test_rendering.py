"""Markdown becomes structured, sanitised HTML when an article is saved."""

import pytest

from articles.rendering import render_markdown

pytestmark = pytest.mark.django_db

UNSAFE_MARKDOWN = """Hello.

<script>alert("stolen")</script>

<img src="x.png" onerror="alert('img')">

[click me](javascript:alert('link'))

<a href="javascript:alert('raw')" onclick="alert('click')">raw link</a>

<iframe src="https://evil.example/"></iframe>

<p style="position: fixed">styled</p>

<svg onload="alert('svg')"></svg>
"""


def test_unsafe_markdown_is_neutralised_when_saved(make_article):
    article = make_article(body_markdown=UNSAFE_MARKDOWN)
    html = article.body_html.lower()
    assert "<script" not in html
    assert "alert(&quot;stolen" not in html and 'alert("stolen' not in html
    assert "onerror" not in html
    assert "onclick" not in html
    assert "onload" not in html
    assert "javascript:" not in html
    assert "<iframe" not in html
    assert "<svg" not in html
    assert "style=" not in html
    # What is harmless survives.
    assert "<p>hello.</p>" in html
    assert 'src="x.png"' in html
    assert "raw link" in html


def test_the_article_page_never_shows_the_unsafe_parts(client, make_article):
    make_article(slug="unsafe", body_markdown=UNSAFE_MARKDOWN)
    body = client.get("/articles/unsafe/").content.decode()
    assert 'alert("stolen")' not in body
    assert "javascript:alert" not in body
    assert "onerror=" not in body


def test_links_keep_safe_schemes_and_are_marked_noopener():
    html = render_markdown("[NHS](https://www.nhs.uk/) and [call](tel:02079460000) and [team](/team/)").html
    assert 'href="https://www.nhs.uk/"' in html
    assert 'href="tel:02079460000"' in html
    assert 'href="/team/"' in html
    assert 'rel="noopener noreferrer"' in html


def test_headings_get_ids_and_make_a_two_level_table_of_contents():
    rendered = render_markdown("Intro.\n\n## Causes & signs\n\n### Muscles\n\nText.\n\n#### Too deep\n\n## Help\n")
    assert '<h2 id="causes-signs">Causes &amp; signs</h2>' in rendered.html
    assert rendered.toc == [
        {
            "id": "causes-signs",
            "name": "Causes & signs",
            "level": 2,
            "children": [{"id": "muscles", "name": "Muscles", "level": 3, "children": []}],
        },
        {"id": "help", "name": "Help", "level": 2, "children": []},
    ]


def test_reading_time_rounds_up_at_two_hundred_words_a_minute():
    assert render_markdown("word " * 10).reading_minutes == 1
    assert render_markdown("word " * 201).reading_minutes == 2


def test_tables_and_lists_render_as_html():
    html = render_markdown("- one\n- two\n\n1. first\n2. second\n\n| A | B |\n| --- | --- |\n| 1 | 2 |\n").html
    assert "<ul>\n<li>one</li>" in html
    assert "<ol>\n<li>first</li>" in html
    assert "<table>" in html and "<th>A</th>" in html and "<td>2</td>" in html


def test_saving_again_rerenders_the_body(make_article):
    article = make_article(body_markdown="Old text.")
    article.body_markdown = "## New heading"
    article.save(update_fields=["body_markdown"])
    article.refresh_from_db()
    assert article.body_html == '<h2 id="new-heading">New heading</h2>'
    assert article.toc[0]["name"] == "New heading"


def test_publishing_without_a_date_publishes_now(make_article):
    article = make_article(status="draft", published_at=None)
    article.status = "published"
    article.save(update_fields=["status"])
    article.refresh_from_db()
    assert article.published_at is not None
    assert article.is_published()
