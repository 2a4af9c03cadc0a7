"""Serving a report version's files from the archive, and nothing else.

:func:`archive_file` gives the path of one of a version's files (``FILES`` and the manifest)
only when it lies inside ``[reports] archive_dir`` once resolved, and no part of the way from the
archive's root to the file is a symlink: a link planted in the archive never leads out of it
(nor to another version). The archive root itself may be a symlink (a mounted volume).
:func:`file_response` serves it with its type; report HTML gets the archive's own CSP (inline
styles, no script, sandboxed).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from fastapi.responses import FileResponse

from worker.settings import Settings
from reports.archive import FILES
from web.security import ARCHIVE_CSP

SERVED = (*FILES, "manifest.json")
TYPES = {".html": "text/html; charset=utf-8", ".csv": "text/csv; charset=utf-8",
         ".json": "application/json", ".png": "image/png"}


def archive_file(settings: Settings, report: Any, name: str) -> Path:
    """The file ``name`` of the report version (404 when it is not one of its files or is missing;
    403 when its path leaves the archive or goes through a symlink)."""
    if name not in SERVED:
        raise HTTPException(404, f"a report version has no file {name!r} (files: {', '.join(SERVED)})")
    root = Path(settings.reports.archive_dir).resolve()
    directory = Path(os.path.abspath(report.path))
    try:
        relative = directory.relative_to(Path(os.path.abspath(settings.reports.archive_dir)))
    except ValueError:
        try:
            relative = directory.relative_to(root)
        except ValueError:
            raise HTTPException(403, "the report's directory is outside the archive") from None
    candidate = root / relative / name
    if ".." in relative.parts or not _plain_path(root, candidate):
        raise HTTPException(403, "the report's file is outside the archive or behind a symlink")
    return candidate


def _plain_path(root: Path, candidate: Path) -> bool:
    """Whether every component below ``root`` exists and is no symlink, and the last is a regular file."""
    current = root
    for part in candidate.relative_to(root).parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except OSError:
            raise HTTPException(404, "the report's file is missing from the archive") from None
        if stat.S_ISLNK(mode):
            return False
    return stat.S_ISREG(mode) and current.resolve().is_relative_to(root)


def file_response(path: Path, download: bool = False) -> FileResponse:
    media = TYPES.get(path.suffix, "application/octet-stream")
    headers = {"content-security-policy": ARCHIVE_CSP, "cache-control": "private, no-store"}
    return FileResponse(path, media_type=media, headers=headers,
                        filename=path.name if download else None,
                        content_disposition_type="attachment" if download else "inline")
