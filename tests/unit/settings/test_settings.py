"""Settings: settings.toml plus TOKENTALLY_* overrides; every failure names the key."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from worker.settings import Settings, SettingsError, load

SHIPPED = Path(__file__).resolve().parents[3] / "settings.toml"

SOURCE = """
[[sources]]
name = "inbox"
kind = "jsonl"
path = "var/inbox/*.jsonl"
"""


@pytest.fixture
def write(tmp_path: Path):
    def factory(text: str) -> Path:
        path = tmp_path / f"settings-{uuid.uuid4().hex[:6]}.toml"
        path.write_text(text, encoding="utf-8")
        return path
    return factory


def load_text(write, text: str, env: dict[str, str] | None = None) -> Settings:
    return load(write(text), env=env or {})


def error_for(write, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(SettingsError) as info:
        load_text(write, text, env)
    return str(info.value)


# --------------------------------------------------------------------------- the shipped file

def test_the_shipped_settings_file_loads():
    settings = load(SHIPPED, env={})
    assert settings.timezone == "UTC"
    assert settings.database_url == "sqlite:///var/tokentally.db"
    assert [s.name for s in settings.sources] == ["inbox"]
    assert settings.sources[0].kind == "jsonl"
    assert settings.default_tier == "student"
    assert set(settings.tiers) == {"student", "lesson_builder", "admin", "super_admin"}
    assert settings.tiers["student"].daily_cost_usd == Decimal("0.05")
    assert settings.tiers["lesson_builder"].action == "block"
    assert settings.schedule["ingest"] == "every 1m"
    assert (settings.ingest_max_record_bytes, settings.ingest_batch_bytes) == (1 << 20, 16 << 20)
    assert settings.sources[0].follow_symlinks is False
    assert settings.config_path == SHIPPED


def test_an_empty_file_gives_the_defaults(write):
    settings = load_text(write, "")
    assert settings.timezone == "UTC"
    assert settings.database_url == "sqlite:///var/tokentally.db"
    assert settings.ingest_batch_size == 5000
    assert (settings.ingest_max_record_bytes, settings.ingest_batch_bytes) == (1 << 20, 16 << 20)
    assert (settings.sources, settings.price_overrides, settings.tiers) == ((), (), {})
    assert settings.default_tier is None


# --------------------------------------------------------------------------- unknown keys

@pytest.mark.parametrize(("text", "key"), [
    ("colour = 'blue'\n", "colour"),
    ("[database]\nurl = 'sqlite://'\npool = 5\n", "database.pool"),
    (SOURCE + "colour = 'blue'\n", "sources[inbox].colour"),
    ("[tiers.student]\ndaily_tokens = 10\ncolour = 'blue'\n", "tiers.student.colour"),
    ("[ingest]\nbatchsize = 10\n", "ingest.batchsize"),
    ("[pricing]\ncurrency = 'EUR'\n", "pricing.currency"),
    ("[[pricing.overrides]]\nmodel = 'm'\ninput_per_mtok = '1'\noutput_per_mtok = '1'\nper_call = '1'\n",
     "pricing.overrides[0].per_call"),
    (SOURCE + "defaults = { colour = 'blue' }\n", "sources[inbox].defaults.colour"),
], ids=["top-level", "database", "source", "tier", "ingest", "pricing", "override", "source-defaults"])
def test_an_unknown_key_is_an_error_naming_the_key(write, text: str, key: str):
    assert key in error_for(write, text)


# --------------------------------------------------------------------------- wrong types

@pytest.mark.parametrize(("text", "key"), [
    ("timezone = 5\n", "timezone"),
    ("[database]\nurl = 1\n", "database.url"),
    ("[ingest]\nbatch_size = 'many'\n", "ingest.batch_size"),
    ("[ingest]\nbatch_size = true\n", "ingest.batch_size"),
    ("[ingest]\nbatch_size = 1.5\n", "ingest.batch_size"),
    ("[ingest]\nbatch_size = 0\n", "ingest.batch_size"),
    (SOURCE + "enabled = 'yes'\n", "sources[inbox].enabled"),
    (SOURCE + "defaults = { model = 7 }\n", "sources[inbox].defaults.model"),
    ("[tiers.student]\ndaily_tokens = 'lots'\n", "tiers.student.daily_tokens"),
    ("[tiers.student]\naction = 'shout'\n", "tiers.student.action"),
    ("[tiers.student]\nwarn_at = ['half']\n", "tiers.student.warn_at"),
    ("database = 'sqlite://'\n", "database"),
    ("[logging]\nlevel = 'LOUD'\n", "logging.level"),
], ids=lambda v: v if isinstance(v, str) and "\n" not in v else None)
def test_a_wrong_type_is_an_error_naming_the_key(write, text: str, key: str):
    message = error_for(write, text)
    assert re.match(rf"^{re.escape(key)}\b", message), message


def test_a_bad_timezone_is_an_error_naming_the_key(write):
    message = error_for(write, "timezone = 'Mars/Olympus_Mons'\n")
    assert message.startswith("timezone")
    assert "Mars/Olympus_Mons" in message


def test_a_good_timezone_is_kept(write):
    assert load_text(write, "timezone = 'Europe/Berlin'\n").tz.key == "Europe/Berlin"


def test_invalid_toml_is_a_settings_error(write):
    assert "invalid TOML" in error_for(write, "timezone = \n")


def test_a_missing_config_file_is_a_settings_error(tmp_path: Path):
    with pytest.raises(SettingsError, match="does not exist"):
        load(tmp_path / "nope.toml", env={})


# --------------------------------------------------------------------------- sources

def test_a_bad_source_kind_is_an_error_naming_the_key(write):
    message = error_for(write, "[[sources]]\nname = 'x'\nkind = 'parquet'\npath = 'a'\n")
    assert message.startswith("sources[x].kind")
    assert "parquet" in message


def test_a_file_source_needs_a_path(write):
    assert error_for(write, "[[sources]]\nname = 'x'\nkind = 'csv'\n").startswith("sources[x].path")


def test_a_source_needs_a_name(write):
    assert error_for(write, "[[sources]]\nkind = 'csv'\npath = 'a'\n").startswith("sources[0].name")


def test_a_table_source_without_a_url_is_an_error_naming_the_key(write):
    message = error_for(write, "[[sources]]\nname = 'app'\nkind = 'table'\ntable = 'llm_usage_logs'\n"
                               "cursor_column = 'id'\n")
    assert message.startswith("sources[app].url")


def test_url_env_naming_an_unset_variable_is_an_error_naming_it(write, monkeypatch):
    var = f"TOKENTALLY_TEST_UNSET_{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.delenv(var, raising=False)
    message = error_for(write, f"[[sources]]\nname = 'app'\nkind = 'table'\nurl_env = '{var}'\n"
                               "table = 'llm_usage_logs'\ncursor_column = 'id'\n")
    assert message.startswith("sources[app].url_env")
    assert var in message


def test_url_env_is_read_from_the_environment_given_to_load(write, monkeypatch):
    var = f"TOKENTALLY_TEST_APP_URL_{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.delenv(var, raising=False)
    settings = load_text(write, f"[[sources]]\nname = 'app'\nkind = 'table'\nurl_env = '{var}'\n"
                                "table = 'llm_usage_logs'\ncursor_column = 'id'\n",
                         env={var: "postgresql://app@db/app"})
    assert settings.source("app").url == "postgresql://app@db/app"


def test_a_table_source_is_read_whole(write):
    settings = load_text(write, "[[sources]]\nname = 'app'\nkind = 'table'\nurl = 'sqlite:///app.db'\n"
                                "table = 'public.llm_usage_logs'\ncursor_column = 'created_at'\n"
                                "cursor_overlap = '5m'\nbatch_size = 100\nevent_id_namespace = 'app'\n"
                                "defaults = { provider = 'groq' }\n")
    src = settings.source("app")
    assert (src.kind, src.url, src.table, src.cursor_column) == (
        "table", "sqlite:///app.db", "public.llm_usage_logs", "created_at")
    assert src.cursor_overlap == timedelta(minutes=5)
    assert (src.batch_size, src.event_id_namespace, src.defaults) == (100, "app", {"provider": "groq"})


def test_a_bad_table_name_is_an_error_naming_the_key(write):
    message = error_for(write, "[[sources]]\nname = 'app'\nkind = 'table'\nurl = 'sqlite://'\n"
                               "table = 'logs; drop table x'\ncursor_column = 'id'\n")
    assert message.startswith("sources[app].table")


def test_duplicate_source_names_are_an_error(write):
    message = error_for(write, SOURCE + SOURCE.replace("jsonl\"", "csv\""))
    assert message.startswith("sources")
    assert "duplicate" in message and "inbox" in message


def test_asking_for_an_unconfigured_source_names_the_configured_ones(write):
    settings = load_text(write, SOURCE)
    with pytest.raises(SettingsError, match="inbox"):
        settings.source("other")


# --------------------------------------------------------------------------- environment

def test_the_database_url_comes_from_the_environment(write):
    settings = load_text(write, "[database]\nurl = 'sqlite:///file.db'\n",
                         env={"TOKENTALLY_DATABASE_URL": "postgresql+psycopg://pg@127.0.0.1/tt"})
    assert settings.database_url == "postgresql+psycopg://pg@127.0.0.1/tt"


def test_an_environment_override_works_without_the_section_in_the_file(write):
    settings = load_text(write, "", env={"TOKENTALLY_DATABASE_URL": "sqlite:///env.db"})
    assert settings.database_url == "sqlite:///env.db"


def test_the_ingest_batch_size_comes_from_the_environment_as_an_integer(write):
    settings = load_text(write, "[ingest]\nbatch_size = 10\n", env={"TOKENTALLY_INGEST_BATCH_SIZE": "250"})
    assert settings.ingest_batch_size == 250


def test_a_bad_integer_from_the_environment_names_the_key(write):
    message = error_for(write, "", env={"TOKENTALLY_INGEST_BATCH_SIZE": "lots"})
    assert message.startswith("ingest.batch_size")
    assert "lots" in message


def test_a_file_variant_reads_the_value_from_a_file(write, tmp_path: Path):
    secret = tmp_path / "db-url"
    secret.write_text("postgresql://secret@db/tt\n", encoding="utf-8")
    settings = load_text(write, "", env={"TOKENTALLY_DATABASE_URL_FILE": str(secret)})
    assert settings.database_url == "postgresql://secret@db/tt"


def test_a_file_variant_naming_a_missing_file_names_the_key(write, tmp_path: Path):
    message = error_for(write, "", env={"TOKENTALLY_DATABASE_URL_FILE": str(tmp_path / "missing")})
    assert message.startswith("database.url")


def test_the_plain_variable_wins_over_the_file_variant(write, tmp_path: Path):
    secret = tmp_path / "db-url"
    secret.write_text("sqlite:///from-file.db", encoding="utf-8")
    settings = load_text(write, "", env={"TOKENTALLY_DATABASE_URL": "sqlite:///from-env.db",
                                         "TOKENTALLY_DATABASE_URL_FILE": str(secret)})
    assert settings.database_url == "sqlite:///from-env.db"


def test_the_timezone_comes_from_the_environment_and_is_checked(write):
    assert load_text(write, "", env={"TOKENTALLY_TIMEZONE": "Asia/Kolkata"}).timezone == "Asia/Kolkata"
    assert error_for(write, "", env={"TOKENTALLY_TIMEZONE": "Nowhere/Land"}).startswith("timezone")


# --------------------------------------------------------------------------- tiers

def test_default_tier_must_be_a_configured_tier(write):
    message = error_for(write, "default_tier = 'gold'\n[tiers.student]\ndaily_tokens = 10\n")
    assert message.startswith("default_tier")
    assert "gold" in message


def test_a_tier_is_read_with_decimal_costs(write):
    settings = load_text(write, "default_tier = 'student'\n[tiers.student]\ndaily_tokens = 10000\n"
                                "daily_cost_usd = '0.05'\nmonthly_cost_usd = 2\nrequests_per_minute = 5\n"
                                "action = 'block'\nwarn_at = [1.0, 0.5]\n")
    tier = settings.tiers["student"]
    assert (tier.daily_tokens, tier.requests_per_minute, tier.action) == (10000, 5, "block")
    assert tier.daily_cost_usd == Decimal("0.05") and isinstance(tier.daily_cost_usd, Decimal)
    assert tier.monthly_cost_usd == Decimal(2)
    assert tier.warn_at == (0.5, 1.0)


def test_a_negative_tier_cost_names_the_key(write):
    assert error_for(write, "[tiers.student]\ndaily_cost_usd = '-1'\n").startswith("tiers.student.daily_cost_usd")


# --------------------------------------------------------------------------- price overrides

OVERRIDE = """
[[pricing.overrides]]
model = "llama-3.1-70b-versatile"
provider = "groq"
input_per_mtok = "{input}"
output_per_mtok = "0.79"
cached_input_per_mtok = "0.30"
effective_from = "2025-01-01"
"""


def test_price_override_amounts_become_decimals(write):
    settings = load_text(write, OVERRIDE.format(input="0.59"))
    (ov,) = settings.price_overrides
    assert (ov.model, ov.provider) == ("llama-3.1-70b-versatile", "groq")
    assert ov.input_per_mtok == Decimal("0.59") and isinstance(ov.input_per_mtok, Decimal)
    assert ov.output_per_mtok == Decimal("0.79")
    assert ov.cached_input_per_mtok == Decimal("0.30")
    assert ov.effective_from == date(2025, 1, 1)


def test_a_price_override_accepts_numbers_and_a_toml_date(write):
    settings = load_text(write, "[[pricing.overrides]]\nmodel = 'm'\ninput_per_mtok = 0.59\n"
                                "output_per_mtok = 2\neffective_from = 2025-03-04\n")
    (ov,) = settings.price_overrides
    assert ov.input_per_mtok == Decimal("0.59")  # not the binary float 0.58999...
    assert ov.output_per_mtok == Decimal(2)
    assert ov.effective_from == date(2025, 3, 4)
    assert ov.cached_input_per_mtok is None and ov.provider is None


@pytest.mark.parametrize("amount", ["-0.59", "abc", "NaN", "Infinity", ""])
def test_a_negative_or_non_numeric_override_amount_names_the_key(write, amount: str):
    assert error_for(write, OVERRIDE.format(input=amount)).startswith("pricing.overrides[0].input_per_mtok")


def test_an_override_without_a_price_names_the_key(write):
    message = error_for(write, "[[pricing.overrides]]\nmodel = 'm'\noutput_per_mtok = '1'\n")
    assert message.startswith("pricing.overrides[0].input_per_mtok")


def test_a_bad_override_date_names_the_key(write):
    message = error_for(write, OVERRIDE.format(input="1").replace("2025-01-01", "next tuesday"))
    assert message.startswith("pricing.overrides[0].effective_from")


def test_the_pricing_fingerprint_changes_with_the_overrides(write):
    one = load_text(write, OVERRIDE.format(input="0.59"))
    same = load_text(write, OVERRIDE.format(input="0.59"))
    other = load_text(write, OVERRIDE.format(input="0.60"))
    assert one.pricing_fingerprint() == same.pricing_fingerprint()
    assert one.pricing_fingerprint() != other.pricing_fingerprint()
