"""The ledger: priced usage events, quarantined records and ingest checkpoints."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from worker.models.base import Base, Id, Json, Money, UTCDateTime

UNATTRIBUTED = "(unattributed)"
UNKNOWN = "(unknown)"


class UsageEvent(Base):
    """One LLM call, normalised and priced. ``event_id`` is the idempotency key."""

    __tablename__ = "usage_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    account_id: Mapped[str] = mapped_column(String(200))
    tenant_id: Mapped[str | None] = mapped_column(String(200))
    service: Mapped[str | None] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    model_used: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # success | error | timeout
    status_code: Mapped[int | None] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
    total_tokens: Mapped[int] = mapped_column(BigInteger)
    cached_tokens: Mapped[int] = mapped_column(BigInteger)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    # cost_usd is what counts: the provider-reported cost when present, else computed.
    cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    cost_computed: Mapped[Decimal | None] = mapped_column(Money)
    cost_reported: Mapped[Decimal | None] = mapped_column(Money)
    cost_status: Mapped[str] = mapped_column(String(12))  # priced | reported | unpriced
    price_source: Mapped[str | None] = mapped_column(String(300))
    price_effective_from: Mapped[date | None] = mapped_column(Date)
    unattributed: Mapped[bool] = mapped_column(Boolean)
    model_defaulted: Mapped[bool] = mapped_column(Boolean)
    error_message: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", Json)
    # Revision 0009. Cache writes are a part of prompt_tokens (like cached_tokens, the reads);
    # of them, cache_write_1h_tokens had a 1-hour TTL. service_tier None is the standard rate.
    # The server default only fills rows booked before 0009; the writer gives every column.
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    cache_write_1h_tokens: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    service_tier: Mapped[str | None] = mapped_column(String(40))  # batch | flex | priority | ...
    api_key: Mapped[str | None] = mapped_column(String(200))  # the key (hash or alias) it was made with
    project_id: Mapped[str | None] = mapped_column(String(200))  # OpenAI project, Anthropic workspace

    __table_args__ = (Index(None, "account_id", "occurred_at"),)


class IngestReject(Base):
    """A record that cannot be a usage record, kept byte for byte with the reason."""

    __tablename__ = "ingest_rejects"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(100))
    location: Mapped[str] = mapped_column(String(1000))  # file path or table name
    position: Mapped[int] = mapped_column(BigInteger)  # line / row number / cursor row
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    format: Mapped[str] = mapped_column(String(8))  # jsonl | csv | row (a table row as JSON)
    header: Mapped[bytes | None] = mapped_column(LargeBinary)  # the CSV header line, for retry
    raw_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12))  # open | accepted
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    event_id: Mapped[str | None] = mapped_column(String(200))  # set when a retry accepted it
    # One row per rejected line: the same bytes on two lines are two rows (re-reading a line is not).
    line_key: Mapped[str] = mapped_column(String(64), default=lambda ctx: reject_line_key(
        ctx.get_current_parameters()["location"], ctx.get_current_parameters()["position"],
        ctx.get_current_parameters()["raw_sha256"]))

    __table_args__ = (UniqueConstraint("source", "line_key"), Index(None, "status"))


def reject_line_key(location: str, position: int, raw_sha256: str) -> str:
    """A rejected line's identity within its source: where it was read and what it held."""
    return hashlib.sha256(f"{location[-1000:]}\n{position}\n{raw_sha256}".encode("utf-8", "surrogatepass")).hexdigest()


class IngestFile(Base):
    """How far a file has been read, keyed by its content fingerprint, not its name,
    so a rotated or compressed copy continues where the original stopped."""

    __tablename__ = "ingest_files"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1000))
    offset: Mapped[int] = mapped_column(BigInteger)  # bytes of (decompressed) content consumed
    position: Mapped[int] = mapped_column(BigInteger)  # lines / rows consumed
    # The record just before ``offset``: on resume it must still be there, else this is a
    # different file that merely starts like the one read before, and it is read from the start.
    tail_len: Mapped[int] = mapped_column(Integer)
    tail_hash: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)  # -1 until the file was read to its end
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    # Why the file was read only in part (a gzip stream cut short), None once read whole; ``status`` shows it.
    warning: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("source", "fingerprint"),)


class SourceCursor(Base):
    """The last cursor value read from a table source."""

    __tablename__ = "source_cursors"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    cursor_value: Mapped[str] = mapped_column(String(200))
    cursor_type: Mapped[str] = mapped_column(String(16))  # int | timestamp | text
    rows_read: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SourceStatus(Base):
    """Freshness per source: when it last delivered and its newest event (status, silent sources)."""

    __tablename__ = "source_status"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_ingest_at: Mapped[datetime] = mapped_column(UTCDateTime)
    newest_event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    events: Mapped[int] = mapped_column(BigInteger)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)  # records received again (not booked twice)
