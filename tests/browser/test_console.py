"""The console in a real browser: signing in, the red banner, scopes, actions, verification, CSRF."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from tests.browser import seed
from tests.browser.conftest import Console
from worker import clock
from worker.anomalies import forecast as fc
from worker.models import Alert, CallAttempt


def test_an_admin_signs_in_with_a_token_and_lands_on_the_overview(console: Console) -> None:
    seed.usage(console.settings, console.engine, console.tmp_path)
    page = console.signed_in("admin")
    assert page.title() == "Overview · tokentally"
    assert page.locator(".who .scope").inner_text() == "admin"
    assert page.locator("#spend-title").is_visible()
    assert page.locator(".chart svg rect.bar").count() == 30
    assert page.locator("nav[aria-label=Pages] a").all_inner_texts() == [
        "Overview", "Usage", "Accounts", "Alerts", "Reports", "Rejects", "Jobs", "Integrity"]
    page.click("text=Sign out")
    page.wait_for_url(f"{console.url}/login")
    assert page.goto(f"{console.url}/").status == 401


def shown_forecasts(console: Console) -> list[dict[tuple[str, str], str]]:
    """The month-end forecasts as the page words them ("$12.34"), as of now and the next hour
    (the page may be drawn on either side of an hour's turn)."""
    out = []
    with console.engine.connect() as conn:
        for now in (clock.now(), clock.now() + timedelta(hours=1)):
            found = fc.forecasts(conn, console.settings.tz, console.settings.anomalies.history_weeks, now,
                                 kinds=("system", "tenant"))
            out.append({f.scope: f"${f.forecast:,.2f}" for f in found})
    return out


def test_the_overview_shows_the_month_end_forecast_of_the_system_each_tenant_and_a_tenants_own(
        console: Console) -> None:
    seed.usage(console.settings, console.engine, console.tmp_path)
    page = console.signed_in("admin")
    card = page.locator("section[aria-labelledby=forecast-title]")
    figure = card.locator(".figure").inner_text()
    rows = page.locator("#tenant-forecasts tbody tr")
    tenants = {r.locator("td").nth(0).inner_text(): r.locator("td").nth(2).inner_text() for r in rows.all()}
    expected = shown_forecasts(console)
    assert any(figure == e[("system", "")] and tenants == {"acme": e[("tenant", "acme")],
                                                            "globex": e[("tenant", "globex")]} for e in expected)
    assert re.search(r"range \$[\d,.]+ – \$[\d,.]+", card.inner_text())
    assert "so far" in card.inner_text()

    own = console.signed_in("tenant", "acme")
    card = own.locator("section[aria-labelledby=forecast-title]")
    assert any(card.locator(".figure").inner_text() == e[("tenant", "acme")] for e in expected)
    assert "tenant acme" in card.inner_text()
    assert own.locator("#tenant-forecasts").count() == 0  # the organisation's, not the tenant's


def test_the_red_banner_shows_unlogged_calls_and_goes_once_they_are_logged(console: Console) -> None:
    settings, engine, tmp = console.settings, console.engine, console.tmp_path
    seed.usage(settings, engine, tmp)
    page = console.signed_in("admin")
    assert page.locator(".banner.danger").count() == 0

    seed.attempt(settings, engine, tmp, "call-1")
    seed.attempt(settings, engine, tmp, "call-2")
    seed.run("integrity", settings, engine)  # the grace period is over: both are unlogged
    page.click("text=Refresh")
    banner = page.locator(".banner.danger")
    assert banner.is_visible()
    assert "Calls failed to reach the books" in banner.inner_text()
    assert "2 unlogged calls" in banner.inner_text()
    page.click(".banner.danger >> text=2 unlogged calls")
    page.wait_for_url(f"{console.url}/integrity#unlogged")
    assert page.locator("#unlogged + .table-wrap td.key").all_inner_texts() == ["call-2", "call-1"]

    seed.logged(settings, engine, tmp, "call-1")
    seed.logged(settings, engine, tmp, "call-2")
    seed.run("integrity", settings, engine)
    with engine.connect() as conn:
        assert set(conn.execute(select(CallAttempt.state)).scalars()) == {"matched"}
    page.goto(f"{console.url}/")
    assert page.locator(".banner.danger").count() == 0


def test_a_tenant_sees_only_its_own_tenant(console: Console) -> None:
    settings, engine = console.settings, console.engine
    seed.usage(settings, engine, console.tmp_path)
    seed.run("limits", settings, engine)
    own = seed.report(settings, engine, tenant="acme")
    other = seed.report(settings, engine, tenant="globex")
    org = seed.report(settings, engine)
    page = console.signed_in("tenant", "acme")
    assert page.locator("nav[aria-label=Pages] a").all_inner_texts() == [
        "Overview", "Usage", "Accounts", "Alerts", "Reports"]
    assert page.locator(".banner.danger, #sources-title").count() == 0  # the organisation's, not the tenant's

    page.goto(f"{console.url}/usage?by=account")
    assert page.locator("table.figures tbody td:first-child").all_inner_texts() == ["alice", "bob"]
    page.goto(f"{console.url}/usage?by=tenant")
    assert page.locator("table.figures tbody td:first-child").all_inner_texts() == ["acme"]
    csv = page.request.get(f"{console.url}/usage.csv?by=account").text()
    assert "carol" not in csv and "alice" in csv

    page.goto(f"{console.url}/accounts")
    assert page.locator("table.accounts td.key").all_inner_texts() == ["alice", "bob"]
    page.goto(f"{console.url}/accounts?account=carol")
    assert page.locator("table.accounts").count() == 0

    page.goto(f"{console.url}/reports")
    assert page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.id)") == [f"report-{own.id}"]
    assert page.goto(f"{console.url}/reports/{other.id}").status == 404
    assert page.goto(f"{console.url}/reports/{org.id}").status == 404
    for path in ("/rejects", "/jobs", "/integrity"):
        assert page.goto(f"{console.url}{path}").status == 403, path


def test_an_admin_acknowledges_an_alert_and_an_auditor_cannot(console: Console) -> None:
    seed.budget_alert(console.settings, console.engine)
    auditor = console.signed_in("auditor")
    auditor.goto(f"{console.url}/alerts")
    assert auditor.locator(".alerts li").count() == 1
    assert auditor.locator("button", has_text="Acknowledge").count() == 0  # actions are for admins

    page = console.signed_in("admin")
    page.goto(f"{console.url}/alerts")
    alert = page.locator(".alerts li").first
    assert "budget.system" in alert.inner_text()
    assert alert.locator(".pill.state-open").is_visible()
    alert.locator("button", has_text="Acknowledge").click()
    page.wait_for_url("**/alerts?done=acknowledged")
    assert "Alert acknowledged" in page.locator(".notice").inner_text()
    assert page.locator(".alerts li .pill.state-acknowledged").is_visible()
    with console.engine.connect() as conn:
        assert conn.execute(select(Alert.state)).scalar_one() == "acknowledged"


def test_an_auditor_verifies_a_report_and_sees_a_tampered_one_flagged(console: Console) -> None:
    settings, engine = console.settings, console.engine
    seed.usage(settings, engine, console.tmp_path)
    intact = seed.report(settings, engine)
    tampered = seed.report(settings, engine, tenant="acme")
    page = console.signed_in("auditor")
    page.goto(f"{console.url}/reports/{intact.id}")
    page.click("button:has-text('Verify')")
    assert page.locator("#verdict h2").inner_text() == "Verified: ok"

    csv = Path(tampered.path) / "report.csv"
    csv.write_bytes(csv.read_bytes().replace(b"totals", b"t0tals", 1))
    page.goto(f"{console.url}/reports")
    assert page.locator(f"#report-{tampered.id} .pill.bad").inner_text() == "altered"
    assert page.locator(f"#report-{intact.id} .pill.ok").inner_text() == "intact"
    page.goto(f"{console.url}/reports/{tampered.id}")
    page.click("button:has-text('Verify')")
    verdict = page.locator("#verdict")
    assert verdict.locator("h2").inner_text() == "Verified: files altered"
    assert "report.csv" in verdict.inner_text()


def test_without_a_session_pages_answer_401_with_a_sign_in_link(console: Console) -> None:
    page = console.anonymous()
    for path in ("/", "/usage", "/accounts", "/alerts", "/reports", "/rejects", "/jobs", "/integrity"):
        response = page.goto(f"{console.url}{path}")
        assert response.status == 401, path
    page.click("a:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/login\?next=(/|%2F)integrity$"))
    assert page.locator("#token").is_visible()


def test_a_post_without_the_csrf_token_is_refused(console: Console) -> None:
    seed.budget_alert(console.settings, console.engine)
    page = console.signed_in("admin")
    with console.engine.connect() as conn:
        alert_id = conn.execute(select(Alert.id)).scalar_one()
    refused = page.request.post(f"{console.url}/alerts/{alert_id}/ack", form={})
    assert refused.status == 403
    forged = page.request.post(f"{console.url}/alerts/{alert_id}/ack", form={"csrf_token": "forged"})
    assert forged.status == 403
    refused = page.request.post(f"{console.url}/killswitch", form={"action": "on", "reason": "x"})
    assert refused.status == 403
    with console.engine.connect() as conn:
        assert conn.execute(select(Alert.state)).scalar_one() == "open"
    page.goto(f"{console.url}/")
    assert page.locator("#ks-title + .figure").inner_text() == "off"


def test_report_links_open_that_version_only_and_an_altered_link_is_403(console: Console) -> None:
    settings, engine = console.settings, console.engine
    seed.usage(settings, engine, console.tmp_path)
    own = seed.report(settings, engine, tenant="acme")
    other = seed.report(settings, engine, tenant="globex")
    page = console.signed_in("tenant", "acme")
    page.goto(f"{console.url}/reports/{own.id}")
    assert page.locator("button", has_text="Verify").count() == 0  # admins and auditors verify
    link = page.locator("a", has_text="report.html").get_attribute("href")
    assert link.startswith(f"/shared/reports/{own.id}/v1/")

    anonymous = console.anonymous()  # as from an email: no session
    signed = link[:-len("/report.html")]
    flipped = signed[:-1] + ("1" if signed[-1] == "0" else "0")  # the signature's last digit, another one
    for altered in (link.replace(f"/shared/reports/{own.id}/", f"/shared/reports/{other.id}/"),
                    link.replace("/v1/", "/v2/"), flipped + "/report.html"):
        assert anonymous.goto(f"{console.url}{altered}").status == 403, altered
    opened = anonymous.goto(f"{console.url}{link}")
    assert opened.status == 200
    assert "acme" in anonymous.content()
