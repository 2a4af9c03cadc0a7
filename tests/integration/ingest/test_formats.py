"""Records in other tools' shapes, ingested end to end on SQLite and PostgreSQL.

Per format: the events and tokens per model the ledger holds after ingesting a file of
that shape (the fixtures in tests/unit/ingest/formats/fixtures.py cite each schema).
Then a file that mixes shapes line by line, the LiteLLM_SpendLogs table (DDL after
LiteLLM's schema.prisma / Prisma migration) as a kind = "table" source with the quoted
camelCase "startTime" cursor, and an id-less record read by two sources with different defaults.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
from sqlalchemy import Engine, select

from worker.ingest.ingestor import Ingestor
from worker.models import IngestReject, UsageEvent
from worker.settings import SettingsError
from tests.unit.ingest.formats import fixtures as fx

EVENTS = UsageEvent.__table__
COLUMNS = ("event_id", "occurred_at", "account_id", "tenant_id", "service", "provider", "model", "status",
           "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens", "cost_reported")


def ingest(settings, engine: Engine, path: Path, source=None):
    return Ingestor(settings, engine).ingest_paths([path], source)


def by_model(engine: Engine) -> dict[str, tuple[int, int, int, int, int]]:
    """model -> (events, prompt, completion, cached, reasoning)."""
    out: dict[str, list[int]] = {}
    with engine.connect() as conn:
        for r in conn.execute(select(EVENTS)):
            row = out.setdefault(r.model, [0, 0, 0, 0, 0])
            for i, v in enumerate((1, r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.reasoning_tokens)):
                row[i] += v
    return {m: tuple(v) for m, v in out.items()}


def rows(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {r.event_id: r for r in conn.execute(select(*(EVENTS.c[c] for c in COLUMNS)))}


def write(tmp_path: Path, name: str, *records: dict) -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(fx.line(r) for r in records))
    return path


def test_litellm_spend_logs_as_jsonl_are_booked_with_their_team_user_and_spend(make_settings, engine, tmp_path):
    two = dict(fx.LITELLM_ROW, request_id="chatcmpl-2", model_group="gpt", model="gpt-4o-mini",
               custom_llm_provider="openai", metadata={"usage_object": {"prompt_tokens_details": {"cached_tokens": 10}}})
    stats = ingest(make_settings(), engine, write(tmp_path, "spend.jsonl", fx.LITELLM_ROW, two))
    assert stats.accepted == 2
    ev = rows(engine)["chatcmpl-7f3a"]
    assert (ev.account_id, ev.tenant_id, ev.provider, ev.model, ev.cost_reported) == (
        "customer-42", "team-a", "anthropic", "sonnet", Decimal("0.00123"))
    assert by_model(engine) == {"sonnet": (1, 1200, 300, 800, 50), "gpt": (1, 1200, 300, 10, 0)}


def test_an_otlp_file_books_its_genai_spans_and_reports_the_others_as_skipped(make_settings, engine, tmp_path):
    stats = ingest(make_settings(), engine, write(tmp_path, "traces.jsonl", fx.OTLP_LINE))
    assert (stats.accepted, stats.rejected, stats.skipped) == (1, 0, 1)
    assert stats.as_dict()["skipped"] == 1
    ev = rows(engine)["5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174"]
    assert (ev.service, ev.account_id, ev.provider, ev.status) == ("support-bot", "u-7", "openai", "success")
    assert by_model(engine) == {"gpt-4o": (1, 1000, 200, 400, 0)}


def test_a_langfuse_page_books_its_generations_with_their_reported_cost(make_settings, engine, tmp_path):
    stats = ingest(make_settings(), engine, write(tmp_path, "langfuse.jsonl", fx.LANGFUSE_PAGE))
    assert (stats.accepted, stats.skipped) == (1, 1)
    assert rows(engine)["obs-1"].cost_reported == Decimal("0.00019")
    assert by_model(engine) == {"gpt-4o-mini": (1, 1000, 180, 400, 30)}


def test_a_helicone_csv_export_books_prompt_with_its_cache_tokens(make_settings, engine, tmp_path):
    cols = list(fx.HELICONE_ROW)
    path = tmp_path / "helicone.csv"
    cells = [json.dumps(v) if isinstance(v, dict) else str(v) for v in fx.HELICONE_ROW.values()]
    import csv, io
    buf = io.StringIO()
    csv.writer(buf).writerows([cols, cells, [c if k != "request_id" else "hc-2" for k, c in zip(cols, cells)]])
    path.write_text(buf.getvalue())
    stats = ingest(make_settings(), engine, path)
    assert stats.accepted == 2
    ev = rows(engine)["hc-1"]
    assert (ev.account_id, ev.provider, ev.total_tokens, ev.cost_reported) == ("u-3", "anthropic", 1050, Decimal("0.0021"))
    assert by_model(engine) == {"claude-3-5-sonnet-20241022": (2, 2000, 100, 1200, 0)}


def test_a_psql_csv_export_of_litellm_spend_logs_is_booked_like_its_rows(make_settings, engine, tmp_path):
    """``\\copy "LiteLLM_SpendLogs" TO 'spend.csv' CSV HEADER``: the table's own column names, its
    timestamp(3) without time zone as psql prints it (read as UTC, as ingest reads every time without
    an offset), JSON columns as JSON text, booleans as t/f and empty strings for the '' defaults."""
    import csv, io
    cols = ["request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens", "completion_tokens",
            "startTime", "endTime", "completionStartTime", "model", "model_id", "model_group",
            "custom_llm_provider", "api_base", "user", "metadata", "cache_hit", "cache_key", "request_tags",
            "team_id", "end_user", "requester_ip_address", "messages", "response", "session_id", "status",
            "proxy_server_request"]
    meta = json.dumps(fx.LITELLM_ROW["metadata"])
    first = ["chatcmpl-csv-1", "acompletion", fx.LITELLM_ROW["api_key"], "0.00123", "1500", "1200", "300",
             "2026-10-01 12:00:00", "2026-10-01 12:00:01.25", "", "claude-3-5-sonnet-20241022", "", "sonnet",
             "anthropic", "", "internal-user-1", meta, "False", "", "[]", "team-a", "customer-42", "", "{}", "{}",
             "", "success", "{}"]
    second = list(first)
    second[0], second[7], second[3] = "chatcmpl-csv-2", "2026-10-01 13:30:00.5", "0.0005"
    buf = io.StringIO()
    csv.writer(buf).writerows([cols, first, second])
    path = tmp_path / "spend.csv"
    path.write_text(buf.getvalue())
    stats = ingest(make_settings(), engine, path)
    assert (stats.accepted, stats.rejected) == (2, 0)
    got = rows(engine)
    ev = got["chatcmpl-csv-1"]
    assert (ev.account_id, ev.tenant_id, ev.provider, ev.model, ev.cost_reported) == (
        "customer-42", "team-a", "anthropic", "sonnet", Decimal("0.00123"))
    assert ev.occurred_at.isoformat() == "2026-10-01T12:00:00+00:00"
    assert got["chatcmpl-csv-2"].occurred_at.isoformat() == "2026-10-01T13:30:00.500000+00:00"
    assert by_model(engine) == {"sonnet": (2, 2400, 600, 1600, 100)}


@pytest.mark.parametrize("entity, scope, extra", [
    ("Team", "daily", ["Successful Requests", "Failed Requests", "Total Tokens", "Prompt Tokens", "Completion Tokens"]),
    ("Tag", "daily_with_models", ["Successful", "Failed", "Total Tokens"]),
])
def test_the_litellm_ui_usage_export_is_quarantined_as_daily_totals_never_booked_as_calls(
        make_settings, engine, tmp_path, entity, scope, extra):
    """LiteLLM's UI exports team or tag usage (``EntityUsageExport/utils.ts``: generateDailyData and
    generateDailyWithModelsData, the keys in that order, Papa.unparse's CSV; "Spend ($)" through
    formatNumberWithCommas, 4 places): a row is one day's totals for a team or tag."""
    import csv, io
    cols = ["Date", entity, f"{entity} ID", *(["Model"] if scope == "daily_with_models" else []), "Spend ($)",
            "Requests", *extra]
    day = ["2026-10-01", "search-team", "team-a", *(["gpt-4o"] if scope == "daily_with_models" else []),
           "1,234.5678", "1520", *["1500", "20", "880000", "800000", "80000"][:len(extra)]]
    buf = io.StringIO()
    csv.writer(buf).writerows([cols, day, [c if c != "2026-10-01" else "2026-10-02" for c in day]])
    path = tmp_path / f"{entity.lower()}_usage_{scope}_2026-10-03.csv"
    path.write_text(buf.getvalue())
    stats = ingest(make_settings(), engine, path)
    assert (stats.accepted, stats.rejected) == (0, 2)
    assert rows(engine) == {}
    with engine.connect() as conn:
        reasons = [r.reason for r in conn.execute(select(IngestReject.__table__).order_by(IngestReject.__table__.c.id))]
    assert reasons == [f"a LiteLLM usage export row ({d}: one day's totals for a team or tag, 1520 requests), not a "
                       f"call; ingest the spend logs (LiteLLM_SpendLogs or /spend/logs) instead"
                       for d in ("2026-10-01", "2026-10-02")]


def test_openai_objects_and_batch_lines_are_booked_with_their_nested_details(make_settings, engine, tmp_path):
    stats = ingest(make_settings(), engine, write(tmp_path, "openai.jsonl", fx.OPENAI_CHAT, fx.OPENAI_RESPONSE,
                                                   fx.OPENAI_BATCH_LINE, fx.OPENAI_BATCH_FAILED))
    assert (stats.accepted, stats.rejected, stats.skipped) == (3, 0, 1)
    assert set(rows(engine)) == {"chatcmpl-abc123", "resp_67ccd2bed1ec8190", "batch_req_123"}
    assert by_model(engine) == {"gpt-4o-2024-08-06": (2, 4000, 1000, 2048, 256), "o3-mini": (1, 300, 900, 100, 800)}


def test_anthropic_messages_are_booked_with_the_cache_inside_the_prompt(make_settings, engine, tmp_path):
    stats = ingest(make_settings(), engine, write(tmp_path, "anthropic.jsonl", fx.ANTHROPIC_MESSAGE,
                                                   fx.APP_NESTED_ANTHROPIC, fx.APP_FLAT_ANTHROPIC))
    assert stats.accepted == 3
    assert by_model(engine) == {"claude-sonnet-4-20250514": (1, 10050, 400, 8000, 0),
                                "claude-3-5-haiku-20241022": (2, 200, 12, 140, 0)}
    assert {r.provider for r in rows(engine).values()} == {"anthropic"}


def test_a_file_that_mixes_shapes_line_by_line_books_each_line_in_its_own_shape(make_settings, engine, tmp_path):
    canonical = {"event_id": "c-1", "occurred_at": "2026-10-01T12:00:00Z", "model": "gpt-4o-mini",
                 "prompt_tokens": 10, "completion_tokens": 2}
    path = write(tmp_path, "mixed.jsonl", canonical, fx.LITELLM_ROW, fx.OTLP_LINE, fx.LANGFUSE_PAGE, fx.HELICONE_ROW,
                 fx.OPENAI_CHAT, fx.ANTHROPIC_MESSAGE, fx.APP_NESTED_OPENAI, {"not": "usage"})
    stats = ingest(make_settings(), engine, path)
    assert (stats.accepted, stats.skipped, stats.rejected) == (8, 2, 1)
    assert set(rows(engine)) == {"c-1", "chatcmpl-7f3a", "5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174",
                                 "obs-1", "hc-1", "chatcmpl-abc123", "msg_013Zva2CMHLNnXjNJJKqJ2EF", "app-2"}
    assert rows(engine)["msg_013Zva2CMHLNnXjNJJKqJ2EF"].prompt_tokens == 10050


def test_a_source_format_that_is_not_known_is_refused_naming_the_key(make_settings):
    with pytest.raises(SettingsError, match=r"sources\[x\]\.format"):
        make_settings('[[sources]]\nname = "x"\nkind = "jsonl"\npath = "a/*.jsonl"\nformat = "splunk"\n')


def test_a_source_with_a_format_reads_its_files_in_that_shape(make_settings, engine, tmp_path):
    (tmp_path / "in").mkdir()
    write(tmp_path / "in", "a.jsonl", fx.HELICONE_ROW)
    settings = make_settings(f'[[sources]]\nname = "hc"\nkind = "jsonl"\npath = "{tmp_path}/in/*.jsonl"\nformat = "helicone"\n')
    stats = Ingestor(settings, engine).ingest_source(settings.sources[0])
    assert stats.accepted == 1 and rows(engine)["hc-1"].prompt_tokens == 1000


def test_an_id_less_record_read_by_two_sources_with_different_defaults_is_booked_once(make_settings, engine, tmp_path):
    record = {"occurred_at": "2026-10-01T12:00:00Z", "prompt_tokens": 10, "completion_tokens": 2}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write(tmp_path / name, "x.jsonl", record)
    settings = make_settings("".join(
        f'[[sources]]\nname = "{n}"\nkind = "jsonl"\npath = "{tmp_path}/{n}/*.jsonl"\n'
        f'defaults = {{ model = "{m}", service = "{s}" }}\n' for n, m, s in (("a", "gpt-4o", "x"), ("b", "grok-2", "y"))))
    first = Ingestor(settings, engine).ingest_source(settings.sources[0])
    second = Ingestor(settings, engine).ingest_source(settings.sources[1])
    assert (first.accepted, second.accepted, second.duplicates) == (1, 0, 1)
    assert len(rows(engine)) == 1


# --------------------------------------------------------------------------- LiteLLM's own table

SPEND_LOGS_DDL = '''
CREATE TABLE "LiteLLM_SpendLogs" (
    "request_id" TEXT NOT NULL, "call_type" TEXT NOT NULL, "api_key" TEXT NOT NULL DEFAULT '',
    "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0, "total_tokens" INTEGER NOT NULL DEFAULT 0,
    "prompt_tokens" INTEGER NOT NULL DEFAULT 0, "completion_tokens" INTEGER NOT NULL DEFAULT 0,
    "startTime" TIMESTAMP(3) NOT NULL, "endTime" TIMESTAMP(3) NOT NULL, "completionStartTime" TIMESTAMP(3),
    "model" TEXT NOT NULL DEFAULT '', "model_id" TEXT DEFAULT '', "model_group" TEXT DEFAULT '',
    "custom_llm_provider" TEXT DEFAULT '', "api_base" TEXT DEFAULT '', "user" TEXT DEFAULT '',
    "metadata" JSONB DEFAULT '{}', "cache_hit" TEXT DEFAULT '', "cache_key" TEXT DEFAULT '',
    "request_tags" JSONB DEFAULT '[]', "team_id" TEXT, "end_user" TEXT, "requester_ip_address" TEXT,
    "messages" JSONB DEFAULT '{}', "response" JSONB DEFAULT '{}', "session_id" TEXT, "status" TEXT,
    "proxy_server_request" JSONB DEFAULT '{}',
    CONSTRAINT "LiteLLM_SpendLogs_pkey" PRIMARY KEY ("request_id"));
CREATE INDEX "LiteLLM_SpendLogs_startTime_idx" ON "LiteLLM_SpendLogs"("startTime");
'''


@pytest.fixture
def litellm_db(pg_server_url: str) -> Iterator[str]:
    """A PostgreSQL database of the proxy's own, created here, holding LiteLLM_SpendLogs."""
    name = f"litellm_{uuid.uuid4().hex[:8]}"
    admin = pg_server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rpartition("/")[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SPEND_LOGS_DDL)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _insert_spend_log(url: str, request_id: str, start: str) -> None:
    row = dict(fx.LITELLM_ROW, request_id=request_id, startTime=start, endTime=start)
    cols = [c for c in row]
    values = [json.dumps(v) if isinstance(v, (dict, list)) else v for v in row.values()]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'INSERT INTO "LiteLLM_SpendLogs" ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
                     f'VALUES ({", ".join(["%s"] * len(cols))})', values)


def test_the_litellm_spend_logs_table_is_polled_by_its_quoted_camelcase_start_time(make_settings, engine, litellm_db):
    _insert_spend_log(litellm_db, "r-1", "2026-10-01 12:00:00")
    _insert_spend_log(litellm_db, "r-2", "2026-10-01 12:05:00")
    settings = make_settings(f'[[sources]]\nname = "proxy"\nkind = "table"\nurl = "{litellm_db}"\n'
                             f'table = "LiteLLM_SpendLogs"\ncursor_column = "startTime"\nformat = "litellm"\n')
    source = settings.sources[0]
    first = Ingestor(settings, engine).ingest_source(source)
    _insert_spend_log(litellm_db, "r-3", "2026-10-01 12:10:00")
    second = Ingestor(settings, engine).ingest_source(source)
    assert (first.accepted, second.accepted) == (2, 1)
    ev = rows(engine)["r-3"]
    assert (ev.account_id, ev.tenant_id, ev.model, ev.cached_tokens, ev.reasoning_tokens) == ("customer-42", "team-a", "sonnet", 800, 50)
    assert ev.occurred_at.replace(tzinfo=None).isoformat() == "2026-10-01T12:10:00"
    assert by_model(engine) == {"sonnet": (3, 3600, 900, 2400, 150)}


def test_the_project_comes_from_litellm_key_metadata_and_langfuse_project_id(make_settings, engine, tmp_path):
    """LiteLLM SpendLogsMetadata.user_api_key_project_id; Langfuse ObservationV2.projectId."""
    row = dict(fx.LITELLM_ROW, metadata={**fx.LITELLM_ROW["metadata"], "user_api_key_project_id": "proj-ll",
                                         "user_api_key_project_alias": "search-app"})
    page = dict(fx.LANGFUSE_PAGE, data=[dict(fx.LANGFUSE_PAGE["data"][0], projectId="proj-lf")])
    stats = ingest(make_settings(), engine, write(tmp_path, "p.jsonl", row, page))
    assert stats.accepted == 2
    with engine.connect() as conn:
        got = {r.event_id: (r.project_id, (r.metadata or {}).get("user_api_key_project_alias"))
               for r in conn.execute(select(EVENTS))}
    assert got == {"chatcmpl-7f3a": ("proj-ll", "search-app"), "obs-1": ("proj-lf", None)}
