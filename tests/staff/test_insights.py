"""Margaret the clinic manager's Insights page: every number of a known fortnight, worked out by hand.

The fortnight: Monday 2 March to Sunday 15 March 2026 (week 1 from 2 March, week 2 from 9 March),
before the clocks change, so clinic time is UTC. Every slot lasts an hour. The data set, with the
days from booking to appointment ("lead"):

Dr Patel, week 1: s1-s4 Thu 5 Mar 9-12h, s5-s9 Fri 6 Mar 9-13h, one blocked (Fri 14h), one retired (Fri 15h).
  A1 s1 lead 3 completed online hip     A6 s6 lead 1 cancelled by the patient online hip
  A2 s2 lead 3 completed online hip     A7 s7 lead 2 cancelled by reception phone
  A3 s3 lead 2 completed online hip     A8 s8 lead 1 completed online back
  A4 s4 lead 1 did not attend online back A9 s9 lead 2 completed online hip
  A5 s5 lead 4 completed phone
Dr Okafor, week 2: t1-t4 Thu 12 Mar 9-12h, t5-t8 Fri 13 Mar 9-12h, and u1 Mon 16 Mar (after the period).
  B1 t1 lead 2 completed online hip     D1 t4 booked 27 Feb (before the period) completed online hip
  B2 t2 lead 10 completed phone         E1 t5 lead 3 completed online
  B3 t3 lead 1 completed online         E2 t6 lead 4 completed online
  C1 u1 lead 5 booked online back
Starts: hip 6 on 2 Mar, 4 on 10 Mar, 7 on 28 Feb (before); back 20 on 3 Mar; knee 2 on 12 Mar.
Urgent care: 2 on 3 Mar, 1 on 4 Mar, 5 on 10 Mar, 2 on 14 Mar, 9 on 16 Mar (after).
"""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from articles.models import Article
from bookings.models import (
    Appointment,
    AppointmentEvent,
    BookingStartCount,
    Slot,
    UrgentCareCount,
)
from bookings.schedule import clinic_zone
from bookings.services import insights_refresh
from tests.helpers import make_appointment
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db

FORTNIGHT = {"start": "2026-03-02", "end": "2026-03-15"}


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=clinic_zone())


def hour_slot(practitioner, starts_at, state=Slot.State.OPEN) -> Slot:
    return Slot.objects.create(
        practitioner=practitioner, starts_at=starts_at, ends_at=starts_at + timedelta(hours=1), state=state
    )


def booking(slot, *, lead=None, made=None, status=Appointment.Status.COMPLETED, source="online", article=None):
    appointment = make_appointment(slot, at=made or slot.starts_at - timedelta(days=lead), status=status)
    Appointment.objects.filter(pk=appointment.pk).update(source=source, source_article=article)
    return appointment


def cancelled_by(appointment, actor) -> None:
    AppointmentEvent.objects.create(
        appointment=appointment,
        at=appointment.cancelled_at,
        actor=actor,
        actor_label=actor.get_username() if actor else "patient",
        action=AppointmentEvent.Action.CANCELLED,
    )


def article(slug: str) -> Article:
    return Article.objects.create(
        title=slug.capitalize() + " pain",
        slug=slug,
        summary="s",
        body_markdown="b",
        status="published",
        published_at=timezone.now() - timedelta(days=400),
    )


@pytest.fixture
def fortnight(dr_patel, dr_okafor, rita):
    hip, back, knee = article("hip"), article("back"), article("knee")
    cancelled = Appointment.Status.CANCELLED
    s = [hour_slot(dr_patel, at(5, hour)) for hour in (9, 10, 11, 12)]
    s += [hour_slot(dr_patel, at(6, hour)) for hour in (9, 10, 11, 12, 13)]
    hour_slot(dr_patel, at(6, 14), state=Slot.State.BLOCKED)
    hour_slot(dr_patel, at(6, 15), state=Slot.State.RETIRED)
    booking(s[0], lead=3, article=hip)
    booking(s[1], lead=3, article=hip)
    booking(s[2], lead=2, article=hip)
    booking(s[3], lead=1, status=Appointment.Status.NO_SHOW, article=back)
    booking(s[4], lead=4, source="phone")
    cancelled_by(booking(s[5], lead=1, status=cancelled, article=hip), None)
    cancelled_by(booking(s[6], lead=2, status=cancelled, source="phone"), rita)
    booking(s[7], lead=1, article=back)
    booking(s[8], lead=2, article=hip)
    t = [hour_slot(dr_okafor, at(day, hour)) for day in (12, 13) for hour in (9, 10, 11, 12)]
    booking(t[0], lead=2, article=hip)
    booking(t[1], lead=10, source="phone")
    booking(t[2], lead=1)
    booking(t[3], made=at(27, 12, month=2), article=hip)
    booking(t[4], lead=3)
    booking(t[5], lead=4)
    booking(hour_slot(dr_okafor, at(16, 9)), lead=5, status=Appointment.Status.BOOKED, article=back)
    for a, day, count in [
        (hip, date(2026, 3, 2), 6),
        (hip, date(2026, 3, 10), 4),
        (hip, date(2026, 2, 28), 7),
        (back, date(2026, 3, 3), 20),
        (knee, date(2026, 3, 12), 2),
    ]:
        BookingStartCount.objects.create(article=a, day=day, count=count)
    for day, count in [(3, 2), (4, 1), (10, 5), (14, 2), (16, 9)]:
        UrgentCareCount.objects.create(day=date(2026, 3, day), count=count)
    insights_refresh(now=timezone.now())


@pytest.fixture
def manager_client(client, margaret):
    verified_login(client, margaret)
    return client


def table(response, caption_start: str) -> list[list[str]]:
    """The rows (header first) of the page's table whose caption starts with CAPTION_START, as text."""
    from html.parser import HTMLParser

    class Tables(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables, self.cell, self.caption = [], None, None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append({"caption": "", "rows": []})
            elif tag == "caption":
                self.caption = ""
            elif tag == "tr":
                self.tables[-1]["rows"].append([])
            elif tag in ("td", "th"):
                self.cell = ""

        def handle_endtag(self, tag):
            if tag == "caption":
                self.tables[-1]["caption"], self.caption = self.caption, None
            elif tag in ("td", "th"):
                self.tables[-1]["rows"][-1].append(" ".join(self.cell.split()))
                self.cell = None

        def handle_data(self, data):
            if self.caption is not None:
                self.caption += data
            elif self.cell is not None:
                self.cell += data

    parser = Tables()
    parser.feed(response.content.decode())
    [found] = [t["rows"] for t in parser.tables if t["caption"].strip().startswith(caption_start)]
    return found


def csv_rows(response) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_margaret_sees_every_number_of_the_fortnight_as_worked_out_by_hand(manager_client, fortnight):
    response = manager_client.get(reverse("insights"), FORTNIGHT)

    assert response.status_code == 200
    # Bookings made per week, cancelled ones included; D1 was made before the period.
    assert table(response, "Bookings per week") == [
        ["Week starting", "Online", "Phone", "API", "Waiting list", "Total"],
        ["2 Mar 2026", "7", "fewer than 5", "0", "0", "not shown"],
        ["9 Mar 2026", "5", "0", "0", "0", "5"],
    ]
    # Hip: A1 A2 A3 A6 A9 B1 = 6 booked of 6 + 4 starts = 60%. Back: A4 A8 C1 = 3. No article: A5 A7 B2 B3 E1 E2.
    assert table(response, "Articles") == [
        ["#", "Article", "Booking starts", "Booked", "Booked per start"],
        ["1", "Hip pain", "10", "6", "60%"],
        ["2", "Back pain", "20", "fewer than 5", "fewer than 5"],
        ["3", "Knee pain", "fewer than 5", "0", "fewer than 5"],
        ["4", "No article", "-", "6", "-"],
    ]
    # Dr Patel: 9 open hours, 7 with a live appointment (s6, s7 cancelled), 1 blocked, the retired one not counted;
    # leads 1,1,2,2,3,3,4: median 2. Dr Okafor: 8 open, 6 booked; leads 1,2,3,4,5,10 (not D1): median 3.5.
    assert table(response, "Hours per practitioner") == [
        [
            "Practitioner",
            "Offered hours",
            "Booked hours",
            "Blocked hours",
            "Free hours",
            "Utilisation",
            "Median days to appointment",
        ],
        ["Dr Priya Patel", "9", "7", "1", "2", "78%", "2.0"],
        ["Dr Chidi Okafor", "8", "6", "0", "2", "75%", "3.5"],
    ]
    assert table(response, "The whole clinic per week") == [
        ["Week starting", "Offered hours", "Booked hours", "Blocked hours", "Free hours", "Utilisation"],
        ["2 Mar 2026", "9", "7", "1", "2", "78%"],
        ["9 Mar 2026", "8", "6", "0", "2", "75%"],
    ]
    # Week 1: 6 completed, and one each of did not attend, cancelled by the patient (A6), by reception (A7):
    # those are hidden, so the total and the shares are too. Week 2: 6 appointments, all completed.
    assert table(response, "Attendance per week") == [
        [
            "Week starting",
            "Appointments",
            "Completed",
            "Did not attend",
            "Cancelled by the patient",
            "Cancelled by the clinic",
            "Booked or arrived (not recorded yet)",
        ],
        ["2 Mar 2026", "not shown", "6", "fewer than 5", "fewer than 5", "fewer than 5", "0"],
        ["9 Mar 2026", "6", "6 (100%)", "0 (0%)", "0 (0%)", "0 (0%)", "0 (0%)"],
    ]
    # 2 + 1 in week 1; 5 + 2 in week 2; the 9 on 16 March are after the period.
    assert table(response, "Sent to urgent care") == [
        ["Week starting", "Sent to urgent care"],
        ["2 Mar 2026", "fewer than 5"],
        ["9 Mar 2026", "7"],
    ]


def test_the_charts_draw_the_shown_numbers_and_leave_hidden_ones_out(manager_client, fortnight):
    html = manager_client.get(reverse("insights"), FORTNIGHT).content.decode()

    assert "<title>02 Mar: Online 7</title>" in html
    # Three by phone that week: fewer than 5, so no bar (and the week's total is not shown).
    assert "02 Mar: Phone" not in html
    assert "<title>09 Mar: Online 5</title>" in html
    assert "<title>1: Booked 6</title>" in html
    # Back (3 bookings) is hidden: no bar for article 2, nor for urgent care in week 1.
    assert "<title>2: Booked" not in html
    assert "<title>09 Mar: Sent to urgent care 7</title>" in html
    assert "<title>02 Mar: Sent to urgent care" not in html
    # Attendance: week 2 only (week 1 has hidden cells).
    assert "<title>09 Mar: Completed 100%</title>" in html
    assert "<title>02 Mar: Completed" not in html
    assert "<title>02 Mar: Booked 77.8%</title>" in html


def test_each_csv_holds_the_tables_numbers_with_the_small_number_rule(manager_client, fortnight):
    def download(name):
        response = manager_client.get(reverse("insights_csv", args=[name]), FORTNIGHT)
        assert response.status_code == 200
        assert f'filename="insights-{name}-2026-03-02-to-2026-03-15.csv"' in response["Content-Disposition"]
        return csv_rows(response)

    assert download("bookings") == [
        ["Week starting", "Online", "Phone", "API", "Waiting list", "Total"],
        ["2026-03-02", "7", "fewer than 5", "0", "0", "not shown"],
        ["2026-03-09", "5", "0", "0", "0", "5"],
    ]
    assert download("articles") == [
        ["Article", "Booking starts", "Booked", "Rate"],
        ["Hip pain", "10", "6", "60%"],
        ["Back pain", "20", "fewer than 5", "fewer than 5"],
        ["Knee pain", "fewer than 5", "0", "fewer than 5"],
        ["No article", "", "6", ""],
    ]
    assert download("diary") == [
        [
            "Practitioner",
            "Week starting",
            "Offered hours",
            "Booked hours",
            "Blocked hours",
            "Free hours",
            "Utilisation",
        ],
        ["Dr Priya Patel", "2026-03-02", "9.0", "7.0", "1.0", "2.0", "78%"],
        ["Dr Priya Patel", "2026-03-09", "0.0", "0.0", "0.0", "0.0", ""],
        ["Dr Chidi Okafor", "2026-03-02", "0.0", "0.0", "0.0", "0.0", ""],
        ["Dr Chidi Okafor", "2026-03-09", "8.0", "6.0", "0.0", "2.0", "75%"],
    ]
    attendance = download("attendance")
    assert attendance[1] == [
        "2026-03-02",
        "not shown",
        "6",
        "",
        "fewer than 5",
        "",
        "fewer than 5",
        "",
        "fewer than 5",
        "",
        "0",
        "",
    ]
    assert attendance[2] == ["2026-03-09", "6", "6", "100%", "0", "0%", "0", "0%", "0", "0%", "0", "0%"]
    assert download("urgent") == [
        ["Week starting", "Sent to urgent care"],
        ["2026-03-02", "fewer than 5"],
        ["2026-03-09", "7"],
    ]


def test_a_table_that_is_not_on_the_page_is_not_found(manager_client):
    assert manager_client.get(reverse("insights_csv", args=["patients"])).status_code == 404


def test_the_small_number_rule_hides_one_to_four_and_shows_zero_and_five(manager_client, dr_patel):
    for day, count in [(2, 1), (9, 4), (16, 5), (23, 0)]:
        UrgentCareCount.objects.create(day=date(2026, 3, day), count=count)

    response = manager_client.get(reverse("insights"), {"start": "2026-03-02", "end": "2026-03-29"})

    assert table(response, "Sent to urgent care")[1:] == [
        ["2 Mar 2026", "fewer than 5"],
        ["9 Mar 2026", "fewer than 5"],
        ["16 Mar 2026", "5"],
        ["23 Mar 2026", "0"],
    ]


def test_a_median_of_fewer_than_five_bookings_is_not_shown(manager_client, dr_patel):
    for hour in (9, 10, 11, 12):
        booking(hour_slot(dr_patel, at(5, hour)), lead=3)
    insights_refresh(now=timezone.now())

    response = manager_client.get(reverse("insights"), FORTNIGHT)

    assert table(response, "Hours per practitioner")[1][-1] == "fewer than 5 bookings"


@pytest.mark.parametrize(("weeks", "first_day"), [("4", "2026-02-09"), ("12", "2025-12-15"), ("52", "2025-03-10")])
def test_the_last_weeks_run_to_today_in_whole_weeks(manager_client, weeks, first_day, monkeypatch):
    # Thursday 5 March 2026: its week started on Monday 2 March.
    monkeypatch.setattr(timezone, "now", lambda: at(5, 12))

    response = manager_client.get(reverse("insights"), {"weeks": weeks})

    assert response.status_code == 200
    assert len(table(response, "Bookings per week")) == 1 + int(weeks)
    assert table(response, "Bookings per week")[1][0] == date.fromisoformat(first_day).strftime("%-d %b %Y")
    assert response.context["period"].last_day == date(2026, 3, 5)


def test_without_a_choice_the_page_shows_the_last_twelve_weeks(manager_client):
    response = manager_client.get(reverse("insights"))

    assert response.status_code == 200
    assert len(response.context["period"].weeks) == 12


def test_two_dates_choose_the_period_and_only_what_falls_in_it_counts(manager_client, fortnight):
    response = manager_client.get(reverse("insights"), {"start": "2026-03-09", "end": "2026-03-15"})

    assert table(response, "Bookings per week")[1:] == [["9 Mar 2026", "5", "0", "0", "0", "5"]]
    assert table(response, "Sent to urgent care")[1:] == [["9 Mar 2026", "7"]]
    # Week 2 alone: hip has 4 starts and B1 (fewer than 5 each).
    assert table(response, "Articles")[1] == ["1", "Hip pain", "fewer than 5", "fewer than 5", "fewer than 5"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "2026-03-15", "end": "2026-03-02"}, "The end date is before the start date."),
        ({"start": "2025-01-01", "end": "2026-03-02"}, "Please choose at most a year (371 days) at a time."),
        ({"start": "2026-03-02"}, "Please give both dates, or choose one of the periods."),
        ({"start": "2026-02-30", "end": "2026-03-02"}, "Enter a valid date."),
        ({"start": "1066-10-14", "end": "1066-10-20"}, "Please choose a date between 2000 and 9000."),
        ({"weeks": "7"}, "Please choose 4, 12 or 52 weeks."),
    ],
)
def test_a_wrong_period_gets_a_clear_message_and_keeps_what_was_typed(manager_client, query, message):
    response = manager_client.get(reverse("insights"), query)

    assert response.status_code == 400
    assert message in response.content.decode()
    if query.get("start"):
        assert f'value="{query["start"]}"' in response.content.decode()
    assert manager_client.get(reverse("insights_csv", args=["bookings"]), query).status_code == 400


def test_a_week_is_the_clinics_week_not_utcs(manager_client, dr_patel):
    # 23:30 UTC on Sunday 7 June is 00:30 on Monday 8 June in London (summer time): the week of 8 June.
    slot = hour_slot(dr_patel, at(10, 9, month=6))
    booking(slot, made=datetime(2026, 6, 7, 23, 30, tzinfo=UTC))
    insights_refresh(now=timezone.now())

    response = manager_client.get(reverse("insights"), {"start": "2026-06-01", "end": "2026-06-14"})

    assert table(response, "Bookings per week")[1:] == [
        ["1 Jun 2026", "0", "0", "0", "0", "0"],
        ["8 Jun 2026", "fewer than 5", "0", "0", "0", "not shown"],
    ]


def more_of_everything(dr_patel, dr_okafor, rita, *, weeks: int):
    """The fortnight's kinds of rows again, across more weeks and more articles."""
    for week in range(weeks):
        monday = at(2, 9) - timedelta(weeks=week + 1)
        for practitioner in (dr_patel, dr_okafor):
            for hour in range(3):
                slot = hour_slot(practitioner, monday + timedelta(days=3, hours=hour))
                appointment = booking(
                    slot,
                    lead=2,
                    status=Appointment.Status.CANCELLED,
                    article=article(f"a{week}-{practitioner.pk}-{hour}"),
                )
                cancelled_by(appointment, rita if hour else None)
        UrgentCareCount.objects.create(day=monday.date(), count=3)


def page_queries(client, query) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("insights"), query).status_code == 200
    return len(queries)


def test_the_page_makes_the_same_number_of_queries_for_any_period_and_any_amount_of_data(
    manager_client, fortnight, dr_patel, dr_okafor, rita, django_assert_max_num_queries
):
    fortnight_queries = page_queries(manager_client, FORTNIGHT)
    year = {"start": "2025-03-10", "end": "2026-03-15"}
    small_year = page_queries(manager_client, year)
    more_of_everything(dr_patel, dr_okafor, rita, weeks=20)
    insights_refresh(now=timezone.now())
    big_year = page_queries(manager_client, year)
    big_fortnight = page_queries(manager_client, FORTNIGHT)

    assert fortnight_queries == small_year == big_year == big_fortnight
    # Drawn on the spot: the session, the user, the second factor's device, the group check; the figures'
    # version (last refresh, live counters); the cache lookup; the seven aggregates (bookings by source,
    # articles, the diary's hours, the median days' histogram, the practitioners' names, attendance, urgent
    # care); the cache's write (five statements); the session's save (savepoint, update, release).
    assert fortnight_queries == 21
    # Drawn before: the same without the aggregates and the cache's write.
    with django_assert_max_num_queries(9):
        manager_client.get(reverse("insights"), year)


def test_margaret_finds_insights_on_the_staff_home_page_and_rita_does_not(client, margaret, rita):
    verified_login(client, margaret)
    assert reverse("insights") in client.get(reverse("staff_home")).content.decode()

    verified_login(client, rita)
    assert client.get(reverse("staff_home"))["Location"] == reverse("reception_day")
    assert reverse("insights") not in client.get(reverse("reception_day")).content.decode()


def test_the_figures_are_those_of_the_last_refresh_until_margaret_refreshes_them(manager_client, fortnight, dr_patel):
    booking(hour_slot(dr_patel, at(13, 15)), lead=1, source="phone")
    before = manager_client.get(reverse("insights"), FORTNIGHT)
    assert table(before, "Bookings per week")[2] == ["9 Mar 2026", "5", "0", "0", "0", "5"]

    response = manager_client.post(reverse("insights_refresh"), {"query": "start=2026-03-02&end=2026-03-15"})

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('insights')}?start=2026-03-02&end=2026-03-15"
    after = manager_client.get(response["Location"])
    assert table(after, "Bookings per week")[2] == ["9 Mar 2026", "5", "fewer than 5", "0", "0", "not shown"]
    assert "The figures are up to date." in after.content.decode()


def test_the_refresh_command_rebuilds_the_figures(manager_client, dr_patel):
    from django.core.management import call_command

    booking(hour_slot(dr_patel, at(5, 9)), lead=1)
    assert table(manager_client.get(reverse("insights"), FORTNIGHT), "Bookings per week")[1][1] == "0"

    call_command("refresh_insights", stdout=io.StringIO())

    assert table(manager_client.get(reverse("insights"), FORTNIGHT), "Bookings per week")[1][1] == "fewer than 5"


def test_a_new_urgent_care_referral_shows_at_once_without_a_refresh(manager_client, fortnight):
    assert table(manager_client.get(reverse("insights"), FORTNIGHT), "Sent to urgent care")[2] == ["9 Mar 2026", "7"]

    UrgentCareCount.objects.filter(day=date(2026, 3, 10)).update(count=6)

    assert table(manager_client.get(reverse("insights"), FORTNIGHT), "Sent to urgent care")[2] == ["9 Mar 2026", "8"]


def test_the_refresh_command_draws_the_usual_periods_so_opening_them_sums_nothing(manager_client, fortnight):
    from django.core.management import call_command

    call_command("refresh_insights", stdout=io.StringIO())

    for weeks in ("4", "12", "52"):
        with CaptureQueriesContext(connection) as queries:
            assert manager_client.get(reverse("insights"), {"weeks": weeks}).status_code == 200
        assert not [q for q in queries.captured_queries if "insightsdiaryday" in q["sql"]]
    with CaptureQueriesContext(connection) as queries:
        manager_client.get(reverse("insights"), FORTNIGHT)
    assert [q for q in queries.captured_queries if "insightsdiaryday" in q["sql"]]


def test_a_refresh_with_a_wrong_period_is_refused_and_rebuilds_nothing(manager_client, fortnight, dr_patel):
    booking(hour_slot(dr_patel, at(13, 15)), lead=1, source="phone")

    response = manager_client.post(reverse("insights_refresh"), {"query": "start=2026-03-15&end=2026-03-02"})

    assert response.status_code == 400
    assert "The end date is before the start date." in response.content.decode()
    page = manager_client.get(reverse("insights"), FORTNIGHT)
    assert table(page, "Bookings per week")[2] == ["9 Mar 2026", "5", "0", "0", "0", "5"]


def test_the_charts_are_inline_svg_with_no_script_and_no_inline_style_for_the_csp(manager_client, fortnight):
    html = manager_client.get(reverse("insights"), FORTNIGHT).content.decode()

    assert html.count('<svg viewBox="0 0 720 260" role="img"') == 5
    assert "<script" not in html.split("<main", 1)[1].split("</main>", 1)[0]
    assert "<style" not in html
    assert " style=" not in html


def test_the_e_mail_worker_rebuilds_the_figures_hourly_without_anyone_pressing_the_button(dr_patel):
    from bookings.models import InsightsBookingDay, InsightsRefresh
    from bookings.services import insights_refresh_if_due

    booking(hour_slot(dr_patel, at(5, 9)), lead=1)
    now = timezone.now()

    assert insights_refresh_if_due(now=now) is True
    assert InsightsBookingDay.objects.get().count == 1
    booking(hour_slot(dr_patel, at(5, 10)), lead=1)
    # Within the hour: the figures stay as rebuilt.
    assert insights_refresh_if_due(now=now + timedelta(minutes=59)) is False
    assert InsightsBookingDay.objects.get().count == 1
    assert insights_refresh_if_due(now=now + timedelta(minutes=61)) is True
    assert InsightsBookingDay.objects.get().count == 2
    assert InsightsRefresh.objects.get().refreshed_at == now + timedelta(minutes=61)


@pytest.mark.django_db(transaction=True)
def test_two_rebuilds_at_once_leave_one_set_of_figures(dr_patel):
    from bookings.models import InsightsAttendanceDay, InsightsBookingDay
    from tests.helpers import run_at_once

    for hour in (9, 10, 11):
        booking(hour_slot(dr_patel, at(5, hour)), lead=1)

    results = run_at_once(4, lambda index: insights_refresh(now=timezone.now()))

    assert results == [None] * 4
    assert list(InsightsBookingDay.objects.values_list("count", flat=True)) == [3]
    assert list(InsightsAttendanceDay.objects.values_list("count", flat=True)) == [3]


def test_each_table_scrolls_by_keyboard_on_a_phone(manager_client, fortnight):
    html = manager_client.get(reverse("insights"), FORTNIGHT).content.decode()

    regions = html.count('<div class="table-responsive" tabindex="0" role="region" aria-label="')
    assert regions == html.count("<table") and regions >= 5
