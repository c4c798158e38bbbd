"""A second tab, or an hour on the form, asks the safety check again and keeps what the patient typed;
Back after booking says the booking exists."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from bookings.forms import start_time_value
from bookings.models import Appointment, KeptBookingForm
from bookings.schedule import clinic_zone
from tests.helpers import details_form, local, make_slot, pass_safety_check

pytestmark = pytest.mark.django_db

RHYS = {
    "first_name": "Rhys",
    "last_name": "Llywelyn",
    "email": "rhys@example.org",
    "phone": "07700 900777",
    "note": "Lower back, since the move",
}


def _messages(response) -> str:
    return " ".join(str(message) for message in get_messages(response.wsgi_request))


def test_a_second_tab_goes_back_to_the_safety_check_and_comes_back_to_the_filled_form(client, dr_patel):
    first_slot, second_slot = make_slot(dr_patel, local(3, 10)), make_slot(dr_patel, local(3, 11))
    pass_safety_check(client)
    first_tab = details_form(client, first_slot)
    second_tab = details_form(client, second_slot) | RHYS
    assert client.post("/book/details/", first_tab).status_code == 302

    sent_back = client.post("/book/details/", second_tab)

    assert sent_back.status_code == 302 and sent_back["Location"] == "/book/"
    assert "What you typed is kept" in _messages(sent_back)
    # Kept server-side: the cookie holds a random key, never what was typed.
    kept_cookie = sent_back.cookies["booking_kept"]
    assert kept_cookie["httponly"] and kept_cookie["path"] == "/book/"
    assert all(value not in kept_cookie.value for value in RHYS.values())
    assert KeptBookingForm.objects.count() == 1

    checked = pass_safety_check(client)
    assert checked["Location"] == f"/book/details/?slot={second_slot.pk}"
    form_page = client.get(checked["Location"])

    assert form_page.status_code == 200
    page = form_page.content.decode()
    for value in RHYS.values():
        assert value in page
    assert form_page.cookies["booking_kept"].value == ""
    assert KeptBookingForm.objects.count() == 0
    # Confirmed with the refilled form (the consent box ticked again), the second booking is made.
    refilled = {name: form_page.context["form"].initial.get(name, "") for name in RHYS}
    key = str(form_page.context["form"].initial["submission_key"])
    booked = client.post(
        "/book/details/", refilled | {"slot": second_slot.pk, "submission_key": key, "consent": "on", "website": ""}
    )
    assert booked["Location"] == "/book/confirmed/"
    assert Appointment.objects.filter(slot=second_slot, first_name="Rhys", note=RHYS["note"]).exists()


def test_more_than_an_hour_on_the_form_keeps_what_was_typed_and_puts_none_of_it_in_a_url(client, dr_patel):
    import time_machine

    slot = make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)
    form = details_form(client, slot) | RHYS

    with time_machine.travel(timezone.now() + timedelta(minutes=61)):
        sent_back = client.post("/book/details/", form, follow=True)
        again = pass_safety_check(client)
        refilled = client.get(again["Location"])

    locations = [url for url, _ in sent_back.redirect_chain] + [again["Location"]]
    assert all(value not in url for url in locations for value in RHYS.values())
    assert refilled.context["form"].initial["email"] == RHYS["email"]
    assert refilled.context["form"].initial["note"] == RHYS["note"]
    assert not Appointment.objects.exists()


def test_the_kept_details_come_back_once_only(client, dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)
    form = details_form(client, slot) | RHYS
    client.cookies["booking"] = "expired"
    client.post("/book/details/", form)
    pass_safety_check(client)

    first = client.get(f"/book/details/?slot={slot.pk}")
    second = client.get(f"/book/details/?slot={slot.pk}")

    assert first.context["form"].initial["first_name"] == "Rhys"
    assert "first_name" not in second.context["form"].initial


def test_a_copied_kept_cookie_is_useless_once_its_form_was_shown(client, dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)
    form = details_form(client, slot) | RHYS
    client.cookies["booking"] = "expired"
    client.post("/book/details/", form)
    copied = client.cookies["booking_kept"].value
    pass_safety_check(client)
    client.get(f"/book/details/?slot={slot.pk}")

    mallory = Client()
    pass_safety_check(mallory)
    mallory.cookies["booking_kept"] = copied
    page = mallory.get(f"/book/details/?slot={slot.pk}")

    assert RHYS["email"] not in page.content.decode()


def test_pressing_back_and_confirming_again_after_booking_shows_the_booking_and_books_nothing(client, dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)
    form = details_form(client, slot)
    assert client.post("/book/details/", form)["Location"] == "/book/confirmed/"

    again = client.post("/book/details/", form)

    assert again["Location"] == "/book/confirmed/"
    assert "already booked" in _messages(again)
    assert Appointment.objects.count() == 1
    assert not KeptBookingForm.objects.exists()


def test_pressing_back_to_the_details_form_after_booking_says_the_booking_is_made(client, dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)
    client.post("/book/details/", details_form(client, slot))

    back = client.get(f"/book/details/?slot={slot.pk}")

    assert back["Location"] == "/book/"
    assert "Your booking is made" in _messages(back)
    # One message, not a second one asking for the safety check "first" as if nothing had happened.
    assert "safety check first" not in _messages(back)


def test_someone_elses_submission_key_from_another_browser_reveals_nothing(client, dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)
    form = details_form(client, slot)
    client.post("/book/details/", form)

    mallory = Client()
    response = mallory.post("/book/details/", form | {"first_name": "Mallory"})

    assert response["Location"] == "/book/"
    assert "already booked" not in _messages(response)
    assert Appointment.objects.count() == 1


def test_kept_details_for_a_time_taken_meanwhile_come_back_with_the_nearest_free_times(client, dr_patel, dr_okafor):
    from bookings.services import PatientDetails, appointment_book

    slot = make_slot(dr_patel, local(3, 10))
    alternative = make_slot(dr_okafor, local(3, 10))
    pass_safety_check(client)
    form = details_form(client, slot) | RHYS
    client.cookies["booking"] = "expired"
    client.post("/book/details/", form)
    appointment_book(slot_id=slot.pk, patient=PatientDetails("Zoë", "Quick", "07700 900999"), now=timezone.now())

    page = client.get(pass_safety_check(client)["Location"])

    assert page.status_code == 409
    assert alternative in page.context["alternatives"]
    assert RHYS["email"] in page.content.decode() and RHYS["note"] in page.content.decode()


def test_choosing_another_time_keeps_what_was_typed_for_the_next_times_form(client, dr_patel):
    first_slot, later_slot = make_slot(dr_patel, local(3, 10)), make_slot(dr_patel, local(4, 15))
    pass_safety_check(client)
    typed = details_form(client, first_slot) | RHYS

    # The "Choose another time" button of the form: sent without validation, and without JavaScript.
    to_times = client.post("/book/details/", typed | {"choose_another_time": "1"})

    assert to_times.status_code == 302 and to_times["Location"] == times_page_of(first_slot, dr_patel)
    assert Appointment.objects.count() == 0
    assert all(value not in to_times["Location"] for value in RHYS.values())
    next_form = client.get(f"/book/details/?slot={later_slot.pk}")
    page = next_form.content.decode()
    for value in RHYS.values():
        assert value in page


def test_choosing_another_time_with_nothing_typed_just_shows_the_times(client, dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)

    untouched = {"slot": slot.pk, "submission_key": details_form(client, slot)["submission_key"]}
    to_times = client.post("/book/details/", untouched | {"choose_another_time": "1"})

    assert to_times["Location"] == times_page_of(slot, dr_patel)
    assert KeptBookingForm.objects.count() == 0


def times_page_of(slot, practitioner=None) -> str:
    """The time page of the week (and practitioner) that offered SLOT."""
    day = slot.starts_at.astimezone(clinic_zone()).date()
    monday = day - timedelta(days=day.weekday())
    return f"/book/time/?week={monday.isoformat()}" + (f"&practitioner={practitioner.pk}" if practitioner else "")


def test_choosing_another_time_for_any_practitioner_goes_back_to_that_week_for_any_practitioner(client, dr_patel):
    slot = make_slot(dr_patel, local(10, 10))
    pass_safety_check(client)
    form = client.get(f"/book/details/?at={start_time_value(slot.starts_at)}")
    assert form.status_code == 200

    to_times = client.post("/book/details/", {"at": start_time_value(slot.starts_at), "choose_another_time": "1"})

    assert to_times["Location"] == times_page_of(slot)


def test_a_taken_time_opened_from_a_stale_link_does_not_claim_details_were_kept(client, dr_patel):
    # A free time beside it, so that the page has a nearest free time to offer.
    taken, _free = make_slot(dr_patel, local(3, 10)), make_slot(dr_patel, local(3, 11))
    Appointment.objects.create(
        slot=taken,
        first_name="Ada",
        last_name="Lovelace",
        phone="07700 900001",
        created_at=timezone.now(),
        updated_at=timezone.now(),
    )
    pass_safety_check(client)

    page = client.get(f"/book/details/?slot={taken.pk}").content.decode()

    assert "Choose one of the nearest free times" in page
    assert "Your details are kept below" not in page
