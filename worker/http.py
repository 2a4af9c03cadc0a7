"""What the HTTP clients share: a connection failure said in a few words.

Ground floor: imports nothing of tokentally, so both the provider clients
(``worker.providers.http``) and the webhook channel (``reports.channels.webhook``)
use it.
"""

from __future__ import annotations

import requests


def connection_reason(exc: requests.ConnectionError) -> str:
    """The innermost cause's errno text or class name (``Connection refused``,
    ``NameResolutionError``); requests' own message holds the URL, path included."""
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    strerror = getattr(cause, "strerror", None)
    return strerror or type(cause).__name__
