"""Secrets inside URLs, hidden wherever a URL is shown (alert keys, logs, messages, the CLI).

A delivery target (``webhook:https://user:PASS@host/hook/TOKEN?token=...``) is a credential
as a whole: the far end's password, path tokens and query values all let anyone post to it.
:func:`target` is the one way a target is shown:

- a target that is not a URL (an email address, a Slack channel, a file subdirectory) is
  shown as it is;
- a URL keeps its scheme and host (and port); userinfo becomes ``***@``, a path other than
  ``/`` becomes ``/…``, every query value becomes ``***`` (the names stay), a fragment ``#…``;
- when anything was hidden, `` (#<8 hex>)`` follows: the first 8 hex digits of the SHA-256
  of the whole target, so two targets on one host stay apart in alert keys and lists, and the
  same target always reads the same. (32 bits tell targets apart; they do not let anyone
  recover a token of any real length.)

:func:`scrub` removes a target's secret parts from free text (an error a library raised may
quote the URL or its path). :func:`secret_params` masks the values of query parameters
whose names look secret (``password``, ``sslpassword``, ``token``, ``api_key``, ...), for
URLs that are otherwise shown whole: database URLs (``worker.db.display_url``).

Ground floor: imports nothing of tokentally.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote, urlsplit

MASK = "***"
SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|auth|cred|sig", re.IGNORECASE)
MIN_PIECE = 6  # shorter parts of a target are not scrubbed out of text (they would eat ordinary words)


def digest(text: str) -> str:
    """The short, stable fingerprint shown beside a redacted target."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def target(value: str) -> str:
    """``value`` (a channel's target) as it may be shown anywhere."""
    try:
        parts = urlsplit(value)
        host = parts.netloc.rpartition("@")[2]
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:  # not even a URL (an unclosed IPv6 bracket, a bad port): show nothing of it
        return f"{MASK} (#{digest(value)})"
    if not parts.scheme or not parts.netloc:
        return value
    netloc = f"{MASK}@{host}" if "@" in parts.netloc else host
    path = parts.path if parts.path in ("", "/") else "/…"
    shown = f"{parts.scheme}://{netloc}{path}"
    if parts.query:
        shown += "?" + _masked_query(parts.query, only_secret=False)
    if parts.fragment:
        shown += "#…"
    return shown if shown == value else f"{shown} (#{digest(value)})"


def scrub(text: str, *targets: str) -> str:
    """``text`` with the secret parts of each target replaced by ``***``: the whole URL, its
    path and query, and (when at least :data:`MIN_PIECE` characters long, so that ordinary
    words survive) the password, each path segment, each query value and the fragment; raw
    and percent-decoded."""
    whole: set[str] = set()
    pieces: set[str] = set()
    for value in targets:
        try:
            parts = urlsplit(value)
        except ValueError:
            whole.add(value)
            continue
        if not parts.scheme or not parts.netloc:
            continue
        whole.update((value, parts.query, "" if parts.path in ("", "/") else parts.path))
        userinfo = parts.netloc.rpartition("@")[0]
        pieces.add(userinfo.partition(":")[2])
        pieces.update(parts.path.split("/"))
        for item in parts.query.split("&"):
            name, eq, val = item.partition("=")
            pieces.add(val if eq else name)
        pieces.add(parts.fragment)
    found = {p for p in whole if len(p) >= 3} | {p for p in pieces if len(p) >= MIN_PIECE}
    found |= {unquote(p) for p in found}
    for piece in sorted(found, key=len, reverse=True):
        text = text.replace(piece, MASK)
    return text


def secret_params(url: str) -> str:
    """``url`` with the values of secret-looking query parameters (``?password=...``) masked."""
    base, question, query = url.partition("?")
    if not question:
        return url
    query, hash_, fragment = query.partition("#")
    return f"{base}?{_masked_query(query, only_secret=True)}{hash_}{fragment}"


def _masked_query(query: str, *, only_secret: bool) -> str:
    out = []
    for item in query.split("&"):
        name, eq, _ = item.partition("=")
        if not eq:  # a bare item may itself be the token
            out.append(item if only_secret and not SECRET_NAME.search(unquote(name)) else MASK)
        elif only_secret and not SECRET_NAME.search(unquote(name)):
            out.append(item)
        else:
            out.append(f"{name}={MASK}")
    return "&".join(out)
