"""What a command imports when it starts: ``status`` loads its own module and the database, not the
report, pricing, channel or provider libraries the other commands need, nor the ORM and the models
(it reads through ``worker.tables``); the checks every command makes (schema revision) read the
database without alembic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from cli.commands import COMMANDS
from worker import db
from worker.registry import Registry, registry

REPO = Path(__file__).resolve().parents[3]
NOT_FOR_STATUS = ("matplotlib", "genai_prices", "slack_sdk", "requests", "jinja2", "alembic", "apscheduler",
                  "reports", "jobs.", "sqlalchemy.orm", "worker.models")

PROBE = """
import json, sys
sys.argv = ["tokentally", *sys.argv[1:]]
from cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps([code, sorted(sys.modules)]), file=sys.stderr)
"""


def _started(args: list[str], tmp_path: Path, db_url: str) -> tuple[object, list[str], str]:
    config = tmp_path / "empty.toml"
    config.write_text("", encoding="utf-8")
    keep = {k: v for k, v in os.environ.items() if not k.startswith("TOKENTALLY_")}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**keep, "TOKENTALLY_CONFIG": str(config),
                                            "TOKENTALLY_DATABASE_URL": db_url})
    code, modules = json.loads(done.stderr.strip().splitlines()[-1])
    return code, modules, done.stdout


def test_status_imports_only_what_status_needs(tmp_path: Path, db_url: str) -> None:
    code, modules, out = _started(["status", "--format", "json"], tmp_path, db_url)
    assert code in (0, None)
    report = json.loads(out)
    assert [j["job"] for j in report["jobs"]] == registry.ids()  # every job, though none was imported
    assert report["schema_revision"] == db.head_revision()
    assert [m for m in modules if m.startswith(NOT_FOR_STATUS)] == []
    others = {e.module for n, e in COMMANDS.items() if e.module != "cli.status"}
    assert [m for m in modules if m in others] == []


def test_the_job_ids_from_the_package_scan_are_the_registered_jobs() -> None:
    assert registry.ids() == [spec.id for spec in registry.all()]


def test_a_job_in_the_jobs_package_has_the_id_of_its_module() -> None:
    def body(ctx):  # as if defined in jobs/limits.py
        return {}

    body.__module__ = "jobs.limits"
    reg = Registry()
    with pytest.raises(ValueError, match="jobs/rollover.py"):
        reg.register("rollover", schedule="every 1m", description="x")(body)
    assert reg.register("limits", schedule="every 1m", description="x")(body) is body


def test_the_head_revision_is_the_one_alembic_finds(engine) -> None:
    head = ScriptDirectory.from_config(db.alembic_config("sqlite://")).get_current_head()
    assert db.head_revision() == head
    assert db.current_revision(engine) == head


def test_a_database_never_migrated_has_no_revision(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        assert db.current_revision(engine) is None
    finally:
        engine.dispose()


GC_PROBE = """
import gc, json, sys
sys.argv = ["tokentally", *sys.argv[1:]]
import cli, cli.state
asked = []
real_state = cli.state.state
def state(ctx):
    asked.append(gc.isenabled())
    return real_state(ctx)
cli.state.state = state
import cli.status
cli.status.state = state
try:
    cli.main()
except SystemExit:
    pass
print(json.dumps({"while_the_command_ran": asked, "after_main": gc.isenabled()}), file=sys.stderr)
"""


def test_the_collector_is_on_while_a_command_runs_and_after_main(tmp_path: Path, db_url: str) -> None:
    """main() holds the cyclic collector off while the command's modules import, never while
    the command works (an ingest or the daemon runs for hours)."""
    config = tmp_path / "empty.toml"
    config.write_text("", encoding="utf-8")
    keep = {k: v for k, v in os.environ.items() if not k.startswith("TOKENTALLY_")}
    done = subprocess.run([sys.executable, "-c", GC_PROBE, "status", "--format", "json"], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={**keep, "TOKENTALLY_CONFIG": str(config), "TOKENTALLY_DATABASE_URL": db_url})
    seen = json.loads(done.stderr.strip().splitlines()[-1])
    assert seen == {"while_the_command_ran": [True], "after_main": True}
