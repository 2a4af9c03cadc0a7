"""deploy/tokentally.service: stops with SIGTERM (exit 0 is success), runs `tokentally run`, and
parses with `systemd-analyze verify` where systemd is installed."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[3] / "deploy" / "tokentally.service"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in systemd
    parser.read(UNIT, encoding="utf-8")
    return parser


def test_the_unit_stops_with_sigterm_and_runs_the_daemon() -> None:
    service = _unit()["Service"]
    assert service["KillSignal"] == "SIGTERM"
    assert "0" in service["SuccessExitStatus"].split()
    assert service["ExecStart"].endswith("tokentally run")
    assert service["RestartPreventExitStatus"] == "2"  # a bad setting is not retried


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (apt-get install systemd): unit not verified")
    # verify checks that ExecStart's program exists: point it at a stand-in of the same name
    program = tmp_path / "tokentally"
    program.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    program.chmod(0o755)
    text = UNIT.read_text(encoding="utf-8").replace("/opt/tokentally/.venv/bin/tokentally", str(program))
    unit = tmp_path / "tokentally.service"
    unit.write_text(text, encoding="utf-8")
    done = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tokentally.service" not in done.stdout + done.stderr  # no warning about the unit either
