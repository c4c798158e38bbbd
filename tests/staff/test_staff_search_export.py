"""Rita finds appointments by name, e-mail or phone, and exports a date range as CSV."""

import csv
import io

import pytest
from django.urls import reverse

from staff.views import csv_safe
from tests.helpers import days_ahead, local, make_slot, patient_books
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(dr_patel):
    return patient_books(
        make_slot(dr_patel, local(days_ahead(3), 10)),
        first_name="Ada",
        last_name="Lovelace",
        phone="07700 900123",
        email="ada@example.org",
    )


@pytest.fixture
def grace(dr_okafor):
    return patient_books(
        make_slot(dr_okafor, local(days_ahead(4), 10)),
        first_name="Grace",
        last_name="Hopper",
        phone="+44 7700 900456",
        email="grace@example.org",
    )


@pytest.mark.parametrize("query", ["lovelace", "Ada Love", "ADA@example", "07700900123", "900 123"])
def test_rita_finds_ada_by_name_e_mail_or_phone(client, rita, ada, grace, query):
    verified_login(client, rita)

    response = client.post(reverse("reception_search"), {"q": query})

    assert [appointment.pk for appointment in response.context["results"]] == [ada.pk]
    assert reverse("reception_appointment", args=[ada.pk]) in response.content.decode()


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        ("O'Connor", "O\u2019Connor"),
        ("O\u2019Connor", "O'Connor"),
        ("O\u2019Connor", "o\u2018connor"),
        ("O'Connor", "Aoife O\u2019Con"),
        ("O\u2019Connor", "Aoife O'Connor"),
    ],
)
def test_rita_finds_a_name_whatever_apostrophe_it_was_stored_or_typed_with(client, rita, dr_patel, stored, typed):
    aoife = patient_books(make_slot(dr_patel, local(days_ahead(3), 11)), first_name="Aoife", last_name=stored)
    patient_books(make_slot(dr_patel, local(days_ahead(3), 12)), first_name="Aoife", last_name="Connor")
    verified_login(client, rita)

    response = client.post(reverse("reception_search"), {"q": typed})

    assert [appointment.pk for appointment in response.context["results"]] == [aoife.pk]


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        ("Zo\u00eb M\u00fcller", "zoe muller"),
        ("Zoe Muller", "Zo\u00eb M\u00fcller"),
        ("Si\u00e2n N\u00ed Bhriain", "sian ni"),
    ],
)
def test_rita_finds_a_name_with_or_without_its_accents(client, rita, dr_patel, stored, typed):
    first_name, last_name = stored.split(" ", 1)
    found = patient_books(make_slot(dr_patel, local(days_ahead(3), 11)), first_name=first_name, last_name=last_name)
    patient_books(make_slot(dr_patel, local(days_ahead(3), 12)), first_name="Zara", last_name="Mills")
    verified_login(client, rita)

    response = client.post(reverse("reception_search"), {"q": typed})

    assert [appointment.pk for appointment in response.context["results"]] == [found.pk]


def test_a_one_letter_search_finds_nothing_rather_than_everyone(client, rita, ada, grace):
    verified_login(client, rita)

    response = client.post(reverse("reception_search"), {"q": "a"})

    assert response.context["results"] == []


def _rows(response):
    # utf-8-sig: the byte-order mark is not part of the first cell.
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))


def test_rita_exports_the_appointments_of_a_date_range(client, rita, ada, grace):
    verified_login(client, rita)

    response = client.get(reverse("reception_export"), {"start": days_ahead(3), "end": days_ahead(3)})

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    header, *rows = _rows(response)
    assert header[:6] == ["Date", "Time", "Practitioner", "Status", "Source", "First name"]
    assert len(rows) == 1
    assert rows[0][:9] == [
        days_ahead(3).isoformat(),
        "10:00",
        "Dr Priya Patel",
        "Booked",
        "Online",
        "Ada",
        "Lovelace",
        "07700 900123",
        "ada@example.org",
    ]


def test_the_export_cannot_smuggle_a_formula_into_a_spreadsheet(client, rita, dr_patel):
    patient_books(
        make_slot(dr_patel, local(days_ahead(3), 11)),
        first_name='=HYPERLINK("http://evil.example")',
        last_name="@SUM(A1)",
        phone="+44 7700 900789",
        note="-2+3",
    )
    verified_login(client, rita)

    response = client.get(reverse("reception_export"), {"start": days_ahead(3), "end": days_ahead(3)})

    [row] = _rows(response)[1:]
    assert row[5] == '\'=HYPERLINK("http://evil.example")'
    assert row[6] == "'@SUM(A1)"
    # A phone number in international form runs nothing: it is exported as the patient gave it.
    assert row[7] == "+44 7700 900789"
    assert row[9] == "'-2+3"


@pytest.mark.parametrize(
    "value",
    [
        "+44 7700 900654",
        "+447700900654",
        "+353 1 234 5678",
    ],
)
def test_a_phone_number_in_international_form_is_not_quoted(value):
    assert csv_safe(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "+44 7700 900654+cmd|' /C calc'!A0",
        "+1+1",
        "+44-7700-900654",
        "+44 (0)20 7946 0000",
        "+SUM(A1:A9)",
        "+A1",
        "+44 7700 900654\n=1",
        "+ 44",
        "+",
    ],
)
def test_a_value_that_only_starts_like_a_phone_number_is_still_quoted(value):
    assert csv_safe(value) == "'" + value


def test_the_export_opens_in_excel_with_its_accents_and_names_the_article_that_led_to_the_booking(
    client, rita, ada, grace
):
    from articles.models import Article
    from bookings.models import Appointment

    article = Article.objects.create(
        title="How your hips can cause your lower back pain",
        slug="how-your-hips-can-cause-your-lower-back-pain",
        summary="Hips and backs.",
        body_markdown="Text.",
    )
    Appointment.objects.filter(pk=ada.pk).update(first_name="Zoë", source_article=article)
    verified_login(client, rita)

    response = client.get(reverse("reception_export"), {"start": days_ahead(3), "end": days_ahead(4)})

    # Excel on Windows reads a CSV as UTF-8 only when it starts with the byte-order mark.
    assert response.content.startswith(b"\xef\xbb\xbf")
    header, zoe, grace_row = _rows(response)
    assert header[0] == "Date"
    assert header[-1] == "Source article"
    assert zoe[5] == "Zoë"
    assert zoe[-1] == "How your hips can cause your lower back pain"
    assert grace_row[5] == "Grace"
    assert grace_row[-1] == ""


def test_every_dangerous_first_character_is_quoted_and_nothing_else():
    assert [csv_safe(value) for value in ["=1", "+1", "-1", "@1", "\t1", "Ada", "", None, 7]] == [
        "'=1",
        "'+1",
        "'-1",
        "'@1",
        "'\t1",
        "Ada",
        "",
        "",
        "7",
    ]


def test_an_export_whose_end_is_before_its_start_shows_the_form_again(client, rita):
    verified_login(client, rita)

    response = client.get(reverse("reception_export"), {"start": days_ahead(3), "end": days_ahead(1)})

    assert response.status_code == 400
    assert "The end date is before the start date." in response.content.decode()


def test_rita_finds_a_uk_caller_by_their_number_in_international_form(client, rita, dr_patel):
    from django.utils import timezone

    from bookings.services import PatientDetails, appointment_book

    slot = make_slot(dr_patel, local(days_ahead(2), 10))
    appointment_book(slot_id=slot.pk, patient=PatientDetails("Ina", "Tl", "07700 900123"), now=timezone.now())
    verified_login(client, rita)
    for query in ["+44 7700 900123", "0044 7700 900123", "07700900123"]:
        response = client.post(reverse("reception_search"), {"q": query})
        assert [a.first_name for a in response.context["results"]] == ["Ina"], query


@pytest.mark.parametrize(("typed", "message"), [("x", "at least 2 characters"), ("x" * 121, "at most 120 characters")])
def test_a_search_too_short_or_too_long_says_so_and_keeps_what_was_typed(client, rita, typed, message):
    verified_login(client, rita)

    response = client.post(reverse("reception_search"), {"q": typed})

    page = response.content.decode()
    assert message in page
    assert f'value="{typed[:5]}' in page
    assert response.context["results"] == []
