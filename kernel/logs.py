"""Capabilities stay out of logs: the secrets carried in URL paths (unlock links, password-reset
and invitation tokens) are replaced by a marker wherever a log line would hold them — Django's
own request logging and the access log of gunicorn (see gunicorn.conf.py)."""

import logging
import re
from typing import Any

from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

# Each pattern keeps the path's shape and drops the secret part.
_SECRET_PATHS = [
    (re.compile(r"(/unlock/)[^/\s?\"]+"), r"\1[redacted]"),
    (re.compile(r"(/password-reset/)(?!sent/|done/)[^/\s?\"]+/[^/\s?\"]+"), r"\1[redacted]"),
    (re.compile(r"(/invitation/)[^/\s?\"]+/[^/\s?\"]+"), r"\1[redacted]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATHS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# Attributes Django's request logging attaches that would print a request's repr (its path,
# possibly holding a capability) or are no use on one line.
_DROPPED = {"request", "server_time"}


class JsonFormatter(BaseJsonFormatter):
    """One JSON object per line, for production logs. Strings are redacted like messages, and
    the request objects Django attaches to its own records are left out."""

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {
            key: redact(value) if isinstance(value, str) else value
            for key, value in log_data.items()
            if key not in _DROPPED
        }
