"""The console and API through FastAPI's TestClient, on both databases (the app is the one
`tokentally run` serves); tokens of each scope made as `tokentally tokens create` makes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from worker import clock
from worker.models import Account
from worker.settings import Settings
from web.app import create_app
from web.auth import create_token, parse_scope


@dataclass
class Web:
    client: TestClient
    settings: Settings
    engine: Engine

    @property
    def app_key(self) -> bytes:
        return self.client.app.state.key

    def token(self, scope: str, name: str | None = None) -> str:
        kind, tenant = parse_scope(scope)
        return create_token(self.engine, name or scope, kind, tenant)[1]

    def auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(scope)}"}


@pytest.fixture
def make_web(make_settings: Callable[..., Settings], engine: Engine) -> Iterator[Callable[..., Web]]:
    clients: list[TestClient] = []

    def factory(toml: str = "", **fields: Any) -> Web:
        settings = make_settings(toml, **fields)
        client = TestClient(create_app(settings, engine), base_url="http://127.0.0.1:8765")
        clients.append(client)
        return Web(client, settings, engine)

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def web(make_web: Callable[..., Web]) -> Web:
    return make_web()


def add_account(engine: Engine, account_id: str, tenant: str | None, tier: str | None = None) -> None:
    now = clock.now()
    with engine.begin() as conn:
        conn.execute(insert(Account).values(account_id=account_id, tenant_id=tenant, tier=tier, created_at=now,
                                            updated_at=now))
