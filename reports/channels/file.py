"""The file channel: each message written into a directory, so a new user sees what
would be sent (and the channel of last resort: it works when nothing else does).

A message becomes ``<dir>/<target>/<key>.eml`` (RFC 5322 with text and HTML parts,
as the email channel would send it), or ``<key>.json`` holding the Slack and webhook
payloads when it has no HTML. Files are written to a temporary name and renamed, so
a reader never sees half a message; a message sent again (a retry after a crash)
replaces its own file, so there is one copy.
"""

from __future__ import annotations

import mimetypes
import os
import re
from email.message import EmailMessage
from pathlib import Path

import orjson

from worker import clock
from worker.settings.channels import FileSettings

from reports.channels import ChannelError, Message

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# A content-id as the HTML writes it after "cid:" (RFC 2392): no spaces, brackets, quotes.
_CONTENT_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+(@[A-Za-z0-9.-]+)?")


class FileChannel:
    kind = "file"

    def __init__(self, directory: Path):
        self.directory = directory

    @classmethod
    def from_settings(cls, s: FileSettings) -> FileChannel:
        return cls(Path(s.dir))

    def __repr__(self) -> str:
        return f"FileChannel({str(self.directory)!r})"

    def send(self, target: str, message: Message) -> str:
        """``target``: a subdirectory name (e.g. "admins"), or "" for the directory itself."""
        folder = self.directory / _UNSAFE.sub("_", target).strip("._") if target else self.directory
        name = _UNSAFE.sub("_", message.key).strip("._")[:200] or "message"
        if message.html is not None or message.slack is None:
            path, body = folder / f"{name}.eml", render_email(message, to=target or "file").as_bytes()
        else:
            path = folder / f"{name}.json"
            body = orjson.dumps({"kind": message.kind, "key": message.key, "subject": message.subject,
                                 "text": message.text, "slack": message.slack, "data": message.data,
                                 "written_at": clock.now().isoformat()},
                                option=orjson.OPT_INDENT_2, default=str)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(body)
            os.replace(tmp, path)
        except OSError as exc:
            raise ChannelError(f"cannot write {path}: {exc.strerror}") from None
        return str(path)


def render_email(message: Message, *, to: str, sender: str = "tokentally@localhost") -> EmailMessage:
    """The email for a message: text part, HTML alternative, a Message-ID stable for its key.

    With inline images the HTML alternative becomes ``multipart/related``: the HTML, then
    each image with ``Content-ID: <cid>`` and ``Content-Disposition: inline``, read from its
    path now. An image that cannot be read is a permanent ChannelError naming the path.
    """
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = sender
    mail["To"] = to
    mail["Message-ID"] = message_id(message.key, sender)
    mail["X-Tokentally-Kind"] = message.kind
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
