"""``[[sources]]``: where raw usage records come from (jsonl, csv and json files, an app's table)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from worker.settings.reader import Reader, SettingsError, parse_duration

SOURCE_KINDS = ("jsonl", "csv", "json", "table")
RECORD_TYPES = ("usage", "attempt")
# Record shapes (worker.ingest.formats); absent: each record's shape is recognised from its keys.
SOURCE_FORMATS = ("canonical", "litellm", "otel", "langfuse", "helicone", "openai", "anthropic")
DEFAULTABLE_FIELDS = ("model", "provider", "service", "account_id", "tenant_id")


@dataclass(frozen=True)
class SourceSettings:
    name: str
    kind: str
    path: str | None = None  # glob, for jsonl/csv/json
    defaults: dict[str, str] = field(default_factory=dict)
    event_id_namespace: str = ""
    enabled: bool = True
    format: str | None = None  # a SOURCE_FORMATS name; None: recognised per record from its keys
    record_type: str = "usage"  # usage | attempt (every record is a call attempt, worker.attempts)
    expect_every: timedelta | None = None  # silent when nothing new arrived for longer (worker.silence)
    follow_symlinks: bool = False  # files: read a symlink that leads outside the source's directory
    # kind = "table"
    url: str | None = None
    table: str | None = None
    cursor_column: str | None = None
    cursor_overlap: timedelta | int = 0
    batch_size: int | None = None


def parse_source(item: Any, index: int, env: dict[str, str]) -> SourceSettings:
    r = Reader(item, f"sources[{index}]", None)
    name = r.take("name", str, required=True)
    r.path = f"sources[{name}]"
    kind = r.take("kind", str, required=True)
    if kind not in SOURCE_KINDS:
        raise SettingsError(f"{r.key('kind')}: expected one of {', '.join(SOURCE_KINDS)}, got {kind!r}")
    defaults = r.take("defaults", dict, {})
    for key, value in defaults.items():
        if key not in DEFAULTABLE_FIELDS:
            raise SettingsError(f"{r.key('defaults')}.{key}: unknown field (allowed: {', '.join(DEFAULTABLE_FIELDS)})")
        if not isinstance(value, str) or not value:
            raise SettingsError(f"{r.key('defaults')}.{key}: expected a non-empty string")
    record_type = r.take("record_type", str, "usage")
    if record_type not in RECORD_TYPES:
        raise SettingsError(f"{r.key('record_type')}: expected one of {', '.join(RECORD_TYPES)}, got {record_type!r}")
    every = r.take("expect_every", str)
    fmt = r.take("format", str)
    if fmt is not None and fmt not in SOURCE_FORMATS:
        raise SettingsError(f"{r.key('format')}: expected one of {', '.join(SOURCE_FORMATS)}, got {fmt!r}")
    common = dict(name=name, kind=kind, defaults=defaults,
                  event_id_namespace=r.take("event_id_namespace", str, ""),
                  enabled=r.take("enabled", bool, True), record_type=record_type, format=fmt,
                  expect_every=parse_duration(every, r.key("expect_every")) if every else None)
    if kind in ("jsonl", "csv", "json"):
        src = SourceSettings(**common, path=r.take("path", str, required=True),
                             follow_symlinks=r.take("follow_symlinks", bool, False))
    else:
        url = r.take("url", str)
        url_env = r.take("url_env", str)
        if url_env:
            url = env.get(url_env) or url
            if not url:
                raise SettingsError(f"{r.key('url_env')}: environment variable {url_env} is not set")
        if not url:
            raise SettingsError(f"{r.key('url')}: required for kind = 'table' (or url_env naming an env var)")
        table = r.take("table", str, required=True)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?", table):
            raise SettingsError(f"{r.key('table')}: expected a table name like 'llm_usage_logs' or 'schema.table'")
        overlap_raw = r.take("cursor_overlap", (str, int), 0)
        overlap = parse_duration(overlap_raw, r.key("cursor_overlap")) if isinstance(overlap_raw, str) else overlap_raw
        src = SourceSettings(**common, url=url, table=table,
                             cursor_column=r.take("cursor_column", str, required=True),
                             cursor_overlap=overlap, batch_size=r.positive_int("batch_size"))
    r.done()
    return src
