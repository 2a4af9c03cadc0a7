"""POST /v1/events and /v1/attempts: committed before the reply, idempotent, rejects quarantined."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from worker import clock
from worker.models import CallAttempt, IngestReject, SourceStatus, UsageEvent
from tests.helpers import record

NDJSON = {"content-type": "application/x-ndjson"}


def _count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def _lines(records: list) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def test_a_retry_after_a_timeout_books_once(web) -> None:
    at = clock.now() - timedelta(hours=1)
    body = _lines([record(at, event_id="r-1"), record(at, event_id="r-2")])
    headers = {**web.auth("app"), **NDJSON}
    first = web.client.post("/v1/events", content=body, headers=headers)
    assert first.status_code == 200 and first.json()["accepted"] == 2
    assert _count(web.engine, UsageEvent) == 2  # committed when the reply came
    again = web.client.post("/v1/events", content=body, headers=headers)  # the client never saw the reply
    assert again.status_code == 200
    assert again.json()["accepted"] == 0 and again.json()["duplicates"] == 2
    assert _count(web.engine, UsageEvent) == 2
    with web.engine.connect() as conn:
        status = conn.execute(select(SourceStatus).where(SourceStatus.source == "api")).one()
    assert status.events == 2 and status.duplicates == 2


def test_a_json_array_in_any_record_shape_is_booked(web) -> None:
    at = (clock.now() - timedelta(hours=2)).isoformat()
    litellm = {"request_id": "chatcmpl-1", "startTime": at, "endTime": at, "model": "gpt-4o-mini",
               "custom_llm_provider": "openai", "user": "u7", "prompt_tokens": 10, "completion_tokens": 3,
               "total_tokens": 13, "spend": 0.0001, "status": "success"}
    shown = web.client.post("/v1/events", json=[litellm, record(clock.now() - timedelta(hours=2))],
                            headers=web.auth("app"))
    assert shown.status_code == 200, shown.text
    assert shown.json()["accepted"] == 2 and shown.json()["rejects"] == []
    with web.engine.connect() as conn:
        accounts = set(conn.execute(select(UsageEvent.account_id)).scalars())
    assert accounts == {"u7", "a1"}


def test_bad_records_come_back_with_reasons_and_are_quarantined(web) -> None:
    good = record(clock.now() - timedelta(hours=1))
    body = _lines([good]) + b'{"model": "x"}\nnot json at all\n'
    shown = web.client.post("/v1/events", content=body, headers={**web.auth("app"), **NDJSON})
    assert shown.status_code == 200
    result = shown.json()
    assert result["accepted"] == 1 and result["rejected"] == 2
    assert [r["position"] for r in result["rejects"]] == [2, 3]
    assert "timestamp" in result["rejects"][0]["reason"] and "JSON" in result["rejects"][1]["reason"]
    with web.engine.connect() as conn:
        rejects = conn.execute(select(IngestReject).order_by(IngestReject.position)).all()
    assert [(r.source, r.location, r.position, r.raw) for r in rejects] == [
        ("api", "http:app", 2, b'{"model": "x"}'), ("api", "http:app", 3, b"not json at all")]
    # sent again: the same rejects, not new ones
    web.client.post("/v1/events", content=body, headers={**web.auth("app"), **NDJSON})
    assert _count(web.engine, IngestReject) == 2


def test_a_body_over_the_limit_is_413_and_nothing_is_booked(make_web) -> None:
    web = make_web("[web]\nmax_body_bytes = 1000\n")
    body = _lines([record(clock.now() - timedelta(hours=1)) for _ in range(20)])
    assert len(body) > 1000
    shown = web.client.post("/v1/events", content=body, headers={**web.auth("app"), **NDJSON})
    assert shown.status_code == 413
    assert _count(web.engine, UsageEvent) == 0

    def chunks():  # no Content-Length: counted as it streams
        for start in range(0, len(body), 200):
            yield body[start:start + 200]

    streamed = web.client.post("/v1/events", content=chunks(), headers={**web.auth("app"), **NDJSON})
    assert streamed.status_code == 413
    assert _count(web.engine, UsageEvent) == 0


def test_a_configured_source_lends_its_defaults_and_an_unknown_one_is_404(make_web) -> None:
    web = make_web('[[sources]]\nname = "app1"\nkind = "jsonl"\npath = "/nonexistent/*.jsonl"\n'
                   'defaults = { tenant_id = "t9" }\nevent_id_namespace = "app1"\n')
    rec = record(clock.now() - timedelta(hours=1), tenant=None, event_id="7")
    shown = web.client.post("/v1/events?source=app1", json=[rec], headers=web.auth("app"))
    assert shown.status_code == 200 and shown.json()["accepted"] == 1
    with web.engine.connect() as conn:
        event = conn.execute(select(UsageEvent.event_id, UsageEvent.tenant_id, UsageEvent.source)).one()
    assert tuple(event) == ("app1:7", "t9", "app1")
    assert web.client.post("/v1/events?source=nope", json=[rec], headers=web.auth("app")).status_code == 404


def test_attempts_are_recorded_once(web) -> None:
    attempt = {"attempt_id": "att-1", "started_at": (clock.now() - timedelta(minutes=1)).isoformat(),
               "user_id": "u1", "model": "gpt-4o-mini", "estimated_tokens": 500}
    first = web.client.post("/v1/attempts", json=[attempt], headers=web.auth("app"))
    assert first.status_code == 200 and first.json()["attempts"] == 1
    again = web.client.post("/v1/attempts", json=attempt, headers=web.auth("app"))
    assert again.json()["attempts"] == 0 and again.json()["duplicates"] == 1
    assert _count(web.engine, CallAttempt) == 1
    bad = web.client.post("/v1/attempts", json=[{"user_id": "u1"}], headers=web.auth("app")).json()
    assert bad["rejected"] == 1 and "id" in bad["rejects"][0]["reason"]
