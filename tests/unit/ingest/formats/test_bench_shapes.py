"""The benchmark's records (worker.bench_data): every shape carries the same calls, so `bench ingest
--format X` compares like with like, and OTLP lines holding several spans read as the same calls."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from worker.bench_data import generate
from worker.ingest.normalise import Normaliser


def _calls(path: Path) -> list[tuple]:
    norm = Normaliser()
    out = []
    for line in path.read_bytes().splitlines():
        got = norm.normalise(orjson.loads(line))
        for ev in got if isinstance(got, list) else [got]:
            out.append((ev.occurred_at, ev.account_id, ev.status, ev.prompt_tokens, ev.completion_tokens,
                        ev.cached_tokens, ev.latency_ms))
    return out


@pytest.mark.parametrize("shape", ["litellm", "otel"])
def test_each_shape_carries_the_canonical_calls_with_their_latency(tmp_path, shape):
    generate(tmp_path / "canonical.jsonl", 70, shape="canonical")
    generate(tmp_path / f"{shape}.jsonl", 70, shape=shape)
    canonical, other = _calls(tmp_path / "canonical.jsonl"), _calls(tmp_path / f"{shape}.jsonl")
    assert len(canonical) == 70  # 70: occurred_at with fractions of a second
    assert other == canonical  # a LiteLLM row's endTime and a span's endTimeUnixNano give the same latency
    assert all(latency >= 100 for *_, latency in other)


def test_otel_lines_hold_spans_per_line_calls_grouped_by_service(tmp_path):
    generate(tmp_path / "one.jsonl", 50, shape="otel")
    generate(tmp_path / "batched.jsonl", 50, shape="otel", spans_per_line=16)
    lines = (tmp_path / "batched.jsonl").read_bytes().splitlines()
    assert len(lines) == 4  # 16 + 16 + 16 + 2
    first = orjson.loads(lines[0])["resourceSpans"]
    services = [rs["resource"]["attributes"][0]["value"]["stringValue"] for rs in first]
    assert len(services) == len(set(services)) > 1  # one resourceSpans per service in the export
    assert sum(len(rs["scopeSpans"][0]["spans"]) for rs in first) == 16
    assert sorted(_calls(tmp_path / "batched.jsonl")) == sorted(_calls(tmp_path / "one.jsonl"))
