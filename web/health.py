"""``/healthz`` (the process answers) and ``/readyz`` (the database answers and its schema is current)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from worker import db
from web.deps import get_engine

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    detail: str | None = None


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(request: Request) -> JSONResponse:
    engine = get_engine(request)
    try:
        current = db.current_revision(engine)
    except Exception as exc:  # the database is down or refuses us: not ready (never the URL's password)
        detail = f"database {db.display_url(str(engine.url))} unreachable: {type(exc).__name__}"
        return JSONResponse(Health(status="unavailable", detail=detail).model_dump(), status_code=503)
    head = db.head_revision()
    if current != head:
        return JSONResponse(Health(status="unavailable", detail=f"schema at {current or 'none'}, needs {head}: "
                                                               f"run `tokentally migrate`").model_dump(),
                            status_code=503)
    return JSONResponse(Health(status="ok", detail=f"schema {head}").model_dump())
