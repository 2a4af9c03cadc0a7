"""MIME building: a :class:`~reports.messages.Message` as an RFC 5322 email.

Used by the email channel (what it sends over SMTP) and the file channel (the
``.eml`` it writes), so both produce the same bytes for the same message.

Invariants: the Message-ID is derived from the message key only (a resend after a
crash is recognisably the same mail); inline images are read from disk when the mail
is built, and an image that cannot be used is a permanent ChannelError (a retry
would read the same path).
"""

from __future__ import annotations

import mimetypes
import re
from email.message import EmailMessage
from pathlib import Path

from worker.text import one_line

from reports.channels import ChannelError
from reports.messages import Message

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# A content-id as the HTML writes it after "cid:" (RFC 2392): no spaces, brackets, quotes.
_CONTENT_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+(@[A-Za-z0-9.-]+)?")


def render_email(message: Message, *, to: str, sender: str = "tokentally@localhost") -> EmailMessage:
    """The email for a message: text part, HTML alternative, a Message-ID stable for its key.

    With inline images the HTML alternative becomes ``multipart/related``: the HTML, then
    each image with ``Content-ID: <cid>`` and ``Content-Disposition: inline``, read from its
    path now. An image that cannot be read is a permanent ChannelError naming the path.
    The message's attachments (a grouped alert's CSV) follow as ``multipart/mixed`` parts.
    """
    mail = EmailMessage()
    mail["Subject"] = one_line(message.subject)  # one line whatever made the message: no header injected
    mail["From"] = sender
    mail["To"] = to
    mail["Message-ID"] = message_id(message.key, sender)
    mail["X-Tokentally-Kind"] = one_line(message.kind)
    mail.set_content(message.text)
    if message.html is not None:
        mail.add_alternative(message.html, subtype="html")
    if message.inline:
        html_part = mail.get_body(("html",))
        if html_part is None:
            raise ChannelError(f"message {message.key!r}: inline images but no HTML part to show them",
                               permanent=True)
        for cid, path in message.inline.items():
            maintype, subtype, data = _inline_image(cid, Path(path))
            html_part.add_related(data, maintype=maintype, subtype=subtype, cid=f"<{cid}>",
                                  disposition="inline", filename=Path(path).name)
    for name, content in message.attachments.items():
        maintype, _, subtype = (mimetypes.guess_type(name)[0] or "application/octet-stream").partition("/")
        mail.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return mail


def _inline_image(cid: str, path: Path) -> tuple[str, str, bytes]:
    """(maintype, subtype, bytes) of one inline image; a bad content-id, a file that is not
    an image or cannot be read is permanent (a retry reads the same path)."""
    if not _CONTENT_ID.fullmatch(cid):
        raise ChannelError(f"inline image: not a usable content-id: {cid!r}", permanent=True)
    kind = mimetypes.guess_type(path.name)[0] or "image/png"
    maintype, _, subtype = kind.partition("/")
    if maintype != "image":
        raise ChannelError(f"inline image {cid!r}: {path} is not an image ({kind})", permanent=True)
    try:
        return maintype, subtype, path.read_bytes()
    except OSError as exc:
        raise ChannelError(f"inline image {cid!r}: cannot read {path}: {exc.strerror}", permanent=True) from None


def message_id(key: str, sender: str) -> str:
    """Stable per logical message, so a resend after a crash is recognisably the same mail."""
    domain = sender.rpartition("@")[2] or "localhost"
    return f"<{_UNSAFE.sub('.', key).strip('.')}@{domain}>"
