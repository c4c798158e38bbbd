"""Fixtures of the API tests: keys for the systems that call it, and a free time with Dr Patel."""

import pytest
from django.utils import timezone

from api.models import ApiKey, ApiScope
from tests.helpers import local, make_slot

EVERY_SCOPE = [scope.value for scope in ApiScope]


@pytest.fixture
def make_key(db):
    """A key with the given scopes: (row, raw key as the other system holds it)."""

    def make(*scopes, name="Practice system"):
        return ApiKey.issue(name=name, scopes=list(scopes), now=timezone.now())

    return make


@pytest.fixture
def full_key(make_key):
    return make_key(*EVERY_SCOPE)[1]


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def free_slot(dr_patel):
    return make_slot(dr_patel, local(3, 10))


def safe_answers() -> dict:
    from bookings.forms import SAFETY_QUESTIONS

    return {key: False for key, _ in SAFETY_QUESTIONS}


def booking_body(slot_id, **changes) -> dict:
    from django.conf import settings

    body = {
        "slot_id": slot_id,
        "patient": {
            "first_name": "Pat",
            "last_name": "Example",
            "phone": "07700 900123",
            "email": "pat@example.org",
            "note": "Left hip, worse on stairs",
        },
        "safety_answers": safe_answers(),
        "privacy_notice_version": settings.PRIVACY_NOTICE_VERSION,
    }
    body.update(changes)
    return body
