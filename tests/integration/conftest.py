"""Fixtures for the integration tests that need a server on loopback."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.helpers import Mailbox, start_server


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = start_server(box)
    yield box, controller.port
    controller.stop()
