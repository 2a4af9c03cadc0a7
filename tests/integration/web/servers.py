"""Running `tokentally run` / `tokentally web` in a subprocess on a loopback port, for the server tests."""

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


def start(command: str, tmp_path: Path, db_url: str, port: int, extra: str = "") -> subprocess.Popen[str]:
    cfg = tmp_path / "web.toml"
    cfg.write_text(f'[logging]\nformat = "json"\n[web]\nport = {port}\n{extra}', encoding="utf-8")
    env = {**os.environ, "TOKENTALLY_CONFIG": str(cfg), "TOKENTALLY_DATABASE_URL": db_url,
           "TOKENTALLY_WEB_ENABLED": "true"}
    return subprocess.Popen([sys.executable, "-m", "cli", *command.split()], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def get(url: str, headers: dict[str, str] | None = None,
        body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a GET, or of a POST when ``body`` is given; a new connection each."""
    request = urllib.request.Request(url, headers=headers or {}, data=body)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def wait_until_up(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            if get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the console never answered")


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def actions(err: str) -> list[str]:
    return [json.loads(line).get("action") for line in err.splitlines() if line.startswith("{")]
