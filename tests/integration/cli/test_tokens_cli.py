"""tokens create / list / revoke: printed once, stored hashed, revocable."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import select

from worker import db
from worker.models import ApiToken
from web.auth import verify_token


def _rows(db_url: str) -> list:
    engine = db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(ApiToken).order_by(ApiToken.id)).all()
    finally:
        engine.dispose()


def test_create_prints_the_token_once_and_stores_only_its_hash(cli, db_url) -> None:
    done = cli("tokens", "create", "--name", "ci", "--scope", "tenant:t1", "--expires", "90d", "--format", "json")
    assert done.exit_code == 0, done.output
    token = json.loads(done.stdout)["token"]
    rows = _rows(db_url)
    assert len(rows) == 1 and rows[0].scope == "tenant" and rows[0].tenant == "t1"
    assert rows[0].token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(tuple(rows[0]))
    assert 89 <= (rows[0].expires_at - rows[0].created_at).days <= 90
    engine = db.make_engine(db_url)
    try:
        principal = verify_token(engine, token)
    finally:
        engine.dispose()
    assert (principal.scope, principal.tenant_id, principal.name) == ("tenant", "t1", "ci")

    plain = cli("tokens", "create", "--name", "ops", "--scope", "admin")
    assert plain.exit_code == 0 and plain.stdout.strip().startswith("tt_")  # the token alone on stdout


def test_list_never_shows_a_token_and_revoke_ends_it(cli, db_url) -> None:
    token = json.loads(cli("tokens", "create", "--name", "app1", "--scope", "app", "--format", "json").stdout)["token"]
    listed = cli("tokens", "list", "--format", "json")
    assert listed.exit_code == 0 and token not in listed.stdout
    row = json.loads(listed.stdout)[0]
    assert (row["name"], row["scope"], row["state"]) == ("app1", "app", "active")
    assert cli("tokens", "revoke", str(row["id"])).exit_code == 0
    assert json.loads(cli("tokens", "list", "--format", "json").stdout)[0]["state"] == "revoked"
    again = cli("tokens", "revoke", str(row["id"]))
    assert again.exit_code == 1 and "no active token" in again.output


def test_a_bad_scope_or_lifetime_is_exit_2_naming_the_option(cli, db_url) -> None:
    for args, option in ((["--scope", "root"], "--scope"), (["--scope", "tenant:"], "--scope"),
                         (["--scope", "admin", "--expires", "soon"], "--expires")):
        done = cli("tokens", "create", "--name", "x", *args)
        assert done.exit_code == 2 and option in done.output, done.output
    assert _rows(db_url) == []
