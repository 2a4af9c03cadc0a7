"""Fixtures for the integration tests that need a server on loopback."""

from __future__ import annotations

import logging
from typing import Iterator

import pytest

from tests.helpers import Mailbox, start_server


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = start_server(box)
    yield box, controller.port
    controller.stop()


@pytest.fixture
def quiet_receiver():
    """The loopback server's own request log (werkzeug) quoting what it received is not ours."""
    log = logging.getLogger("werkzeug")
    level = log.level
    log.setLevel(logging.WARNING)
    yield
    log.setLevel(level)
