"""Every page that shows what a patient typed tells browsers and proxies not to keep it (Cache-Control: no-store).

On a shared computer a page kept in the browser's cache comes back with Back or from history; a
proxy's cache would hand it to the next visitor. The walk below opens every URL the site has with a
patient's booking and a fresh safety-check pass, as GET and as POST with typed details, and checks
each response that carries any of those details.
"""

import pytest
from django.test import Client

from bookings.models import Appointment
from tests.helpers import details_form, local, make_slot, pass_safety_check
from tests.security.test_headers_on_every_url import every_url

pytestmark = pytest.mark.django_db

TYPED = {
    "first_name": "Zebedee",
    "last_name": "Quartermaine",
    "name": "Zebedee Quartermaine",
    "phone": "07700 900777",
    "email": "zebedee@example.org",
    "note": "Ankle sprain from netball",
    "message": "Ankle sprain from netball",
    "reason": "Ankle sprain from netball",
    "q": "Quartermaine",
}
# What a page may echo, as it appears in HTML (the phone number is printed as typed).
MARKERS = (b"Zebedee", b"Quartermaine", b"900777", b"Ankle sprain")
PATIENT_PAGES = ("/book/", "/manage/", "/contact/")


def _booked_patient(client, slot):
    pass_safety_check(client)
    response = client.post("/book/details/", details_form(client, slot) | TYPED)
    assert response.status_code == 302
    token = client.get("/book/confirmed/").context["manage_url"].rstrip("/").rsplit("/", 1)[1]
    return Appointment.objects.get(), token


def test_every_page_that_shows_what_a_patient_typed_is_no_store(dr_patel, settings):
    settings.RATE_LIMIT_PUBLIC_POSTS = 1000
    booked_slot, free_slot = make_slot(dr_patel, local(3, 10)), make_slot(dr_patel, local(3, 11))
    patient = Client()
    appointment, token = _booked_patient(patient, booked_slot)
    urls = [url.replace("not-a-real-token", token) for url in every_url()]

    echoing = set()

    def check(url, response):
        if response.status_code >= 500:
            raise AssertionError((url, response.status_code))
        if any(marker in response.content for marker in MARKERS):
            echoing.add(url)
            assert "no-store" in response.get("Cache-Control", ""), (url, response.status_code)
        elif url.startswith(PATIENT_PAGES) and response.status_code != 404:
            # The booking flow and the manage pages show a patient's booking even where nothing typed
            # appears (a 404, as after "forget this booking here", shows nothing).
            assert "no-store" in response.get("Cache-Control", ""), (url, response.status_code)

    for url in urls:
        check(url, patient.get(url, {"q": TYPED["q"], "slot": free_slot.pk}))
    # A form sent back: with a time just taken (details kept) and with a mistake in it (details kept).
    for form in (
        TYPED | {"slot": booked_slot.pk, "consent": "on", "submission_key": "0" * 32},
        TYPED | {"slot": free_slot.pk, "email": "not an address", "phone": "12ab"},
    ):
        for url in urls:
            if url.startswith(f"/manage/{token}/cancel"):
                continue  # cancelling would end the walk of the manage pages; its answer is a redirect
            pass_safety_check(patient)
            check(url, patient.post(url, form))

    # The walk met the pages the issue names: it would pass vacuously otherwise.
    assert {"/contact/", "/book/details/", "/book/confirmed/", "/articles/"} <= echoing
    assert appointment.first_name == "Zebedee"
