"""Declarative base, its naming convention, and the key and JSON column types (the others: ``worker.columns``)."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Integer, MetaData
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

from worker.columns import (MONEY_SCALE, SQLITE_TS_FORMAT, Money, MoneyType, UTCDateTime, money_to_units,
                             units_to_money)

# Stable constraint names, so Alembic migrations and models compare equal.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Auto-increment surrogate keys: BIGINT on PostgreSQL, INTEGER (rowid) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")

__all__ = ["Base", "NAMING", "Id", "Json", "MONEY_SCALE", "SQLITE_TS_FORMAT", "Money", "MoneyType",
           "UTCDateTime", "money_to_units", "units_to_money"]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
