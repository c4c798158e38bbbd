"""Pressing Enter in a field of the details form books the chosen time: the form's first submit button (the one
a browser's implicit submission clicks) is "Confirm booking".

Found by hand: on the "Sorry, that time has just been taken" page, Enter in a field sent "See all free times"
(the first submit button, above the fields), leaving the page instead of booking the time ticked.
"""

from html.parser import HTMLParser

import pytest

from tests.helpers import details_form, local, make_slot, pass_safety_check, patient_books

pytestmark = pytest.mark.django_db


class _SubmitButtons(HTMLParser):
    """The submit buttons whose form owner is the form with FORM_ID, in tree order (HTML's "default button")."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.buttons, self.text_of = form_id, False, [], None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.inside = attributes.get("id") == self.form_id
        is_submit = (tag == "button" and attributes.get("type", "submit") == "submit") or (
            tag == "input" and attributes.get("type") in ("submit", "image")
        )
        owned = attributes["form"] == self.form_id if "form" in attributes else self.inside
        if is_submit and owned:
            self.buttons.append(attributes)
            self.text_of = attributes if tag == "button" else None

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        if tag == "button":
            self.text_of = None

    def handle_data(self, data):
        if self.text_of is not None:
            self.text_of["text"] = self.text_of.get("text", "") + data


def default_button(html: str) -> dict:
    parser = _SubmitButtons("details-form")
    parser.feed(html)
    assert parser.buttons, "the details form has no submit button"
    return parser.buttons[0]


def test_enter_on_the_just_taken_page_books_the_time_ticked(client, dr_patel):
    taken, free = make_slot(dr_patel, local(3, 9)), make_slot(dr_patel, local(3, 10))
    patient_books(taken)
    pass_safety_check(client)

    response = client.post("/book/details/", {**details_form(client, free), "slot": taken.pk})

    assert response.status_code == 409
    html = response.content.decode()
    assert "See all free times" in html
    button = default_button(html)
    assert "choose_another_time" not in button.get("name", "")
    assert button["text"].strip() == "Confirm booking"


def test_enter_on_the_details_form_books_the_chosen_time(client, dr_patel):
    free = make_slot(dr_patel, local(3, 10))
    pass_safety_check(client)

    html = client.get(f"/book/details/?slot={free.pk}").content.decode()

    assert "Choose another time" in html
    assert default_button(html)["text"].strip() == "Confirm booking"
