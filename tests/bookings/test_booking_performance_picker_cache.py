"""The week picker may reuse its answer for SLOT_PICKER_CACHE_SECONDS; off (0) unless configured."""

import pytest

from bookings import views
from tests.bookings.booking_helpers import local, make_slot, pass_safety_check

pytestmark = pytest.mark.django_db


@pytest.fixture
def empty_picker_cache():
    views._picker_cache.clear()
    yield
    views._picker_cache.clear()


def test_by_default_a_new_time_shows_at_once(client, dr_patel, settings, empty_picker_cache):
    assert settings.SLOT_PICKER_CACHE_SECONDS == 0
    first = make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)
    client.get("/book/time/")

    second = make_slot(dr_patel, local(3, 11))

    content = client.get("/book/time/").content.decode()
    assert f"?slot={first.pk}" in content and f"?slot={second.pk}" in content


def test_with_the_cache_on_patients_share_one_answer_for_its_seconds(
    client, dr_patel, settings, empty_picker_cache, django_assert_num_queries
):
    settings.SLOT_PICKER_CACHE_SECONDS = 60
    first = make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)
    client.get("/book/time/")
    make_slot(dr_patel, local(3, 11))

    # 1 the session: the practitioners and the week come from the cache.
    with django_assert_num_queries(1):
        response = client.get("/book/time/")

    assert [time.pk for _, times in response.context["days"] for time in times] == [first.pk]
    # Another week or practitioner is its own entry.
    assert client.get(f"/book/time/?practitioner={dr_patel.pk}").context["chosen_practitioner"] == dr_patel


def test_a_cached_time_booked_meanwhile_is_still_refused_as_taken(client, dr_patel, settings, empty_picker_cache):
    settings.SLOT_PICKER_CACHE_SECONDS = 60
    slot = make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)
    client.get("/book/time/")
    slot.state = slot.State.BLOCKED
    slot.save()

    assert f"?slot={slot.pk}" in client.get("/book/time/").content.decode()  # still offered from the cache
    response = client.get(f"/book/details/?slot={slot.pk}")

    assert b"no longer available" in response.content
