import io
import logging

import pytest
from django.conf import settings
from django.utils import timezone

from bookings.models import Practitioner, Slot
from tests.bookings.booking_helpers import PATIENT, details_form, local, make_slot, pass_safety_check

pytestmark = pytest.mark.django_db


def _practitioners_with_a_week_of_slots(count):
    practitioners = Practitioner.objects.bulk_create(
        Practitioner(display_name=f"Practitioner {i}", profession="Physiotherapist", list_order=i) for i in range(count)
    )
    slots = []
    for practitioner in practitioners:
        for day in range(1, 8):
            for hour in (9, 10, 11, 14, 15):
                slots.append(Slot(practitioner=practitioner, starts_at=local(day, hour), ends_at=local(day, hour, 20)))
    Slot.objects.bulk_create(slots)


@pytest.mark.parametrize("practitioners", [1, 50])
def test_the_time_page_runs_the_same_queries_at_1_and_50_practitioners(
    client, django_assert_num_queries, practitioners
):
    _practitioners_with_a_week_of_slots(practitioners)
    pass_safety_check(client)
    # 1 session, 2 practitioners offering consultations, 3 the first bookable slot (default week),
    # 4 the week's bookable times. A patient's unchanged session is not saved again
    # (clinic.middleware.StaffSessionIdleExpiryMiddleware saves only signed-in staff's).
    with django_assert_num_queries(4):
        response = client.get("/book/time/")
    assert response.status_code == 200
    assert len(response.context["practitioners"]) == practitioners


def test_public_posts_are_rate_limited_per_address_with_a_friendly_429(client, settings):
    settings.RATE_LIMIT_PUBLIC_POSTS = 3
    for _ in range(3):
        assert pass_safety_check(client).status_code == 302
    response = pass_safety_check(client)
    assert response.status_code == 429
    assert b"Too many attempts" in response.content
    assert int(response["Retry-After"]) > 0
    # Another address is not affected (an empty form is a 400, not a 429).
    other = client.post("/book/", {}, REMOTE_ADDR="192.0.2.7")
    assert other.status_code == 400


def test_no_patient_name_email_phone_or_token_reaches_the_logs(client, dr_patel):
    # The handler configured in settings.LOGGING, with its redacting filter.
    handler = logging.getLogger("django").handlers[0]
    captured = io.StringIO()
    previous = handler.setStream(captured)
    logging.getLogger("django.request").setLevel(logging.DEBUG)
    try:
        slot = make_slot(dr_patel, local(3, 10))
        pass_safety_check(client)
        client.post("/book/details/", details_form(client, slot))
        manage_url = client.get("/book/confirmed/").context["manage_url"]
        token = manage_url.rstrip("/").rsplit("/", 1)[1]
        client.get(f"/manage/{token}x/")  # a 404 is logged with its path
        logging.getLogger("django.request").warning(
            "Not Found: /manage/%s/ for %s %s", token, PATIENT["email"], PATIENT["phone"]
        )
    finally:
        handler.setStream(previous)
    output = captured.getvalue()
    assert "Not Found" in output  # the log really was captured
    for secret in [token, PATIENT["email"], PATIENT["phone"], PATIENT["last_name"]]:
        assert secret not in output


def test_the_minimum_notice_and_horizon_come_from_settings(dr_patel):
    now = timezone.now()
    inside_notice = make_slot(dr_patel, now + settings.BOOKING_MIN_NOTICE / 2)
    fine = make_slot(dr_patel, now + settings.BOOKING_MIN_NOTICE * 2)
    bookable = set(Slot.objects.bookable(now=now).values_list("pk", flat=True))
    assert fine.pk in bookable and inside_notice.pk not in bookable


def test_a_mangled_manage_link_with_quotes_is_still_redacted_in_the_logs():
    from clinic.logging import redact

    for path in ["/manage/'abc\"def/", '/manage/"tok/', "/calendar-feed/'x.ics"]:
        assert redact(f"Not Found: {path}").startswith(
            ("Not Found: /manage/[redacted]", "Not Found: /calendar-feed/[redacted]")
        )
