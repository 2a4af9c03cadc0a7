"""Settings through the CLI: bad settings stop a command at start (exit 2, key named);
--config / TOKENTALLY_CONFIG choose the file; TOKENTALLY_* variables override it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from worker.models import Account


def flat(text: str) -> str:
    """CLI text without the line breaks rich and click put in long lines."""
    return " ".join(text.split())


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


TABLE_SOURCE = """
[[sources]]
name = "app"
kind = "table"
url = "sqlite:///app.db"
table = "llm_usage_logs"
cursor_column = "created_at"
"""

BAD_SETTINGS = [
    pytest.param('colour = "blue"\n', "colour", id="unknown top-level key"),
    pytest.param('[database]\nuri = "sqlite:///x.db"\n', "database.uri", id="unknown nested key"),
    pytest.param('[tiers.student]\ndaily_tokens = 10\ndaily_tokenz = 20\n', "tiers.student.daily_tokenz",
                 id="unknown tier key"),
    pytest.param('timezone = "Mars/Olympus_Mons"\n', "timezone", id="unknown time zone"),
    pytest.param('timezone = 5\n', "timezone", id="time zone of the wrong type"),
    pytest.param('[ingest]\nbatch_size = "many"\n', "ingest.batch_size", id="string for an integer"),
    pytest.param('[ingest]\nbatch_size = 0\n', "ingest.batch_size", id="zero batch size"),
    pytest.param('[ingest]\nmax_record_bytes = 0\n', "ingest.max_record_bytes", id="zero record limit"),
    pytest.param('[ingest]\nmax_record_bytes = 100\n', "ingest.max_record_bytes", id="record limit under 1 KiB"),
    pytest.param('[ingest]\nmax_record_bytes = 1073741824\n', "ingest.max_record_bytes",
                 id="record limit over 16 MiB"),
    pytest.param('[ingest]\nmax_record_bytes = "1MiB"\n', "ingest.max_record_bytes", id="record limit as text"),
    pytest.param('[ingest]\nbatch_bytes = 0\n', "ingest.batch_bytes", id="zero batch bytes"),
    pytest.param('[[sources]]\nname = "logs"\nkind = "jsonl"\npath = "*.jsonl"\nfollow_symlinks = "yes"\n',
                 "sources[logs].follow_symlinks", id="follow_symlinks not a boolean"),
    pytest.param('[logging]\nlevel = "LOUD"\n', "logging.level", id="bad log level"),
    pytest.param('[[sources]]\nname = "logs"\nkind = "parquet"\npath = "*.pq"\n', "sources[logs].kind",
                 id="unknown source kind"),
    pytest.param('[[sources]]\nname = "logs"\nkind = "jsonl"\n', "sources[logs].path", id="source without path"),
    pytest.param(TABLE_SOURCE.replace('url = "sqlite:///app.db"\n', ""), "sources[app].url",
                 id="table source without url"),
    pytest.param(TABLE_SOURCE + 'cursor_overlap = "5 minutes"\n', "sources[app].cursor_overlap",
                 id="bad cursor overlap"),
    pytest.param(TABLE_SOURCE.replace('"llm_usage_logs"', '"llm usage; drop"'), "sources[app].table",
                 id="bad table name"),
    pytest.param(TABLE_SOURCE.replace('url = "sqlite:///app.db"', 'url_env = "TT_TEST_SURELY_UNSET_URL"'),
                 "sources[app].url_env", id="url_env naming an unset variable"),
    pytest.param('[[pricing.overrides]]\nmodel = "m"\ninput_per_mtok = "abc"\noutput_per_mtok = "1"\n',
                 "pricing.overrides[0].input_per_mtok", id="price that is no amount"),
    pytest.param('[[pricing.overrides]]\nmodel = "m"\ninput_per_mtok = "1"\noutput_per_mtok = "-1"\n',
                 "pricing.overrides[0].output_per_mtok", id="negative price"),
    pytest.param('[[pricing.overrides]]\nmodel = "m"\ninput_per_mtok = "1"\noutput_per_mtok = "1"\n'
                 'effective_from = "soon"\n', "pricing.overrides[0].effective_from", id="bad effective date"),
    pytest.param('[tiers.student]\naction = "shout"\n', "tiers.student.action", id="bad tier action"),
    pytest.param('default_tier = "gold"\n[tiers.student]\n', "default_tier", id="default tier that is no tier"),
]


@pytest.mark.parametrize(("toml", "key"), BAD_SETTINGS)
def test_bad_settings_stop_a_command_at_start_with_exit_2_naming_the_key(cli, tmp_path, monkeypatch, toml, key):
    monkeypatch.delenv("TT_TEST_SURELY_UNSET_URL", raising=False)
    config = write(tmp_path / "bad.toml", toml)

    result = cli("accounts", "list", "--format", "json", config=config)

    assert result.exit_code == 2, result.output
    assert "settings:" in flat(result.output)
    assert key in flat(result.output)
    assert result.stdout == ""  # nothing was listed


def test_invalid_toml_stops_a_command_with_exit_2_naming_the_file(cli, tmp_path):
    config = write(tmp_path / "broken.toml", 'timezone = "UTC\n')

    result = cli("accounts", "list", config=config)

    assert result.exit_code == 2
    assert "broken.toml" in flat(result.output)
    assert "invalid TOML" in flat(result.output)


@pytest.mark.parametrize(("variable", "value", "key"), [
    ("TOKENTALLY_INGEST_BATCH_SIZE", "lots", "ingest.batch_size"),
    ("TOKENTALLY_INGEST_MAX_RECORD_BYTES", "-1", "ingest.max_record_bytes"),
    ("TOKENTALLY_TIMEZONE", "Nowhere/Land", "timezone"),
    ("TOKENTALLY_LOGGING_LEVEL", "CHATTY", "logging.level"),
])
def test_a_bad_value_from_the_environment_names_the_key(cli, tmp_path, variable, value, key):
    result = cli("accounts", "list", env={variable: value})

    assert result.exit_code == 2, result.output
    assert key in flat(result.output)


def test_an_unknown_source_name_for_ingest_exits_2_naming_it(cli, tmp_path):
    log = write(tmp_path / "usage.jsonl", '{"id": "a", "model": "m", "prompt_tokens": 1, "ts": 1790000000}\n')

    result = cli("ingest", log, "--source", "nosuch")

    assert result.exit_code == 2
    assert "nosuch" in flat(result.output)


def _run_entry_point(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The real `tokentally` entry point (cli.main) in a child process."""
    return subprocess.run([sys.executable, "-c", "from cli import main; main()", *args],
                          cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("schedule", "key"), [
    ('ingest = "every banana"', "schedule.ingest"),
    ('ingest = "61 * * * *"', "schedule.ingest"),
    ('no_such_job = "every 1m"', "schedule.no_such_job"),
])
def test_a_bad_schedule_stops_the_daemon_at_start_with_exit_2_naming_the_job(db_url, tmp_path, schedule, key):
    config = write(tmp_path / "schedule.toml", f"[schedule]\n{schedule}\n")

    done = _run_entry_point(["run"], tmp_path, {"TOKENTALLY_CONFIG": str(config),
                                                "TOKENTALLY_DATABASE_URL": db_url})

    assert done.returncode == 2, done.stderr
    assert key in flat(done.stderr)


def test_the_entry_point_exits_2_on_bad_settings(db_url, tmp_path):
    config = write(tmp_path / "bad.toml", 'colour = "blue"\n')

    done = _run_entry_point(["accounts", "list"], tmp_path, {"TOKENTALLY_CONFIG": str(config),
                                                             "TOKENTALLY_DATABASE_URL": db_url})

    assert done.returncode == 2
    assert "colour" in flat(done.stderr)


# --------------------------------------------------------------------------- which file


def tiers(default: str) -> str:
    return f'default_tier = "{default}"\n[tiers.student]\n[tiers.pro]\n[tiers.admin]\n'


def default_tier_shown(result) -> str:
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    return row["tier"]


@pytest.fixture
def untiered_account(cli, tmp_path):
    write(tmp_path / "accounts.csv", "account_id\nno-tier\n")
    result = cli("accounts", "import", "accounts.csv")
    assert result.exit_code == 0, result.output


def test_tokentally_config_picks_the_settings_file(cli, tmp_path, untiered_account):
    a = write(tmp_path / "a.toml", tiers("student"))
    b = write(tmp_path / "b.toml", tiers("pro"))

    assert default_tier_shown(cli("accounts", "list", "--format", "json", config=a)) == "student"
    assert default_tier_shown(cli("accounts", "list", "--format", "json", config=b)) == "pro"


def test_the_config_option_picks_the_settings_file_over_tokentally_config(cli, tmp_path, untiered_account):
    a = write(tmp_path / "a.toml", tiers("student"))
    b = write(tmp_path / "b.toml", tiers("pro"))

    result = cli("--config", b, "accounts", "list", "--format", "json", config=a)

    assert default_tier_shown(result) == "pro"


def test_without_config_or_tokentally_config_settings_toml_in_the_working_directory_is_read(
        cli, tmp_path, untiered_account):
    write(tmp_path / "settings.toml", tiers("admin"))

    result = cli("accounts", "list", "--format", "json", env={"TOKENTALLY_CONFIG": None})

    assert default_tier_shown(result) == "admin"


def test_a_config_file_that_does_not_exist_exits_2_naming_it(cli, tmp_path):
    result = cli("--config", tmp_path / "nowhere.toml", "accounts", "list")

    assert result.exit_code == 2
    assert "nowhere.toml" in flat(result.output)


# --------------------------------------------------------------------------- environment overrides


def test_tokentally_database_url_overrides_database_url_from_the_file(cli, tmp_path, engine):
    file_db = tmp_path / "from-file.db"
    config = write(tmp_path / "db.toml", f'[database]\nurl = "sqlite:///{file_db}"\n')
    write(tmp_path / "accounts.csv", "account_id\nvia-env\n")

    # The cli fixture sets TOKENTALLY_DATABASE_URL to the test database.
    result = cli("accounts", "import", "accounts.csv", config=config)

    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        assert session.scalars(select(Account.account_id)).all() == ["via-env"]
    assert not file_db.exists()


def test_without_tokentally_database_url_the_file_database_url_is_used(cli, tmp_path):
    file_db = tmp_path / "from-file.db"
    config = write(tmp_path / "db.toml", f'[database]\nurl = "sqlite:///{file_db}"\n')

    result = cli("accounts", "list", config=config, env={"TOKENTALLY_DATABASE_URL": None})

    # That database was never migrated: the error names it and asks for a migration.
    assert result.exit_code == 2
    assert "from-file.db" in "".join(result.output.split())
    assert "tokentally migrate" in flat(result.output)


def test_the_database_url_option_overrides_database_url_from_the_file(cli, tmp_path, db_url, engine):
    file_db = tmp_path / "from-file.db"
    config = write(tmp_path / "db.toml", f'[database]\nurl = "sqlite:///{file_db}"\n')
    write(tmp_path / "accounts.csv", "account_id\nvia-option\n")

    result = cli("--database-url", db_url, "accounts", "import", "accounts.csv", config=config,
                 env={"TOKENTALLY_DATABASE_URL": None})

    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        assert session.scalars(select(Account.account_id)).all() == ["via-option"]
    assert not file_db.exists()


def test_tokentally_timezone_overrides_timezone_from_the_file(cli, tmp_path):
    config = write(tmp_path / "tz.toml", 'timezone = "America/New_York"\n')

    result = cli("usage", "--from", "2026-10-01", "--to", "2026-10-31", "--format", "table", config=config,
                 env={"TOKENTALLY_TIMEZONE": "Europe/Berlin"})

    assert result.exit_code == 0, result.output
    assert "(Europe/Berlin)" in result.stdout
    assert "New_York" not in result.stdout


# --------------------------------------------------------------------------- help (no database involved)


def test_the_root_help_names_tokentally_database_url_and_tokentally_config():
    from cli import app

    result = CliRunner().invoke(app, ["--help"], env={"TOKENTALLY_CONFIG": None,
                                                      "TOKENTALLY_DATABASE_URL": None})

    assert result.exit_code == 0, result.output
    assert "TOKENTALLY_DATABASE_URL" in result.output
    assert "TOKENTALLY_CONFIG" in result.output
    assert "--config" in result.output and "--database-url" in result.output


@pytest.mark.parametrize(("env", "named"), [
    ({"TOKENTALLY_DATABASE_URL": "mysql://root:pw@127.0.0.1/app"}, "database.url"),
    ({"TOKENTALLY_DATABASE_URL": "garbage"}, "database.url"),
    ({"TOKENTALLY_INGEST_BATCHSIZE": "10"}, "TOKENTALLY_INGEST_BATCHSIZE"),
])
def test_a_bad_database_url_or_an_unknown_variable_exits_2_in_one_line(tmp_path, env, named):
    config = write(tmp_path / "empty.toml", "")

    done = _run_entry_point(["status"], tmp_path, {"TOKENTALLY_CONFIG": str(config), **env})

    assert done.returncode == 2, done.stderr
    assert named in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_status_on_a_sqlite_file_that_does_not_exist_says_so_and_creates_nothing(tmp_path):
    config = write(tmp_path / "empty.toml", "")
    missing = tmp_path / "nowhere" / "tokentally.db"

    done = _run_entry_point(["status"], tmp_path, {"TOKENTALLY_CONFIG": str(config),
                                                   "TOKENTALLY_DATABASE_URL": f"sqlite:///{missing}"})

    assert done.returncode == 2, done.stderr
    assert "does not exist" in done.stderr and "tokentally migrate" in done.stderr
    assert not missing.exists() and not missing.parent.exists()
