"""The privacy notice's versions (clinic/privacy_notices.py): the page shows the current one, whose retention
table says what the purge does; every booking records it; staff can read any older one as published."""

from datetime import timedelta

from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from django.urls import reverse

from clinic.privacy_notices import NOTICES, current_privacy_notice_version, describe_period
from tests.staff_signin import verified_login


def test_the_privacy_page_shows_the_current_versions_text_and_date(client):
    response = client.get("/privacy/")

    assert response.status_code == 200
    page = response.content.decode()
    assert f"Version {current_privacy_notice_version()}, published 1 December 2026" in page
    assert "How long we keep it" in page and "We answer within one month" in page


@override_settings(PRIVACY_NOTICE_VERSION="2026-11")
def test_the_setting_chooses_which_published_version_is_current(client):
    page = client.get("/privacy/").content.decode()

    assert "Version 2026-11, published 1 November 2026" in page
    assert "We answer within one month" not in page


def test_the_retention_table_says_what_the_settings_say(client, settings):
    page = client.get("/privacy/").content.decode()
    assert "2 years after its date" in page and "6 months after its date" in page
    assert "30 days after they were sent" in page and "6 months after we called you back" in page

    settings.RETENTION = {**settings.RETENTION, "attended": timedelta(days=365 * 8)}

    assert "8 years after its date" in client.get("/privacy/").content.decode()


def test_the_current_notice_says_what_the_waiting_list_keeps_and_for_how_long_as_the_purge_does(client, settings):
    page = client.get("/privacy/").content.decode()
    assert "If you join the waiting list" in page
    assert "30 days after you left the list, accepted a time or your last day passed" in page
    assert "you are taken off it" in page

    settings.RETENTION = {**settings.RETENTION, "waiting_list": timedelta(days=61)}

    assert "2 months after you left the list" in client.get("/privacy/").content.decode()


def test_the_notice_published_before_the_waiting_list_is_kept_as_it_was(client, rita):
    verified_login(client, rita)

    page = client.get(reverse("reception_privacy_notice", args=["2026-12"])).content.decode()

    assert "How long we keep it" in page and "If you join the waiting list" not in page


def test_periods_are_said_in_years_months_or_days():
    assert [describe_period(timedelta(days=d)) for d in (730, 365, 183, 90, 30, 1)] == [
        "2 years",
        "1 year",
        "6 months",
        "3 months",
        "30 days",
        "1 day",
    ]


def test_reception_can_read_an_older_version_as_it_was_published(client, rita):
    verified_login(client, rita)

    older = client.get(reverse("reception_privacy_notice", args=["2026-11"]))

    assert older.status_code == 200
    page = older.content.decode()
    assert "Published 1 November 2026" in page and "An older version" in page
    assert "as long as the law requires for clinical records" in page
    assert client.get(reverse("reception_privacy_notice", args=["1999-01"])).status_code == 404


def test_a_stranger_cannot_open_the_staff_copy_of_older_versions(client, mallory):
    assert client.get(reverse("reception_privacy_notice", args=["2026-11"])).status_code == 302
    verified_login(client, mallory)
    assert client.get(reverse("reception_privacy_notice", args=["2026-11"])).status_code == 403


def test_a_version_without_a_text_is_refused_by_the_system_check():
    assert [notice.version for notice in NOTICES][-1] == "2026-12b"
    with override_settings(PRIVACY_NOTICE_VERSION="2027-03"):
        try:
            call_command("check")
        except SystemCheckError as error:
            assert "clinic.E001" in str(error)
        else:
            raise AssertionError("the check let a version without a text through")
