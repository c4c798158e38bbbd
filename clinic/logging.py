import logging
import re

# Manage-link and calendar-feed tokens are passwords in a URL; e-mail addresses and
# phone numbers are patient data. None of them may reach a log line.
_REDACTIONS = [
    (re.compile(r"(/(?:manage|calendar-feed)/)[^/\s\"'?]+"), r"\1[redacted]"),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "[email]"),
    (re.compile(r"(?<![\w/])(?:\+|0)\d[\d ()-]{7,}\d"), "[number]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
