"""A time page link whose practitioner is not an id at all says it could not find them, as an unknown id does.

Found by hand: "?practitioner=abc" (or -1, 0, 1.0, 1e3, a 20-digit number) silently showed everyone's times as if
no practitioner had been asked for; only a well-formed unknown id ("99") said "We could not find that
practitioner." The kept page was keyed the same way, so the two could not differ.
"""

import pytest

from bookings.forms import start_time_value
from tests.helpers import local, make_slot, pass_safety_check

pytestmark = pytest.mark.django_db

NOT_FOUND = "We could not find that practitioner"


@pytest.fixture
def patient(client):
    pass_safety_check(client)
    return client


@pytest.mark.parametrize("junk", ["abc", "-1", "0", "1.0", "1e3", "99999999999999999999", " x "])
def test_a_practitioner_that_is_not_an_id_is_not_found_and_everyones_times_show(patient, dr_okafor, junk):
    okafors = make_slot(dr_okafor, local(3, 11))

    response = patient.get("/book/time/", {"practitioner": junk})

    assert response.status_code == 200
    page = response.content.decode()
    assert NOT_FOUND in page
    assert start_time_value(okafors.starts_at) in page


def test_an_empty_practitioner_is_any_practitioner_and_says_nothing(patient, dr_okafor):
    make_slot(dr_okafor, local(3, 11))

    page = patient.get("/book/time/", {"practitioner": ""}).content.decode()

    assert NOT_FOUND not in page


def test_the_kept_page_for_everyone_and_the_one_for_junk_are_never_swapped(patient, dr_okafor):
    make_slot(dr_okafor, local(3, 11))

    assert NOT_FOUND not in patient.get("/book/time/").content.decode()
    assert NOT_FOUND in patient.get("/book/time/", {"practitioner": "abc"}).content.decode()
    assert NOT_FOUND in patient.get("/book/time/", {"practitioner": "0"}).content.decode()
    assert NOT_FOUND not in patient.get("/book/time/").content.decode()
    assert NOT_FOUND not in patient.get("/book/time/", {"practitioner": ""}).content.decode()
