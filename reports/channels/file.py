"""The file channel: each message written into a directory, so a new user sees what
would be sent (and the channel of last resort: it works when nothing else does).

A message becomes ``<dir>/<target>/<key>.eml`` (RFC 5322 with text and HTML parts,
as the email channel would send it), or ``<key>.json`` holding the Slack and webhook
payloads when it has no HTML. A message's attachments (a grouped alert's CSV) are written
beside it as ``<key>-<file name>``. Files are written to a temporary name and renamed, so
a reader never sees half a message; a message sent again (a retry after a crash)
replaces its own file, so there is one copy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import orjson

from worker import clock
from worker.settings.channels import FileSettings

from reports.channels import ChannelError
from reports.channels.mime import render_email
from reports.messages import Message

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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
        files = [(folder / f"{name}-{_UNSAFE.sub('_', filename).strip('._')[:100]}", content)
                 for filename, content in message.attachments.items()]  # beside the message
        for target_path, content in [*files, (path, body)]:  # the message last: once it is there, all is
            try:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = target_path.with_suffix(target_path.suffix + ".tmp")
                tmp.write_bytes(content)
                os.replace(tmp, target_path)
            except OSError as exc:
                raise ChannelError(f"cannot write {target_path}: {exc.strerror}") from None
        return str(path)
