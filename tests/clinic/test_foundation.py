import pytest
from django.conf import settings
from django.db import connection


@pytest.mark.django_db
def test_the_database_is_postgresql_18_or_the_configured_one():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        version_num = int(cursor.fetchone()[0])
    if settings.DATABASE_URL:
        # An operator's own server: the README promises any PostgreSQL 14 or newer.
        assert version_num >= 140000, version_num
    else:
        # The embedded server is the wheel's PostgreSQL 18, the version the README names.
        assert version_num // 10000 == 18, version_num


@pytest.mark.django_db
def test_healthz_answers_200_when_the_database_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.django_db
def test_staff_groups_exist_after_migrations():
    from django.contrib.auth.models import Group

    assert set(Group.objects.values_list("name", flat=True)) >= {"Reception", "Practitioner"}


@pytest.mark.django_db
def test_an_unknown_page_gives_the_friendly_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"We can&#x27;t find that page" in response.content or b"We can't find that page" in response.content
    assert b"Traceback" not in response.content
