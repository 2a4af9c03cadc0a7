"""A directory in a source's glob, or a file, that cannot be read: named, failed, shown in ``status``.

Root reads every directory whatever its mode, so the CLI runs here as ``nobody`` (a forked child
drops to uid/gid 65534 before running it) over a ``chmod 000`` directory and file: the real
PermissionError, not a mock. When the suite itself does not run as root it runs the CLI as is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Iterator


import importlib
import pkgutil

import pytest
import typer
from sqlalchemy.engine import make_url

from cli import app
from worker import db
from worker.registry import load_jobs

NOBODY = 65534
GOOD = {"event_id": "ok-1", "occurred_at": "2026-11-30T10:00:00Z", "account_id": "a1", "model": "gpt-4o-mini",
        "prompt_tokens": 10, "completion_tokens": 5}


def _import_all(*packages: str) -> None:
    for name in packages:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            try:
                importlib.import_module(info.name)
            except (Exception, SystemExit):  # an optional part (a missing extra): not needed here either
                pass


def _drop_to_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


@pytest.fixture
def world(db_url: str) -> Iterator[tuple[Path, str]]:
    """A directory the unprivileged child may use, and the database URL it reaches (a SQLite copy it owns)."""
    base = Path(tempfile.mkdtemp(prefix="tokentally-unreadable-"))
    base.chmod(0o755)
    url = db_url
    if db_url.startswith("sqlite"):
        copy = base / "ledger.db"
        shutil.copyfile(make_url(db_url).database, copy)
        url = f"sqlite:///{copy}"
    inbox = base / "inbox"
    (inbox / "locked").mkdir(parents=True)
    (inbox / "ok.jsonl").write_text(json.dumps(GOOD) + "\n")
    (inbox / "locked" / "hidden.jsonl").write_text(json.dumps({**GOOD, "event_id": "hidden"}) + "\n")
    (inbox / "secret.jsonl").write_text(json.dumps({**GOOD, "event_id": "secret"}) + "\n")
    if os.geteuid() == 0:
        for path in [base, *base.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
    (inbox / "locked").chmod(0)
    (inbox / "secret.jsonl").chmod(0)
    (base / "settings.toml").write_text(
        f'[logging]\nformat = "json"\n[[sources]]\nname = "inbox"\nkind = "jsonl"\npath = "{inbox}/**/*.jsonl"\n')
    yield base, url
    (inbox / "locked").chmod(0o755)
    shutil.rmtree(base, ignore_errors=True)


def _cli(base: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a forked child that drops to ``nobody`` first (the interpreter under /root could not be
    exec'd by nobody; a fork needs no exec): its exit code, stdout and stderr."""
    out, err = base / f"out-{os.getpid()}.txt", base / f"err-{os.getpid()}.txt"
    pid = os.fork()
    if pid == 0:  # the child: never returns to pytest
        code = 70
        try:
            os.environ.update({"TOKENTALLY_CONFIG": str(base / "settings.toml"), "TOKENTALLY_DATABASE_URL": url})
            sys.stdout, sys.stderr = open(out, "w"), open(err, "w")  # pytest's capture is not fd 1 and 2
            if os.geteuid() == 0:
                # read what comes from the checkout while still root: the checkout itself may be in a
                # directory nobody cannot enter (a fresh clone in a mode-700 temporary directory)
                db.head_revision()
                load_jobs()
                # the CLI imports a command's module (and typer its parts) when the command runs: --help
                # of the same command line, still as root, imports them all without running anything
                warm_out, sys.stdout = sys.stdout, open(os.devnull, "w")
                try:
                    app([*args, "--help"], standalone_mode=False)
                except (SystemExit, typer.Exit):
                    pass
                sys.stdout = warm_out
                _import_all("genai_prices", "typer", "rich")  # what those import lazily, on first use
                _drop_to_nobody()
            try:
                result = app([*args], standalone_mode=False)  # an exit code, when the command gave one
                code = result if isinstance(result, int) else 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except typer.Exit as exc:
                code = exc.exit_code
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return subprocess.CompletedProcess(list(args), os.waitstatus_to_exitcode(status), out.read_text(), err.read_text())


def _json(out: str) -> Any:
    return json.loads(out[out.index("{"):])


def test_an_unreadable_directory_fails_the_ingest_job_after_the_others_and_status_names_it(world):
    base, url = world

    run = _cli(base, url, "jobs", "run", "ingest", "--no-chain", "--format", "json")
    status = _cli(base, url, "status", "--format", "json")

    assert run.returncode != 0, run.stderr
    assert "Traceback" not in run.stderr
    assert f"directory {base}/inbox/locked: cannot be listed (Permission denied)" in run.stdout + run.stderr
    assert f"{base}/inbox/secret.jsonl: Permission denied" in run.stdout + run.stderr
    [ingest] = [j for j in _json(status.stdout)["jobs"] if j["job"] == "ingest"]
    assert ingest["last_status"] == "failed"
    assert _json(status.stdout)["counts"]["open_alerts"] == 1  # job.failed
    assert "inbox/locked: cannot be listed" in ingest["last_error"]
    [source] = [s for s in _json(status.stdout)["sources"] if s["source"] == "inbox"]
    assert source["events"] == 1  # ok.jsonl was read all the same


def test_the_ingest_command_lists_an_unreadable_directory_among_its_errors(world):
    base, url = world

    run = _cli(base, url, "ingest", str(base / "inbox"), "--format", "json")

    assert run.returncode == 1, run.stderr
    errors = _json(run.stdout)["errors"]
    assert f"directory {base}/inbox/locked: cannot be listed (Permission denied)" in errors
    assert f"{base}/inbox/secret.jsonl: Permission denied" in errors
    assert "Traceback" not in run.stderr
