"""What the HTTP clients share: a connection failure said in a few words, and no redirects.

Ground floor: imports nothing of tokentally, so the provider clients
(``worker.providers.http``), the webhook channel (``reports.channels.webhook``) and the
Slack channel (``reports.channels.slack``) use it.

No client follows a redirect: a 3xx would send the request, with its credentials (a bot
token, a signature), to wherever the far end points. ``requests`` callers pass
``allow_redirects=False``; urllib callers (the Slack SDK) open with :data:`NO_REDIRECTS`,
which turns a 3xx into an ``HTTPError`` carrying its status.
"""

from __future__ import annotations

import urllib.request

import requests


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        return None  # urllib then raises HTTPError(code): the caller sees the 3xx, nothing is re-sent


# An opener like urlopen's (default TLS verification) that never follows a redirect.
NO_REDIRECTS = urllib.request.build_opener(_RefuseRedirects)


def connection_reason(exc: requests.ConnectionError) -> str:
    """The innermost cause's errno text or class name (``Connection refused``,
    ``NameResolutionError``); requests' own message holds the URL, path included."""
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    strerror = getattr(cause, "strerror", None)
    return strerror or type(cause).__name__
