import json
from pathlib import Path


def test_reingesting_a_file_counts_duplicates_and_adds_nothing(cli, tmp_path: Path):
    log = tmp_path / "usage.jsonl"
    log.write_text(
        '{"id": "a1", "user_id": "u1", "model": "gpt-4o-mini", "prompt_tokens": 10, "completion_tokens": 5,'
        ' "created_at": "2026-10-30T12:00:00Z"}\n'
        '{"id": "a2", "user_id": "u1", "model": "gpt-4o-mini", "prompt_tokens": 10, "completion_tokens": 5,'
        ' "created_at": "2026-10-30T12:01:00Z"}\n'
    )
    first = cli("ingest", log, "--format", "json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {"files": 1, "accepted": 2, "duplicates": 0, "rejected": 0,
                                        "unattributed": 0, "unpriced": 0}
    second = cli("ingest", log, "--format", "json")
    assert json.loads(second.stdout)["duplicates"] == 2
    assert json.loads(second.stdout)["accepted"] == 0
