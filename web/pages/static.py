"""The console's stylesheet (and any other file in ``web/static/``), shipped in the package.

Only the files that are in that directory when the process starts are served, by exact
name: nothing is looked up from the request path, so no path leads out of it.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

STATIC = Path(__file__).resolve().parent.parent / "static"
FILES = {p.name: p for p in STATIC.iterdir() if p.is_file()} if STATIC.is_dir() else {}

router = APIRouter()


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    path = FILES.get(name)
    if path is None:
        raise HTTPException(404, "no such file")
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(path.read_bytes(), media_type=media, headers={"Cache-Control": "public, max-age=3600"})
