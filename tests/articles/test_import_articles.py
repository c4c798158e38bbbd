"""import_articles: Markdown files with front matter in, idempotent by slug, a bad file reported by line."""

import json
import re
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from articles.models import Article

pytestmark = pytest.mark.django_db

GOOD = """---
title: Sitting and your hips
slug: sitting-and-your-hips
summary: Why long days at a desk tighten the hip flexors.
topics: Hip, Posture
---

Sitting shortens the hip flexors.

## What helps

- Stand up every half hour.
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _import(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_articles", *[str(arg) for arg in args], stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_creates_an_article_as_a_draft_with_its_topics(tmp_path):
    out, _ = _import(_write(tmp_path, "a.md", GOOD))
    article = Article.objects.get(slug="sitting-and-your-hips")
    assert "created    sitting-and-your-hips" in out
    assert article.status == "draft"
    assert article.title == "Sitting and your hips"
    assert '<h2 id="what-helps">What helps</h2>' in article.body_html
    assert sorted(article.topics.values_list("slug", flat=True)) == ["hip", "posture"]


def test_a_second_import_changes_nothing(tmp_path):
    path = _write(tmp_path, "a.md", GOOD)
    _import("--publish", path)
    before = Article.objects.get()
    out, _ = _import("--publish", path)
    after = Article.objects.get()
    assert Article.objects.count() == 1
    assert "unchanged  sitting-and-your-hips" in out
    assert (after.updated_at, after.published_at) == (before.updated_at, before.published_at)


def test_a_reimport_updates_the_article_in_place_and_keeps_its_publication_date(tmp_path):
    path = _write(tmp_path, "a.md", GOOD)
    _import("--publish", path)
    first = Article.objects.get()
    _write(tmp_path, "a.md", GOOD.replace("Stand up every half hour.", "Stand up every twenty minutes."))
    out, _ = _import(path)
    article = Article.objects.get()
    assert "updated    sitting-and-your-hips" in out
    assert article.pk == first.pk
    assert "twenty minutes" in article.body_html
    assert article.status == "published"
    assert article.published_at == first.published_at
    assert article.updated_at > first.updated_at


def test_a_malformed_file_is_named_with_its_line_and_the_others_still_import(tmp_path):
    broken = GOOD.replace("summary: Why", "summary Why")
    _write(tmp_path, "a-broken.md", broken)
    _write(tmp_path, "b-good.md", GOOD)
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 file"):
        call_command("import_articles", str(tmp_path), stdout=out, stderr=err)
    assert f"{tmp_path / 'a-broken.md'}:4: expected 'key: value'" in err.getvalue()
    assert "created    sitting-and-your-hips" in out.getvalue()
    assert Article.objects.filter(slug="sitting-and-your-hips").exists()


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("title: x\n", 1, "expected '---' to open the front matter"),
        ("---\ntitle: x\nslug: x\nsummary: x\n", 1, "never closed"),
        ("---\ntitle: x\nslug: x\nsummary: x\n\nBody", 6, "found 'Body' (is the closing '---' missing?)"),
        ("---\ntitle: x\nsummary: x\n---\nBody", 4, "needs a non-empty 'slug'"),
        ("---\ntitle: x\nslug: not a slug\nsummary: x\n---\nBody", 3, "the slug may only hold"),
        ("---\ntitle: x\ntitle: y\nslug: x\nsummary: x\n---\nBody", 3, "'title' is given twice (first on line 2)"),
        ("---\ntitle: x\nslug: x\nsummary: x\ncolour: blue\n---\nBody", 5, "unknown front-matter key 'colour'"),
        ("---\ntitle: x\nslug: x\nsummary: x\nstatus: live\n---\nBody", 5, "status must be draft or published"),
        ("---\ntitle: x\nslug: x\nsummary: x\n---\n\n", 5, "has no body"),
    ],
)
def test_each_kind_of_bad_file_gets_a_clear_message(tmp_path, text, line, message):
    path = _write(tmp_path, "bad.md", text)
    _, err = StringIO(), StringIO()
    with pytest.raises(CommandError):
        call_command("import_articles", str(path), stdout=StringIO(), stderr=err)
    assert f"{path}:{line}: " in err.getvalue()
    assert message in err.getvalue()
    assert not Article.objects.exists()


def test_a_file_that_is_not_utf8_names_its_line(tmp_path):
    path = tmp_path / "latin1.md"
    path.write_bytes(GOOD.replace("Sitting shortens", "Sitting \xe9 shortens").encode("latin-1"))
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_articles", str(path), stdout=StringIO(), stderr=err)
    assert f"{path}:8: is not UTF-8 text" in err.getvalue()


REVIEWED = GOOD.replace(
    "topics: Hip, Posture\n",
    "topics: Hip, Posture\nauthor: Dr Priya Patel\nreviewer: Chidi Okafor\nreviewed_on: 2026-11-20\n",
)


def _json_ld_page(client, article) -> dict:
    html = client.get(article.get_absolute_url()).content.decode()
    data = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S).group(1))
    return next(node for node in data["@graph"] if node["@type"] == "MedicalWebPage")


def test_the_front_matter_names_the_author_the_reviewer_and_the_review_date(client, tmp_path, dr_patel, dr_okafor):
    out, _ = _import("--publish", _write(tmp_path, "a.md", REVIEWED))

    article = Article.objects.get()
    assert "created    sitting-and-your-hips" in out
    assert (article.author, article.reviewer, article.reviewed_on) == (dr_patel, dr_okafor, date(2026, 11, 20))
    page = _json_ld_page(client, article)
    assert page["reviewedBy"] == {"@type": "Person", "name": "Dr Chidi Okafor", "jobTitle": "Physiotherapist"}
    assert page["lastReviewed"] == "2026-11-20"


def test_an_article_without_a_reviewer_claims_no_review(client, tmp_path, dr_patel, dr_okafor):
    _import("--publish", _write(tmp_path, "a.md", GOOD))

    article = Article.objects.get()
    assert (article.author, article.reviewer, article.reviewed_on) == (None, None, None)
    page = _json_ld_page(client, article)
    assert "reviewedBy" not in page and "lastReviewed" not in page


def test_a_new_review_in_the_file_updates_the_article_and_a_file_without_one_keeps_it(tmp_path, dr_patel, dr_okafor):
    path = _write(tmp_path, "a.md", REVIEWED)
    _import(path)
    _write(
        tmp_path,
        "a.md",
        REVIEWED.replace(
            "reviewer: Chidi Okafor\nreviewed_on: 2026-11-20", "reviewer: Dr Priya Patel\nreviewed_on: 2026-11-27"
        ),
    )

    out, _ = _import(path)

    article = Article.objects.get()
    assert "updated    sitting-and-your-hips" in out
    assert (article.reviewer, article.reviewed_on) == (dr_patel, date(2026, 11, 27))
    _write(tmp_path, "a.md", GOOD)
    out, _ = _import(path)
    assert "unchanged  sitting-and-your-hips" in out
    article.refresh_from_db()
    assert (article.author, article.reviewer, article.reviewed_on) == (dr_patel, dr_patel, date(2026, 11, 27))


@pytest.mark.parametrize(
    ("extra", "line", "message"),
    [
        ("author: Dr Nobody\n", 6, "no practitioner is called 'Dr Nobody'"),
        ("author:\n", 6, "'author' is empty"),
        ("reviewer: Dr Chidi Okafor\n", 6, "a reviewer needs 'reviewed_on: YYYY-MM-DD' too"),
        ("reviewed_on: 2026-11-20\n", 6, "'reviewed_on' needs a 'reviewer' too"),
        ("reviewer: Dr Chidi Okafor\nreviewed_on: 20/11/2026\n", 7, "reviewed_on must be a date like 2026-11-20"),
        ("reviewer: Dr Mallory\nreviewed_on: 2026-11-20\n", 6, "no practitioner is called 'Dr Mallory'"),
    ],
)
def test_a_bad_author_or_review_is_named_with_its_line(tmp_path, dr_patel, dr_okafor, extra, line, message):
    path = _write(tmp_path, "bad.md", GOOD.replace("topics: Hip, Posture\n", "topics: Hip, Posture\n" + extra))
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_articles", str(path), stdout=StringIO(), stderr=err)
    assert f"{path}:{line}: {message}" in err.getvalue()
    assert not Article.objects.exists()


def test_two_practitioners_of_one_name_need_the_title(tmp_path, dr_patel):
    from bookings.models import Practitioner

    Practitioner.objects.create(display_name="Priya Patel", profession="Sports massage therapist")
    path = _write(
        tmp_path, "a.md", GOOD.replace("topics: Hip, Posture\n", "topics: Hip, Posture\nauthor: Priya Patel\n")
    )
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_articles", str(path), stdout=StringIO(), stderr=err)
    assert "2 practitioners are called 'Priya Patel': add the title" in err.getvalue()

    _import(
        _write(
            tmp_path, "a.md", GOOD.replace("topics: Hip, Posture\n", "topics: Hip, Posture\nauthor: dr priya patel\n")
        )
    )
    assert Article.objects.get().author == dr_patel


def test_the_launch_articles_claim_no_reviewer():
    _import("--launch-content")

    assert Article.objects.count() == 2
    assert not Article.objects.filter(reviewer__isnull=False).exists()
    assert not Article.objects.filter(reviewed_on__isnull=False).exists()


def test_launch_content_is_published_with_its_headings_lists_and_table():
    out, _ = _import("--launch-content")
    assert "2 created" in out
    articles = Article.objects.published()
    assert set(articles.values_list("slug", flat=True)) == {
        "hip-and-lower-back-pain-why-they-come-together",
        "how-your-hips-can-cause-your-lower-back-pain",
    }
    long_one = Article.objects.get(slug="how-your-hips-can-cause-your-lower-back-pain")
    assert '<h2 id="how-lower-back-and-hips-work-together">' in long_one.body_html
    assert "<ol>" in long_one.body_html and "<ul>" in long_one.body_html
    assert "<th>Muscle strain</th>" in long_one.body_html
    assert "<td>Arthritis can be treated through physical therapy and surgery.</td>" in long_one.body_html


def test_launch_content_twice_changes_nothing_and_keeps_editors_fixes():
    _import("--launch-content")
    article = Article.objects.get(slug="how-your-hips-can-cause-your-lower-back-pain")
    article.body_markdown = article.body_markdown.replace("holds up your truck", "holds up your trunk")
    article.save()
    snapshot = list(Article.objects.order_by("pk").values())
    out, _ = _import("--launch-content")
    assert "0 created, 0 updated" in out
    assert list(Article.objects.order_by("pk").values()) == snapshot


def test_without_paths_or_launch_content_it_explains_itself():
    with pytest.raises(CommandError, match="Name at least one"):
        call_command("import_articles", stdout=StringIO(), stderr=StringIO())
