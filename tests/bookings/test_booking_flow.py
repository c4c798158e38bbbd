import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings

from articles.models import Article
from bookings.forms import SAFETY_EMPTY, SAFETY_NONE_WITH_FLAG, SAFETY_QUESTIONS, SAFETY_QUESTIONS_VERSION
from bookings.models import Appointment, AppointmentEvent, KeptBookingForm, Slot, hash_token
from tests.helpers import SAFE_ANSWERS, details_form, local, make_slot, pass_safety_check, time_link

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_slot(dr_patel):
    return make_slot(dr_patel, local(3, 10))


def test_the_safety_check_comes_first_and_sends_the_patient_to_the_times(client, open_slot):
    response = client.get("/book/")
    assert response.status_code == 200
    assert b"safety check" in response.content
    response = pass_safety_check(client)
    assert response.status_code == 302
    assert response["Location"] == "/book/time/"


def test_the_safety_check_is_one_question_with_a_box_per_red_flag_then_an_exclusive_none(client):
    page = client.get("/book/").content.decode()

    assert page.count('type="checkbox" name="red_flags"') == len(SAFETY_QUESTIONS) + 1
    for key, statement in SAFETY_QUESTIONS:
        assert f'value="{key}"' in page and statement.replace("'", "&#x27;") in page
    # "None" comes last, after the divider, and site.js knows it as the exclusive box.
    assert page.index(">or<") < page.index('value="none"')
    assert "No, none of these" in page and "data-red-flag-none" in page
    assert 'name="bladder_bowel"' not in page  # no yes/no radios any more


@pytest.mark.parametrize("key", [key for key, _ in SAFETY_QUESTIONS])
def test_each_red_flag_alone_advises_urgent_help_offers_no_time_and_stores_nothing(client, open_slot, key):
    response = client.post("/book/", {"red_flags": key})
    assert response.status_code == 200
    assert b"Please get urgent medical help now" in response.content
    # As set, with its numbers as tap-to-call links.
    text = re.sub(rb'<a href="tel:\d+">([^<]*)</a>', rb"\1", response.content).replace(b"&amp;", b"&")
    assert settings.CLINIC_EMERGENCY_GUIDANCE.encode() in text
    assert b"details/?slot=" not in response.content and b"details/?at=" not in response.content
    assert "booking" not in response.cookies or response.cookies["booking"].value == ""
    assert not Appointment.objects.exists() and not KeptBookingForm.objects.exists()
    # And the later steps are closed until the check is passed.
    assert client.get("/book/time/")["Location"] == "/book/"


def test_an_empty_answer_to_the_safety_check_is_a_clear_400(client):
    response = client.post("/book/", {})
    assert response.status_code == 400
    assert SAFETY_EMPTY.replace('"', "&quot;") in response.content.decode()
    assert "booking" not in response.cookies


def test_none_ticked_with_a_red_flag_is_refused_with_a_clear_400_that_keeps_both_ticked(client):
    response = client.post("/book/", {"red_flags": ["trauma", "none"]})
    assert response.status_code == 400
    page = response.content.decode()
    assert SAFETY_NONE_WITH_FLAG.replace('"', "&quot;") in page
    assert "Please get urgent medical help now" not in page
    assert "booking" not in response.cookies
    assert page.count("checked") == 2


def test_none_passes_the_check_and_is_stored_as_no_to_every_flag_with_the_questions_version(client, open_slot):
    assert client.post("/book/", {"red_flags": "none"}).status_code == 302
    client.post("/book/details/", details_form(client, open_slot))
    answers = Appointment.objects.get().safety_answers
    assert answers["version"] == SAFETY_QUESTIONS_VERSION == "2026-12"
    assert answers["answers"] == [
        {"key": key, "question": question, "answer": "no"} for key, question in SAFETY_QUESTIONS
    ]


# A Friday: the first free time, three days ahead, is in next week, so the page must jump to that week.
# Frozen, so that the jump is tested whatever day the suite runs.
@time_machine.travel(datetime(2026, 12, 4, 11, 0, tzinfo=ZoneInfo("Europe/London")), tick=False)
def test_the_times_page_lists_bookable_times_grouped_by_day_in_local_time(client, dr_patel):
    open_slot = make_slot(dr_patel, local(3, 10))
    make_slot(dr_patel, local(3, 11))
    make_slot(dr_patel, local(-1, 10))  # yesterday: never offered
    pass_safety_check(client)
    response = client.get("/book/time/")
    assert response.context["week"] == date(2026, 12, 7)
    assert response.status_code == 200
    content = response.content.decode()
    assert time_link(open_slot) in content
    assert ">10:00<" in content.replace("\n", "") or "10:00" in content
    assert "Europe/London" in content
    days = response.context["days"]
    assert [slot.pk for _, slots in days for slot in slots][0] == open_slot.pk


def test_a_full_week_says_so_and_names_the_next_available_date(client, dr_patel):
    later = make_slot(dr_patel, local(20, 9))
    pass_safety_check(client)
    this_week = local(0, 12).date().isoformat()
    response = client.get(f"/book/time/?week={this_week}")
    assert b"There are no free times" in response.content
    assert response.context["next_available"].date() == later.starts_at.astimezone(local(0, 0).tzinfo).date()


def test_a_patient_books_and_sees_the_confirmation_with_a_manage_link(client, open_slot):
    pass_safety_check(client)
    response = client.post("/book/details/", details_form(client, open_slot))
    assert response.status_code == 302
    assert response["Location"] == "/book/confirmed/"
    appointment = Appointment.objects.get()
    assert appointment.slot == open_slot
    assert appointment.source == Appointment.Source.ONLINE
    assert appointment.privacy_notice_version == settings.PRIVACY_NOTICE_VERSION
    assert [answer["answer"] for answer in appointment.safety_answers["answers"]] == ["no"] * 5
    assert appointment.events.get().action == AppointmentEvent.Action.BOOKED

    confirmation = client.get("/book/confirmed/")
    assert confirmation.status_code == 200
    assert b"You're booked in, Pat" in confirmation.content.replace(b"&#x27;", b"'")
    manage_url = confirmation.context["manage_url"]
    token = manage_url.rstrip("/").rsplit("/", 1)[1]
    assert len(token) >= 22  # at least 128 bits of URL-safe base64
    assert appointment.manage_token_hash == hash_token(token)
    assert token not in str(appointment.pk)
    assert confirmation["Cache-Control"].count("no-store") == 1


def test_the_confirmation_offers_a_calendar_file_for_the_booked_time(client, open_slot):
    from icalendar import Calendar

    pass_safety_check(client)
    client.post("/book/details/", details_form(client, open_slot))
    response = client.get("/book/confirmed/consultation.ics")
    assert response["Content-Type"].startswith("text/calendar")
    event = Calendar.from_ical(response.content).walk("VEVENT")[0]
    assert event.decoded("dtstart") == open_slot.starts_at
    assert event.decoded("dtend") == open_slot.ends_at
    assert "Left hip" not in response.content.decode()


def test_the_article_that_led_to_the_booking_is_recorded(client, open_slot):
    from django.utils import timezone

    article = Article.objects.create(
        title="Hips and backs",
        slug="hips-and-backs",
        summary="s",
        body_markdown="b",
        status=Article.Status.PUBLISHED,
        published_at=timezone.now(),
    )
    page = client.get("/book/?article=hips-and-backs")
    assert b'name="article" value="hips-and-backs"' in page.content
    pass_safety_check(client, article="hips-and-backs")
    client.post("/book/details/", details_form(client, open_slot))
    assert Appointment.objects.get().source_article == article


def test_a_booking_without_an_article_records_no_source(client, open_slot):
    pass_safety_check(client)
    client.post("/book/details/", details_form(client, open_slot))
    assert Appointment.objects.get().source_article is None


def test_submitting_twice_makes_one_booking_and_shows_its_confirmation(client, open_slot):
    pass_safety_check(client)
    form = details_form(client, open_slot)
    first = client.post("/book/details/", form)
    # The back button and a second click: the session still knows the booking.
    pass_safety_check(client)
    second = client.post("/book/details/", form)
    assert first["Location"] == second["Location"] == "/book/confirmed/"
    assert Appointment.objects.count() == 1
    assert client.get("/book/confirmed/").status_code == 200


def test_a_double_click_whose_second_request_missed_the_first_answer_still_confirms_but_no_other_browser(
    client, open_slot
):
    from django.test import Client

    pass_safety_check(client)
    form = details_form(client, open_slot)
    cookies_before = {name: morsel.value for name, morsel in client.cookies.items()}
    first = client.post("/book/details/", form)
    # The second click left with the cookies as they were: the first answer's never reached it.
    second_click = Client()
    second_click.cookies.load(cookies_before)
    second = second_click.post("/book/details/", form)

    assert first["Location"] == second["Location"] == "/book/confirmed/"
    assert b"Dr Priya Patel" in second_click.get("/book/confirmed/").content
    assert Appointment.objects.count() == 1
    # Somebody else sending the same form from their own browser learns nothing of the booking.
    other = Client()
    pass_safety_check(other)
    replay = other.post("/book/details/", form)
    assert replay.status_code == 409 and b"Dr Priya Patel" not in replay.content
    assert other.get("/book/confirmed/")["Location"] == "/book/"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        ({"email": "a" * 250 + "@example.org"}, "email", "Ensure this value has at most 254 characters"),
        ({"phone": "12ab"}, "phone", "Please enter a phone number we can call"),
        ({"consent": ""}, "consent", "Please tick to agree to the privacy notice"),
        ({"first_name": ""}, "first_name", "This field is required."),
    ],
)
def test_bad_details_get_a_400_with_the_message_by_the_field_and_keep_what_was_typed(
    client, open_slot, change, field, message
):
    pass_safety_check(client)
    form = details_form(client, open_slot) | change
    response = client.post("/book/details/", form)
    assert response.status_code == 400
    assert message in response.context["form"].errors[field][0]
    assert Appointment.objects.count() == 0
    # Nothing typed is lost.
    assert b'value="Example"' in response.content
    assert b"Left hip, worse on stairs" in response.content


def _post_for(client, slot_id, open_slot):
    pass_safety_check(client)
    return client.post("/book/details/", details_form(client, open_slot) | {"slot": slot_id})


def test_a_past_slot_cannot_be_booked(client, open_slot, dr_patel):
    past = make_slot(dr_patel, local(-2, 10))
    response = _post_for(client, past.pk, open_slot)
    assert response.status_code == 409
    assert Appointment.objects.count() == 0


def test_a_blocked_slot_cannot_be_booked(client, open_slot, dr_patel):
    blocked = make_slot(dr_patel, local(4, 10), state=Slot.State.BLOCKED, blocked_reason="Training")
    response = _post_for(client, blocked.pk, open_slot)
    assert response.status_code == 409
    assert Appointment.objects.count() == 0


def test_a_slot_inside_the_minimum_notice_cannot_be_booked(client, open_slot, dr_patel):
    from django.utils import timezone

    soon = make_slot(dr_patel, timezone.now() + settings.BOOKING_MIN_NOTICE / 2)
    response = _post_for(client, soon.pk, open_slot)
    assert response.status_code == 409
    assert Appointment.objects.count() == 0


def test_a_time_inside_the_minimum_notice_is_called_too_soon_with_the_phone_number_not_just_taken(
    client, open_slot, dr_patel
):
    from django.utils import timezone

    soon = make_slot(dr_patel, timezone.now() + settings.BOOKING_MIN_NOTICE / 2)
    # Chosen while it was still offered, sent after: the booking refuses it.
    booked = _post_for(client, soon.pk, open_slot)
    # Opened from an old link: the form is not offered.
    opened = client.get(f"/book/details/?slot={soon.pk}")
    for response in (booked, opened):
        assert response.status_code == 409
        assert response.context["headline"] == "That time is too soon to book online"
        content = response.content.decode()
        assert "Online booking closes 2 hours before the start" in content
        assert settings.CLINIC_PHONE in content
        assert "just been taken" not in content and "no longer available" not in content
    # What was typed is kept for another time.
    assert "Left hip, worse on stairs" in booked.content.decode()


def test_a_past_time_is_called_past_not_just_taken(client, open_slot, dr_patel):
    past = make_slot(dr_patel, local(-2, 10))
    response = _post_for(client, past.pk, open_slot)
    assert response.context["headline"] == "Sorry, that time has passed"


def test_a_slot_beyond_the_booking_horizon_cannot_be_booked(client, open_slot, dr_patel):
    far = make_slot(dr_patel, local(settings.BOOKING_HORIZON_DAYS + 3, 10))
    response = _post_for(client, far.pk, open_slot)
    assert response.status_code == 409
    assert Appointment.objects.count() == 0


@pytest.mark.parametrize("slot_id", ["999999", "abc", ""])
def test_an_unknown_slot_gets_a_clear_404(client, open_slot, slot_id):
    response = _post_for(client, slot_id, open_slot)
    assert response.status_code == 404
    assert b"We could not find that time" in response.content
    assert Appointment.objects.count() == 0


def test_a_taken_slot_keeps_the_details_and_offers_the_nearest_alternatives(client, open_slot, dr_patel, dr_okafor):
    near = make_slot(dr_okafor, open_slot.starts_at)
    nearish = make_slot(dr_patel, open_slot.starts_at + (open_slot.ends_at - open_slot.starts_at))
    far = make_slot(dr_patel, local(10, 15))
    pass_safety_check(client)
    form = details_form(client, open_slot)
    from django.utils import timezone

    from bookings.services import PatientDetails, appointment_book

    appointment_book(
        slot_id=open_slot.pk, patient=PatientDetails("Other", "Person", "07700 900999"), now=timezone.now()
    )
    response = client.post("/book/details/", form)
    assert response.status_code == 409
    assert b"that time has just been taken" in response.content
    assert b'value="Pat"' in response.content
    alternatives = response.context["alternatives"]
    assert alternatives[0] == near
    assert nearish in alternatives and far in alternatives
    assert Appointment.objects.count() == 1
    # Choosing an alternative with the same form books it.
    response = client.post("/book/details/", form | {"slot": near.pk})
    assert response.status_code == 302
    assert Appointment.objects.filter(slot=near, first_name="Pat").exists()


def test_details_and_times_need_the_safety_check_first(client, open_slot):
    assert client.get(f"/book/details/?slot={open_slot.pk}")["Location"] == "/book/"
    assert client.get("/book/time/")["Location"] == "/book/"


def test_patient_pages_are_never_cached(client, open_slot):
    for response in [client.get("/book/"), pass_safety_check(client), client.get("/book/time/")]:
        assert "no-store" in response["Cache-Control"]


def test_no_page_reveals_whether_an_address_already_booked(client, open_slot, dr_patel):
    second_slot = make_slot(dr_patel, local(5, 10))
    pass_safety_check(client)
    client.post("/book/details/", details_form(client, open_slot))
    # The same e-mail books again from a fresh browser: same answer as anyone else, no hint.
    from django.test import Client

    other = Client()
    pass_safety_check(other)
    response = other.post("/book/details/", details_form(other, second_slot))
    assert response.status_code == 302
    page = other.get("/book/confirmed/").content
    assert b"already" not in page
    assert Appointment.objects.filter(email="pat@example.org").count() == 2


@pytest.mark.parametrize("link", ["/book/?practitioner=3.", "/book/?article=hip%20pain", "/book/?practitioner=-1"])
def test_a_mangled_booking_link_never_traps_the_patient_on_the_safety_check(client, open_slot, link):
    page = client.get(link)
    hidden = {name: page.context["form"][name].value() or "" for name in ("article", "practitioner")}
    response = client.post("/book/", {**SAFE_ANSWERS, **hidden})
    assert response.status_code == 302
    assert response["Location"].startswith("/book/time/")


def test_the_just_taken_page_chooses_no_time_for_the_patient_and_asks_again_if_none_is_picked(
    client, open_slot, dr_okafor
):
    from django.utils import timezone

    from bookings.services import PatientDetails, appointment_book

    alternative = make_slot(dr_okafor, open_slot.starts_at)
    pass_safety_check(client)
    form = details_form(client, open_slot)
    appointment_book(slot_id=open_slot.pk, patient=PatientDetails("O", "P", "07700 900999"), now=timezone.now())
    taken = client.post("/book/details/", form)
    assert b"checked" not in taken.content.split(b"Nearest free times")[1].split(b"</fieldset>")[0]
    without_choice = {key: value for key, value in form.items() if key != "slot"}
    response = client.post("/book/details/", without_choice)
    assert response.status_code == 400
    assert b"Please choose one of the times below" in response.content
    assert b'value="Pat"' in response.content
    assert f'value="{alternative.pk}"'.encode() in response.content
    assert Appointment.objects.count() == 1


def test_the_details_form_lists_its_errors_at_the_top_with_links_to_the_fields(client, open_slot):
    pass_safety_check(client)
    response = client.post("/book/details/", details_form(client, open_slot) | {"email": "x", "phone": ""})
    summary = response.content.split(b'id="error-summary"')[1].split(b"</div>")[0]
    assert b'href="#id_email"' in summary and b'href="#id_phone"' in summary
    assert b"id_first_name" not in summary


def test_the_urgent_help_page_makes_999_and_111_one_tap_on_a_phone(client):
    page = client.post("/book/", {"red_flags": "trauma"}).content.decode()

    assert '<a href="tel:999">999</a>' in page and '<a href="tel:111">111</a>' in page


def test_phone_links_escape_the_text_and_link_only_phone_numbers():
    from clinic.templatetags.clinic_text import phone_links

    linked = phone_links('Call 999 <b>or</b> 0161 496 0000, not room 1112 or year 2026 & "111x"')

    assert linked == (
        'Call <a href="tel:999">999</a> &lt;b&gt;or&lt;/b&gt; <a href="tel:01614960000">0161 496 0000</a>, '
        "not room 1112 or year 2026 &amp; &quot;111x&quot;"
    )
