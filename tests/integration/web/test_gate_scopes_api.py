"""POST /v1/gate/check and /record with a call's tenant, service, model, project and key: the same
scope decisions as worker.gate, on SQLite and PostgreSQL."""

from __future__ import annotations

from freezegun import freeze_time

from worker.gate import Gate

SCOPES = """
timezone = "America/New_York"

[budgets."tenant:school-a"]
monthly_tokens = 1000
action = "block"

[budgets."model:big-llm"]
daily_tokens = 100000
action = "block"
"""


def test_the_http_gate_checks_the_scopes_a_body_names_and_names_the_one_that_refuses(make_web) -> None:
    web = make_web(SCOPES)
    app = web.auth("app")
    with freeze_time("2026-11-20T15:00:00Z"):
        body = {"account_id": "alice", "tenant_id": "school-a", "model": "big-llm", "service": "essays"}
        first = web.client.post("/v1/gate/record", json={**body, "tokens": 1000}, headers=app)
        assert first.status_code == 200
        shown = first.json()
        assert shown["can_call"] is False and shown["reason"] == "budget_exhausted"
        assert shown["scope"] == "tenant:school-a"
        assert shown["detail"] == "tenant school-a monthly budget, resets 2026-12-01 00:00 EST"
        checked = web.client.post("/v1/gate/check", json=body, headers=app).json()
        assert checked == Gate(web.settings, web.engine).check(
            "alice", tenant_id="school-a", model="big-llm", service="essays").as_dict() | {
            "reset_at": checked["reset_at"]}
        other = web.client.post("/v1/gate/check", json={"account_id": "bob", "model": "big-llm"}, headers=app).json()
        assert other["can_call"] is True and other["remaining_tokens"] == 99000 and other["scope"] is None
        # an account-only body is what it was before (no scope field needed)
        plain = web.client.post("/v1/gate/check", json={"account_id": "bob"}, headers=app).json()
        assert plain["can_call"] is True and plain["reason"] == "ok"
        assert web.client.post("/v1/gate/check", json={"tenant_id": "x" * 201}, headers=app).status_code == 422


def test_the_accounts_page_shows_each_scope_budget_used_limit_and_resets_in(make_web) -> None:
    web = make_web(SCOPES + '\n[budgets."service:essays"]\ndaily_cost_usd = "2"\n')
    assert web.client.get("/accounts", headers=web.auth("admin")).status_code == 200  # (the app set up unfrozen)
    with freeze_time("2026-11-20T15:00:00Z"):
        Gate(web.settings, web.engine).record("alice", tokens=250, tenant_id="school-a")
        page = web.client.get("/accounts", headers=web.auth("admin"))
        assert page.status_code == 200
        html = page.text
        assert "tenant:school-a" in html and "250 / 1,000 tok" in html and "resets in 10d 14h" in html
        assert "service:essays" in html and "$0.00 / $2.00" in html
        # a tenant's viewer sees its own tenant's budgets, not the organisation's services or models
        other = web.client.get("/accounts", headers=web.auth("tenant:school-b")).text
        assert "service:essays" not in other and "tenant:school-a" not in other
