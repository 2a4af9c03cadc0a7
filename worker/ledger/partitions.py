"""The PostgreSQL ledger's monthly partitions (revision 0016): names, bounds, creation.

``usage_events`` is partitioned by range of ``occurred_at``, one partition per UTC month,
named ``usage_events_pYYYYMM``. Months from :data:`FLOOR` on get their own partition,
created ahead by the retention job (``retention.months_ahead``) and on demand by the writer
for any month a batch holds that has none yet (a late or back-filled record), so no row
ever waits for one. Anything before the floor (a record from year 1 is still a record)
goes to ``usage_events_default``; a month partition is never created below the floor, so
the default partition never holds a row a new partition would claim.

Creation takes a transaction-scoped advisory lock: replicas that meet the same new month
create it once. SQLite has no partitions; every function here is a no-op there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, text

FLOOR = date(2000, 1, 1)
DEFAULT = "usage_events_default"
_LOCK = 0x7A11_0016  # pg_advisory_xact_lock key: partition creation
# The months each engine's database was seen to have a partition for, committed: a partition
# this process creates is added only once a later call sees it (its transaction may roll back).
_known: WeakKeyDictionary[Engine, set[date]] = WeakKeyDictionary()


def is_partition(name: str | None) -> bool:
    """A table that is one of the ledger's partitions (not a table of the models)."""
    return bool(name) and (name == DEFAULT or (name.startswith("usage_events_p") and name[14:].isdigit()))


def include_name(name: str | None, type_: str, _parent: dict) -> bool:
    """Alembic's ``include_name`` hook: autogenerate compares the models, not the partitions."""
    return not (type_ == "table" and is_partition(name))


def month_of(moment: datetime) -> date:
    moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    months, month = [], date(first.year, first.month, 1)
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def name_of(month: date) -> str:
    return f"usage_events_p{month.year:04d}{month.month:02d}"


def month_of_hour(hour: int) -> date:
    """The UTC month of an hour counted from the epoch (the writer's dirty-hour keys)."""
    return month_of(datetime.fromtimestamp(hour * 3600, UTC))


def _bound(month: date) -> str:
    return f"'{month.isoformat()} 00:00:00+00'"


def create_ddl(month: date) -> str:
    upper = next_month(month) if month.year < 9999 or month.month < 12 else None
    upper_sql = _bound(upper) if upper else "'10000-01-01 00:00:00+00'"
    return (f"CREATE TABLE IF NOT EXISTS {name_of(month)} PARTITION OF usage_events "
            f"FOR VALUES FROM ({_bound(month)}) TO ({upper_sql})")


def existing(conn: Connection) -> set[date]:
    """The months that have a partition now."""
    if conn.dialect.name != "postgresql":
        return set()
    rows = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'usage_events'")).scalars()
    return {date(int(n[-6:-2]), int(n[-2:]), 1) for n in rows if n.startswith("usage_events_p")}


def ensure(conn: Connection, months: set[date]) -> list[date]:
    """Create the partitions these months lack (in the caller's transaction); the ones created."""
    if conn.dialect.name != "postgresql":
        return []
    known = _known.setdefault(conn.engine, set())
    wanted = {m for m in months if m >= FLOOR and m not in known}
    if not wanted:
        return []
    present = existing(conn)
    known.update(present)
    created = []
    if missing := sorted(wanted - present):
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
        present = existing(conn)  # another replica may have made them while we waited
        for month in missing:
            if month not in present:
                conn.exec_driver_sql(create_ddl(month))
                created.append(month)
    return created


def forget(conn: Connection, month: date) -> None:
    """A dropped partition is no longer known to exist (retention)."""
    _known.get(conn.engine, set()).discard(month)
