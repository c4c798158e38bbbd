"""The privacy notice names the version patients agree to when they book (settings.PRIVACY_NOTICE_VERSION)."""

from django.test import override_settings


@override_settings(PRIVACY_NOTICE_VERSION="2027-03")
def test_the_privacy_page_shows_the_version_the_settings_name(client):
    response = client.get("/privacy/")
    assert response.status_code == 200
    assert b"Version 2027-03" in response.content
    assert b"2026-11" not in response.content
