"""A slot that other rows still point to (an appointment, a message in the outbox, its history) is
retired when the schedule drops it, never deleted; and a schedule change is all or nothing.

Issue 13: Dr Patel's 09:00 caller is moved to 10:00; the confirmation e-mail in the outbox still
points to 09:00; time off over 09:00 then made every schedule change, and the nightly
`generate_slots`, fail with ProtectedError, while the time off itself was saved.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.admin.sites import site as admin_site
from django.core.management import call_command
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from bookings import schedule
from bookings.models import Appointment, OutboundMessage, Slot, TimeOff, WorkingHours
from bookings.schedule import referenced_slot_ids, slots_generate
from bookings.services import PatientDetails, appointment_book, appointment_move
from tests.helpers import local
from tests.helpers import slot_at as _slot
from tests.staff_signin import verified_login

pytestmark = pytest.mark.django_db


def _phone_book(rita, slot):
    return appointment_book(
        slot_id=slot.pk,
        patient=PatientDetails(first_name="Ada", last_name="Lovelace", phone="07700 900123", email="ada@example.org"),
        now=timezone.now(),
        booked_by=rita,
    )


@pytest.fixture
def moved(rita, patel_works, day):
    """Rita phone-books Ada at 09:00 (an e-mail goes to the outbox), then moves her to 10:00."""
    result = _phone_book(rita, _slot(patel_works, local(day, 9)))
    appointment_move(
        appointment=result.appointment,
        new_slot_id=_slot(patel_works, local(day, 10)).pk,
        now=timezone.now(),
        actor=rita,
    )
    return result.appointment


def test_the_outbox_and_appointments_count_as_references_to_a_slot(rita, moved, patel_works, day):
    nine, ten, ten_forty = (
        _slot(patel_works, local(day, 9)),
        _slot(patel_works, local(day, 10)),
        _slot(patel_works, local(day, 10, 40)),
    )
    assert OutboundMessage.objects.filter(slot=nine).exists()
    assert not Appointment.objects.filter(slot=nine).exists()

    assert referenced_slot_ids([nine.pk, ten.pk, ten_forty.pk]) == {nine.pk, ten.pk}


def test_time_off_over_the_old_time_of_a_moved_booking_retires_that_slot(rita, moved, patel_works, day):
    nine = _slot(patel_works, local(day, 9))
    TimeOff.objects.create(practitioner=patel_works, starts_at=local(day, 9), ends_at=local(day, 9, 20))

    report = slots_generate(now=timezone.now(), practitioner=patel_works)

    nine.refresh_from_db()
    assert nine.state == Slot.State.RETIRED
    assert report.removed == 1
    assert OutboundMessage.objects.filter(slot=nine).exists()
    assert not Slot.objects.bookable(now=timezone.now()).filter(pk=nine.pk).exists()


def test_rita_adds_time_off_after_a_move_and_the_nightly_command_still_runs(client, rita, moved, patel_works, day):
    verified_login(client, rita)

    response = client.post(
        reverse("reception_time_off_add", args=[patel_works.pk]),
        {"off-starts_at": f"{day}T08:00", "off-ends_at": f"{day}T09:30", "off-reason": "Dentist"},
    )

    assert response.status_code == 302
    assert TimeOff.objects.count() == 1
    assert _slot(patel_works, local(day, 9)).state == Slot.State.RETIRED
    out = StringIO()
    call_command("generate_slots", stdout=out)
    assert "created" in out.getvalue()


def test_a_patient_who_moved_by_the_manage_link_does_not_break_the_next_closure(client, rita, patel_works, day):
    result = appointment_book(
        slot_id=_slot(patel_works, local(day, 9)).pk,
        patient=PatientDetails(first_name="Pat", last_name="Ient", phone="07700 900123", email="pat@example.org"),
        now=timezone.now(),
    )
    response = client.post(f"/manage/{result.manage_token}/move/", {"slot": _slot(patel_works, local(day, 10)).pk})
    assert response.status_code == 302
    verified_login(client, rita)

    response = client.post(
        reverse("reception_hours"),
        {"closure-starts_at": f"{day}T00:00", "closure-ends_at": f"{day + timedelta(days=1)}T00:00"},
    )

    assert response.status_code == 302
    assert _slot(patel_works, local(day, 9)).state == Slot.State.RETIRED
    assert not Slot.objects.bookable(now=timezone.now(), start=local(day, 0), end=local(day, 23)).exists()


def test_time_off_whose_slots_cannot_follow_is_not_saved(client, rita, patel_works, day, monkeypatch):
    """All or nothing: the control breaks generation from the test's side."""

    def generation_fails(**kwargs):
        raise RuntimeError("generation failed")

    monkeypatch.setattr(schedule, "slots_generate", generation_fails)
    verified_login(client, rita)

    with pytest.raises(RuntimeError):
        client.post(
            reverse("reception_time_off_add", args=[patel_works.pk]),
            {"off-starts_at": f"{day}T09:00", "off-ends_at": f"{day}T10:00", "off-reason": "Dentist"},
        )

    assert not TimeOff.objects.exists()


@pytest.mark.parametrize(
    "post",
    [
        lambda client, practitioner, day: client.post(
            reverse("reception_hours"),
            {"closure-starts_at": f"{day}T00:00", "closure-ends_at": f"{day + timedelta(days=1)}T00:00"},
        ),
        lambda client, practitioner, day: client.post(
            reverse("reception_practitioner_hours", args=[practitioner.pk]),
            {
                "hours-TOTAL_FORMS": "1",
                "hours-INITIAL_FORMS": "0",
                "hours-MIN_NUM_FORMS": "0",
                "hours-MAX_NUM_FORMS": "1000",
                "hours-0-weekday": str((day.weekday() + 1) % 7),
                "hours-0-start_time": "09:00",
                "hours-0-end_time": "10:00",
            },
        ),
        lambda client, practitioner, day: client.post(
            reverse("reception_time_off_delete", args=[TimeOff.objects.get().pk])
        ),
    ],
    ids=["closure", "hours", "time off removed"],
)
def test_every_other_schedule_change_is_all_or_nothing_too(client, rita, patel_works, day, monkeypatch, post):
    TimeOff.objects.create(practitioner=patel_works, starts_at=local(day, 9), ends_at=local(day, 9, 20))
    before = (list(TimeOff.objects.values_list("pk", flat=True)), list(WorkingHours.objects.values_list("pk")))

    def generation_fails(**kwargs):
        raise RuntimeError("generation failed")

    monkeypatch.setattr(schedule, "slots_generate", generation_fails)
    verified_login(client, rita)

    with pytest.raises(RuntimeError):
        post(client, patel_works, day)

    assert (list(TimeOff.objects.values_list("pk", flat=True)), list(WorkingHours.objects.values_list("pk"))) == before


def test_the_admins_delete_selected_action_on_time_off_is_all_or_nothing(rita, patel_works, day, monkeypatch):
    TimeOff.objects.create(practitioner=patel_works, starts_at=local(day, 9), ends_at=local(day, 9, 20))

    def generation_fails(**kwargs):
        raise RuntimeError("generation failed")

    monkeypatch.setattr(schedule, "slots_generate", generation_fails)
    request = RequestFactory().post("/admin/bookings/timeoff/")
    request.user = rita

    with pytest.raises(RuntimeError):
        admin_site._registry[TimeOff].delete_queryset(request, TimeOff.objects.all())

    assert TimeOff.objects.count() == 1


def _move(client, rita, appointment, practitioner, day):
    verified_login(client, rita)
    new_slot = _slot(practitioner, local(day, 10, 20))
    return client.post(reverse("reception_appointment_move", args=[appointment.pk]), {"slot": new_slot.pk})


def _cancel(client, rita, appointment, practitioner, day):
    verified_login(client, rita)
    return client.post(reverse("reception_appointment_cancel", args=[appointment.pk]), {"reason": "Unwell"})


def _time_off(client, rita, appointment, practitioner, day):
    verified_login(client, rita)
    return client.post(
        reverse("reception_time_off_add", args=[practitioner.pk]),
        {"off-starts_at": f"{day}T10:00", "off-ends_at": f"{day}T10:40", "off-reason": "Training"},
    )


def _closure(client, rita, appointment, practitioner, day):
    verified_login(client, rita)
    return client.post(
        reverse("reception_hours"), {"closure-starts_at": f"{day}T10:00", "closure-ends_at": f"{day}T10:40"}
    )


def _hours(client, rita, appointment, practitioner, day):
    verified_login(client, rita)
    period = WorkingHours.objects.get(practitioner=practitioner)
    return client.post(
        reverse("reception_practitioner_hours", args=[practitioner.pk]),
        {
            "hours-TOTAL_FORMS": "1",
            "hours-INITIAL_FORMS": "1",
            "hours-MIN_NUM_FORMS": "0",
            "hours-MAX_NUM_FORMS": "1000",
            "hours-0-id": str(period.pk),
            "hours-0-weekday": str(period.weekday),
            "hours-0-start_time": "09:40",
            "hours-0-end_time": "11:00",
        },
    )


def _block_unblock(client, rita, appointment, practitioner, day):
    verified_login(client, rita)
    slot = _slot(practitioner, local(day, 10, 40))
    client.post(reverse("reception_slot_block", args=[slot.pk]), {"reason": "Staff meeting"})
    return client.post(reverse("reception_slot_unblock", args=[slot.pk]))


def _manage_link_move(client, rita, appointment, practitioner, day):
    return client.post(
        f"/manage/{appointment.manage_token}/move/", {"slot": _slot(practitioner, local(day, 10, 20)).pk}
    )


@pytest.mark.parametrize(
    "change", [_move, _cancel, _time_off, _closure, _hours, _block_unblock, _manage_link_move], ids=lambda c: c.__name__
)
def test_the_nightly_command_and_a_whole_day_closure_run_after_every_kind_of_change(
    client, rita, patel_works, day, change
):
    """Ada booked online at 10:00 with an e-mail, then one kind of change; then the nightly run,
    a closure of the whole day, and the nightly run again: no error, nothing bookable that day."""
    result = appointment_book(
        slot_id=_slot(patel_works, local(day, 10)).pk,
        patient=PatientDetails(first_name="Ada", last_name="Lovelace", phone="07700 900123", email="ada@example.org"),
        now=timezone.now(),
    )
    result.appointment.manage_token = result.manage_token

    response = change(client, rita, result.appointment, patel_works, day)
    assert response.status_code == 302
    call_command("generate_slots", stdout=StringIO())
    verified_login(client, rita)
    response = client.post(
        reverse("reception_hours"),
        {"closure-starts_at": f"{day}T00:00", "closure-ends_at": f"{day + timedelta(days=1)}T00:00"},
    )
    assert response.status_code == 302
    call_command("generate_slots", stdout=StringIO())

    assert not Slot.objects.bookable(now=timezone.now(), start=local(day, 0), end=local(day, 23)).exists()
    assert OutboundMessage.objects.filter(appointment=result.appointment).exists()


def _admin_time_off(admin_client, practitioner, day):
    return admin_client.post(
        "/admin/bookings/timeoff/add/",
        {
            "practitioner": practitioner.pk,
            "starts_at_0": day.isoformat(),
            "starts_at_1": "08:00:00",
            "ends_at_0": day.isoformat(),
            "ends_at_1": "09:30:00",
            "reason": "Dentist",
        },
    )


def test_time_off_saved_in_the_admin_after_a_move_retires_the_old_time(admin_client, moved, patel_works, day):
    response = _admin_time_off(admin_client, patel_works, day)

    assert response.status_code == 302
    assert TimeOff.objects.count() == 1
    assert _slot(patel_works, local(day, 9)).state == Slot.State.RETIRED


def test_time_off_saved_in_the_admin_is_all_or_nothing(admin_client, patel_works, day, monkeypatch):
    def generation_fails(**kwargs):
        raise RuntimeError("generation failed")

    monkeypatch.setattr(schedule, "slots_generate", generation_fails)

    with pytest.raises(RuntimeError):
        _admin_time_off(admin_client, patel_works, day)

    assert not TimeOff.objects.exists()
