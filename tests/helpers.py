"""Helpers shared by the integration tests."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from email.message import EmailMessage
from typing import Any, Callable

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


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
