"""The head revision is read from the migrations' own ``revision``/``down_revision`` lines.

``worker.db._assignments`` reads each assignment from its line, and parses the file whole
(``ast``) when one is not a one-line literal; alembic, which imports every migration, is the
reference for the real ones."""

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from worker import db

NAMES = ("revision", "down_revision")


def test_each_migration_reads_as_alembic_reads_it():
    scripts = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    by_file = {Path(s.path).name: s for s in scripts.walk_revisions()}
    assert by_file
    for path in sorted((db.MIGRATIONS_DIR / "versions").glob("0*.py")):
        script = by_file[path.name]
        assert db._assignments(path, NAMES) == {"revision": script.revision, "down_revision": script.down_revision}


@pytest.mark.parametrize("source, expected", [
    ('"""Revision ID: 0003\nRevises: 0002\n"""\nrevision: str = "0003"  # the id\ndown_revision = None\n',
     {"revision": "0003", "down_revision": None}),
    ('revision = "0009"\ndown_revision = (\n    "0007",\n    "0008",\n)\n',  # a merge, over several lines
     {"revision": "0009", "down_revision": ("0007", "0008")}),
    ('revision = "0004"\ndown_revision = ("0002", "0003")\n', {"revision": "0004", "down_revision": ("0002", "0003")}),
    ('def upgrade():\n    revision = "not at module level"\nrevision = "0005"\n', {"revision": "0005"}),
])
def test_annotated_multi_line_and_nested_assignments(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source)
    assert db._assignments(path, NAMES) == expected
