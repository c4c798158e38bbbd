"""A patient reads an article, follows its call to action, and the booking flow knows which article it was."""

from io import StringIO

import pytest
from django.core.management import call_command

SLUG = "hip-and-lower-back-pain-why-they-come-together"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_patient_follows_the_call_to_action_into_booking_with_the_article_recorded(page):
    call_command("import_articles", "--launch-content", stdout=StringIO())

    page.goto("/articles/")
    page.get_by_role("link", name="Hip pain and lower back pain – why they often come together").click()
    page.wait_for_url(f"**/articles/{SLUG}/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Hip pain and lower back pain")
    assert page.locator("table, .article-body ul").count() >= 1

    page.locator('[data-cta="end"]').click()

    page.wait_for_url(f"**/book/?article={SLUG}")
    assert "safety" in page.get_by_role("heading", level=1).inner_text().lower()
    hidden = page.locator('input[type="hidden"][name="article"]')
    assert hidden.get_attribute("value") == SLUG
