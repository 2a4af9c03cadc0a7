"""Signed report links: one version opened without a login; anything altered or expired is 403;
files come only from inside the archive."""

from __future__ import annotations

import os
from datetime import timedelta
from dataclasses import replace
from pathlib import Path

from freezegun import freeze_time
from sqlalchemy import select, update

from worker import clock
from worker.models import Notification, Report
from reports.archive import archive
from reports.periods import period_containing
from reports.send import send
from web.auth import report_link, sign_link, signing_key


def _archived(make_web, tmp_path: Path, extra: str = ""):
    web = make_web(f'[reports]\narchive_dir = "{tmp_path / "archive"}"\n[web]\n'
                   f'public_url = "https://tally.example.org"\n{extra}')
    period = period_containing("daily", clock.now().date() - timedelta(days=1))
    first = archive(web.engine, web.settings, period)
    second = archive(web.engine, web.settings, period)
    return web, first, second


def _path(link: str) -> str:
    return link.removeprefix("https://tally.example.org")


def test_a_signed_link_opens_its_version_without_a_login(make_web, tmp_path: Path) -> None:
    web, first, _ = _archived(make_web, tmp_path)
    link = report_link(web.settings, web.app_key, first.row.id, first.row.version)
    assert link.startswith("https://tally.example.org/shared/reports/")
    page = web.client.get(_path(link))
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.content == (first.directory / "report.html").read_bytes()
    assert "script-src" not in page.headers["content-security-policy"]  # no script at all, sandboxed
    assert "sandbox" in page.headers["content-security-policy"]
    chart = web.client.get(_path(link).replace("report.html", "chart.png"))
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert web.client.get(_path(link).replace("report.html", "../../x")).status_code in (403, 404)
    assert web.client.get(_path(link).replace("report.html", "secret.txt")).status_code == 404


def test_altering_the_report_the_version_or_the_signature_is_403(make_web, tmp_path: Path) -> None:
    web, first, second = _archived(make_web, tmp_path)
    path = _path(report_link(web.settings, web.app_key, first.row.id, first.row.version))
    _, _, _, rid, version, expires, signature, name = path.split("/")
    altered = [
        f"/shared/reports/{second.row.id}/{version}/{expires}/{signature}/{name}",  # another report
        f"/shared/reports/{rid}/v{second.row.version}/{expires}/{signature}/{name}",  # another version
        f"/shared/reports/{rid}/{version}/{int(expires) + 86400}/{signature}/{name}",  # a longer life
        f"/shared/reports/{rid}/{version}/{expires}/{signature[:-1]}{'0' if signature[-1] != '0' else '1'}/{name}",
    ]
    for bad in altered:
        assert web.client.get(bad).status_code == 403, bad
    assert web.client.get(path).status_code == 200


def test_an_expired_link_is_403(make_web, tmp_path: Path) -> None:
    web, first, _ = _archived(make_web, tmp_path, 'link_ttl = "1h"\n')
    path = _path(report_link(web.settings, web.app_key, first.row.id, first.row.version))
    assert web.client.get(path).status_code == 200
    with freeze_time(clock.now() + timedelta(hours=2)):
        assert web.client.get(path).status_code == 403


def test_a_symlink_in_the_archive_is_never_followed(make_web, tmp_path: Path) -> None:
    web, first, _ = _archived(make_web, tmp_path)
    outside = tmp_path / "outside.html"
    outside.write_text("<p>not a report</p>", encoding="utf-8")
    target = first.directory / "report.html"
    target.unlink()
    os.symlink(outside, target)
    path = _path(report_link(web.settings, web.app_key, first.row.id, first.row.version))
    assert web.client.get(path).status_code == 403
    # a row that points outside the archive is refused too
    with web.engine.begin() as conn:
        conn.execute(update(Report).where(Report.id == first.row.id).values(path=str(tmp_path)))
    assert web.client.get(path).status_code == 403


def test_a_link_with_a_key_from_elsewhere_is_403(make_web, tmp_path: Path) -> None:
    web, first, _ = _archived(make_web, tmp_path)
    forged = sign_link(b"k" * 32, first.row.id, first.row.version, clock.now() + timedelta(days=1))
    assert web.client.get(forged + "report.html").status_code == 403


def test_report_messages_carry_the_signed_link(make_web, tmp_path: Path) -> None:
    web, first, _ = _archived(make_web, tmp_path)
    assert send(web.engine, web.settings, first) >= 1
    with web.engine.connect() as conn:
        data = conn.execute(select(Notification.data)).scalars().first()
    link = data["report_url"]
    assert link.startswith("https://tally.example.org/shared/reports/")
    assert web.client.get(_path(link)).status_code == 200


def test_the_generated_signing_key_is_kept_once_for_every_process(make_web, tmp_path: Path) -> None:
    web, first, _ = _archived(make_web, tmp_path)
    assert signing_key(web.settings, web.engine) == web.app_key  # another process reads the same key
    link = _path(report_link(web.settings, web.app_key, first.row.id, first.row.version))
    other = make_web(f'[reports]\narchive_dir = "{tmp_path / "archive"}"\n')
    assert other.client.get(link).status_code == 200


def test_web_secret_from_the_environment_signs_instead(make_web, tmp_path: Path) -> None:
    web, first, _ = _archived(make_web, tmp_path)
    stored = web.app_key
    with_secret = replace(web.settings, web=replace(web.settings.web, secret="s" * 40))
    assert signing_key(with_secret, web.engine) == b"s" * 40 != stored
