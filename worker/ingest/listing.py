"""Listing a source's files, naming the directories that could not be listed.

``pathlib``'s glob skips a directory it may not read (PermissionError) without a word, so a
source whose log directory lost its permissions looked idle, and each run said success. Here
every directory the pattern goes through is listed once more with ``os.scandir``, and each
one that raises is returned as an error line for the ingest output, the job and ``status``.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

_MAGIC = frozenset("*?[")


def source_files(pattern: str) -> tuple[list[Path], list[str]]:
    """The files matching ``pattern`` (relative to the working directory, or absolute), in a stable
    order, and one line for each directory on the way that could not be listed."""
    path = Path(pattern)
    paths = _glob_absolute(pattern) if path.is_absolute() else list(Path().glob(pattern))
    return sorted(p for p in paths if p.is_file()), unreadable_directories(pattern)


def unreadable_directories(pattern: str) -> list[str]:
    """``directory: reason`` for each directory the glob ``pattern`` lists that cannot be listed:
    its fixed prefix, each directory matching its directory part, and with ``**`` every one below."""
    parts = Path(pattern).parent.parts
    fixed = next((i for i, part in enumerate(parts) if _MAGIC & set(part)), len(parts))
    prefix = str(Path(*parts[:fixed])) if fixed else "."
    if fixed == len(parts):
        return _unlistable([prefix])
    if "**" in parts[fixed:]:
        errors: list[str] = []
        if not os.path.isdir(prefix):
            return []
        for _ in os.walk(prefix, onerror=lambda exc: errors.append(_line(exc.filename, exc))):
            pass
        return errors
    return _unlistable([prefix, *sorted(glob.glob(str(Path(pattern).parent)))])


def walk_errors(directory: Path) -> list[str]:
    """``directory: reason`` for each directory under ``directory`` (itself included) that cannot be listed."""
    errors: list[str] = []
    for _ in os.walk(directory, onerror=lambda exc: errors.append(_line(exc.filename, exc))):
        pass
    return errors


def _unlistable(directories: list[str]) -> list[str]:
    errors = []
    for directory in directories:
        if not os.path.isdir(directory):
            continue  # not there (yet): a source may name a directory created later
        try:
            with os.scandir(directory):
                pass
        except OSError as exc:
            errors.append(_line(directory, exc))
    return errors


def _line(directory: str, exc: OSError) -> str:
    return f"directory {directory}: cannot be listed ({exc.strerror or exc})"


def _glob_absolute(pattern: str) -> list[Path]:
    anchor = Path(pattern).anchor
    return list(Path(anchor).glob(str(Path(pattern).relative_to(anchor))))
