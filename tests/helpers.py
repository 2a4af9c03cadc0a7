"""Helpers shared by the integration tests."""

from __future__ import annotations

import email
import email.policy
import itertools
import json
import socket
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Callable

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine

from reports.messages import render
from worker.alerts.enqueue import alert_facts, jsonable
from worker.ingest.ingestor import Ingestor
from worker.settings import Settings


# Prices for the test models, as a user writes them in settings.toml.
PRICES = """
[[pricing.overrides]]
model = "house-llm"
input_per_mtok = "1.00"
output_per_mtok = "2.00"
effective_from = "2025-01-01"

[[pricing.overrides]]
model = "house-mini"
input_per_mtok = "0.10"
output_per_mtok = "0.40"
cached_input_per_mtok = "0.05"
effective_from = "2025-01-01"
"""


def run_together(targets: list[Callable[[], Any]], timeout: float = 60) -> list[Any]:
    """Start every target at the same moment on its own thread; their results, in order.
    An exception in any of them fails the test."""
    barrier = threading.Barrier(len(targets))
    results: list[Any] = [None] * len(targets)
    errors: list[BaseException] = []

    def go(index: int, target: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = target()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i, t)) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads), "a racing thread did not finish"
    return results


def free_port() -> int:
    """A loopback port nothing listens on (for "connection refused", or a server that
    cannot bind port 0 itself, like aiosmtpd's Controller)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """aiosmtpd handler: keeps every accepted envelope; refuses the addresses in ``refuse``."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def mails(self) -> list[EmailMessage]:
        return [email.message_from_bytes(e.content, policy=email.policy.default)  # type: ignore[misc]
                for e in self.envelopes]


def start_server(mailbox: Mailbox, **smtp_kwargs: Any) -> Controller:
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), **smtp_kwargs)
    controller.start()
    return controller


# --------------------------------------------------------------------------- feeding the ledger

_ids = itertools.count(1)


def utc(text_: str) -> datetime:
    return datetime.fromisoformat(text_.replace("Z", "+00:00")).astimezone(UTC)


def record(at: datetime, *, model: str = "house-llm", account: str = "a1", tenant: str | None = "t1",
           service: str | None = "chat", status: str = "success", prompt: int = 1000, completion: int = 500,
           cached: int | None = None, reasoning: int | None = None, latency: int | None = 250,
           cost: str | None = None, event_id: str | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "request_id": event_id or f"ev-{next(_ids)}",
        "timestamp": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "user_id": account, "provider": "acme", "model": model, "status": status,
        "prompt_tokens": prompt, "completion_tokens": completion,
    }
    if tenant is not None:
        rec["tenant_id"] = tenant
    if service is not None:
        rec["service"] = service
    if cached is not None:
        rec["cached_tokens"] = cached
    if reasoning is not None:
        rec["reasoning_tokens"] = reasoning
    if latency is not None:
        rec["latency_ms"] = latency
    if cost is not None:
        rec["cost_usd"] = cost
    return rec


def ingest(settings: Settings, engine: Engine, tmp_path: Path, records: list[dict[str, Any]]) -> None:
    path = tmp_path / f"usage-{next(_ids)}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    stats = Ingestor(settings, engine).ingest_paths([path])
    assert stats.accepted == len(records), stats.as_dict()
    assert stats.rejected == 0, stats.as_dict()


def alert_sentence(alert: Any) -> str:
    """The sentence a recipient reads about ``alert`` (templates/alerts/sentence.txt.j2), from its facts."""
    return render("alerts/sentence.txt.j2", {"alert": jsonable(alert_facts(alert))}).strip()
