"""The HTTP API under ``/v1``: one module per resource, each with its own router, joined here."""

from fastapi import APIRouter

from web.api import books, gate, ingest

router = APIRouter(prefix="/v1")
router.include_router(gate.router)
router.include_router(ingest.router)
router.include_router(books.router)
