"""The HTTP API under ``/v1``: one module per resource, each with its own router, joined here."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
