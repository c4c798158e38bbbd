"""Structured data as a search engine reads it: JSON-LD parsed by extruct, checked against schema.org and
Google's required properties (FAQPage, LocalBusiness/MedicalClinic), and the sitemap."""

import re
from io import StringIO
from pathlib import Path

import extruct
import pytest
from django.core import checks
from django.core.management import call_command

from articles.structured_data import opening_hours_specification

pytestmark = pytest.mark.django_db

FAQ_SLUG = "how-your-hips-can-cause-your-lower-back-pain"
LAUNCH_FILE = Path(__file__).resolve().parents[2] / "articles" / "content" / f"{FAQ_SLUG}.md"
# What Google reads in an answer's HTML.
ANSWER_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "br", "ol", "ul", "li", "a", "p", "div", "b", "strong", "i", "em"}


@pytest.fixture
def launch_articles():
    call_command("import_articles", "--launch-content", stdout=StringIO())


def _json_ld_nodes(client, path) -> list[dict]:
    response = client.get(path)
    assert response.status_code == 200
    blocks = extruct.extract(response.content.decode(), base_url="http://testserver", syntaxes=["json-ld"])["json-ld"]
    assert len(blocks) == 1, blocks
    [block] = blocks
    assert block["@context"] == "https://schema.org"
    return block["@graph"]


def _of_type(nodes, schema_type) -> list[dict]:
    return [node for node in nodes if node["@type"] == schema_type]


def _faq_questions_in_the_file() -> list[str]:
    """The h3s under the file's "Frequently asked questions" h2, read from the Markdown."""
    text = LAUNCH_FILE.read_text(encoding="utf-8")
    section = text.split("## Frequently asked questions", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^### (.+)$", section, flags=re.M)


def test_the_second_launch_articles_faq_is_an_faq_page_with_its_questions_and_answers(client, launch_articles):
    [faq] = _of_type(_json_ld_nodes(client, f"/articles/{FAQ_SLUG}/"), "FAQPage")

    questions = faq["mainEntity"]
    assert [question["name"] for question in questions] == _faq_questions_in_the_file()
    assert len(questions) == 3
    for question in questions:
        # Google's required properties: Question.name, Question.acceptedAnswer, Answer.text.
        assert question["@type"] == "Question"
        assert question["acceptedAnswer"]["@type"] == "Answer"
        answer = question["acceptedAnswer"]["text"]
        assert answer.strip()
        assert set(re.findall(r"</?([a-z0-9]+)", answer)) <= ANSWER_TAGS, answer
    assert questions[0]["acceptedAnswer"]["text"].startswith("<p>Yes, a herniated disk can cause hip pain.")
    # The table in the second answer keeps its words, a row to a paragraph.
    assert "<p>Treatment – Muscle strain can be treated through rest" in questions[1]["acceptedAnswer"]["text"]
    assert "Hip bursitis rarely affects young people, especially men." in questions[2]["acceptedAnswer"]["text"]
    assert faq["url"] == f"http://127.0.0.1:8000/articles/{FAQ_SLUG}/"


def test_an_article_without_an_faq_section_has_no_faq_page(client, launch_articles):
    nodes = _json_ld_nodes(client, "/articles/hip-and-lower-back-pain-why-they-come-together/")

    assert _of_type(nodes, "FAQPage") == []
    assert len(_of_type(nodes, "MedicalWebPage")) == 1


def test_any_article_with_an_faq_section_gets_one_from_its_own_headings(client, make_article):
    make_article(
        slug="knees",
        body_markdown=(
            "Intro.\n\n## Exercises\n\n### Not a question\n\nSquats.\n\n## FAQ\n\n"
            "### Does running hurt knees?\n\nNot usually, see [our article](/articles/).\n\n"
            "### Is this unanswered?\n\n## After the FAQ\n\nNot part of it.\n"
        ),
    )

    [faq] = _of_type(_json_ld_nodes(client, "/articles/knees/"), "FAQPage")

    assert faq["mainEntity"] == [
        {
            "@type": "Question",
            "name": "Does running hurt knees?",
            "acceptedAnswer": {
                "@type": "Answer",
                "text": '<p>Not usually, see <a href="/articles/">our article</a>.</p>',
            },
        }
    ]


def test_the_contact_page_describes_the_clinic_for_search_engines(client, settings):
    nodes = _json_ld_nodes(client, "/contact/")

    [page] = _of_type(nodes, "ContactPage")
    [clinic] = _of_type(nodes, "MedicalClinic")
    assert page["about"] == {"@id": clinic["@id"]}
    # Google's LocalBusiness: name and address required; telephone and opening hours recommended.
    assert clinic["name"] == settings.CLINIC_NAME == "Hip & Back Physiotherapy Clinic"
    assert clinic["medicalSpecialty"] == "Physiotherapy"
    assert clinic["address"] == {
        "@type": "PostalAddress",
        "streetAddress": "12 Example Street",
        "addressLocality": "London",
        "postalCode": "N1 1AA",
        "addressCountry": "GB",
    }
    assert clinic["telephone"] == "+44 20 7946 0000"
    assert clinic["openingHoursSpecification"] == [
        {
            "@type": "OpeningHoursSpecification",
            "dayOfWeek": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
            "opens": "08:30",
            "closes": "18:00",
        }
    ]


def test_the_opening_hours_follow_the_setting(client, settings):
    settings.CLINIC_OPENING_HOURS = "Mon-Thu 8.00 to 19.30; Saturday: 09:00-12:30"
    settings.CLINIC_ADDRESS = "Unit 4, The Old Mill, Leeds, LS1 4AP"

    [clinic] = _of_type(_json_ld_nodes(client, "/contact/"), "MedicalClinic")

    assert [(spec["dayOfWeek"], spec["opens"], spec["closes"]) for spec in clinic["openingHoursSpecification"]] == [
        (["Monday", "Tuesday", "Wednesday", "Thursday"], "08:00", "19:30"),
        (["Saturday"], "09:00", "12:30"),
    ]
    assert clinic["address"]["streetAddress"] == "Unit 4, The Old Mill"
    assert clinic["address"]["postalCode"] == "LS1 4AP"


@pytest.mark.parametrize(
    "text", ["Weekdays, nine to five", "Monday to Friday 18:00-08:30", "Friday to Monday 09:00-17:00", "Mon 9:75-10:00"]
)
def test_opening_hours_that_cannot_be_read_are_left_out_and_the_check_says_so(client, settings, text):
    settings.CLINIC_OPENING_HOURS = text

    assert opening_hours_specification(text) == []
    [clinic] = _of_type(_json_ld_nodes(client, "/contact/"), "MedicalClinic")
    assert "openingHoursSpecification" not in clinic
    assert text in client.get("/contact/").content.decode()
    assert "articles.W001" in [message.id for message in checks.run_checks()]


def test_the_sitemap_lists_the_team_and_contact_pages(client):
    sitemap = client.get("/sitemap.xml").content.decode()

    for path in ["/", "/articles/", "/team/", "/contact/"]:
        assert f"<loc>http://127.0.0.1:8000{path}</loc>" in sitemap
