"""A database URL with its password in the query (``?password=``, ``?sslpassword=``) is masked
wherever it is shown, like the ``user:password@`` form: `status`, the logs, ``job_runs.error`` and
the ``job.failed`` alert's payload; on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from worker import db
from worker.models import Alert, JobRun
from tests.helpers import free_port

SECRET = "QUERYPASSWORD77"


def test_display_url_masks_secret_query_parameters_and_keeps_the_others() -> None:
    shown = db.display_url(f"postgresql://bob:PW1@db.example/ledger?sslmode=require&password={SECRET}"
                           "&sslpassword=KEYPW&application_name=tt")
    assert shown == ("postgresql+psycopg://bob:***@db.example/ledger?application_name=tt&password=***"
                     "&sslmode=require&sslpassword=***")  # SQLAlchemy sorts the parameters
    assert db.display_url("sqlite:///var/tokentally.db") == "sqlite:///var/tokentally.db"


def test_a_table_source_url_with_a_query_password_is_masked_in_runs_alerts_logs_and_status(
        cli, tmp_path, db_url, engine) -> None:
    source_url = f"postgresql://app@127.0.0.1:{free_port()}/app?connect_timeout=2&password={SECRET}"
    cfg = tmp_path / "settings.toml"
    cfg.write_text(f"""
[[sources]]
name = "appdb"
kind = "table"
url = "{source_url}"
table = "llm_usage_logs"
cursor_column = "id"
""", encoding="utf-8")
    run = cli("--log-level", "DEBUG", "jobs", "run", "ingest", config=cfg)
    assert run.exit_code == 1
    assert "cannot reach" in run.output and "password=***" in run.output
    assert SECRET not in run.output  # the job's own lines and the logs (the CLI logs to stderr)
    with engine.connect() as conn:
        [job_run] = conn.execute(select(JobRun).where(JobRun.job == "ingest")).all()
        [alert] = conn.execute(select(Alert).where(Alert.kind == "job.failed")).all()
    assert job_run.status == "failed" and "password=***" in job_run.error
    assert SECRET not in job_run.error
    assert SECRET not in json.dumps(alert.payload) and "password=***" in alert.payload["error"]
    status = cli("status", "--format", "json", config=cfg)
    assert status.exit_code == 0, status.output
    assert SECRET not in status.stdout
    assert "password=***" in next(j for j in json.loads(status.stdout)["jobs"] if j["job"] == "ingest")["last_error"]


def test_status_masks_a_query_password_in_the_database_url(cli, db_url) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("a password in the query is a PostgreSQL URL's (SQLite warns about it and ignores it)")
    masked_env = {"TOKENTALLY_DATABASE_URL": f"{db_url}?password={SECRET}"}  # trust auth ignores it
    status = cli("status", "--format", "json", env=masked_env)
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["database"].endswith("?password=***")
    assert SECRET not in status.output
    table = cli("status", env=masked_env)
    assert table.exit_code == 0 and SECRET not in table.output
