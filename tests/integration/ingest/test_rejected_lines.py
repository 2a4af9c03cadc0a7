"""Every rejected line keeps its own row, position and reason; `rejects list --format json` says which
raw bytes are base64; `rejects retry` goes on past a row that raises. Both databases."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from worker.models import IngestReject, UsageEvent

TS = "2026-10-30T12:00:00Z"
GOOD = json.dumps({"id": "ok", "occurred_at": TS, "prompt_tokens": 1}).encode()
HEADER = b"id,occurred_at,prompt_tokens"


def listed(cli) -> list[dict]:
    result = cli("rejects", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_repeated_identical_bad_lines_are_each_listed_with_their_own_position(cli, tmp_path: Path):
    path = tmp_path / "usage.jsonl"
    path.write_bytes(b'"just a string"\n' + GOOD + b'\n"just a string"\n"just a string"\n')

    ingested = json.loads(cli("ingest", path, "--format", "json").stdout)
    again = json.loads(cli("ingest", path, "--format", "json").stdout)

    assert (ingested["accepted"], ingested["rejected"]) == (1, 3)
    assert again["rejected"] == 3  # read again: counted, but each line still has one row
    assert [(r["position"], r["reason"], r["raw"]) for r in listed(cli)] == [
        (pos, "not a JSON object (got a string)", '"just a string"') for pos in (1, 3, 4)]


def test_rejects_list_as_json_tells_bytes_that_are_not_utf8_from_a_literal_backslash_x(cli, tmp_path: Path):
    path = tmp_path / "usage.jsonl"
    not_utf8, literal = b'{"name": "J\xf6rg"}', b'{"name": "J\\xf6rg"}'
    path.write_bytes(not_utf8 + b"\n" + literal + b"\n")
    cli("ingest", path)

    first, second = listed(cli)

    assert (first["raw_base64"], base64.b64decode(first["raw"])) == (True, not_utf8)
    assert (second["raw_base64"], second["raw"].encode()) == (False, literal)


def test_rejects_retry_goes_on_past_a_csv_row_over_the_csv_field_limit_and_reports_it(engine, cli):
    huge = b"big," + b"x" * 200_000 + b",1"
    fixable = GOOD  # valid today, quarantined by some older rule
    received = datetime(2026, 10, 1, tzinfo=UTC)
    rows = [("/in/a.csv", 2, huge, "csv", HEADER), ("/in/b.jsonl", 1, fixable, "jsonl", None)]
    with engine.begin() as conn:
        conn.execute(insert(IngestReject), [
            {"source": "cli", "location": loc, "position": pos, "reason": "old rule", "raw": raw,
             "raw_sha256": hashlib.sha256(raw).hexdigest(), "format": fmt, "header": header,
             "received_at": received, "status": "open"} for loc, pos, raw, fmt, header in rows])

    result = cli("rejects", "retry", "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"retried": 2, "accepted": 1, "duplicates": 0, "still_rejected": 1,
                                         "errors": 1}
    with engine.connect() as conn:
        still = conn.execute(select(IngestReject).where(IngestReject.status == "open")).all()
        ids = conn.execute(select(UsageEvent.event_id)).scalars().all()
    assert [(r.location, r.reason) for r in still] == [("/in/a.csv", "Error: field larger than field limit (131072)")]
    assert ids == ["ok"]


def test_rejects_retry_accepts_a_record_in_another_tools_shape_that_holds_several_calls(engine, cli):
    """An OTLP line (two GenAI spans) quarantined by an older rule: retried, both calls are booked."""
    def span(span_id: str, tokens: int) -> dict:
        return {"traceId": "t1", "spanId": span_id, "startTimeUnixNano": "1790856000000000000",
                "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                               {"key": "gen_ai.usage.input_tokens", "value": {"intValue": str(tokens)}}]}
    raw = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span("s1", 10), span("s2", 20)]}]}]}).encode()
    with engine.begin() as conn:
        conn.execute(insert(IngestReject), [{
            "source": "cli", "location": "/in/spans.jsonl", "position": 1, "reason": "old rule", "raw": raw,
            "raw_sha256": hashlib.sha256(raw).hexdigest(), "format": "jsonl", "header": None,
            "received_at": datetime(2026, 10, 1, tzinfo=UTC), "status": "open"}])

    result = cli("rejects", "retry", "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accepted"] == 2
    with engine.connect() as conn:
        booked = conn.execute(select(UsageEvent.event_id, UsageEvent.prompt_tokens).order_by(UsageEvent.event_id)).all()
        state = conn.execute(select(IngestReject.status, IngestReject.event_id)).one()
    assert [tuple(r) for r in booked] == [("t1-s1", 10), ("t1-s2", 20)]
    assert tuple(state) == ("accepted", "t1-s1")
