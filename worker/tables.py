"""Core views of the tables that the light readers use: ``status``, the kill switch, last job runs.

Each is a ``sqlalchemy.table()`` naming only the columns those readers use, with the models'
column types (``worker.columns``: aware UTC timestamps on both databases), so a statement
built on them compiles and returns the same values as one built on ``worker.models`` without
importing the ORM and its registry of every model: ``tokentally status`` starts in a fraction
of the time. The models stay the schema (migrations compare with them); a test keeps every
column here equal, by name and type, to its model's.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Date, Integer, String, Text, column, table

from worker.columns import Money, UTCDateTime

source_status = table("source_status", column("source", String), column("last_ingest_at", UTCDateTime),
                      column("newest_event_at", UTCDateTime), column("events", BigInteger))

ingest_files = table("ingest_files", column("id", Integer), column("source", String), column("path", String),
                     column("warning", String))

ingest_rejects = table("ingest_rejects", column("status", String))

usage_events = table("usage_events", column("source", String), column("occurred_at", UTCDateTime),
                     column("unattributed", Boolean), column("cost_usd", Money))

alerts = table("alerts", column("kind", String), column("scope_id", String), column("state", String))

notifications = table("notifications", column("status", String))

call_attempts = table("call_attempts", column("state", String))

summary_dirty_days = table("summary_dirty_days", column("day", Date))

summary_corrections = table("summary_corrections", column("id", Integer))

limit_windows = table("limit_windows", column("account_id", String), column("state", String),
                      column("window_start", UTCDateTime), column("reset_at", UTCDateTime),
                      column("blocked_until", UTCDateTime))

# Every column: a kill switch row and a job run read here are the rows the models' readers return.
system_state = table("system_state", column("key", String), column("active", Boolean), column("reason", Text),
                     column("period", String), column("changed_at", UTCDateTime), column("changed_by", String),
                     column("data", JSON))

job_runs = table("job_runs", column("id", Integer), column("job", String), column("scheduled_for", UTCDateTime),
                 column("trigger", String), column("started_at", UTCDateTime), column("finished_at", UTCDateTime),
                 column("status", String), column("stats", JSON), column("error", Text), column("owner", String))

outages = table("outages", column("started_at", UTCDateTime), column("ended_at", UTCDateTime),
                column("alerted_at", UTCDateTime), column("skipped_runs", Integer), column("daemon", String),
                column("error", Text))
