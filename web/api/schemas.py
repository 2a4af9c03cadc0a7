"""The API's request and response bodies (pydantic): what /openapi.json documents.

Money is a decimal string in responses (never a binary float); identifiers refuse control
characters (PostgreSQL cannot store NUL) and are bounded by their column widths.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ID_PATTERN = r"^[^\x00-\x1f\x7f]*$"
AccountId = Field(None, max_length=200, pattern=ID_PATTERN,
                  description="The account as the ledger knows it; absent or null: unattributed (never limited)")


def _scope_field(what: str) -> Any:
    return Field(None, max_length=200, pattern=ID_PATTERN,
                 description=f"{what}: the call is checked against its scope budget too, if one is set")


class GateCall(BaseModel):
    """What a call says about itself: each is optional, and each names a scope whose budget is checked."""

    model_config = ConfigDict(extra="forbid")
    account_id: str | None = AccountId
    tenant_id: str | None = _scope_field("The tenant (else the account's stored tenant)")
    service: str | None = _scope_field("The service (feature) making the call")
    model: str | None = _scope_field("The model asked for")
    project_id: str | None = _scope_field("The project")
    api_key: str | None = _scope_field("The API key (or its alias)")

    def call(self) -> dict[str, str | None]:
        return {"tenant_id": self.tenant_id, "service": self.service, "model": self.model,
                "project_id": self.project_id, "api_key": self.api_key}


class GateCheck(GateCall):
    pass


class GateRecord(GateCall):
    requests: int = Field(1, ge=0, le=1_000_000, description="Calls to count (default 1)")
    tokens: int = Field(0, ge=0, le=10**12, description="Tokens the call used")
    cost_usd: Decimal = Field(Decimal(0), ge=0, le=10**6, max_digits=20, decimal_places=10,
                              description="What the call cost, in USD (a decimal string or number)")


class Decision(BaseModel):
    account_id: str
    tier: str | None
    scope: str | None = Field(None, description="The scope whose budget refused or is used up, e.g. tenant:school-a")
    can_call: bool
    reason: Literal["ok", "over_soft_limit", "budget_exhausted", "blocked", "rate_limited", "kill_switch"]
    detail: str
    remaining_requests: int | None
    remaining_tokens: int | None
    remaining_cost_usd: str | None
    reset_at: datetime | None


class Rejected(BaseModel):
    position: int = Field(description="The record's number in the body (1 = the first record or line)")
    reason: str


class IngestResult(BaseModel):
    """What was committed. Every record is accounted for: accepted, duplicate or rejected."""

    accepted: int
    duplicates: int = Field(description="Already in the books (sent before): not booked twice")
    rejected: int = Field(description="Quarantined with their reasons (`tokentally rejects list`)")
    unattributed: int
    unpriced: int
    attempts: int
    skipped: int = Field(description="Records inside another tool's record that are not LLM calls")
    rejects: list[Rejected]


class UsageRow(BaseModel):
    model_config = ConfigDict(extra="allow")  # the group's key is named after --by (day, model, account_id, ...)
    requests: int
    errors: int
    timeouts: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: str
    unpriced_requests: int


class Usage(BaseModel):
    date_from: date = Field(alias="from")
    date_to: date = Field(alias="to")
    by: str
    key: str = Field(description="The name of each row's group key")
    timezone: str
    tenant: str | None = Field(description="Only this tenant's usage (a tenant token)")
    rows: list[UsageRow]


class Window(BaseModel):
    kind: str
    period: str
    window_start: datetime
    reset_at: datetime
    used_requests: int
    limit_requests: int | None
    remaining_requests: int | None
    used_tokens: int
    limit_tokens: int | None
    remaining_tokens: int | None
    used_cost_usd: str
    limit_cost_usd: str | None
    remaining_cost_usd: str | None
    state: str
    blocked_until: datetime | None


class Limits(BaseModel):
    account_id: str
    tenant: str | None
    tier: str | None
    action: str | None
    decision: Decision
    windows: list[Window]


class AlertOut(BaseModel):
    id: int
    kind: str
    scope: str
    scope_id: str
    period: str
    severity: str
    state: str
    first_seen: datetime
    last_seen: datetime
    times_seen: int
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    payload: dict[str, Any]


class ReportOut(BaseModel):
    id: int
    kind: str
    period: str
    tenant: str | None
    version: int
    status: str
    first_day: date
    last_day: date
    generated_at: datetime
    cutoff: datetime
    ledger_rows: int
    requests: int | None
    cost_usd: str | None
    sent: int
    link: str | None = Field(description="A signed link to the version's report.html (when [web] public_url is set)")


class Status(BaseModel):
    model_config = ConfigDict(extra="allow")
    database: str
    schema_revision: str | None
    timezone: str
    kill_switch: dict[str, Any]
    counts: dict[str, int]
    sources: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
