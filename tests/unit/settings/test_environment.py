"""TOKENTALLY_* variables are settings: one that names no setting, or a value out of bounds, stops
tokentally at start with the name shown, as unknown keys in settings.toml do."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.settings import SettingsError, load


def _load(tmp_path: Path, toml: str = "", **env: str):
    path = tmp_path / "settings.toml"
    path.write_text(toml, encoding="utf-8")
    return load(path, env=env)


def test_a_variable_that_names_no_setting_is_refused_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="TOKENTALLY_INGEST_BATCHSIZE"):
        _load(tmp_path, TOKENTALLY_INGEST_BATCHSIZE="100")


def test_variables_that_name_settings_are_taken(tmp_path: Path) -> None:
    settings = _load(tmp_path, TOKENTALLY_INGEST_BATCH_SIZE="100", TOKENTALLY_TIMEZONE="Europe/Berlin",
                     TOKENTALLY_CONFIG="ignored-here", TOKENTALLY_TEST_PG="postgresql://x@127.0.0.1/test")
    assert settings.ingest_batch_size == 100 and settings.timezone == "Europe/Berlin"


def test_a_secret_for_a_channel_the_file_does_not_configure_is_not_a_typo(tmp_path: Path) -> None:
    settings = _load(tmp_path, TOKENTALLY_CHANNELS_SLACK_TOKEN="xoxb-1",
                     TOKENTALLY_RECONCILE_OPENAI_API_KEY="sk-admin")
    assert "slack" not in settings.channels  # known names, but not configured by them alone


def test_a_misspelt_channel_variable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="TOKENTALLY_CHANNELS_SLACK_TOKN"):
        _load(tmp_path, TOKENTALLY_CHANNELS_SLACK_TOKN="xoxb-1")


def test_a_table_sources_url_env_names_a_variable_of_its_own(tmp_path: Path) -> None:
    toml = ('[[sources]]\nname = "app"\nkind = "table"\nurl_env = "TOKENTALLY_APP_DB"\n'
            'table = "llm_usage_logs"\ncursor_column = "id"\n')
    settings = _load(tmp_path, toml, TOKENTALLY_APP_DB="sqlite:///app.db")
    assert settings.source("app").url == "sqlite:///app.db"


@pytest.mark.parametrize(("env", "key"), [
    ({"TOKENTALLY_INGEST_BATCH_SIZE": "99999999999999999999"}, "ingest.batch_size"),
    ({"TOKENTALLY_INGEST_SETTLE_SECONDS": "-1"}, "ingest.settle_seconds"),
    ({"TOKENTALLY_SUMMARIES_SETTLE_HOURS": "1000000"}, "summaries.settle_hours"),
])
def test_numbers_out_of_bounds_are_refused_naming_the_key(tmp_path: Path, env: dict[str, str], key: str) -> None:
    with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
        _load(tmp_path, **env)


def test_a_huge_batch_size_in_the_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"ingest\.batch_size"):
        _load(tmp_path, "[ingest]\nbatch_size = 9999999999999999\n")


@pytest.mark.parametrize("url", ["mysql://root:hunter2@db/app", "garbage", "redis://127.0.0.1"])
def test_a_database_url_tokentally_cannot_use_is_refused_without_showing_it(tmp_path: Path, url: str) -> None:
    with pytest.raises(SettingsError, match=r"database\.url") as caught:
        _load(tmp_path, TOKENTALLY_DATABASE_URL=url)
    assert "hunter2" not in str(caught.value) and url not in str(caught.value)
