"""Where each key of a TOML file is: line numbers for configuration errors.

Python's :mod:`tomllib` parses values but keeps no positions, so
:func:`key_lines` scans the text itself: table headers (``[model]``,
``[model.params]``), ``key = value`` lines (bare, quoted and dotted keys)
and the keys inside inline tables (``params = { alpha = 1.0 }``), skipping
strings (also multi-line ones), comments and arrays. That is all the TOML
a pipeline file uses, so a key's line is exact; a key the scan cannot place
falls back to its nearest placed parent (:func:`line_of`).

:func:`parse_recovering` parses a file with syntax errors as far as it can:
each bad line is reported and blanked, and the rest is parsed again, so one
typo does not hide the other problems of the file.
"""

from __future__ import annotations

import re
import tomllib

__all__ = ["MAX_SYNTAX_ERRORS", "key_lines", "line_of", "parse_recovering"]

#: Syntax errors reported before giving up on a file (each costs one more parse).
MAX_SYNTAX_ERRORS = 20
_BARE = re.compile(r"[A-Za-z0-9_-]+")
_POSITION = re.compile(r"\(at line (\d+), column \d+\)")
#: What a header that did not parse becomes: its keys go to a table nobody checks.
INVALID_TABLE = "__daskfit_invalid_line_{}__"


def parse_recovering(text):
    """Parse ``text``, blanking each line with a syntax error and parsing again.

    Returns
    -------
    document : dict or None
        The parsed document without the bad lines; ``None`` when an error
        could not be pinned to a line (an unterminated string at the end
        of the file) or there were more than :data:`MAX_SYNTAX_ERRORS`.
    errors : list of (int or None, str)
        Each syntax error's line (1-based) and :mod:`tomllib`'s message.
    """
    lines = text.split("\n")
    errors = []
    for _ in range(MAX_SYNTAX_ERRORS):
        try:
            return tomllib.loads("\n".join(lines)), errors
        except tomllib.TOMLDecodeError as exc:
            match = _POSITION.search(str(exc))
            line = int(match.group(1)) if match else None
            errors.append((line, str(exc)))
            if line is None or line > len(lines) or not lines[line - 1].strip():
                return None, errors   # blanking cannot help: stop here
            # A broken header's keys would land in the table above: give them their own.
            broken_header = lines[line - 1].lstrip().startswith("[")
            lines[line - 1] = f"[{INVALID_TABLE.format(line)}]" if broken_header else ""
    return None, errors


def invalid_tables(document):
    """The tables :func:`parse_recovering` made of broken headers (not the user's)."""
    return {name for name in document if re.fullmatch(INVALID_TABLE.format(r"\d+"), name)}


def line_of(lines, key):
    """The line of the dotted ``key`` in ``lines`` (from :func:`key_lines`), or of its
    nearest parent that has one; ``None`` when neither is in the file."""
    parts = key.split(".")
    while parts:
        line = lines.get(".".join(parts))
        if line is not None:
            return line
        parts.pop()
    return None


def key_lines(text):
    """``{dotted key: line}`` for every table header and key of the TOML ``text`` (1-based).

    A key given twice keeps its first line.
    """
    return _Scanner(text).run()


class _Scanner:
    """One pass over the text: a position, the current table and the open brackets."""

    def __init__(self, text):
        self.text, self.pos, self.line = text, 0, 1
        self.table = ()           # the path of the last [header]
        self.stack = []           # open '{' (with the inline table's path) and '['
        self.expect_key = True    # at the start of a top-level line, or after '{' / ','
        self.last = ()            # the path of the last key read
        self.found = {}

    def run(self):
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c == "\n":
                self.line += 1
                self.pos += 1
                if not self.stack:
                    self.expect_key = True
            elif c in " \t\r":
                self.pos += 1
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif self.expect_key and not self.stack and c == "[":
                self._header()
            elif self.expect_key and (not self.stack or self.stack[-1][0] == "{"):
                self._key()
            elif c in "\"'":
                self._skip_string()
            else:
                self._punctuation(c)
        return self.found

    def _record(self, path):
        if path:
            self.found.setdefault(".".join(path), self.line)

    def _header(self):
        double = self.text.startswith("[[", self.pos)
        self.pos += 2 if double else 1
        path = self._dotted("]")
        self.table = tuple(path)
        self._record(self.table)
        self.pos += 2 if double else 1
        self.expect_key = False

    def _key(self):
        path = self._dotted("=")
        if self.pos < len(self.text) and self.text[self.pos] == "=":
            self.pos += 1
        base = self.stack[-1][1] if self.stack else self.table
        self.last = (*base, *path)
        for depth in range(len(base) + 1, len(self.last) + 1):   # a.b = 1 also places a
            self._record(self.last[:depth])
        self.expect_key = False

    def _dotted(self, end):
        """Read a dotted key (bare or quoted parts) up to ``end``, not past the line."""
        parts, text = [], self.text
        while self.pos < len(text) and text[self.pos] not in (end, "\n"):
            c = text[self.pos]
            if c in "\"'":
                start = self.pos
                self._skip_string()
                parts.append(tomllib.loads(f"k = {text[start:self.pos]}")["k"]
                             if self._closed(start) else text[start + 1:self.pos])
            elif c in " \t.":
                self.pos += 1
            else:
                match = _BARE.match(text, self.pos)
                if not match:   # not a key (invalid TOML): give up on this line
                    break
                parts.append(match.group())
                self.pos = match.end()
        return parts

    def _closed(self, start):
        quote = self.text[start]
        return self.pos - start >= 2 and self.text[self.pos - 1] == quote

    def _skip_string(self):
        text, quote = self.text, self.text[self.pos]
        if text.startswith(quote * 3, self.pos):   # multi-line: may span lines
            end = text.find(quote * 3, self.pos + 3)
            end = len(text) if end < 0 else end + 3
            while end < len(text) and text[end] == quote:   # up to two quotes close it too
                end += 1
        else:
            end = self.pos + 1
            while end < len(text) and text[end] not in (quote, "\n"):
                end += 2 if quote == '"' and text[end] == "\\" else 1
            end = min(end + 1, len(text)) if end < len(text) and text[end] == quote else end
        self.line += text.count("\n", self.pos, end)
        self.pos = end

    def _punctuation(self, c):
        self.pos += 1
        if c == "{":
            self.stack.append(("{", self.last))
            self.expect_key = True
        elif c == "[":
            self.stack.append(("[", None))
        elif c in "}]":
            if self.stack:
                self.stack.pop()
        elif c == "," and self.stack and self.stack[-1][0] == "{":
            self.expect_key = True
