"""Store stage, the schema's history: one module per schema version (`v2` ... `v9`), each
saying what it added, and `upgrade`, which brings an older database up to date.

Applied by `cnnbench upgrade` and by a `run` (a writer's `ResultStore`), never by a reader.
Every step so far adds: new tables (made by `create_all`, which never alters or drops what
exists) or new columns of existing tables with a default that reads as the behaviour
before them; one widens a column (v9, on PostgreSQL, where lengths are checked). Each
step is idempotent, so a runner racing another through it finds the work done; a
database's version is its `cnnbench_meta` row, written last.
"""

from __future__ import annotations

from sqlalchemy import inspect, update
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from ..tables import SCHEMA_VERSION, Base, MetaRow
from . import v2, v3, v4, v5, v6, v7, v8, v9

STEPS = (v2, v3, v4, v5, v6, v7, v8, v9)  # in order; the last is SCHEMA_VERSION
assert STEPS[-1].VERSION == SCHEMA_VERSION, "a schema version without its migration step"


def upgrade(engine, found: int) -> None:
    """Bring a database of schema version `found` up to SCHEMA_VERSION, every result kept."""
    Base.metadata.create_all(engine)
    for step in STEPS:
        if found < step.VERSION:
            _add_columns(engine, step.COLUMNS)
            for statement in getattr(step, "ALTER", {}).get(engine.dialect.name, ()):
                with engine.begin() as conn:
                    conn.exec_driver_sql(statement)
    with Session(engine) as s, s.begin():
        s.execute(update(MetaRow).where(MetaRow.name == "schema_version")
                  .values(value=str(SCHEMA_VERSION)))


def _add_columns(engine, columns) -> None:
    for table, column, ddl in columns:
        if column in {c["name"] for c in inspect(engine).get_columns(table)}:
            continue
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")
        except DatabaseError:
            if column not in {c["name"] for c in inspect(engine).get_columns(table)}:
                raise  # not another runner's doing: a real failure
