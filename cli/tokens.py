"""tokens create / list / revoke: who may use the console and the HTTP API.

A token is printed once, when it is created; only its hash is stored. Scopes: admin (everything
and the actions), auditor (read everything), app (the gate and the ingest endpoints),
tenant:ID (that tenant's usage, budgets and reports only).
"""

from __future__ import annotations

import sys
from typing import Optional

import orjson
import typer

from worker.settings import SettingsError, parse_duration
from web.auth import AuthError, create_token, list_tokens, parse_scope, revoke_token
from cli.output import Format, ObjectFormat, console, emit_rows, err_console
from cli.state import app, fail, state

tokens_app = typer.Typer(no_args_is_help=True, help="Tokens for the console and the HTTP API (stored hashed).")
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="Who or what it is for (shown in `tokens list`)"),
    scope: str = typer.Option(..., "--scope", help="admin, auditor, app or tenant:ID"),
    expires: Optional[str] = typer.Option(None, "--expires", help="Lifetime like 90d or 12h (default: no expiry)"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json ({\"token\": ...})"),
) -> None:
    """Create a token and print it once (it cannot be shown again)."""
    try:
        scope_name, tenant = parse_scope(scope)
    except AuthError as exc:
        fail(f"--scope: {exc}", code=2)
    try:
        lifetime = parse_duration(expires, "--expires") if expires else None
    except SettingsError as exc:
        fail(str(exc), code=2)
    if lifetime is not None and lifetime.total_seconds() <= 0:
        fail("--expires: must be longer than 0", code=2)
    try:
        token_id, secret = create_token(state(ctx).engine(), name, scope_name, tenant, lifetime)
    except AuthError as exc:
        fail(f"--name: {exc}", code=2)
    if fmt == Format.json:
        sys.stdout.write(orjson.dumps({"id": token_id, "name": name, "scope": scope, "token": secret}).decode() + "\n")
        return
    err_console.print(f"token {token_id} ({name}, {scope}); shown once, keep it now:", highlight=False, markup=False)
    sys.stdout.write(secret + "\n")


@tokens_app.command("list")
def list_(ctx: typer.Context, fmt: Format = typer.Option(Format.table, "--format", help="table, csv or json")) -> None:
    """Every token: name, scope, state, when created, last used and expiring (never the token)."""
    emit_rows(list_tokens(state(ctx).engine()), ["id", "name", "scope", "state", "created_at", "last_used_at",
                                                  "expires_at", "revoked_at"], fmt, title="tokens")


@tokens_app.command("revoke")
def revoke(ctx: typer.Context, token_id: int = typer.Argument(..., help="Token id (see `tokens list`)")) -> None:
    """Revoke a token: it and every console session it opened stop working at once."""
    if not revoke_token(state(ctx).engine(), token_id):
        fail(f"no active token {token_id} (see `tokentally tokens list`)")
    console.print(f"token {token_id} revoked", highlight=False)
