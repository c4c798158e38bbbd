"""The online booking flow's state: three signed cookies, the double-click proof and the kept form.

The flow keeps its state in signed cookies (django.core.signing), not in URLs and not in a
database session: a patient never needs a session row, so the time page and the booking read
nothing for them but the schedule. The cookies are HttpOnly, Secure in production, SameSite=Lax,
sent only to /book/, and good for an hour (the signature's timestamp, whatever the browser keeps).

The protocol, step by step:
1. Safety check passed (views.booking_start): BOOKING_COOKIE is set. It holds the version of the
   questions answered (every answer "no": one "yes" stops at step 1), the article the patient came
   from, "browser" (a random secret of this browser, from which the booking's manage token is
   derived: models.manage_token_for_submission) and "pass" (a random id that one booking consumes
   server-side in services.appointment_book, so a copied or replayed cookie books nothing).
2. Time page and details form (views.booking_time, views.booking_details on GET): shown only with a
   valid BOOKING_COOKIE for the questions as they are asked now (`booking_state_or_none`).
3. A details form posted without a valid BOOKING_COOKIE (a second tab used the pass, or more than
   an hour on the form): what was typed is kept server-side in a KeptBookingForm row, behind a
   random key held in KEPT_FORM_COOKIE with the time chosen (`start_again_keeping_the_details`);
   the patient answers the safety check again and comes back to the form filled in, once
   (`take_kept_details` deletes the row as it reads it). The consent box is ticked again.
4. Booking (services.appointment_book): the form's hidden submission key makes a double click or a
   Back-and-Confirm find the first booking instead of making a second one.
5. The double-click proof (`confirmations_with_proof`): a booking that already existed is confirmed
   only to the browser that made it, proved by its browser secret deriving the booking's manage
   token: the same BOOKING_COOKIE (a double click whose second request never saw the first
   answer), or CONFIRMATIONS_COOKIE (sent again after Back). Anyone else gets "already booked"
   and learns nothing of the booking.
6. Confirmation (`confirmation_redirect`): BOOKING_COOKIE is deleted (the pass is used) and
   CONFIRMATIONS_COOKIE lists, newest last, each booking made in this browser with that browser
   secret: never the manage token itself (signed is not encrypted: anyone at the computer can read
   a cookie). The confirmation page derives the token again from the proof, the booking's
   submission key and SECRET_KEY (`confirmed_appointment`). A session cookie, so that closing the
   browser forgets it, and the page offers to forget it at once (a shared computer).
"""

import itertools
import json
import secrets
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.db import connection
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from bookings.forms import (
    SAFETY_QUESTIONS_VERSION,
    PatientDetailsForm,
    parse_database_id,
    parse_start_time,
    start_time_value,
)
from bookings.models import Appointment, KeptBookingForm, hash_token, manage_token_for_submission

BOOKING_COOKIE = "booking"
CONFIRMATIONS_COOKIE = "booking_confirmed"
KEPT_FORM_COOKIE = "booking_kept"
# What a patient typed that comes back after the safety check (the consent box is ticked again).
KEPT_FIELDS = ("first_name", "last_name", "email", "phone", "note")
PRUNE_KEPT_FORMS_EVERY = 100
_forms_kept = itertools.count(1)
FLOW_COOKIE_MAX_AGE = 3600
FLOW_COOKIE_PATH = "/book/"
CONFIRMATIONS_KEPT = 5


# -- The cookies --------------------------------------------------------------------------


def booking_flow_cookie_value(*, article: str = "") -> str:
    """The signed BOOKING_COOKIE of a patient who has just passed the safety check (step 1)."""
    # "browser": a random secret of this browser's booking, from which its manage token is derived.
    state = {
        "safety": SAFETY_QUESTIONS_VERSION,
        "article": article or "",
        "browser": secrets.token_urlsafe(16),
        "pass": secrets.token_urlsafe(16),
    }
    return signed(BOOKING_COOKIE, state)


def signed(name: str, value) -> str:
    return signing.dumps(value, salt=f"bookings.{name}")


def set_flow_cookie(response, name: str, value: str, *, session_only: bool = False) -> None:
    """Set one of the flow's cookies; SESSION_ONLY: no Max-Age, so it goes when the browser closes.

    Either way the signature's timestamp limits it to FLOW_COOKIE_MAX_AGE (flow_cookie).
    """
    response.set_cookie(
        name,
        value,
        max_age=None if session_only else FLOW_COOKIE_MAX_AGE,
        path=FLOW_COOKIE_PATH,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def flow_cookie(request, name: str):
    """The cookie's value, or None when it is missing, altered or older than an hour."""
    try:
        return signing.loads(request.COOKIES.get(name, ""), salt=f"bookings.{name}", max_age=FLOW_COOKIE_MAX_AGE)
    except (signing.BadSignature, ValueError):
        return None


def booking_state_or_none(request) -> dict | None:
    """The patient's progress, if they passed the safety check as it is asked now (within the hour)."""
    state = flow_cookie(request, BOOKING_COOKIE)
    if not isinstance(state, dict) or state.get("safety") != SAFETY_QUESTIONS_VERSION:
        return None
    if not isinstance(state.get("pass"), str) or not isinstance(state.get("browser"), str):
        return None
    return state


def start_again(request):
    messages.info(request, "Please answer the short safety check first: it takes a few seconds.")
    return redirect("booking_start")


# -- The kept form (step 3) ---------------------------------------------------------------


def start_again_keeping_the_details(request):
    """Back to the safety check with what the patient typed kept (never in the URL), to refill the form after it.

    1. A POST that repeats a booking this browser made (Back, then Confirm again) goes to its confirmation.
    2. Otherwise the posted fields are kept (keep_typed_details) and come back after the check.
    """
    earlier = booking_with_submission_key(request.POST.get("submission_key"))
    if earlier is not None and str(earlier.pk) in confirmations(request):
        messages.info(request, "This consultation is already booked: here it is. Nothing new was booked.")
        return confirmation_redirect(request, earlier.pk)
    response = redirect("booking_start")
    chosen = {"slot_id": parse_database_id(request.POST.get("slot")), "at": parse_start_time(request.POST.get("at"))}
    if not keep_typed_details(request, response, **chosen):
        return start_again(request)
    messages.info(
        request,
        "Your consultation is not booked yet: please answer the safety check again (it takes a few seconds). "
        "What you typed is kept and comes back after it.",
    )
    return response


def choose_another_time_keeping_the_details(request, *, query: str = ""):
    """ "Choose another time" on the details form: to the time page (QUERY: the week and practitioner the time
    was chosen from), with what was typed kept for the next form."""
    response = redirect(reverse("booking_time") + (f"?{query}" if query else ""))
    if keep_typed_details(request, response, slot_id=None):
        messages.info(request, "What you typed is kept: choose a time and it comes back.")
    return response


def keep_typed_details(request, response, *, slot_id: int | None, at: datetime | None = None) -> bool:
    """Keep the posted details in a KeptBookingForm row, behind a random key in a cookie set on RESPONSE,
    with the time chosen: SLOT_ID, or AT for "any practitioner".

    False (and nothing kept) when nothing was typed.
    """
    typed = {
        name: request.POST.get(name, "")[: PatientDetailsForm.base_fields[name].max_length] for name in KEPT_FIELDS
    }
    if not any(value.strip() for value in typed.values()):
        return False
    key = secrets.token_urlsafe(32)
    now = timezone.now()
    KeptBookingForm.objects.create(
        key_hash=hash_token(key), fields=typed, expires_at=now + timedelta(seconds=FLOW_COOKIE_MAX_AGE)
    )
    if next(_forms_kept) % PRUNE_KEPT_FORMS_EVERY == 0:
        KeptBookingForm.objects.filter(expires_at__lt=now).delete()
    chosen = {"key": key, "slot": slot_id, "at": start_time_value(at) if at else None}
    set_flow_cookie(response, KEPT_FORM_COOKIE, signed(KEPT_FORM_COOKIE, chosen))
    return True


def kept_form_choice(request) -> str | None:
    """The time the kept form was for, as the details page's query ("slot=12" or "at=..."), if a form is kept:
    the safety check goes back to it."""
    kept = flow_cookie(request, KEPT_FORM_COOKIE)
    if not isinstance(kept, dict):
        return None
    if slot_id := parse_database_id(kept.get("slot")):
        return f"slot={slot_id}"
    if at := parse_start_time(kept.get("at")):
        return f"at={start_time_value(at)}"
    return None


TAKE_KEPT_FORM_SQL = (
    f"DELETE FROM {KeptBookingForm._meta.db_table} WHERE key_hash = %s AND expires_at > %s RETURNING fields"
)


def take_kept_details(request, *, now: datetime) -> dict | None:
    """What the patient typed before the safety check was asked again, once (the row is deleted), or None."""
    kept = flow_cookie(request, KEPT_FORM_COOKIE)
    if not isinstance(kept, dict) or not isinstance(kept.get("key"), str):
        return None
    with connection.cursor() as cursor:
        cursor.execute(TAKE_KEPT_FORM_SQL, [hash_token(kept["key"]), now])
        row = cursor.fetchone()
    if row is None:
        return None
    # Django has the driver hand jsonb over as text (JSONField decodes it itself).
    fields = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    if not isinstance(fields, dict):
        return None
    return {name: str(fields.get(name, "")) for name in KEPT_FIELDS}


def booking_with_submission_key(value) -> Appointment | None:
    try:
        key = uuid.UUID(str(value))
    except ValueError:
        return None
    return Appointment.objects.filter(submission_key=key).order_by().first()


# -- The proof and the confirmation (steps 5 and 6) ---------------------------------------


def confirmations_with_proof(request, appointment, *, browser_secret: str) -> dict[str, str] | None:
    """This browser's confirmations with APPOINTMENT added, if this browser made it; None for anyone else.

    A repeated submission is confirmed only to the browser that made the booking: one whose
    confirmations cookie proves it (sent again after Back), or one with the same booking cookie,
    which derives the same token (a double click whose second request never received the first
    answer's cookie). A replay from another browser learns nothing of the booking.
    """
    known = confirmations(request)
    proof = browser_secret if proves(appointment, browser_secret) else None
    earlier_proof = known.pop(str(appointment.pk), None)
    if proof is None and earlier_proof and proves(appointment, earlier_proof):
        proof = earlier_proof
    if proof is None:
        return None
    known[str(appointment.pk)] = proof
    return known


def confirmation_redirect(request, appointment_pk: int, *, known: dict[str, str] | None = None):
    """To the confirmation page of a booking this browser made; the booking flow is over."""
    known = confirmations(request) if known is None else known
    # This booking last (the one the confirmation page shows), and only the newest few.
    proof = known.pop(str(appointment_pk))
    known = dict(list(known.items())[-(CONFIRMATIONS_KEPT - 1) :])
    known[str(appointment_pk)] = proof
    response = redirect("booking_confirmed")
    set_flow_cookie(response, CONFIRMATIONS_COOKIE, signed(CONFIRMATIONS_COOKIE, known), session_only=True)
    response.delete_cookie(BOOKING_COOKIE, path=FLOW_COOKIE_PATH)
    return response


def confirmations(request) -> dict[str, str]:
    """{appointment id: the secret of the browser that booked it}, newest last (see CONFIRMATIONS_COOKIE)."""
    value = flow_cookie(request, CONFIRMATIONS_COOKIE)
    if not isinstance(value, dict):
        return {}
    return {str(key): secret for key, secret in value.items() if isinstance(secret, str)}


def confirmed_appointment(request):
    """The last booking made in this browser (within the hour) and its manage token, or (None, None).

    The token is derived again from the browser secret the cookie holds; it must match the
    booking's stored hash, so a cookie naming another booking's id shows nothing.
    """
    known = confirmations(request)
    if not known:
        return None, None
    appointment_id, browser_secret = list(known.items())[-1]
    appointment_id = parse_database_id(appointment_id)
    appointment = (
        Appointment.objects.filter(pk=appointment_id).select_related("slot__practitioner").first()
        if appointment_id
        else None
    )
    if appointment is None or not proves(appointment, browser_secret):
        return None, None
    return appointment, manage_token_for_submission(appointment.submission_key, browser_secret)


def proves(appointment, browser_secret: str) -> bool:
    """Whether BROWSER_SECRET is that of the browser that booked APPOINTMENT: it derives its manage token."""
    if appointment.submission_key is None:
        return False
    token = manage_token_for_submission(appointment.submission_key, browser_secret)
    return constant_time_compare(hash_token(token), appointment.manage_token_hash)
