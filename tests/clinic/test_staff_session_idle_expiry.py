"""Staff sessions expire after SESSION_COOKIE_AGE without a request; a patient has no session at all."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.helpers import pass_safety_check
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


def test_a_request_from_signed_in_staff_extends_their_session(client, rita, settings):
    verified_login(client, rita)
    session = Session.objects.get()
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() + timedelta(minutes=5))

    assert client.get("/staff/reception/").status_code == 200

    extended = Session.objects.get(pk=session.pk).expire_date
    assert extended > timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE - 60)


def test_a_patient_on_the_way_to_booking_never_touches_the_session_table(client):
    with CaptureQueriesContext(connection) as queries:
        assert pass_safety_check(client).status_code == 302
        assert client.get("/book/time/").status_code == 200

    assert [q["sql"] for q in queries if "django_session" in q["sql"]] == []
    assert not Session.objects.exists()


def test_a_staff_member_who_signs_out_has_no_session_left(client, rita):
    verified_login(client, rita)

    client.post("/staff/logout/")

    assert not Session.objects.exists()
