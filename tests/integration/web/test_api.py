"""The /v1 API: the gate's decisions, reading the books, and who may read what."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from freezegun import freeze_time

from worker import clock
from worker.alerts.state import raise_alert
from worker.gate import Gate
from worker.limits.killswitch import trip
from reports.archive import archive
from reports.periods import period_containing
from tests.helpers import ingest, record
from web.auth import create_token, revoke_token
from tests.integration.web.conftest import add_account

TIERS = """
default_tier = "small"
[tiers.small]
daily_tokens = 1000
requests_per_minute = 2
action = "block"
"""


def same_decision(shown: dict, decision: dict) -> bool:
    """The API's JSON and worker.gate's as_dict() say the same (times compared as times)."""
    def parsed(d: dict) -> dict:
        return {**d, "reset_at": d["reset_at"] and datetime.fromisoformat(d["reset_at"].replace("Z", "+00:00"))}

    return parsed(shown) == parsed(decision)


def test_gate_check_and_record_give_the_decisions_of_worker_gate(make_web) -> None:
    web = make_web(TIERS)
    app = web.auth("app")
    with freeze_time("2026-12-01 12:00:05", tick=True):  # the calls fall in one minute's window
        gate_calls(web, app)


def gate_calls(web, app: dict) -> None:
    first = web.client.post("/v1/gate/check", json={"account_id": "u1"}, headers=app)
    assert first.status_code == 200
    assert same_decision(first.json(), Gate(web.settings, web.engine).check("u1").as_dict())
    assert first.json()["can_call"] is True and first.json()["remaining_tokens"] == 1000

    for _ in range(2):
        counted = web.client.post("/v1/gate/record", json={"account_id": "u1", "tokens": 300, "cost_usd": "0.01"},
                                  headers=app)
        assert counted.status_code == 200
    after = counted.json()
    assert after["can_call"] is False and after["reason"] == "rate_limited"
    assert same_decision(after, Gate(web.settings, web.engine).check("u1").as_dict())
    assert web.client.post("/v1/gate/check", json={}, headers=app).json()["account_id"] == "(unattributed)"


def test_the_kill_switch_refuses_every_call_at_the_gate(web) -> None:
    with web.engine.begin() as conn:
        trip(conn, clock.now(), period="2026-12-01", by="operator:test", reason="runaway spend")
    decision = web.client.post("/v1/gate/check", json={"account_id": "u1"}, headers=web.auth("admin")).json()
    assert decision["can_call"] is False and decision["reason"] == "kill_switch"
    assert "runaway spend" in decision["detail"]


def test_gate_bodies_are_checked_422_not_500(web) -> None:
    app = web.auth("app")
    for body in ({"account_id": "a\x00b"}, {"account_id": "x" * 201}, {"tokens": -1}, {"cost_usd": "NaN"},
                 {"unknown": 1}, {"requests": 10**9}):
        path = "/v1/gate/check" if set(body) <= {"account_id", "unknown"} else "/v1/gate/record"
        assert web.client.post(path, json=body, headers=app).status_code == 422, body


def test_no_token_is_401_and_a_wrong_one_too(web) -> None:
    for method, path in (("post", "/v1/gate/check"), ("get", "/v1/usage?from=2026-11-01&to=2026-11-02"),
                         ("get", "/v1/status"), ("get", "/v1/alerts"), ("get", "/v1/reports"),
                         ("get", "/v1/limits/u1"), ("post", "/v1/events")):
        assert getattr(web.client, method)(path).status_code == 401, path
        response = getattr(web.client, method)(path, headers={"Authorization": "Bearer tt_not-a-token"})
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer", path


def test_an_app_token_uses_the_gate_but_cannot_read_the_books(web) -> None:
    app = web.auth("app")
    assert web.client.post("/v1/gate/check", json={"account_id": "u1"}, headers=app).status_code == 200
    for path in ("/v1/usage?from=2026-11-01&to=2026-11-02", "/v1/status", "/v1/alerts", "/v1/reports",
                 "/v1/limits/u1"):
        assert web.client.get(path, headers=app).status_code == 403, path


def test_readers_cannot_use_the_gate_or_send_records(web) -> None:
    for scope in ("auditor", "tenant:t1"):
        headers = web.auth(scope)
        assert web.client.post("/v1/gate/check", json={}, headers=headers).status_code == 403
        assert web.client.post("/v1/events", content=b"[]", headers=headers).status_code == 403


def test_usage_is_the_cli_usage_and_a_tenant_sees_only_its_own(web, tmp_path: Path, cli) -> None:
    day = clock.now() - timedelta(days=1)
    ingest(web.settings, web.engine, tmp_path, [
        record(day, account="a1", tenant="t1", prompt=100, completion=10),
        record(day, account="a2", tenant="t2", prompt=2000, completion=20),
    ])
    first = last = day.date().isoformat()
    url = f"/v1/usage?from={first}&to={last}&by=tenant"
    everything = web.client.get(url, headers=web.auth("auditor")).json()
    assert {r["tenant_id"]: r["total_tokens"] for r in everything["rows"]} == {"t1": 110, "t2": 2020}
    shown = cli("usage", "--from", first, "--to", last, "--by", "tenant", "--format", "json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout) == everything["rows"]

    own = web.client.get(url.replace("by=tenant", "by=account"), headers=web.auth("tenant:t1")).json()
    assert own["tenant"] == "t1" and [r["account_id"] for r in own["rows"]] == ["a1"]
    assert web.client.get(f"/v1/usage?from={last}&to={first}&by=nope", headers=web.auth("admin")).status_code == 422


def test_limits_show_an_account_and_hide_another_tenants(make_web) -> None:
    web = make_web(TIERS)
    add_account(web.engine, "a1", "t1")
    add_account(web.engine, "a2", "t2")
    shown = web.client.get("/v1/limits/a1", headers=web.auth("tenant:t1"))
    assert shown.status_code == 200
    body = shown.json()
    assert body["tier"] == "small" and body["tenant"] == "t1" and body["decision"]["can_call"] is True
    assert {"minute", "day"} <= {w["kind"] for w in body["windows"]}
    assert web.client.get("/v1/limits/a2", headers=web.auth("tenant:t1")).status_code == 404
    assert web.client.get("/v1/limits/a2", headers=web.auth("admin")).json()["tenant"] == "t2"


def test_alerts_of_a_tenant_are_its_tenants_and_its_accounts(web) -> None:
    add_account(web.engine, "a1", "t1")
    add_account(web.engine, "a2", "t2")
    with web.engine.begin() as conn:
        raise_alert(conn, web.settings, kind="budget.account", scope="account", scope_id="a1", period="2026-12-01")
        raise_alert(conn, web.settings, kind="budget.account", scope="account", scope_id="a2", period="2026-12-01")
        raise_alert(conn, web.settings, kind="budget.system", scope="system", period="2026-12-01")
    every = web.client.get("/v1/alerts", headers=web.auth("auditor")).json()
    assert sorted(a["scope_id"] for a in every) == ["", "a1", "a2"]
    own = web.client.get("/v1/alerts", headers=web.auth("tenant:t1")).json()
    assert [a["scope_id"] for a in own] == ["a1"]
    assert web.client.get("/v1/alerts?state=resolved", headers=web.auth("admin")).json() == []


def test_reports_of_a_tenant_are_only_its_own(make_web, tmp_path: Path) -> None:
    web = make_web(f'[reports]\narchive_dir = "{tmp_path / "archive"}"\n[reports.tenants]\n"t1" = ["file:t1"]\n'
                   f'"t2" = ["file:t2"]\n')
    period = period_containing("daily", clock.now().date() - timedelta(days=1))
    for tenant in (None, "t1", "t2"):
        archive(web.engine, web.settings, period, tenant=tenant)
    every = web.client.get("/v1/reports", headers=web.auth("auditor")).json()
    assert sorted(r["tenant"] or "" for r in every) == ["", "t1", "t2"]
    assert all(r["link"] is None for r in every)  # no public_url: no signed links
    own = web.client.get("/v1/reports", headers=web.auth("tenant:t1")).json()
    assert [r["tenant"] for r in own] == ["t1"]


def test_status_is_for_admins_and_auditors(web) -> None:
    status = web.client.get("/v1/status", headers=web.auth("auditor"))
    assert status.status_code == 200 and status.json()["kill_switch"] == {"active": False}
    assert "counts" in status.json() and status.json()["schema_revision"]
    assert web.client.get("/v1/status", headers=web.auth("tenant:t1")).status_code == 403


def test_a_revoked_or_expired_token_is_401(web) -> None:
    token_id, secret = create_token(web.engine, "short", "admin")
    headers = {"Authorization": f"Bearer {secret}"}
    assert web.client.get("/v1/alerts", headers=headers).status_code == 200
    revoke_token(web.engine, token_id)
    assert web.client.get("/v1/alerts", headers=headers).status_code == 401
    _, secret = create_token(web.engine, "expired", "admin", expires_in=timedelta(seconds=-1))
    assert web.client.get("/v1/alerts", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_openapi_documents_the_v1_api(web) -> None:
    spec = web.client.get("/openapi.json").json()
    for path in ("/v1/gate/check", "/v1/gate/record", "/v1/events", "/v1/attempts", "/v1/usage", "/v1/status",
                 "/v1/limits/{account}", "/v1/alerts", "/v1/reports", "/healthz", "/readyz"):
        assert path in spec["paths"], path
    assert "Decision" in spec["components"]["schemas"]
