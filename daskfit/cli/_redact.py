"""Secrets (storage options: keys, tokens, passwords) never printed or saved.

Every leaf value of ``[data] storage_options`` and a password inside
``[data] path`` are registered when the configuration is parsed, so a
secret is its *parsed value*, whatever its TOML spelling (escapes, ``\\u``
sequences, multi-line strings). :func:`redact` replaces each in a text with
``***``, also where the text quotes it in another spelling: Python's
``repr`` (a backslash doubled), JSON, or percent-encoded in a URL. The run
log (a logging filter), the error line on stderr, metrics.json and the copy
of the configuration in the run directory (:func:`redacted_config_text`,
checked by parsing it back) all pass through it.

Secrets shorter than :data:`SHORT_SECRET` characters are redacted only as
whole tokens (not inside a longer word or number), so a 3-character
password is masked without turning every ``abc`` inside other words into
``***``.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from urllib.parse import quote

__all__ = ["MASK", "RedactFilter", "redact", "redacted_config_text", "register_secrets"]

MASK = "***"
#: Below this length a secret is masked only where it stands alone (a whole token).
SHORT_SECRET = 4
_SECRETS: set[str] = set()
_PATTERN: list = [None]   # compiled on first use after the secrets change


def register_secrets(options):
    """Remember every leaf value of ``options`` (a dict, list or scalar) as a secret.

    Strings of any length are secrets; numbers only from 4 digits on (ports
    and counts are not credentials, and masking ``1`` would garble every
    message); booleans and ``None`` never.
    """
    stack = [options]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
        elif isinstance(value, str):
            if value:
                _SECRETS.add(value)
                _PATTERN[0] = None
        elif value is not None and not isinstance(value, bool) and len(str(value)) >= 4:
            _SECRETS.add(str(value))
            _PATTERN[0] = None


def _spellings(secret):
    """The ways a text may quote ``secret``: as is, repr-, JSON- and URL-escaped."""
    forms = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1],
             json.dumps(secret, ensure_ascii=False)[1:-1], quote(secret, safe=""),
             quote(secret)}
    return {f for f in forms if f}


def _pattern():
    if _PATTERN[0] is None and _SECRETS:
        parts = []
        forms = {(form, len(secret) < SHORT_SECRET)
                 for secret in _SECRETS for form in _spellings(secret)}
        for form, short in sorted(forms, key=lambda f: len(f[0]), reverse=True):
            escaped = re.escape(form)
            parts.append(rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])" if short else escaped)
        _PATTERN[0] = re.compile("|".join(parts))
    return _PATTERN[0]


def redact(text):
    """``text`` with every registered secret (in any of its spellings) replaced by ``***``.

    Examples
    --------
    >>> register_secrets({"key": "hunter2-secret"})
    >>> redact("connect with key='hunter2-secret'")
    "connect with key='***'"
    """
    text = str(text)
    pattern = _pattern()
    return text if pattern is None else pattern.sub(MASK, text)


def _masked(value, secret=False):
    """A parsed TOML value with secrets masked: every leaf of a secret table, and any
    registered secret inside other strings."""
    if isinstance(value, dict):
        return {k: _masked(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, secret) for v in value]
    if secret and not isinstance(value, bool):
        return MASK
    return redact(value) if isinstance(value, str) else value


def masked_config(raw):
    """The parsed configuration ``raw`` with ``[data] storage_options`` and secrets masked."""
    out = _masked(raw)
    data = raw.get("data")
    if isinstance(data, dict) and "storage_options" in data:
        out["data"]["storage_options"] = _masked(data["storage_options"], secret=True)
    return out


def redacted_config_text(text):
    """The configuration file ``text`` to save in a run directory, without any secret.

    The file as written (comments kept) with secrets replaced, when parsing
    that back gives exactly the masked configuration. Otherwise (a secret
    spelled with escapes, ``\\u`` sequences, across lines of a multi-line
    string) the masked configuration is written out as TOML from its parsed
    values: no spelling of a secret can survive either way.
    """
    raw = tomllib.loads(text)
    expected = masked_config(raw)
    candidate = redact(text)
    try:
        if tomllib.loads(candidate) == expected:
            return candidate
    except tomllib.TOMLDecodeError:   # the mask landed inside TOML syntax
        pass
    return ("# Written by daskfit from the parsed configuration, credentials masked "
            "(comments are not kept).\n" + to_toml(expected))


def to_toml(document):
    """A TOML text for ``document`` (tables of scalars, lists and inline tables)."""
    lines = []
    scalars = {k: v for k, v in document.items() if not isinstance(v, dict)}
    for key, value in scalars.items():
        lines.append(f"{_key(key)} = {_value(value)}")
    for section, table in document.items():
        if isinstance(table, dict):
            lines.append(f"\n[{_key(section)}]")
            lines.extend(f"{_key(k)} = {_value(v)}" for k, v in table.items())
    return "\n".join(lines).lstrip("\n") + "\n"


def _key(key):
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)   # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


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
