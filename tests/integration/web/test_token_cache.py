"""The API's bearer tokens are looked up at most once a second per process (web.token_cache):
an expiry is honoured at once, a revocation here at once, one made elsewhere within the TTL."""

from __future__ import annotations

from datetime import timedelta

from freezegun import freeze_time
from sqlalchemy import update

from worker import clock
from worker.models import ApiToken
from web import token_cache
from web.auth import cached_principal, create_token, revoke_token


def test_a_token_revoked_by_another_process_is_refused_within_the_ttl(engine) -> None:
    with freeze_time(clock.now()) as frozen:
        token_id, secret = create_token(engine, "app1", "app")
        assert cached_principal(engine, secret).token_id == token_id
        with engine.begin() as conn:  # as `tokentally tokens revoke` in another process does it
            conn.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=clock.now()))
        assert cached_principal(engine, secret) is not None  # trusted for up to TTL after its lookup
        frozen.tick(timedelta(seconds=token_cache.TTL))
        assert cached_principal(engine, secret) is None
        assert cached_principal(engine, secret) is None  # and not cached as valid again


def test_expiry_and_a_revocation_in_this_process_are_at_once(engine) -> None:
    with freeze_time(clock.now()) as frozen:
        _, secret = create_token(engine, "short", "app", expires_in=timedelta(milliseconds=500))
        assert cached_principal(engine, secret) is not None
        frozen.tick(timedelta(milliseconds=500))  # within the TTL, but the token has expired
        assert cached_principal(engine, secret) is None
        token_id, other = create_token(engine, "app2", "app")
        assert cached_principal(engine, other) is not None
        assert revoke_token(engine, token_id)
        assert cached_principal(engine, other) is None


def test_an_unknown_or_malformed_token_is_refused(engine) -> None:
    assert cached_principal(engine, "tt_" + "x" * 40) is None
    assert cached_principal(engine, "not-a-token") is None
