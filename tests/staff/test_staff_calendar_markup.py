"""The calendar grid's cells, printed from Python (staff.views._grid_html), carry the markup the cell
template had: the same classes, links, forms, CSRF token and words for screen readers, every value escaped."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bookings.models import Appointment, Slot
from bookings.schedule import local_midnight
from tests.helpers import days_ahead, local, make_appointment, make_slot, patient_books, today
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


def _cells(response) -> str:
    """The grid with each run of white space as one space and the (per-request) CSRF token as TOKEN."""
    html = response.content.decode()
    token = 'name="csrfmiddlewaretoken" value="TOKEN"'
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', token, html)
    return re.sub(r"\s+", " ", html[html.index("<tbody>") : html.index("</tbody>")])


def test_each_state_of_a_cell_prints_the_markup_of_the_cell_template(client, rita, dr_patel, dr_okafor):
    day = days_ahead(3)
    dr_okafor.title = "Dr <&>"
    dr_okafor.save()
    ada = patient_books(make_slot(dr_patel, local(day, 9)), first_name="Ada", last_name="<Lovelace>")
    Appointment.objects.filter(pk=ada.pk).update(source=Appointment.Source.PHONE, status=Appointment.Status.ARRIVED)
    blocked = make_slot(dr_patel, local(day, 9, 20), state=Slot.State.BLOCKED, blocked_reason='Team "meeting"')
    free = make_slot(dr_okafor, local(day, 9))
    verified_login(client, rita)

    cells = _cells(client.get(reverse("reception_day"), {"date": day.isoformat()}))

    assert (
        # No working hours in this test: every booked slot is outside them.
        '<td class="table-primary slot-booked slot-no-longer-fits"> <a class="fw-semibold" '
        f'href="/staff/reception/appointments/{ada.pk}/">Ada &lt;Lovelace&gt;</a> <br><span class="badge '
        'text-bg-danger">Outside hours or in time off: move or cancel</span> <br><span class="badge text-bg-success">'
        "Arrived</span> "
        '<span class="badge text-bg-light border">Phone</span> </td>'
    ) in cells
    assert (
        '<td class="table-warning slot-blocked"> <span class="fw-semibold">Blocked</span>: Team &quot;meeting&quot; '
        f'<form method="post" action="/staff/reception/slots/{blocked.pk}/unblock/" class="d-inline">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="TOKEN"> <button type="submit" '
        'class="btn btn-link btn-sm p-0 align-baseline">Unblock<span class="visually-hidden"> 09:20 Dr Priya Patel'
        "</span></button> </form> </td>"
    ) in cells
    day_label = f"{local(day, 9):%a} {day.day} {local(day, 9):%b}"
    assert (
        '<td class="slot-open"> <a class="btn btn-sm btn-outline-success" '
        f'href="/staff/reception/book/?slot={free.pk}">Book<span class="visually-hidden"> {day_label} 09:00 with '
        "Dr &lt;&amp;&gt; Chidi Okafor</span></a> "
        f'<a class="btn btn-sm btn-link text-body-secondary" href="/staff/reception/slots/{free.pk}/block/">Block'
        '<span class="visually-hidden"> 09:00 Dr &lt;&amp;&gt; Chidi Okafor</span></a> </td>'
    ) in cells
    # Dr Okafor has no slot at 09:20.
    assert cells.count('<td class="bg-body-tertiary"><span class="visually-hidden">No slot</span></td>') == 1


def test_today_offers_arrived_on_a_booked_slot_that_has_begun_and_shows_a_free_one_as_past(
    client, rita, dr_patel, dr_okafor
):
    now = timezone.now()
    # Just begun, and today in clinic time whatever the time of day.
    starts_at = max(now - timedelta(minutes=1), local_midnight(today()))
    pat = make_appointment(make_slot(dr_patel, starts_at), at=now - timedelta(days=1))
    make_slot(dr_okafor, starts_at)
    verified_login(client, rita)

    cells = _cells(client.get(reverse("reception_day"), {"date": today().isoformat(), "from": "<desk>"}))

    assert (
        f'<form method="post" action="/staff/reception/appointments/{pat.pk}/status/" class="d-inline">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="TOKEN"> <input type="hidden" name="status" '
        f'value="arrived"><input type="hidden" name="next" value="/staff/reception/?date={today().isoformat()}'
        '&amp;from=%3Cdesk%3E"> <button type="submit" class="btn btn-link btn-sm p-0 align-baseline">Arrived'
        '<span class="visually-hidden">: Pat Ient</span></button> </form> </td>'
    ) in cells
    assert '<td class="text-body-secondary slot-past">Past</td>' in cells
