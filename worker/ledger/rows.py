"""Ledger rows as each database loads them fastest: binary COPY tuples for PostgreSQL, parameter
tuples for SQLite, in the column order of ``usage_events`` (:data:`COLUMNS`).

The PostgreSQL encoder writes the binary COPY format directly (cached bytes for
text that repeats, integer-unit NUMERIC without Decimal arithmetic); the round-trip
tests in tests/integration/ledger check every column type on both databases. The
statements the writer runs with these rows are here too.
"""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Callable

import orjson

from worker.ledger.event import Event
from worker.ledger.pricing import Priced
from worker.models import UsageEvent

# Column order of every row the writer produces (the table minus its surrogate key).
COLUMNS = tuple(c.name for c in UsageEvent.__table__.columns if c.name != "id")
_COLS_SQL = ", ".join(f'"{c}"' for c in COLUMNS)
_STAGED_COLS_SQL = ", ".join(f's."{c}"' for c in COLUMNS)

# PostgreSQL: the fast path and the exact fallback. An event id is unique through
# usage_event_ids (usage_events is partitioned by month: see worker.ledger.partitions).
# Binary COPY: the server parses no text, and the client's C dumpers write the values.
PG_COPY_DIRECT = f"COPY usage_events ({_COLS_SQL}) FROM STDIN (FORMAT BINARY)"
PG_COPY_IDS = "COPY usage_event_ids (event_id) FROM STDIN"
PG_STAGE_CREATE = (
    f"CREATE TEMP TABLE IF NOT EXISTS usage_events_stage AS "
    f"SELECT {_COLS_SQL} FROM usage_events WITH NO DATA"
)
PG_COPY_STAGE = f"COPY usage_events_stage ({_COLS_SQL}) FROM STDIN (FORMAT BINARY)"
# (An event twice in one batch never reaches here: LedgerWriter.add keeps the first.)
PG_MERGE_STAGE = (
    f"WITH new AS (INSERT INTO usage_event_ids (event_id) SELECT event_id FROM usage_events_stage "
    f"ON CONFLICT (event_id) DO NOTHING RETURNING event_id) "
    f"INSERT INTO usage_events ({_COLS_SQL}) "
    f"SELECT {_STAGED_COLS_SQL} "
    f"FROM usage_events_stage s JOIN new ON new.event_id = s.event_id "
    f"RETURNING unattributed, cost_usd IS NULL"
)
PG_STAGE_CLEAR = "TRUNCATE usage_events_stage"

# SQLite: the ids already booked (usage_event_ids outlives rows retention deleted), then
# the new ids and rows.
SQLITE_EXISTING = "SELECT event_id FROM usage_event_ids WHERE event_id IN ({marks})"
SQLITE_INSERT_IDS = "INSERT INTO usage_event_ids (event_id) VALUES (?)"
SQLITE_TAKE_WRITE_LOCK = "DELETE FROM usage_event_ids WHERE 0"  # changes nothing; takes the write lock
# Many rows per statement: one sqlite3_step (one release and re-take of the GIL) per
# SQLITE_ROWS_PER_INSERT rows rather than per row, so parsing on the other thread does
# not stall the writer at every row.
SQLITE_ROWS_PER_INSERT = 200
_SQLITE_ROW_MARKS = f"({', '.join('?' for _ in COLUMNS)})"
SQLITE_INSERT = f"INSERT INTO usage_events ({_COLS_SQL}) VALUES "
SQLITE_MAX_VARS = 30000



@lru_cache(maxsize=4)
def sqlite_insert(rows: int) -> str:
    return SQLITE_INSERT + ", ".join([_SQLITE_ROW_MARKS] * rows)


# _pg_row and sqlite_row build rows in this order; fail at import if the model drifts.
assert COLUMNS == (
    "event_id", "source", "occurred_at", "ingested_at", "account_id", "tenant_id", "service", "provider",
    "model", "model_used", "status", "status_code", "prompt_tokens", "completion_tokens", "total_tokens",
    "cached_tokens", "reasoning_tokens", "latency_ms", "cost_usd", "cost_computed", "cost_reported",
    "cost_status", "price_source", "price_effective_from", "unattributed", "model_defaulted",
    "error_message", "metadata", "cache_write_tokens", "cache_write_1h_tokens", "service_tier", "api_key",
    "project_id",
), COLUMNS
UNATTRIBUTED_AT = COLUMNS.index("unattributed")
COST_AT = COLUMNS.index("cost_usd")


def _metadata_json(meta: dict[str, Any] | None) -> str | None:
    if not meta:
        return None
    text = orjson.dumps(meta, default=str).decode()
    # PostgreSQL text and jsonb cannot hold NUL.
    return text.replace("\\u0000", "\\ufffd") if "\\u0000" in text else text


# ---------------------------------------------------------------------------- PostgreSQL binary COPY rows
#
# The rows are encoded here, straight to COPY's binary tuple format, rather than handed
# to psycopg's per-value dumpers: most columns repeat from one event to the next
# (source, account, tenant, service, model, status, price source...), so their encoded
# bytes are cached, and a row is one bytes.join. The encoding per column type is
# PostgreSQL's own *_recv format (the server checks every value as it reads it):
#   text      the UTF-8 bytes (the writer makes the session's client_encoding UTF8)
#   int4/int8 big-endian two's complement
#   bool      one byte
#   timestamptz  int8 microseconds since 2000-01-01 00:00 UTC
#   date      int4 days since 2000-01-01
#   numeric   int2 ndigits, int2 weight, int2 sign, int2 dscale, then ndigits base-10000 int2 digits
#   jsonb     version byte 1, then the JSON text
# each field preceded by its int4 length, -1 for NULL.

PG_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
PG_COPY_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_FIELD_COUNT = struct.pack(">h", len(COLUMNS))
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_PG_EPOCH_DAY = date(2000, 1, 1).toordinal()
_MICROSECOND = timedelta(microseconds=1)
_pack_len = struct.Struct(">i").pack
_pack_jsonb_head = struct.Struct(">ib").pack  # length, jsonb version 1
_pack_int4 = struct.Struct(">ii").pack  # length 4, value
_pack_int8 = struct.Struct(">iq").pack  # length 8, value
_pack_tokens = struct.Struct(">iqiqiqiqiq").pack  # the five int8 token counts, with their lengths
_pack_tokens_latency = struct.Struct(">iqiqiqiqiqii").pack  # and latency_ms (int4)
_pack_two_int8 = struct.Struct(">iqiq").pack  # occurred_at, ingested_at; the two cache write counts
_BOOLS = {(a, b): struct.pack(">i?i?", 1, a, 1, b) for a in (False, True) for b in (False, True)}
MONEY_SCALE = 10  # NUMERIC(20,10): amounts are integers of 1e-10 USD
_pack_numeric4 = struct.Struct(">ihhhhhhhh").pack  # length, ndigits 4, weight, sign, dscale, 4 digits
_NUMERIC_STRUCTS: dict[int, Callable[..., bytes]] = {}
_INT4_MIN, _INT4_MAX = -(2**31), 2**31 - 1
_CACHE_MAX = 50_000  # distinct cached values per writer before the caches start afresh


def _numeric_struct(ndigits: int) -> Callable[..., bytes]:
    pack = _NUMERIC_STRUCTS.get(ndigits)
    if pack is None:
        pack = _NUMERIC_STRUCTS[ndigits] = struct.Struct(f">ihhhh{ndigits}h").pack
    return pack


def pg_numeric_units(units: int | None) -> bytes:
    """A NUMERIC field holding ``units`` x 1e-10 (exactly, dscale 10)."""
    if units is None:
        return _NULL
    if 0 <= units < 10**14:  # below 10,000 USD (every real cost): four digits at weight 0, not normalised
        whole, fraction = divmod(units * 100, 1_000_000_000_000)  # numeric_recv strips zero digits
        first, rest = divmod(fraction, 100_000_000)
        second, third = divmod(rest, 10_000)
        return _pack_numeric4(16, 4, 0, 0, MONEY_SCALE, whole, first, second, third)
    sign = 0
    if units < 0:
        sign, units = 0x4000, -units
    n = units * 100  # the fraction padded to 12 digits: three whole base-10000 digits
    digits = []
    while n:
        n, digit = divmod(n, 10000)
        digits.append(digit)
    weight = len(digits) - 4  # of the most significant digit; three are after the point
    while not digits[0]:  # trailing zero digits are implied
        del digits[0]
    digits.reverse()
    ndigits = len(digits)
    return _numeric_struct(ndigits)(8 + 2 * ndigits, ndigits, weight, sign, MONEY_SCALE, *digits)


def pg_text(value: str | None) -> bytes:
    if value is None:
        return _NULL
    data = value.encode()
    return _pack_len(len(data)) + data


def pg_jsonb(meta: dict[str, Any] | None) -> bytes:
    """jsonb's binary form (version 1, then the JSON text); NUL escapes replaced, as jsonb cannot hold NUL."""
    if not meta:
        return _NULL
    data = orjson.dumps(meta, default=str)
    if b"\\" in data and b"\\u0000" in data:  # (one byte is found much faster than six)
        data = data.replace(b"\\u0000", b"\\ufffd")
    return _pack_jsonb_head(len(data) + 1, 1) + data


def pg_timestamptz(moment: datetime) -> bytes:
    return _pack_int8(8, (moment - _PG_EPOCH) // _MICROSECOND)


def pg_date(day: date | None) -> bytes:
    return _NULL if day is None else _pack_int4(4, day.toordinal() - _PG_EPOCH_DAY)


class PgRowEncoder:
    """Events as binary COPY tuples for ``usage_events`` (COLUMNS order)."""

    def __init__(self, ingested_at: datetime):
        self._ingested_us = (ingested_at - _PG_EPOCH) // _MICROSECOND
        self._texts: dict[str | None, bytes] = {None: _NULL}
        self._dates: dict[date | None, bytes] = {None: _NULL}

    def _text(self, value: str | None) -> bytes:
        texts = self._texts
        if len(texts) > _CACHE_MAX:
            texts.clear()
            texts[None] = _NULL
        encoded = texts[value] = pg_text(value)
        return encoded

    def _date(self, day: date | None) -> bytes:
        if len(self._dates) > _CACHE_MAX:
            self._dates.clear()
            self._dates[None] = _NULL
        encoded = self._dates[day] = pg_date(day)
        return encoded

    def row(self, ev: Event, p: Priced, source: str, _ingested_at: Any = None) -> bytes:
        cached, text = self._texts.get, self._text
        code, latency = ev.status_code, ev.latency_ms
        cost, computed = p.cost_units, p.computed_units
        cost_field = pg_numeric_units(cost)
        effective = p.price_effective_from
        return b"".join((
            _FIELD_COUNT,
            pg_text(ev.event_id),
            cached(source) or text(source),
            _pack_two_int8(8, (ev.occurred_at - _PG_EPOCH) // _MICROSECOND, 8, self._ingested_us),
            cached(ev.account_id) or text(ev.account_id),
            cached(ev.tenant_id) or text(ev.tenant_id),
            cached(ev.service) or text(ev.service),
            cached(p.provider) or text(p.provider),
            cached(ev.model) or text(ev.model),
            cached(ev.model_used) or text(ev.model_used),
            cached(ev.status) or text(ev.status),
            _NULL if code is None else _pack_int4(4, code),
            _pack_tokens_latency(8, ev.prompt_tokens, 8, ev.completion_tokens, 8, ev.total_tokens,
                                 8, ev.cached_tokens, 8, ev.reasoning_tokens, 4, latency)
            if latency is not None else
            _pack_tokens(8, ev.prompt_tokens, 8, ev.completion_tokens, 8, ev.total_tokens,
                         8, ev.cached_tokens, 8, ev.reasoning_tokens) + _NULL,
            cost_field,
            cost_field if computed == cost else pg_numeric_units(computed),
            cost_field if p.cost_status == "reported" else _NULL,  # the reported cost: Pricer.price
            cached(p.cost_status) or text(p.cost_status),
            cached(p.price_source) or text(p.price_source),
            self._dates.get(effective) or self._date(effective),
            _BOOLS[ev.unattributed, ev.model_defaulted],
            pg_text(ev.error_message),
            pg_jsonb(ev.metadata),
            _pack_two_int8(8, ev.cache_write_tokens, 8, ev.cache_write_1h_tokens),
            cached(ev.service_tier) or text(ev.service_tier),
            cached(ev.api_key) or text(ev.api_key),
            cached(ev.project_id) or text(ev.project_id),
        ))


def copy_rows(copy: Any, rows: list[bytes]) -> None:
    """A batch of encoded rows as one binary COPY stream, sent in a few large writes."""
    copy.write(PG_COPY_SIGNATURE)
    for start in range(0, len(rows), 2000):
        copy.write(b"".join(rows[start:start + 2000]))
    copy.write(PG_COPY_TRAILER)


def sqlite_ts(moment: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime writes (models.base.SQLITE_TS_FORMAT), faster."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


def sqlite_row(ev: Event, p: Priced, source: str, ingested_at: str) -> tuple:
    return (
        ev.event_id, source, sqlite_ts(ev.occurred_at), ingested_at, ev.account_id, ev.tenant_id, ev.service, p.provider,
        ev.model, ev.model_used, ev.status, ev.status_code, ev.prompt_tokens, ev.completion_tokens,
        ev.total_tokens, ev.cached_tokens, ev.reasoning_tokens, ev.latency_ms,
        p.cost_units, p.computed_units,
        p.cost_units if p.cost_status == "reported" else None,  # the reported cost: Pricer.price
        p.cost_status, p.price_source,
        None if p.price_effective_from is None else p.price_effective_from.isoformat(),
        int(ev.unattributed), int(ev.model_defaulted), ev.error_message, _metadata_json(ev.metadata),
        ev.cache_write_tokens, ev.cache_write_1h_tokens, ev.service_tier, ev.api_key, ev.project_id,
    )
