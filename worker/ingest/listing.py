"""Listing a source's files, naming the directories that could not be listed and the links not followed.

``pathlib``'s glob skips a directory it may not read (PermissionError) without a word, so a
source whose log directory lost its permissions looked idle, and each run said success. Here
every directory the pattern goes through is listed once more with ``os.scandir``, and each
one that raises is returned as an error line for the ingest output, the job and ``status``.

A file that resolves outside the source's directory (the pattern's fixed part: ``var/inbox``
for ``var/inbox/**/*.jsonl``) through a symlink, of its own or of a directory on the way, is
not read, and said in a warning line, unless the source says ``follow_symlinks = true``: a
password file linked into the inbox must not end up in the ledger or among the rejects.
Links that stay inside the directory are followed as before.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import NamedTuple

_MAGIC = frozenset("*?[")


class Listing(NamedTuple):
    files: list[Path]  # to read, in a stable order
    errors: list[str]  # directories that could not be listed: the run fails
    warnings: list[str]  # files not read: links leading outside the source's directory


def source_files(pattern: str, follow_symlinks: bool = False) -> Listing:
    """The files matching ``pattern`` (relative to the working directory, or absolute), in a stable
    order, one line for each directory on the way that could not be listed, and one for each file
    left out because it resolves outside the pattern's directory (unless ``follow_symlinks``)."""
    path = Path(pattern)
    paths = _glob_absolute(pattern) if path.is_absolute() else list(Path().glob(pattern))
    files, warnings = within(sorted(p for p in paths if p.is_file()), Path(_fixed_prefix(pattern)), follow_symlinks)
    return Listing(files, unreadable_directories(pattern), warnings)


def within(paths: list[Path], directory: Path, follow_symlinks: bool = False) -> tuple[list[Path], list[str]]:
    """``paths`` that resolve inside ``directory`` (all of them with ``follow_symlinks``), and a
    warning line for each one left out. Nothing of a file left out is opened."""
    if follow_symlinks:
        return paths, []
    base = os.path.realpath(directory)
    kept, warnings = [], []
    for path in paths:
        real = os.path.realpath(path)
        if real == base or os.path.commonpath((real, base)) == base:
            kept.append(path)
        else:
            warnings.append(f"{path}: {OUTSIDE.format(directory=directory)}")
    return kept, warnings


OUTSIDE = "a symlink leading outside {directory}: not read (the source's follow_symlinks = true reads it)"


def _split(pattern: str) -> tuple[tuple[str, ...], int]:
    """The parts of ``pattern``'s directory, and how many of them come before the first wildcard."""
    parts = Path(pattern).parent.parts
    return parts, next((i for i, part in enumerate(parts) if _MAGIC & set(part)), len(parts))


def _fixed_prefix(pattern: str) -> str:
    """The directory part of ``pattern`` before its first wildcard ("." when it starts with one)."""
    parts, fixed = _split(pattern)
    return str(Path(*parts[:fixed])) if fixed else "."


def unreadable_directories(pattern: str) -> list[str]:
    """``directory: reason`` for each directory the glob ``pattern`` lists that cannot be listed:
    its fixed prefix, each directory matching its directory part, and with ``**`` every one below."""
    parts, fixed = _split(pattern)
    prefix = _fixed_prefix(pattern)
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
