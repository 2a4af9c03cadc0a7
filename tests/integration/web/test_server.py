"""`tokentally run` and `tokentally web` on a real loopback port: serving, the first-start link,
the beyond-loopback warning, and a SIGTERM that ends them with exit 0."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.integration.web.servers import actions, get, start, stop, wait_until_up


@pytest.mark.parametrize("command", ["run", "web"])
def test_serves_the_console_and_stops_on_sigterm_with_exit_0(tmp_path: Path, db_url: str, command: str) -> None:
    port = free_port()
    proc = start(command, tmp_path, db_url, port)
    try:
        wait_until_up(proc, port)
        status, headers, body = get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        assert "server" not in headers and headers["x-content-type-options"] == "nosniff"
        assert get(f"http://127.0.0.1:{port}/v1/alerts")[0] == 401
    finally:
        code, err = stop(proc)
    assert code == 0, err
    logged = actions(err)
    assert "web_started" in logged and logged[-1] == "web_stopped"
    if command == "run":
        assert "daemon_stopping" in logged and "daemon_stopped" in logged


def test_the_first_start_prints_a_one_time_admin_link_that_signs_in_once(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    proc = start("web", tmp_path, db_url, port)
    try:
        wait_until_up(proc, port)
    finally:
        code, err = stop(proc)
    assert code == 0
    link = next(word for word in err.split() if "/login/" in word)
    assert link.startswith(f"http://127.0.0.1:{port}/login/")
    proc = start("web", tmp_path, db_url, port)
    try:
        wait_until_up(proc, port)
        opener = urllib.request.build_opener(_NoRedirect())
        with opener.open(link) as first:
            assert first.status == 303 and "tt_session=" in first.headers["set-cookie"]
        with pytest.raises(urllib.error.HTTPError) as again:
            opener.open(link)
        again.value.close()
        assert again.value.code == 403
    finally:
        code, err = stop(proc)
    assert "first start" not in err  # a database with a token prints no new link


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def http_error_303(self, req, fp, code, msg, headers):  # noqa: ANN001 - urllib's signature
        return fp


def test_binding_beyond_loopback_without_https_warns(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    proc = start("web", tmp_path, db_url, port, 'bind = "0.0.0.0"\n')
    try:
        wait_until_up(proc, port)
    finally:
        code, err = stop(proc)
    assert code == 0 and "warning: web: listening on 0.0.0.0, beyond loopback" in " ".join(err.split())


def test_a_taken_port_is_a_clear_error(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    first = start("web", tmp_path, db_url, port)
    try:
        wait_until_up(first, port)
        second = start("web", tmp_path, db_url, port)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in " ".join(err.split())
    finally:
        stop(first)


def test_a_bad_web_setting_stops_run_with_exit_2_naming_the_key(tmp_path: Path, db_url: str) -> None:
    proc = start("run", tmp_path, db_url, 70000)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "web.port" in err
