"""The article page: structure, people and dates, search-engine tags, and the call to action into booking."""

import json
import re
from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

LONG_SLUG = "how-your-hips-can-cause-your-lower-back-pain"


@pytest.fixture
def launch_articles():
    call_command("import_articles", "--launch-content", stdout=StringIO())


def _structured_data(html: str) -> dict:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


def test_a_launch_article_renders_as_structured_html_with_two_calls_to_action(client, launch_articles):
    html = client.get(f"/articles/{LONG_SLUG}/").content.decode()
    assert '<h2 id="common-causes-of-lower-back-and-hip-pain">' in html
    assert '<h3 id="piriformis-stretch">' in html
    assert "<table>" in html and "<th>Arthritis</th>" in html
    assert "<ol>\n<li>Your doctor asks you questions" in html
    # One after the introduction, one at the end; each carries the article into the booking flow.
    assert html.count(f'href="/book/?article={LONG_SLUG}"') == 2
    assert html.count("Book online - Free 20-minute consultation") == 2


def test_the_call_to_action_after_the_introduction_comes_before_the_first_section(client, launch_articles):
    html = client.get(f"/articles/{LONG_SLUG}/").content.decode()
    introduction_cta = html.index('data-cta="introduction"')
    assert html.index("vice versa") < introduction_cta < html.index('<h2 id="how-lower-back-and-hips-work-together">')


def test_the_table_of_contents_links_to_the_headings(client, launch_articles):
    html = client.get(f"/articles/{LONG_SLUG}/").content.decode()
    assert '<a href="#how-to-diagnose-root-cause">How to Diagnose Root Cause</a>' in html
    assert '<a href="#hip-flexor-stretch">Hip flexor stretch</a>' in html


def test_it_shows_the_author_the_reviewer_dates_and_reading_time(client, make_article, dr_patel, dr_okafor):
    make_article(slug="reviewed", author=dr_patel, reviewer=dr_okafor, reviewed_on=date(2026, 10, 3))
    html = client.get("/articles/reviewed/").content.decode()
    assert "Dr Priya Patel, Physiotherapist" in html
    assert "Dr Chidi Okafor, Physiotherapist on" in html
    assert '<time datetime="2026-10-03">3 October 2026</time>' in html
    assert "1 minute" in html


def test_it_has_a_unique_title_description_canonical_and_open_graph(client, make_article):
    make_article(title="Sciatica explained", slug="sciatica", summary="What sciatica is, and what helps.")
    html = client.get("/articles/sciatica/").content.decode()
    assert "<title>Sciatica explained | Hip &amp; Back Physiotherapy Clinic</title>" in html
    assert '<meta name="description" content="What sciatica is, and what helps.">' in html
    assert '<link rel="canonical" href="http://127.0.0.1:8000/articles/sciatica/">' in html
    assert '<meta property="og:type" content="article">' in html
    assert '<meta property="og:title" content="Sciatica explained">' in html
    assert '<meta property="og:url" content="http://127.0.0.1:8000/articles/sciatica/">' in html


def test_its_json_ld_is_a_medical_web_page_reviewed_by_a_practitioner(client, make_article, dr_patel, dr_okafor):
    article = make_article(slug="reviewed", author=dr_patel, reviewer=dr_okafor, reviewed_on=date(2026, 10, 3))
    graph = {
        node["@type"]: node for node in _structured_data(client.get("/articles/reviewed/").content.decode())["@graph"]
    }
    assert graph["MedicalWebPage"]["reviewedBy"]["name"] == "Dr Chidi Okafor"
    assert graph["MedicalWebPage"]["lastReviewed"] == "2026-10-03"
    assert graph["MedicalWebPage"]["datePublished"] == article.published_at.isoformat()
    assert graph["Article"]["author"]["name"] == "Dr Priya Patel"
    assert graph["Article"]["headline"] == article.title
    assert graph["MedicalClinic"]["name"] == "Hip & Back Physiotherapy Clinic"


def test_json_ld_cannot_be_closed_early_by_a_title(client, make_article):
    make_article(slug="sneaky", title="</script><script>alert(1)</script>")
    html = client.get("/articles/sneaky/").content.decode()
    assert "<script>alert(1)" not in html
    assert _structured_data(html)["@graph"][1]["headline"] == "</script><script>alert(1)</script>"


def test_pages_carry_no_inline_script_style_or_event_handler(client, launch_articles):
    for url in ["/", "/articles/", f"/articles/{LONG_SLUG}/", "/articles/?q=nothing-at-all"]:
        html = client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*(src=|application/ld\+json))", html), url
        assert " style=" not in html, url
        assert not re.search(r"\son[a-z]+=", html), url


def test_related_articles_prefer_shared_topics(client, make_article):
    make_article(slug="main", topics=["Hip", "Exercise"])
    make_article(slug="shares-two", topics=["Hip", "Exercise"])
    make_article(slug="shares-none", topics=["Lower back"])
    make_article(slug="shares-one", topics=["Hip"])
    response = client.get("/articles/main/")
    assert [article.slug for article in response.context["related_articles"]] == [
        "shares-two",
        "shares-one",
        "shares-none",
    ]


def test_the_home_page_explains_the_clinic_and_lists_the_latest_articles(client, launch_articles):
    html = client.get("/").content.decode()
    assert "free 20-minute consultation" in html
    assert f'href="/articles/{LONG_SLUG}/"' in html
    assert '"@type": "MedicalClinic"' in html
    assert '<link rel="canonical" href="http://127.0.0.1:8000/">' in html


def test_the_sitemap_and_robots_txt_point_at_each_other(client, launch_articles):
    sitemap = client.get("/sitemap.xml").content.decode()
    robots = client.get("/robots.txt").content.decode()
    assert f"<loc>http://127.0.0.1:8000/articles/{LONG_SLUG}/</loc>" in sitemap
    assert "<lastmod>" in sitemap
    assert "Sitemap: http://testserver/sitemap.xml" in robots


def test_the_feeds_list_articles_with_their_summaries(client, launch_articles):
    rss = client.get("/articles/feed.rss")
    atom = client.get("/articles/feed.atom")
    assert rss["Content-Type"].startswith("application/rss+xml")
    assert b"How Your Hips Can Cause Your Lower Back Pain" in rss.content
    assert b"share joints, muscles and nerves" in rss.content
    assert b"<category>Hip</category>" in rss.content
    assert b"<updated>" in atom.content
