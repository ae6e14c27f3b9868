"""Secrets (storage options: keys, tokens, passwords) never printed or saved.

Every value of ``[data] storage_options`` is registered when the
configuration is read; :func:`redact` replaces each in a text with
``***``. The run log (a logging filter), the error line on stderr, the copy
of the configuration in the run directory and metrics.json all pass through
it, so a credential cannot leak through an exception message that quotes it.
"""

from __future__ import annotations

import logging

__all__ = ["MASK", "RedactFilter", "redact", "register_secrets"]

MASK = "***"
#: Values shorter than this are not treated as secrets (``true``, ``1``,
#: a region code): masking them would garble unrelated text.
MIN_SECRET_LENGTH = 4
_SECRETS: set[str] = set()


def register_secrets(options):
    """Remember every leaf value of ``options`` (a dict, possibly nested) as a secret."""
    stack = [options]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
        elif value is not None and not isinstance(value, bool):
            text = str(value)
            if len(text) >= MIN_SECRET_LENGTH:
                _SECRETS.add(text)


def redact(text):
    """``text`` with every registered secret replaced by ``***`` (longest first).

    Examples
    --------
    >>> register_secrets({"key": "hunter2-secret"})
    >>> redact("connect with key='hunter2-secret'")
    "connect with key='***'"
    """
    text = str(text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class RedactFilter(logging.Filter):
    """Redact a log record's message (and its traceback) before any handler formats it."""

    def filter(self, record):
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = redact(message), None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
