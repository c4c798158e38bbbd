"""Phone numbers as people type them, and the one normalised form stored beside them and searched by.

The clinic is in the UK: a number written the national way (07700 900123, (020) 7946 0000) is a
UK number; +44 and 0044 are the same number written internationally. The normalised form is
E.164 (+447700900123). A number from abroad is accepted in international form (+33 1 23 45 67 89)
and stored as E.164 too; its length is checked, not its number plan.

No library: `phonenumbers` knows every country's plan, but this needs only the UK's shape and
E.164's, and its validity ranges would judge numbers the clinic never needs judged.
"""

from __future__ import annotations

import re
import unicodedata

# What people put between digits: any space (NFKC turns a pasted non-breaking space into a plain one),
# dots, hyphens and dashes, slashes, brackets.
_SEPARATORS = re.compile(r"[\s.\-\u2010-\u2015/()]")
# Everything a phone number may be written with; anything else (a letter, a comma) means it is not one.
_ALLOWED = re.compile(r"^\+?[\d\s.\-\u2010-\u2015/()]+$")
# "+44 (0)20 7946 0000": the national trunk zero some people write after the country code.
_TRUNK_ZERO = re.compile(r"^(\+|00)\s*44\s*\(0\)")

# UK national significant numbers (after +44) are 10 digits, a few 9 (some 01xxx areas, 0800 123456).
UK_NATIONAL_LENGTHS = (9, 10)
# E.164: at most 15 digits, country code included. Fewer than 8 is no reachable number from here.
E164_LENGTHS = range(8, 16)


def _tidy(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip()


def normalise_phone(raw: str) -> str | None:
    """The E.164 form of what was typed (+447700900123), or None if it is not a phone number.

    1. NFKC folds pasted oddities (non-breaking spaces, full-width digits) into plain ones.
    2. Only digits, a leading +, spaces, dots, hyphens, slashes and brackets are allowed.
    3. 0044 means +44; a leading 0 alone is a UK national number; "+44 (0)" and "+44 0" drop the zero.
    4. A UK number has 9 or 10 digits after 44 and no further leading 0; any other E.164 number
       has 8 to 15 digits in all.
    """
    text = _tidy(raw)
    if not text or len(text) > 40 or not _ALLOWED.match(text):
        return None
    text = _TRUNK_ZERO.sub(r"\g<1>44", text)
    compact = _SEPARATORS.sub("", text)
    if not compact.lstrip("+").isdigit() or not compact.lstrip("+").isascii():
        return None
    if compact.startswith("+"):
        international = compact[1:]
    elif compact.startswith("00"):
        international = compact[2:]
    elif compact.startswith("0"):
        international = "44" + compact[1:]
    else:
        # 7700 900123: without its 0 or +44 we cannot tell a UK number from a foreign one.
        return None
    if international.startswith("44"):
        # "+44 07700 900123" is written often enough: the trunk zero has no place after +44.
        national = international[2:].removeprefix("0")
        if national.startswith("0") or len(national) not in UK_NATIONAL_LENGTHS:
            return None
        international = "44" + national
    elif international.startswith("0") or len(international) not in E164_LENGTHS:
        return None
    return "+" + international


def display_phone(raw: str) -> str:
    """What was typed, tidied for display and dialling: plain single spaces, no pasted oddities."""
    return " ".join(_tidy(raw).split())


def phone_key(raw: str) -> str:
    """The value stored beside a number: its E.164 form, else (a row older than the validation)
    its digits, which never equal an E.164 form, so such a row is found only by its digits."""
    return normalise_phone(raw) or "".join(ch for ch in raw if ch.isascii() and ch.isdigit())


def phone_search(query: str) -> tuple[str, str] | None:
    """How reception's search looks a number up in the stored keys: (lookup, value), or None.

    A whole number matches its E.164 form exactly, however it is written. Part of one (at least
    four digits) matches the start of the key when it starts as a whole one would (0, +, 00), and
    anywhere in it otherwise (the last digits read out by a caller).
    """
    whole = normalise_phone(query)
    if whole:
        return "exact", whole
    text = _tidy(query)
    if not _ALLOWED.match(text):
        return None
    digits = _SEPARATORS.sub("", text).lstrip("+")
    if len(digits) < 4 or not digits.isascii():
        return None
    if text.startswith("+"):
        return "startswith", "+" + digits
    if digits.startswith("00"):
        return "startswith", "+" + digits[2:]
    if digits.startswith("0"):
        return "startswith", "+44" + digits[1:]
    return "contains", digits
