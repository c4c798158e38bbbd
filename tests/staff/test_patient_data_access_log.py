"""Who looked: every staff page that shows patients' details writes one access record (bookings.privacy.
patient_data_access_record) naming who, which page, which records and from where. The walk below covers
every staff URL: a new page must be added to one of the two lists, or the last test fails."""

from datetime import timedelta

import pytest
from django.urls import URLPattern, reverse
from django.utils import timezone

from bookings.models import CallbackRequest, OutboundMessage, PatientDataAccess, WaitingListEntry
from bookings.services import practitioner_calendar_token_reset
from staff import urls as staff_urls
from tests.helpers import (
    appointment_in_the_past_or_today,
    days_ahead,
    local,
    make_slot,
    patient_books,
    today,
    waiting,
)
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db

# Staff URLs that show no patient's details, and why. Everything else in staff/urls.py must write a record.
NO_PATIENT_DATA = {
    "staff_home": "links only",
    "reception_next_free": "free times only",
    "reception_book": "the form for a new caller: what reception types, no record yet",
    "reception_slot_block": "a free slot",
    "reception_hours": "working hours (a change's conflicts are recorded when shown: see _pop_conflicts)",
    "reception_practitioner_hours": "working hours (as above)",
    "practitioner_calendar": "the feed's settings",
    "reception_privacy_notice": "the privacy notice's text",
    "practitioner_calendar_feed": "initials only, polled by a phone's calendar",
    "insights": "counts only, small ones shown as 'fewer than 5' (staff/insights.py)",
    "insights_csv": "the same counts as the page",
    "insights_refresh": "POST, redirects",
    # Changes: they redirect to a page, which records itself.
    "reception_appointment_status": "POST, redirects",
    "reception_appointment_cancel": "POST, redirects (its form error re-shows the appointment: recorded)",
    "reception_slot_unblock": "POST, redirects",
    "reception_time_off_add": "POST, redirects",
    "reception_time_off_delete": "POST, redirects",
    "reception_callback_done": "POST, redirects",
    "reception_callback_reopen": "POST, redirects",
    "practitioner_calendar_reset": "POST, redirects",
    "reception_waiting_list_add": "the form for a new caller: what reception types, no entry yet",
    "reception_waiting_list_remove": "POST, redirects",
}
# Pages that show patients' details on a refusal: the status they answer with.
STATUS = {"reception_waiting_list_offer": 400}


@pytest.fixture
def world(dr_patel, rita):
    day = days_ahead(3)
    ahead = patient_books(make_slot(dr_patel, local(day, 10)), first_name="Ada", last_name="Lovelace")
    todays = appointment_in_the_past_or_today(make_slot(dr_patel, local(today(), 0, 20)), first_name="Grace")
    callback = CallbackRequest.objects.create(name="Bob Caller", phone="07700 900999", created_at=timezone.now())
    entry, _ = waiting("wanda@example.org")
    return {"ahead": ahead, "today": todays, "callback": callback, "day": day, "entry": entry}


def pages_with_patient_data(world, dr_patel):
    """(URL name, who opens it, method, URL, data, the appointment or call-back it must name)."""
    ahead, day = world["ahead"], world["day"]
    return [
        ("reception_day", "rita", "get", f"{reverse('reception_day')}?date={day}", None, ahead),
        ("reception_week", "rita", "get", f"{reverse('reception_week', args=[dr_patel.pk])}?date={day}", None, ahead),
        ("reception_appointment", "rita", "get", reverse("reception_appointment", args=[ahead.pk]), None, ahead),
        (
            "reception_appointment_move",
            "rita",
            "get",
            reverse("reception_appointment_move", args=[ahead.pk]),
            None,
            ahead,
        ),
        ("reception_search", "rita", "post", reverse("reception_search"), {"q": "Lovelace"}, ahead),
        (
            "reception_export",
            "rita",
            "get",
            f"{reverse('reception_export')}?start={day - timedelta(days=1)}&end={day}",
            None,
            ahead,
        ),
        ("reception_callbacks", "rita", "get", reverse("reception_callbacks"), None, world["callback"]),
        ("reception_patient_data", "rita", "get", reverse("reception_patient_data", args=[ahead.pk]), None, ahead),
        (
            "reception_patient_data_json",
            "rita",
            "get",
            reverse("reception_patient_data_json", args=[ahead.pk]),
            None,
            ahead,
        ),
        ("reception_patient_erase", "rita", "get", reverse("reception_patient_erase", args=[ahead.pk]), None, ahead),
        ("reception_waiting_list", "rita", "get", reverse("reception_waiting_list"), None, world["entry"]),
        (
            "reception_waiting_list_offer",
            "rita",
            "post",
            reverse("reception_waiting_list_offer", args=[world["entry"].pk]),
            {"slot": "not a time"},
            world["entry"],
        ),
        ("practitioner_day", "dr_patel", "get", reverse("practitioner_day"), None, world["today"]),
        ("practitioner_upcoming", "dr_patel", "get", reverse("practitioner_upcoming"), None, ahead),
        (
            "practitioner_appointment",
            "dr_patel",
            "get",
            reverse("practitioner_appointment", args=[ahead.pk]),
            None,
            ahead,
        ),
    ]


def _client(client, who, rita, dr_patel):
    verified_login(client, rita if who == "rita" else dr_patel.user)
    return client


def test_every_staff_page_showing_patients_writes_exactly_one_record_naming_them(client, world, rita, dr_patel):
    for name, who, method, url, data, shown in pages_with_patient_data(world, dr_patel):
        _client(client, who, rita, dr_patel)
        before = PatientDataAccess.objects.count()

        response = getattr(client, method)(url, data or {}, REMOTE_ADDR="192.0.2.44")

        assert response.status_code == STATUS.get(name, 200), name
        (record,) = PatientDataAccess.objects.order_by("-pk")[: PatientDataAccess.objects.count() - before]
        assert record.page == name
        assert record.username == (rita.username if who == "rita" else dr_patel.user.username), name
        assert record.client_address == "192.0.2.44", name
        if isinstance(shown, CallbackRequest):
            ids = record.callback_ids
        elif isinstance(shown, WaitingListEntry):
            ids = record.waiting_list_entry_ids
        else:
            ids = record.appointment_ids
        assert shown.pk in ids, name


def test_the_search_by_appointment_link_is_recorded_too(client, world, rita):
    verified_login(client, rita)

    client.get(f"{reverse('reception_search')}?appointment={world['ahead'].pk}")

    assert PatientDataAccess.objects.get().appointment_ids == [world["ahead"].pk]


def test_the_staff_pages_without_patient_data_write_no_record(client, world, rita, dr_patel, django_user_model):
    superuser = django_user_model.objects.create_superuser("admin", "admin@example.org", "correct horse battery")
    verified_login(client, superuser)
    token = practitioner_calendar_token_reset(practitioner=dr_patel)
    for name in ("staff_home", "reception_next_free", "reception_hours"):
        assert client.get(reverse(name)).status_code == 200, name
    free = make_slot(dr_patel, local(world["day"], 11))
    assert client.get(f"{reverse('reception_book')}?slot={free.pk}").status_code == 200
    assert client.get(reverse("reception_slot_block", args=[free.pk])).status_code == 200
    assert client.get(reverse("reception_practitioner_hours", args=[dr_patel.pk])).status_code == 200
    verified_login(client, dr_patel.user)
    assert client.get(reverse("practitioner_calendar")).status_code == 200
    assert client.get(reverse("practitioner_calendar_feed", args=[token])).status_code == 200

    assert PatientDataAccess.objects.count() == 0


def test_the_walk_covers_every_staff_url(world, dr_patel):
    """A new staff page fails here until it is listed: recorded (above) or without patient data (with a reason)."""
    every = {pattern.name for pattern in staff_urls.urlpatterns if isinstance(pattern, URLPattern)}
    recorded = {page[0] for page in pages_with_patient_data(world, dr_patel)}

    assert recorded.isdisjoint(NO_PATIENT_DATA)
    assert every == recorded | set(NO_PATIENT_DATA)


def test_the_admin_lists_the_records_read_only_by_staff_member_and_by_patient(admin_client, world, rita, client):
    verified_login(client, rita)
    client.get(reverse("reception_appointment", args=[world["ahead"].pk]))
    client.get(reverse("reception_callbacks"))

    by_patient = admin_client.get("/admin/bookings/patientdataaccess/", {"q": "Lovelace"})
    by_staff = admin_client.get("/admin/bookings/patientdataaccess/", {"username": "rita"})
    someone_else = admin_client.get("/admin/bookings/patientdataaccess/", {"q": "Nobody-by-that-name"})

    assert list(by_patient.context["cl"].result_list.values_list("page", flat=True)) == ["reception_appointment"]
    assert by_staff.context["cl"].result_count == 2
    assert someone_else.context["cl"].result_count == 0
    record = PatientDataAccess.objects.first()
    assert admin_client.get(f"/admin/bookings/patientdataaccess/{record.pk}/delete/").status_code == 403
    assert admin_client.get("/admin/bookings/patientdataaccess/add/").status_code == 403
    change = admin_client.post(f"/admin/bookings/patientdataaccess/{record.pk}/change/", {"username": "x"})
    assert change.status_code == 403


def test_the_admins_appointment_page_is_recorded_and_its_search_is_receptions_rule(admin_client, world):
    ahead = world["ahead"]

    assert admin_client.get(f"/admin/bookings/appointment/{ahead.pk}/change/").status_code == 200
    by_phone = admin_client.get("/admin/bookings/appointment/", {"q": "+44 7700 900123"})
    by_first_and_last = admin_client.get("/admin/bookings/appointment/", {"q": "Ada Lovelace"})

    record = PatientDataAccess.objects.get()
    assert (record.page, record.appointment_ids, record.username) == (
        "admin:bookings_appointment_change",
        [ahead.pk],
        "admin",
    )
    assert ahead in by_phone.context["cl"].result_list
    assert list(by_first_and_last.context["cl"].result_list) == [ahead]


def test_the_hours_page_records_the_booked_patients_a_change_left_out_of_the_hours(client, world, rita):
    verified_login(client, rita)
    session = client.session
    # What a change of hours leaves for the next page (staff.views._report_schedule_change).
    session["schedule_conflicts"] = [world["ahead"].slot_id]
    session.save()

    page = client.get(reverse("reception_hours"))

    assert "Lovelace" in page.content.decode()
    assert PatientDataAccess.objects.get().appointment_ids == [world["ahead"].pk]


def test_the_day_page_names_the_waiting_list_entry_of_an_offer_e_mail_that_failed(client, world, rita, dr_patel):
    """Reception's day lists undelivered e-mails by name: an offer's is about an entry, not an appointment."""
    from bookings.services import waiting_list_offer_by_hand

    slot = make_slot(dr_patel, local(world["day"], 15))
    offer = waiting_list_offer_by_hand(entry=world["entry"], slot_id=slot.pk, now=timezone.now(), actor=rita)
    OutboundMessage.objects.filter(waiting_list_offer=offer).update(status=OutboundMessage.Status.FAILED)
    verified_login(client, rita)

    page = client.get(reverse("reception_day"))

    assert page.status_code == 200 and "Wanda Waits (waiting list)" in page.content.decode()
    record = PatientDataAccess.objects.get()
    assert record.waiting_list_entry_ids == [world["entry"].pk]
    assert None not in record.appointment_ids


def test_the_failed_offer_e_mail_is_listed_by_name_in_one_query(world, rita, dr_patel, django_assert_num_queries):
    """The panel reads only the columns it shows (OutboundMessageQuerySet.needs_attention): none of them is left
    for a query of its own, for an offer's entry as for an appointment."""
    from django.template.loader import render_to_string

    from bookings.services import waiting_list_offer_by_hand

    slot = make_slot(dr_patel, local(world["day"], 15))
    offer = waiting_list_offer_by_hand(entry=world["entry"], slot_id=slot.pk, now=timezone.now(), actor=rita)
    OutboundMessage.objects.filter(waiting_list_offer=offer).update(status=OutboundMessage.Status.FAILED)

    # 1. the messages with their appointment or offer and entry, slot and practitioner
    with django_assert_num_queries(1):
        panel = render_to_string(
            "bookings/_failed_messages.html",
            {"failed_messages": OutboundMessage.objects.needs_attention(now=timezone.now())},
        )

    assert "Wanda Waits (waiting list)" in panel and "with Dr Priya Patel" in panel


def test_the_admin_finds_every_view_of_a_patients_waiting_list_entry_by_name_e_mail_or_phone(
    admin_client, world, client, rita
):
    verified_login(client, rita)
    client.get(reverse("reception_waiting_list"))

    for query in ("Wanda Waits", "WANDA@example.org", "07700 900456"):
        found = admin_client.get("/admin/bookings/patientdataaccess/", {"q": query})
        assert list(found.context["cl"].result_list.values_list("page", flat=True)) == ["reception_waiting_list"], query
    assert "waiting_list_entry_ids" in admin_client.get("/admin/bookings/patientdataaccess/").context["cl"].list_display
