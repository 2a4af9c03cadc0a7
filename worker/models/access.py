"""Who may use the console and the HTTP API: tokens (stored hashed), one-time login links, the signing key.

A token's secret is shown once when it is created; only its SHA-256 is kept, so a copy of the
database signs nobody in. A login link is a one-time code (also kept hashed) that opens one
console session for its token. ``web_keys`` holds the key that signs sessions, CSRF tokens and
report links when TOKENTALLY_WEB_SECRET is not set: generated once, shared by every process.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from worker.models.base import Base, Id, UTCDateTime

TOKEN_SCOPES = ("admin", "auditor", "app", "tenant")


class ApiToken(Base):
    """A bearer token: its name, scope (and tenant for ``tenant``), lifetime and revocation."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(10))  # admin | auditor | app | tenant
    tenant: Mapped[str | None] = mapped_column(String(200))  # the tenant of a tenant token
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the secret
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginLink(Base):
    """A one-time console sign-in for a token (the first start's admin link); used at most once."""

    __tablename__ = "login_links"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebKey(Base):
    """A named signing key generated once (``signing``)."""

    __tablename__ = "web_keys"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
