"""Text from the data, made safe to show: it stays data wherever it is printed.

- :func:`shown`: for a terminal, a Slack message (``reports.messages.mrkdwn``): control
  characters (ESC sequences, newlines inside a cell, NUL) and the bidirectional
  overrides and isolates (U+202A-U+202E, U+2066-U+2069, which can make ``txt.exe``
  read as ``exe.txt``) become visible escapes such as ``\\x1b`` or ``\\u202e``;
  ``lines=True`` keeps newlines (a paragraph of text), escaping the rest.
- :func:`one_line`: for a header (an email subject): whitespace runs, CR and LF included,
  become one space (no header can be injected), then :func:`shown`.
- :func:`csv_safe`: a CSV cell that a spreadsheet would read as a formula (starting
  with ``=``, ``+``, ``-``, ``@``, tab or carriage return) gets a leading ``'``, as
  OWASP's "CSV Injection" page recommends; plain numbers are left as they are.

None changes what is stored: only what is shown.
"""

from __future__ import annotations

import re

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_UNSAFE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_BIDI}]")
_UNSAFE_IN_LINES = re.compile(f"[\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f{_BIDI}]")  # all but \n
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: str, *, lines: bool = False) -> str:
    """``text`` with control and bidi characters shown as escapes (a backslash is kept as it is);
    with ``lines``, newlines stay newlines."""
    unsafe = _UNSAFE_IN_LINES if lines else _UNSAFE
    return unsafe.sub(_escape, text) if unsafe.search(text) else text


def one_line(text: str) -> str:
    """``text`` as one header line: whitespace (CR, LF, tabs) collapsed to single spaces, the
    remaining control and bidi characters shown as escapes."""
    return shown(" ".join(text.split()))


def csv_safe(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet evaluates."""
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text
