import logging
import re

# Manage-link and calendar-feed tokens are passwords in a URL; e-mail addresses and
# phone numbers are patient data. None of them may reach a log line.
_REDACTIONS = [
    # Everything up to the next slash, space or query: a token can be mangled (quotes and all).
    (re.compile(r"(/(?:manage|calendar-feed)/)[^/\s?]+"), r"\1[redacted]"),
    # The waiting list's links (its entry's and an offer's), but not the lost-link page's name.
    (re.compile(r"(/waiting-list/(?:offer/)?)(?!lost-link(?:[/\s?]|$))[^/\s?]+"), r"\1[redacted]"),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "[email]"),
    (re.compile(r"(?<![\w/])(?:\+|0)\d[\d ()-]{7,}\d"), "[number]"),
    # Any other token-like run: 40+ URL-safe characters with a capital or a digit (our tokens are 43 random
    # ones; lowercase article slugs stay readable). Not "and": one token in about 1,400 has no digit (found in
    # a test run: an offer link in a "Conflict" line).
    (re.compile(r"(?<![\w-])(?=[\w-]*[A-Z0-9])[A-Za-z0-9_-]{40,}(?![\w-])"), "[redacted]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Redacts the message and any traceback text of every record passing through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class DatabaseOutageWithoutTracebackFilter(logging.Filter):
    """A request that met an unreachable database is an outage, not a bug: one line, no traceback.

    Without this, every 503 during a database restart writes a full traceback (Django logs
    each response of 500 and above with its exception).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from clinic.middleware import is_database_unavailable

        if record.exc_info and is_database_unavailable(record.exc_info[1]):
            record.msg = f"{record.getMessage()} (database unavailable: {type(record.exc_info[1]).__name__})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True
