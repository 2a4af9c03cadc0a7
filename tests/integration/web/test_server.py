"""`tokentally run` and `tokentally web` on a real loopback port: serving, the first-start link,
the beyond-loopback warning, and a SIGTERM that ends them with exit 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import free_port


def _start(command: str, tmp_path: Path, db_url: str, port: int, extra: str = "") -> subprocess.Popen[str]:
    cfg = tmp_path / "web.toml"
    cfg.write_text(f'[logging]\nformat = "json"\n[web]\nport = {port}\n{extra}', encoding="utf-8")
    env = {**os.environ, "TOKENTALLY_CONFIG": str(cfg), "TOKENTALLY_DATABASE_URL": db_url,
           "TOKENTALLY_WEB_ENABLED": "true"}
    return subprocess.Popen([sys.executable, "-m", "cli", *command.split()], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def _wait_until_up(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            if _get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the console never answered")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def _actions(err: str) -> list[str]:
    return [json.loads(line).get("action") for line in err.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("command", ["run", "web"])
def test_serves_the_console_and_stops_on_sigterm_with_exit_0(tmp_path: Path, db_url: str, command: str) -> None:
    port = free_port()
    proc = _start(command, tmp_path, db_url, port)
    try:
        _wait_until_up(proc, port)
        status, headers, body = _get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        assert "server" not in headers and headers["x-content-type-options"] == "nosniff"
        assert _get(f"http://127.0.0.1:{port}/v1/alerts")[0] == 401
    finally:
        code, err = _stop(proc)
    assert code == 0, err
    actions = _actions(err)
    assert "web_started" in actions and actions[-1] == "web_stopped"
    if command == "run":
        assert "daemon_stopping" in actions and "daemon_stopped" in actions


def test_the_first_start_prints_a_one_time_admin_link_that_signs_in_once(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    proc = _start("web", tmp_path, db_url, port)
    try:
        _wait_until_up(proc, port)
    finally:
        code, err = _stop(proc)
    assert code == 0
    link = next(word for word in err.split() if "/login/" in word)
    assert link.startswith(f"http://127.0.0.1:{port}/login/")
    proc = _start("web", tmp_path, db_url, port)
    try:
        _wait_until_up(proc, port)
        opener = urllib.request.build_opener(_NoRedirect())
        with opener.open(link) as first:
            assert first.status == 303 and "tt_session=" in first.headers["set-cookie"]
        with pytest.raises(urllib.error.HTTPError) as again:
            opener.open(link)
        again.value.close()
        assert again.value.code == 403
    finally:
        code, err = _stop(proc)
    assert "first start" not in err  # a database with a token prints no new link


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def http_error_303(self, req, fp, code, msg, headers):  # noqa: ANN001 - urllib's signature
        return fp


def test_binding_beyond_loopback_without_https_warns(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    proc = _start("web", tmp_path, db_url, port, 'bind = "0.0.0.0"\n')
    try:
        _wait_until_up(proc, port)
    finally:
        code, err = _stop(proc)
    assert code == 0 and "warning: web: listening on 0.0.0.0, beyond loopback" in " ".join(err.split())


def test_a_taken_port_is_a_clear_error(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    first = _start("web", tmp_path, db_url, port)
    try:
        _wait_until_up(first, port)
        second = _start("web", tmp_path, db_url, port)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in " ".join(err.split())
    finally:
        _stop(first)


def test_a_bad_web_setting_stops_run_with_exit_2_naming_the_key(tmp_path: Path, db_url: str) -> None:
    proc = _start("run", tmp_path, db_url, 70000)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "web.port" in err
