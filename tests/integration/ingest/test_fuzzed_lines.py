"""Byte-level fuzz of JSONL and CSV lines through the ingest loop, on both databases: every line is
accepted, rejected or a duplicate, and no file fails."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.fuzz import campaign, fuzz_line, write_lines
from worker.ingest.ingestor import Ingestor
from worker.settings import SourceSettings

FUZZ = settings(max_examples=15, database=None, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# A line: raw bytes (never a line break, never blank), or a generated record, maybe damaged.
RAW = st.binary(min_size=1, max_size=60).map(lambda b: b.replace(b"\n", b" ").replace(b"\r", b" ")).filter(
    lambda b: b.strip() != b"")
GENERATED = st.integers(min_value=0, max_value=2**32).map(lambda seed: fuzz_line(random.Random(seed), 10))
GENERATED_CSV = st.integers(min_value=0, max_value=2**32).map(lambda seed: fuzz_line(random.Random(seed), 10, "csv"))


# A raw CSV line: no quotes, and not a row of blank cells only (",", " , "), which the reader takes for
# a blank line, as it takes a blank JSONL line: neither is a record.
RAW_CSV = RAW.map(lambda b: b.replace(b'"', b"'")).filter(lambda b: b.replace(b",", b" ").strip() != b"")


@pytest.mark.parametrize("kind,lines", [("jsonl", st.lists(RAW | GENERATED, min_size=1, max_size=30)),
                                        ("csv", st.lists(GENERATED_CSV | RAW_CSV, min_size=1, max_size=30))])
def test_every_fuzzed_line_is_accepted_rejected_or_a_duplicate(engine, make_settings, tmp_path: Path,
                                                               kind: str, lines):
    ingestor = Ingestor(make_settings(), engine)
    source = SourceSettings(name="fuzz", kind=kind, format="canonical")

    @FUZZ
    @given(lines=lines)
    def check(lines: list[bytes]) -> None:
        path = tmp_path / f"{uuid.uuid4().hex}.{kind}"
        write_lines(path, lines, kind)
        stats = ingestor.ingest_paths([path], source)
        assert stats.errors == []
        assert stats.accepted + stats.rejected + stats.duplicates + stats.attempts == len(lines)

    check()


def test_a_short_fuzz_campaign_has_no_crashes_and_accounts_for_every_record(engine, make_settings):
    result = campaign(make_settings(), engine, 2_000, seed=7)

    assert (result.records, result.crashes, result.errors) == (2_000, 0, [])
    assert result.accepted + result.rejected + result.duplicates + result.attempts == 2_000
    assert result.accepted and result.rejected and result.duplicates
