"""bookings/flow.py, step 5: a booking that already existed is confirmed only to the browser that made it."""

import uuid

import pytest
from django.test import RequestFactory
from django.utils import timezone

from bookings import flow
from bookings.models import manage_token_for_submission
from bookings.services import PatientDetails, appointment_book
from tests.helpers import local, make_slot

pytestmark = pytest.mark.django_db


@pytest.fixture
def booking(dr_patel):
    """The patient's booking, made from the browser whose secret is "patients-laptop"."""
    key = uuid.uuid4()
    return appointment_book(
        slot_id=make_slot(dr_patel, local(3, 10)).pk,
        patient=PatientDetails(first_name="Pat", last_name="Ient", phone="07700 900123", email="pat@example.org"),
        now=timezone.now(),
        safety_answers={"trauma": "no"},
        submission_key=key,
        manage_token=manage_token_for_submission(key, "patients-laptop"),
    ).appointment


def _request(confirmations: dict | None = None):
    request = RequestFactory().post("/book/details/")
    if confirmations is not None:
        request.COOKIES[flow.CONFIRMATIONS_COOKIE] = flow.signed(flow.CONFIRMATIONS_COOKIE, confirmations)
    return request


def test_the_patients_double_click_is_confirmed_to_the_patients_browser(booking):
    known = flow.confirmations_with_proof(_request(), booking, browser_secret="patients-laptop")

    assert known == {str(booking.pk): "patients-laptop"}


def test_after_back_the_confirmations_cookie_proves_it_even_with_a_new_pass(booking):
    request = _request({str(booking.pk): "patients-laptop"})

    known = flow.confirmations_with_proof(request, booking, browser_secret="a-new-pass-in-the-same-browser")

    assert known == {str(booking.pk): "patients-laptop"}


def test_mallorys_replay_from_another_browser_learns_nothing(booking):
    request = _request({str(booking.pk): "mallorys-guess"})

    assert flow.confirmations_with_proof(request, booking, browser_secret="mallorys-browser") is None
