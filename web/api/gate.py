"""``POST /v1/gate/check`` and ``/v1/gate/record``: worker.gate for apps in any language.

The same :class:`worker.gate.Gate` as the Python API, so the decisions are the same: the body may
name the call's tenant, service, model, project and key, whose scope budgets are checked too.
App and admin tokens only.

A check runs on the event loop, not in the threadpool: it is one indexed read that does not wait
for writers (PostgreSQL's snapshots; SQLite's WAL, whose readers go on while the writer writes),
on one pooled connection at a time, so it holds the loop for about one round trip (0.3 ms),
where the hop to a thread and back cost the server about 0.5 ms of CPU per request
(``tokentally bench gate --rps``). What it does not bound: a database that stops answering
holds this worker's loop (every request it serves) until the connection fails, as it would
hold the threadpool's 16 threads. A record writes in a transaction (SQLite's write lock may be
waited for): it stays in the threadpool.
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
async def check(body: GateCheck, request: Request) -> dict:  # on the loop: see the module's docstring
    return _gate(request).check(body.account_id, **body.call()).as_dict()


@router.post("/record", response_model=Decision, summary="Count a call now (live rate limits); the new decision")
def record(body: GateRecord, request: Request) -> dict:
    return _gate(request).record(body.account_id, requests=body.requests, tokens=body.tokens,
                                 cost_usd=body.cost_usd, **body.call()).as_dict()
