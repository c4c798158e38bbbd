"""Real threads, real PostgreSQL: the slot lock and the partial unique constraint hold."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.utils import timezone

from bookings.models import Appointment
from bookings.services import PatientDetails, SlotUnavailable, appointment_book
from tests.helpers import details_form, local, make_slot, pass_safety_check, run_at_once

PATIENTS = 20


@pytest.mark.django_db(transaction=True)
def test_twenty_patients_confirm_the_same_slot_at_once_and_exactly_one_gets_it(dr_patel):
    slot = make_slot(dr_patel, local(3, 10))
    clients, forms = [], []
    for index in range(PATIENTS):
        # Twenty patients, twenty addresses: the per-address rate limit is not what is tested here.
        client = Client(REMOTE_ADDR=f"192.0.2.{index + 1}")
        pass_safety_check(client)
        forms.append(details_form(client, slot) | {"first_name": f"Patient {chr(ord('A') + index)}"})
        clients.append(client)

    responses = run_at_once(PATIENTS, lambda i: clients[i].post("/book/details/", forms[i]))

    statuses = sorted(getattr(response, "status_code", repr(response)) for response in responses)
    assert statuses == [302] + [409] * (PATIENTS - 1), statuses
    losers = [response for response in responses if response.status_code == 409]
    assert all(b"that time has just been taken" in response.content for response in losers)
    assert Appointment.objects.live().filter(slot=slot).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_service_lets_one_of_twenty_threads_book_a_slot(dr_patel):
    slot = make_slot(dr_patel, local(3, 11))
    now = timezone.now()

    def book(index):
        return appointment_book(slot_id=slot.pk, patient=PatientDetails(f"P{index}", "X", "07700 900123"), now=now)

    results = run_at_once(PATIENTS, book)
    assert sum(1 for result in results if not isinstance(result, Exception)) == 1
    assert all(isinstance(result, SlotUnavailable) for result in results if isinstance(result, Exception))
    assert Appointment.objects.filter(slot=slot).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_a_second_live_appointment_even_without_the_service(dr_patel):
    slot = make_slot(dr_patel, local(3, 12))
    appointment_book(slot_id=slot.pk, patient=PatientDetails("A", "B", "07700 900123"), now=timezone.now())
    with pytest.raises(IntegrityError) as error, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bookings_appointment (slot_id, status, source, first_name, last_name, email, phone, note,"
            " safety_answers, privacy_notice_version, manage_token_hash, sequence, created_at, updated_at,"
            " cancel_reason)"
            " VALUES (%s, 'booked', 'online', 'M', 'X', '', '1', '', '{}', '', 'h2', 0, now(), now(), '')",
            [slot.pk],
        )
    assert error.value.__cause__.diag.constraint_name == "appointment_one_live_per_slot"


@pytest.mark.django_db(transaction=True)
def test_a_double_click_racing_itself_makes_one_booking_and_both_clicks_see_it(dr_patel):
    import uuid

    slot = make_slot(dr_patel, local(3, 13))
    key = uuid.uuid4()
    now = timezone.now()

    def click(index):
        return appointment_book(
            slot_id=slot.pk, patient=PatientDetails("Pat", "X", "07700 900123"), now=now, submission_key=key
        )

    results = run_at_once(8, click)
    assert not [result for result in results if isinstance(result, Exception)], results
    assert {result.appointment.pk for result in results} == {Appointment.objects.get().pk}
    assert sum(1 for result in results if not result.replayed) == 1


@pytest.mark.django_db(transaction=True)
def test_one_safety_check_pass_copied_to_ten_browsers_books_once_when_they_all_confirm_at_once(dr_patel):
    from bookings.models import UsedSafetyCheckPass

    slots = [make_slot(dr_patel, local(4 + index // 3, 9, 20 * (index % 3))) for index in range(10)]
    original = Client()
    pass_safety_check(original)
    copied = {name: morsel.value for name, morsel in original.cookies.items()}
    clients, forms = [], []
    for index, slot in enumerate(slots):
        # Ten addresses and ten sets of details: only the pass is shared.
        client = Client(REMOTE_ADDR=f"198.51.100.{index + 1}")
        client.cookies.load(copied)
        forms.append(
            details_form(client, slot)
            | {"email": f"copy{index}@example.net", "phone": f"07700 9003{index:02d}", "first_name": "Mallory"}
        )
        clients.append(client)

    responses = run_at_once(len(slots), lambda i: clients[i].post("/book/details/", forms[i]))

    locations = sorted(
        response["Location"] if hasattr(response, "status_code") else repr(response) for response in responses
    )
    assert locations == ["/book/"] * 9 + ["/book/confirmed/"], locations
    assert Appointment.objects.count() == 1
    assert UsedSafetyCheckPass.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_ten_bookings_for_one_e_mail_address_from_ten_addresses_at_once_make_at_most_the_limit(dr_patel, settings):
    slots = [make_slot(dr_patel, local(4 + index // 3, 14, 20 * (index % 3))) for index in range(10)]
    clients, forms = [], []
    for index, slot in enumerate(slots):
        client = Client(REMOTE_ADDR=f"203.0.113.{index + 1}")
        pass_safety_check(client)
        forms.append(details_form(client, slot) | {"phone": f"07700 9004{index:02d}"})
        clients.append(client)

    responses = run_at_once(len(slots), lambda i: clients[i].post("/book/details/", forms[i]))

    statuses = sorted(getattr(response, "status_code", repr(response)) for response in responses)
    assert statuses == [302] * settings.BOOKING_MAX_LIVE_PER_CONTACT + [409] * (
        10 - settings.BOOKING_MAX_LIVE_PER_CONTACT
    )
    assert Appointment.objects.count() == settings.BOOKING_MAX_LIVE_PER_CONTACT
