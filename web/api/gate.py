"""``POST /v1/gate/check`` and ``/v1/gate/record``: worker.gate for apps in any language.

The same :class:`worker.gate.Gate` as the Python API, so the decisions are the same: the body may
name the call's tenant, service, model, project and key, whose scope budgets are checked too.
App and admin tokens only.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from worker.gate import Gate
from web.api.schemas import Decision, GateCheck, GateRecord
from web.deps import require_app

router = APIRouter(prefix="/gate", tags=["gate"], dependencies=[Depends(require_app)])


def _gate(request: Request) -> Gate:
    gate = getattr(request.app.state, "gate", None)
    if gate is None:
        gate = request.app.state.gate = Gate(request.app.state.settings, request.app.state.engine)
    return gate


@router.post("/check", response_model=Decision, summary="May this account call an LLM now?")
def check(body: GateCheck, request: Request) -> dict:
    return _gate(request).check(body.account_id, **body.call()).as_dict()


@router.post("/record", response_model=Decision, summary="Count a call now (live rate limits); the new decision")
def record(body: GateRecord, request: Request) -> dict:
    return _gate(request).record(body.account_id, requests=body.requests, tokens=body.tokens,
                                 cost_usd=body.cost_usd, **body.call()).as_dict()
