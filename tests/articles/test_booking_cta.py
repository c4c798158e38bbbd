"""A patient reads an article, follows its call to action, and the booking flow knows which article it was."""

import re
from io import StringIO

import pytest
from django.core.management import call_command

from articles.models import Article
from bookings.models import Appointment
from tests.helpers import local, make_slot, time_link

SLUG = "hip-and-lower-back-pain-why-they-come-together"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_patient_follows_the_call_to_action_into_booking_with_the_article_recorded(page, dr_patel):
    call_command("import_articles", "--launch-content", stdout=StringIO())
    slot = make_slot(dr_patel, local(2, 10))

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

    # Through to the booking itself: the article travels with the patient and is stored on the appointment.
    page.get_by_label("No, none of these").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/book/time/")
    page.locator(f"a.slot-link[href$='{time_link(slot)}']").click()
    page.get_by_label("First name").fill("Pat")
    page.get_by_label("Last name").fill("Example")
    page.get_by_label("E-mail").fill("pat@example.org")
    page.get_by_label("Phone").fill("07700 900123")
    page.get_by_label(re.compile("privacy notice and agree")).check()
    page.get_by_role("button", name="Confirm booking").click()
    page.wait_for_url("**/book/confirmed/")
    appointment = Appointment.objects.get()
    assert appointment.slot == slot
    assert appointment.source_article == Article.objects.get(slug=SLUG)
