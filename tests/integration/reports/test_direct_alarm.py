"""``system.database_unreachable`` sent without the outbox (reports.direct): to a real webhook receiver on
loopback (pytest-httpserver), once per target and outage, retried in memory after a temporary failure,
not after a permanent one. No database is involved: the database is what is away."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from freezegun import freeze_time
from pytest_httpserver import HTTPServer
from werkzeug import Response

from reports.direct import DirectAlarm
from worker.settings import load

PATH = "/hooks/oncall"


def alarm_for(tmp_path: Path, url: str, **extra: str) -> DirectAlarm:
    cfg = tmp_path / "settings.toml"
    cfg.write_text(f"""
[channels.file]
dir = "{tmp_path / 'outbox'}"
[channels.webhook]
[notify]
max_attempts = 3
[[routes]]
kinds = ["system.database_unreachable"]
to = ["webhook:{url}"]
""", encoding="utf-8")
    return DirectAlarm(load(cfg, env={"TOKENTALLY_DATABASE_URL": "postgresql://tt:hunter2@db.internal/books",
                                      "TOKENTALLY_CHANNELS_WEBHOOK_SECRET": "s3cret", **extra}))


def outage() -> dict[str, Any]:
    return {"daemon": "host-1-abc", "started_at": "2026-12-01T10:00:00+00:00", "detected_at": None,
            "alerted_at": None, "ended_at": None, "error": "connection refused", "alerts": {}, "skipped": 0}


def test_a_temporary_failure_is_retried_after_the_backoff_and_the_message_sent_once(
        httpserver: HTTPServer, tmp_path: Path) -> None:
    answers = iter([Response("busy", status=503), Response("", status=204), Response("", status=204)])
    httpserver.expect_request(PATH, method="POST").respond_with_handler(lambda request: next(answers))
    alarm, state = alarm_for(tmp_path, httpserver.url_for(PATH)), outage()
    with freeze_time("2026-12-01T10:00:05Z") as frozen:
        assert alarm(state, "unreachable") is False  # 503: not yet
        assert alarm(state, "unreachable") is False  # within the backoff (1m): not tried again
        assert len(httpserver.log) == 1
        frozen.move_to("2026-12-01T10:01:10Z")
        assert alarm(state, "unreachable") is True
        assert alarm(state, "unreachable") is True  # sent: never again in this outage
    assert len(httpserver.log) == 2
    body = json.loads(httpserver.log[1][0].get_data())
    assert body["kind"] == "system.database_unreachable"
    assert "postgresql+psycopg://tt:***@db.internal/books has been unreachable since" in body["text"]
    assert "connection refused" in body["text"] and "hunter2" not in json.dumps(body)
    webhook = state["alerts"][f"webhook:{httpserver.url_for(PATH)}"]
    assert webhook["unreachable"]["status"] == "sent" and webhook["unreachable"]["attempts"] == 2
    # the route sends no file: the fallback target got it too, at the first call
    assert len(list((tmp_path / "outbox" / "delivery-failed").glob("*.eml"))) == 1

    state["ended_at"] = "2026-12-01T10:02:00+00:00"
    with freeze_time("2026-12-01T10:02:01Z"):
        assert alarm(state, "resolved") is True
    assert json.loads(httpserver.log[2][0].get_data())["key"].endswith("-resolved")


def test_a_permanent_failure_is_not_retried_and_resolved_goes_only_where_the_first_message_went(
        httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_response(Response("gone", status=404))
    alarm, state = alarm_for(tmp_path, httpserver.url_for(PATH)), outage()
    assert alarm(state, "unreachable") is True  # done: delivered to the file fallback, failed for good at the hook
    assert alarm(state, "unreachable") is True
    assert len(httpserver.log) == 1
    assert state["alerts"][f"webhook:{httpserver.url_for(PATH)}"]["unreachable"]["status"] == "failed"
    state["ended_at"] = "2026-12-01T10:02:00+00:00"
    assert alarm(state, "resolved") is True
    assert len(httpserver.log) == 1
    assert len(list((tmp_path / "outbox" / "delivery-failed").glob("*.eml"))) == 2
