"""The column types shared by every table: aware UTC timestamps and exact USD amounts.

SQLAlchemy Core only (no ORM, no dialect module), so a reader that builds its statements on
``worker.tables`` (``status``) gets the same values as the models give without importing them.
``worker.models.base`` uses these types for the declarative models.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime, Numeric
from sqlalchemy.types import TypeDecorator

MONEY_SCALE = 10  # NUMERIC(20,10): amounts are exact to 1e-10 USD

# How SQLite stores our timestamps: naive UTC text that sorts and compares correctly.
SQLITE_TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on every database.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text. A naive
    datetime handed in is a programming error, never silently guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class MoneyType(TypeDecorator[Decimal]):
    """USD as Decimal, exact on every database.

    PostgreSQL: NUMERIC(20,10). SQLite has no decimal type (NUMERIC affinity turns
    values into binary floats), so there it is an INTEGER count of 1e-10 USD:
    exact, and SUM() stays exact too (up to $922 million).
    """

    impl = Numeric(20, MONEY_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(20, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = Decimal(value)
        if dialect.name == "sqlite":
            return money_to_units(value)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return units_to_money(int(value))
        return Decimal(value)


_UNIT = Decimal(10) ** MONEY_SCALE


def money_to_units(value: Decimal) -> int:
    return int((value * _UNIT).to_integral_value())


def units_to_money(units: int) -> Decimal:
    return Decimal(units).scaleb(-MONEY_SCALE)


Money = MoneyType()
