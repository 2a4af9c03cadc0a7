"""`tokentally reports serve` is the console's authenticated report pages, never a directory
listing: no token is 401, a tenant sees only its tenant's reports, and the archive's files are
reachable only through the signed links the report page gives."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from worker import clock, db
from worker.settings import load
from reports.archive import archive
from reports.periods import period_containing
from web.auth import create_token
from tests.helpers import free_port
from tests.integration.web.servers import get, start, stop, wait_until_up


def test_reports_serve_needs_a_token_and_keeps_tenants_apart(tmp_path: Path, db_url: str) -> None:
    archive_dir = tmp_path / "archive"
    port = free_port()
    extra = f'[reports]\narchive_dir = "{archive_dir}"\n'
    proc = start("reports serve", tmp_path, db_url, port, extra)
    try:
        wait_until_up(proc, port)
        settings = load(tmp_path / "web.toml", env={"TOKENTALLY_DATABASE_URL": db_url})
        engine = db.make_engine(db_url)
        try:
            period = period_containing("daily", clock.now().astimezone(settings.tz).date() - timedelta(days=1))
            org, mine, theirs = (archive(engine, settings, period, tenant=t) for t in (None, "t1", "t2"))
            t1 = {"Authorization": f"Bearer {create_token(engine, 't1', 'tenant', 't1')[1]}"}
            admin = {"Authorization": f"Bearer {create_token(engine, 'admin', 'admin')[1]}"}
        finally:
            engine.dispose()
        base = f"http://127.0.0.1:{port}"
        mine_file = "/" + (mine.directory / "report.html").relative_to(archive_dir).as_posix()

        assert get(f"{base}/")[0] == 401  # no listing of the archive
        assert get(f"{base}/reports")[0] == 401
        assert get(f"{base}{mine_file}")[0] in (401, 404)
        assert get(f"{base}{mine_file}", t1)[0] == 404  # the archive's paths are not served as files

        status, _, body = get(f"{base}/reports", t1)
        listed = set(re.findall(rb'href="/reports/(\d+)"', body))
        assert status == 200 and listed == {str(mine.row.id).encode()}
        assert get(f"{base}/reports/{theirs.row.id}", t1)[0] == 404
        assert get(f"{base}/reports/{org.row.id}", t1)[0] == 404

        status, _, page = get(f"{base}/reports/{mine.row.id}", t1)
        links = re.findall(rb'href="(/shared/reports/[^"]+/report\.html)"', page)
        assert status == 200 and links
        status, _, html = get(base + links[0].decode())
        assert status == 200 and html == (mine.directory / "report.html").read_bytes()

        status, _, body = get(f"{base}/reports", admin)
        assert status == 200 and set(re.findall(rb'href="/reports/(\d+)"', body)) == {
            str(r.row.id).encode() for r in (org, mine, theirs)}
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert "/reports (sign in with a token" in err  # it says where the archive is
