"""Small text filters for the public pages."""

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()

# Emergency numbers (999, 111, 112) and phone numbers written with digits and single spaces.
PHONE_NUMBER = re.compile(r"(?<![\w+])(999|111|112|0\d{2,4}(?: ?\d{3,4}){2})(?!\w)")


@register.filter
def phone_links(text) -> str:
    """TEXT (escaped) with its phone numbers as tap-to-call links: on a phone, "Call 999" should be one tap."""
    escaped = escape(str(text))
    return mark_safe(  # noqa: S308 - the text was escaped above; the links hold only the digits it matched
        PHONE_NUMBER.sub(lambda m: f'<a href="tel:{m.group(1).replace(" ", "")}">{m.group(1)}</a>', escaped)
    )
