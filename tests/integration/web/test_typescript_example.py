"""The README's TypeScript example, exactly as the README shows it: compiled with tsc (--strict)
and run with Node against a real server on loopback, for an account that may call and for one
whose limit is used up. Skipped with a message when node or tsc is missing, unless CI=true
(.ci/run installs Debian's nodejs and node-typescript)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import IN_CI
from tests.helpers import free_port
from worker.gate import Gate
from web.auth import create_token
from web.server import WebServer

README = Path(__file__).resolve().parents[3] / "README.md"
TIERS = """
default_tier = "small"
[tiers.small]
requests_per_month = 1
action = "block"
"""
# Runs the compiled example: node main.js ACCOUNT TOKEN BASE prints "allowed" or the error's message.
MAIN = """const { checkGate } = require("./gate.js");
checkGate(process.argv[2], process.argv[3], process.argv[4]).then(
  () => console.log("allowed"), (e) => { console.log(e.message); process.exitCode = 1; });
"""


def readme_example() -> str:
    """The one ```ts block of the README."""
    blocks = re.findall(r"^```ts\n(.*?)^```$", README.read_text(encoding="utf-8"), flags=re.S | re.M)
    assert len(blocks) == 1, "the README should show one TypeScript example"
    return blocks[0]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """node, and a directory holding the example compiled once (tsc takes seconds) with its main.js."""
    node, tsc = shutil.which("node"), shutil.which("tsc")
    if node is None or tsc is None:
        message = "node and tsc are needed (apt-get install nodejs node-typescript)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path_factory.mktemp("ts-example")
    (out / "gate.ts").write_text(readme_example(), encoding="utf-8")
    done = subprocess.run([tsc, "--strict", "--target", "es2020", "--module", "commonjs", "--lib", "es2020,dom",
                           "gate.ts"], cwd=out, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    (out / "main.js").write_text(MAIN, encoding="utf-8")
    yield node, out


def test_the_readme_typescript_example_compiles_and_gets_the_gates_decision(
        compiled: tuple[str, Path], make_settings, engine) -> None:
    node, where = compiled

    settings = make_settings(TIERS)
    settings = replace(settings, web=replace(settings.web, bind="127.0.0.1", port=free_port()))
    token = create_token(engine, "ts-app", "app")[1]
    Gate(settings, engine).record("used-up")  # its one request this month
    server = WebServer(settings, engine)
    server.start()
    try:
        def run(account: str, secret: str = token) -> tuple[int, str]:
            done = subprocess.run([node, "main.js", account, secret, server.url], cwd=where, capture_output=True,
                                  text=True, timeout=60)
            return done.returncode, done.stdout.strip() + done.stderr
        assert run("fresh") == (0, "allowed")
        code, printed = run("used-up")
        assert code == 1 and printed.startswith("quota: rate_limited until "), printed
        until = datetime.fromisoformat(printed.removeprefix("quota: rate_limited until ").replace("Z", "+00:00"))
        assert until == Gate(settings, engine).check("used-up").reset_at
        code, printed = run("fresh", "tt_not-a-token")
        assert code == 1 and printed.startswith("tokentally: 401 "), printed
    finally:
        server.stop()
