"""The counts behind the Insights page, taken without a cookie or anything about who: the safety-check page
opened from an article's link, and the red-flag check sending someone to urgent care (online and by phone)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from articles.models import Article
from bookings.models import BookingStartCount, UrgentCareCount
from bookings.schedule import clinic_zone
from tests.helpers import SAFE_ANSWERS, local, make_slot
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def hip_article():
    return Article.objects.create(
        title="Hip pain",
        slug="hip-pain",
        summary="s",
        body_markdown="b",
        status="published",
        published_at=timezone.now() - timedelta(days=1),
    )


def today_local():
    return timezone.now().astimezone(clinic_zone()).date()


def test_opening_the_safety_check_from_an_article_adds_one_to_todays_starts_for_it(client, hip_article):
    client.get("/book/?article=hip-pain")
    client.get("/book/?article=hip-pain")

    assert list(BookingStartCount.objects.values_list("article__slug", "day", "count")) == [
        ("hip-pain", today_local(), 2)
    ]


def test_a_start_sets_no_cookie_the_page_would_not_set_anyway(client, hip_article):
    without_article = client.get("/book/")
    with_article = client.get("/book/?article=hip-pain")

    assert sorted(with_article.cookies) == sorted(without_article.cookies)


def test_an_unknown_or_unpublished_article_adds_nothing(client, hip_article):
    Article.objects.create(title="Draft", slug="draft", summary="s", body_markdown="b", status="draft")

    for slug in ["no-such-article", "draft", "", "x" * 500, "hip-pain' OR 1=1 --"]:
        assert client.get("/book/", {"article": slug}).status_code == 200

    assert not BookingStartCount.objects.exists()


def test_answering_the_check_adds_no_start(client, hip_article):
    client.post("/book/", {**SAFE_ANSWERS, "article": "hip-pain"})

    assert not BookingStartCount.objects.exists()


def test_a_red_flag_online_adds_one_to_todays_urgent_care_count_and_safe_answers_do_not(client):
    client.post("/book/", SAFE_ANSWERS)
    assert not UrgentCareCount.objects.exists()

    client.post("/book/", {"red_flags": "leg_weakness"})
    client.post("/book/", {"red_flags": "trauma"})

    assert list(UrgentCareCount.objects.values_list("day", "count")) == [(today_local(), 2)]


def test_a_red_flag_on_ritas_phone_booking_counts_too(client, rita, dr_patel):
    verified_login(client, rita)
    slot = make_slot(dr_patel, local(3, 10))

    response = client.post(reverse("reception_book"), {"slot": slot.pk, "red_flags": "systemic"})

    assert "Nothing was booked" in response.content.decode()
    assert list(UrgentCareCount.objects.values_list("day", "count")) == [(today_local(), 1)]


def test_a_red_flag_when_rita_puts_a_caller_on_the_waiting_list_counts_too(client, rita):
    verified_login(client, rita)

    response = client.post(reverse("reception_waiting_list_add"), {"red_flags": "trauma", "first_name": "Cal"})

    assert response.status_code == 200 and "urgent" in response.content.decode().lower()
    assert list(UrgentCareCount.objects.values_list("day", "count")) == [(today_local(), 1)]
