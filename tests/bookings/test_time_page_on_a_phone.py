"""The time page fits a thumb: the soonest time as one button at the top, then the week's days as links to
their times.

Days are dates, not days from today: the fixtures run before the clock is frozen.
"""

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from bookings.forms import start_time_value
from bookings.models import Appointment
from tests.helpers import PATIENT, local, make_appointment, make_slot, pass_safety_check

pytestmark = pytest.mark.django_db

# A Monday morning, so that the days below are all in this week whatever day the suite runs.
MONDAY = datetime(2026, 11, 30, 8, 0, tzinfo=ZoneInfo("Europe/London"))
WEDNESDAY, SATURDAY = date(2026, 12, 2), date(2026, 12, 5)
SECTION = re.compile(r'<section[^>]*>\s*<h3[^>]*id="(day-\d{8})"[^>]*>([^<]+)</h3>(.*?)</section>', re.S)
DAY_LINK = re.compile(r'<a[^>]*href="#(day-\d{8})"[^>]*>([^<]+)</a>')
SOONEST = re.compile(r'<a[^>]*class="[^"]*soonest-link[^"]*"[^>]*href="([^"]+)"[^>]*>([^<]+)</a>')


@pytest.fixture
def week_of_times(dr_patel, dr_okafor):
    """Wednesday: three times; Thursday: one; Saturday: two (one with both practitioners)."""
    return {
        "Wednesday 2 December": [local(WEDNESDAY, 16), local(WEDNESDAY, 16, 20), local(WEDNESDAY, 17)],
        "Thursday 3 December": [local(date(2026, 12, 3), 14, 40)],
        "Saturday 5 December": [local(SATURDAY, 9), local(SATURDAY, 9, 20)],
    }


def _make(week_of_times, dr_patel, dr_okafor):
    for times in week_of_times.values():
        for starts_at in times:
            make_slot(dr_patel, starts_at)
    make_slot(dr_okafor, local(SATURDAY, 9))


@time_machine.travel(MONDAY, tick=False)
def test_the_soonest_time_is_one_button_at_the_top_and_books_that_time(client, week_of_times, dr_patel, dr_okafor):
    _make(week_of_times, dr_patel, dr_okafor)
    pass_safety_check(client)
    page = client.get("/book/time/").content.decode()

    href, text = SOONEST.search(page).groups()
    assert " ".join(text.split()) == "Soonest: Wednesday 2 December, 16:00, any practitioner"
    # Before every other link to a time.
    assert page.index("soonest-link") < page.index("slot-link") and page.index("soonest-link") < page.index("#day-")

    details = client.get(href.replace("&amp;", "&"))
    key = str(details.context["form"].initial["submission_key"])
    booked = client.post(
        "/book/details/", {**PATIENT, "at": start_time_value(local(WEDNESDAY, 16)), "submission_key": key}
    )

    assert booked.status_code == 302
    assert Appointment.objects.get().slot.starts_at == local(WEDNESDAY, 16)


@time_machine.travel(MONDAY, tick=False)
def test_with_one_practitioner_chosen_the_soonest_button_is_their_soonest_slot(
    client, week_of_times, dr_patel, dr_okafor
):
    _make(week_of_times, dr_patel, dr_okafor)
    pass_safety_check(client)

    page = client.get(f"/book/time/?practitioner={dr_okafor.pk}").content.decode()

    href, text = SOONEST.search(page).groups()
    assert " ".join(text.split()) == "Soonest: Saturday 5 December, 09:00, with Dr Chidi Okafor"
    assert href == f"/book/details/?slot={dr_okafor.slots.get().pk}"


@time_machine.travel(MONDAY, tick=False)
def test_each_day_link_lands_on_that_days_times(client, week_of_times, dr_patel, dr_okafor):
    _make(week_of_times, dr_patel, dr_okafor)
    pass_safety_check(client)
    page = client.get("/book/time/").content.decode()

    links = DAY_LINK.findall(page)
    sections = {anchor: (heading, body) for anchor, heading, body in SECTION.findall(page)}
    assert [" ".join(text.split()) for _, text in links] == [
        "Wednesday 2 December: 3 times",
        "Thursday 3 December: 1 time",
        "Saturday 5 December: 2 times",
    ]
    for (anchor, text), (day, times) in zip(links, week_of_times.items(), strict=True):
        heading, body = sections[anchor]
        assert heading == day and text.startswith(day)
        linked = re.findall(r'class="[^"]*slot-link[^"]*"[^>]*href="/book/details/\?at=([^"]+)"', body)
        assert linked == [start_time_value(starts_at) for starts_at in times]


@time_machine.travel(MONDAY, tick=False)
def test_a_later_week_asked_for_shows_its_days_but_no_soonest_button(client, dr_patel):
    make_slot(dr_patel, local(WEDNESDAY, 16))
    make_slot(dr_patel, local(date(2026, 12, 9), 10))
    pass_safety_check(client)

    page = client.get("/book/time/?week=2026-12-07").content.decode()

    assert "soonest-link" not in page
    assert [" ".join(text.split()) for _, text in DAY_LINK.findall(page)] == ["Wednesday 9 December: 1 time"]


@time_machine.travel(MONDAY, tick=False)
def test_with_this_week_booked_up_the_page_opens_on_the_first_week_with_a_time_and_offers_it_first(
    client, dr_patel, django_assert_num_queries
):
    make_appointment(make_slot(dr_patel, local(WEDNESDAY, 16)), at=MONDAY)
    later = make_slot(dr_patel, local(date(2026, 12, 16), 10))
    pass_safety_check(client)

    # 1 practitioners, 2 this week's times (none), 3 the first time after this week, 4 that time's week.
    with django_assert_num_queries(4):
        response = client.get("/book/time/")

    page = response.content.decode()
    assert response.context["week"] == date(2026, 12, 14)
    assert [" ".join(text.split()) for _, text in DAY_LINK.findall(page)] == ["Wednesday 16 December: 1 time"]
    assert SOONEST.search(page).group(1) == f"/book/details/?at={start_time_value(later.starts_at)}"


@time_machine.travel(MONDAY, tick=False)
def test_with_nothing_bookable_at_all_the_page_shows_this_week_and_the_phone_number(
    client, dr_patel, django_assert_num_queries
):
    make_appointment(make_slot(dr_patel, local(WEDNESDAY, 16)), at=MONDAY)
    pass_safety_check(client)

    # 1 practitioners, 2 this week's times (none), 3 the first time after this week (none).
    with django_assert_num_queries(3):
        response = client.get("/book/time/")

    assert response.context["week"] == date(2026, 11, 30)
    assert response.context["next_available"] is None
    assert "We have no free times online at the moment" in response.content.decode()
