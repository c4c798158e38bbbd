"""The Contact page: how to reach the clinic, and a call-back request that reaches Rita's screen."""

import pytest
from django.urls import reverse

from bookings.models import CallbackRequest
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db

REQUEST = {"name": "Bob Builder", "phone": "07700 900999", "preferred_time": "Weekday mornings", "message": "Hip."}


def test_the_contact_page_shows_phone_e_mail_address_opening_hours_and_the_call_back_form(client, settings):
    response = client.get(reverse("contact"))

    html = response.content.decode()
    assert "Want to chat with us directly?" in html
    for detail in [
        settings.CLINIC_PHONE,
        settings.CLINIC_EMAIL,
        settings.CLINIC_ADDRESS,
        settings.CLINIC_OPENING_HOURS,
    ]:
        assert detail in html
    assert "Request a call-back" in html


def test_a_visitor_asks_for_a_call_back_and_rita_sees_it_and_marks_it_done(client, rita):
    response = client.post(reverse("contact"), REQUEST, follow=True)

    assert "we will call you back" in response.content.decode()
    callback = CallbackRequest.objects.get()
    assert (callback.name, callback.phone, callback.done_at) == ("Bob Builder", "07700 900999", None)

    verified_login(client, rita)
    assert "Bob Builder" in client.get(reverse("reception_callbacks")).content.decode()
    client.post(reverse("reception_callback_done", args=[callback.pk]))

    callback.refresh_from_db()
    assert callback.done_at is not None and callback.done_by == rita
    second = client.post(reverse("reception_callback_done", args=[callback.pk]), follow=True)
    assert "Someone already marked that call-back as done." in second.content.decode()


def test_the_day_view_counts_the_call_backs_waiting(client, rita):
    client.post(reverse("contact"), REQUEST)
    verified_login(client, rita)

    response = client.get(reverse("reception_day"))

    assert response.context["open_callbacks"] == 1


def test_a_bot_that_fills_the_hidden_field_leaves_no_request_and_is_answered_like_anyone_else(client):
    person = client.post(reverse("contact"), REQUEST, follow=True)
    CallbackRequest.objects.all().delete()

    bot = client.post(reverse("contact"), REQUEST | {"website": "http://spam.example"}, follow=True)

    assert bot.status_code == person.status_code == 200
    assert bot.redirect_chain == person.redirect_chain
    assert "we will call you back" in bot.content.decode()
    assert "Please leave this field empty" not in bot.content.decode()
    assert not CallbackRequest.objects.exists()


def test_a_call_back_needs_a_number_we_can_call(client):
    response = client.post(reverse("contact"), REQUEST | {"phone": "soon"})

    assert response.status_code == 400
    assert not CallbackRequest.objects.exists()


def test_the_call_back_form_is_rate_limited(client, settings):
    settings.RATE_LIMIT_PUBLIC_POSTS = 2
    for _ in range(2):
        client.post(reverse("contact"), REQUEST)

    assert client.post(reverse("contact"), REQUEST).status_code == 429
    assert CallbackRequest.objects.count() == 2


def test_rita_reopens_a_call_back_marked_done_by_mistake(client, rita):
    client.post(reverse("contact"), REQUEST)
    callback = CallbackRequest.objects.get()
    verified_login(client, rita)
    client.post(reverse("reception_callback_done", args=[callback.pk]))

    response = client.post(reverse("reception_callback_reopen", args=[callback.pk]), follow=True)

    callback.refresh_from_db()
    assert (callback.done_at, callback.done_by) == (None, None)
    assert [each.pk for each in response.context["open_requests"]] == [callback.pk]
    assert list(response.context["recently_done"]) == []
    again = client.post(reverse("reception_callback_reopen", args=[callback.pk]), follow=True)
    assert "That call-back is already on the list to call." in again.content.decode()
    assert client.post(reverse("reception_callback_reopen", args=[callback.pk + 1])).status_code == 404


def test_recently_done_still_shows_what_the_caller_asked_and_when_suits_them(client, rita):
    client.post(reverse("contact"), REQUEST | {"message": "Left hip, since the marathon."})
    callback = CallbackRequest.objects.get()
    verified_login(client, rita)
    client.post(reverse("reception_callback_done", args=[callback.pk]))

    response = client.get(reverse("reception_callbacks"))

    assert list(response.context["open_requests"]) == []
    html = response.content.decode()
    assert "Left hip, since the marathon." in html
    assert "Weekday mornings" in html
    assert f'action="{reverse("reception_callback_reopen", args=[callback.pk])}"' in html


def test_call_back_requests_are_in_the_admin(admin_client, client, rita):
    client.post(reverse("contact"), REQUEST)
    callback = CallbackRequest.objects.get()

    changelist = admin_client.get("/admin/bookings/callbackrequest/")
    assert changelist.status_code == 200
    assert "Bob Builder" in changelist.content.decode()
    assert admin_client.get("/admin/bookings/callbackrequest/?done_at__isempty=1").status_code == 200
    assert admin_client.get("/admin/bookings/callbackrequest/?q=Bob").status_code == 200
    assert admin_client.get(f"/admin/bookings/callbackrequest/{callback.pk}/change/").status_code == 200
