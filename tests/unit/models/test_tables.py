"""``worker.tables`` names the columns the light readers use: each one is its model's, by name and type."""

from __future__ import annotations

import pytest
from sqlalchemy import TypeDecorator

from worker import tables
from worker.models import Base

LIGHT = {name: t for name, t in vars(tables).items() if hasattr(t, "c") and hasattr(t, "name")}


def _kind(column_type):
    """A TypeDecorator by its class (UTCDateTime, MoneyType); any other type by its affinity
    (String(100) and String, BigInteger with an Integer variant and Integer)."""
    if isinstance(column_type, TypeDecorator):
        return type(column_type)
    return column_type._type_affinity


def test_every_light_table_is_a_model_table() -> None:
    assert LIGHT, "worker.tables defines no table"
    assert sorted(t.name for t in LIGHT.values() if t.name not in Base.metadata.tables) == []


@pytest.mark.parametrize("name", sorted(LIGHT))
def test_each_column_of_a_light_table_is_its_models_by_name_and_type(name: str) -> None:
    light = LIGHT[name]
    model = Base.metadata.tables[light.name]
    for col in light.c:
        assert col.name in model.c, f"{light.name}.{col.name} is not a column of the model"
        assert _kind(col.type) == _kind(model.c[col.name].type), f"{light.name}.{col.name}"


@pytest.mark.parametrize("name", ["system_state", "job_runs"])
def test_the_tables_whose_rows_are_handed_out_have_every_column(name: str) -> None:
    # kill_switch() and last_runs() return their rows: a caller may read any column
    assert sorted(c.name for c in getattr(tables, name).c) == sorted(c.name for c in Base.metadata.tables[name].c)
