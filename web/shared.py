"""Signed report links (``/shared/reports/...``): one report version, without a login, until it expires.

The path carries the report id, its version, the expiry and the signature (``reports.links``);
anything altered, or an expired link, is 403, checked before the database is asked anything.
The files come from the archive only (``web.archive_files``).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path as PathParam, Request
from fastapi.responses import FileResponse
from sqlalchemy import select

from worker.models import Report
from web.archive_files import archive_file, file_response
from web.auth import verify_link
from web.deps import get_engine, get_key, get_settings

router = APIRouter(include_in_schema=False)


@router.get("/shared/reports/{report_id}/v{version}/{expires}/{signature}/{name}")
def shared_file(request: Request, report_id: int = PathParam(ge=1, le=2**62), version: int = PathParam(ge=1, le=2**31),
                expires: int = PathParam(ge=0, le=253_402_300_000), signature: str = PathParam(max_length=64),
                name: str = PathParam(max_length=40)) -> FileResponse:
    if not verify_link(get_key(request), report_id, version, expires, signature):
        raise HTTPException(403, "this report link is not valid: it was altered or has expired")
    with get_engine(request).connect() as conn:
        row = conn.execute(select(Report).where(Report.id == report_id)).first()
    if row is None or row.version != version:
        raise HTTPException(403, "this report link does not name an archived report version")
    return file_response(archive_file(get_settings(request), row, name), download=name != "report.html"
                         and name != "chart.png")
