"""A reader never writes: every reading command leaves an SQLite database's bytes as it
found them and no -wal/-shm file behind, with or without a writer's log beside it; an
older schema is refused with the command that upgrades it, which keeps every result."""

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import load_results
from benchmark.store import ResultStore, StoreError
from benchmark.store.tables import SCHEMA_VERSION

READERS = [
    ("status", "tiny.py", "--db", "r.sqlite"),
    ("status", "tiny.py", "--db", "r.sqlite", "--json"),
    ("list", "tiny.py", "--db", "r.sqlite"),
    ("report", "tiny", "--db", "r.sqlite", "--out", "rep", "--format", "md"),
    ("export", "tiny", "--db", "r.sqlite", "--out", "exp"),
    ("compare", "tiny", "tiny", "--db", "r.sqlite", "--db-b", "copy.sqlite", "--out", "cmp",
     "--format", "md"),
    ("power", "tiny", "--db", "r.sqlite"),
    ("run", "tiny.py", "--db", "r.sqlite", "--dry-run"),
]


def _files(db: Path) -> dict[str, bytes]:
    """The database and every file beside it that SQLite names after it."""
    return {p.name: p.read_bytes() for p in db.parent.iterdir()
            if p.name == db.name or p.name.startswith(db.name + "-")}


@pytest.fixture
def done_db(workdir, cli):
    assert cli("run", "tiny.py", "--jobs", "1", "--db", "r.sqlite").exit_code == 0
    db = workdir / "r.sqlite"
    assert set(_files(db)) == {"r.sqlite"}  # the runner checkpointed and removed its log
    shutil.copy(db, workdir / "copy.sqlite")  # for compare: the same study in another file
    return db


def test_reading_commands_leave_the_database_byte_for_byte(done_db, cli):
    before = _files(done_db)
    for args in READERS:
        result = cli(*args)
        assert result.exit_code == 0, (args, result.output)
        assert _files(done_db) == before, args
    jobs, epochs = load_results(done_db, "tiny")
    assert len(jobs) == 6 and len(epochs)
    assert _files(done_db) == before


def test_readers_beside_a_writers_log_never_checkpoint_it(done_db, cli):
    """A runner killed before its checkpoint leaves committed rows in the -wal file: a
    reader sees them, and neither the main file nor the log changes (a read-write
    connection closing last would fold the log into the main file)."""
    script = ("import os, sqlite3; c = sqlite3.connect(os.environ['DB']); "
              "c.execute('pragma wal_autocheckpoint=0'); "
              "c.execute(\"update studies set description = 'from the log'\"); c.commit(); "
              "os._exit(0)")  # no close: the log stays, as after a kill
    subprocess.run([sys.executable, "-c", script], env={"DB": str(done_db)}, check=True)
    def data() -> dict[str, bytes]:  # -shm is SQLite's shared-memory index: readers use it
        files = _files(done_db)
        assert set(files) == {"r.sqlite", "r.sqlite-wal", "r.sqlite-shm"}
        return {name: content for name, content in files.items() if name != "r.sqlite-shm"}

    before = data()
    assert len(before["r.sqlite-wal"]) > 0
    for args in READERS[:4]:
        assert cli(*args).exit_code == 0, args
        assert data() == before, args
    store = ResultStore(f"sqlite:///{done_db}", read_only=True)
    assert store.study_info("tiny")["description"] == "from the log"
    store.close()
    assert data() == before


def test_a_reader_store_cannot_write(done_db):
    store = ResultStore(f"sqlite:///{done_db}", read_only=True)
    with pytest.raises(Exception, match="readonly|read-only"), store.session() as s:
        s.connection().exec_driver_sql("update studies set description = 'x'")
    store.close()


def test_an_older_schema_is_refused_by_readers_and_upgraded_by_upgrade(done_db, cli):
    con = sqlite3.connect(done_db)
    con.execute("update cnnbench_meta set value = ? where name = 'schema_version'",
                (str(SCHEMA_VERSION - 1),))
    con.commit()
    con.close()
    before = _files(done_db)
    for args in READERS:
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "cnnbench upgrade --db" in result.output, args
        assert _files(done_db) == before, args
    with pytest.raises(StoreError, match="cnnbench upgrade"):
        load_results(done_db, "tiny")
    upgraded = cli("upgrade", "--db", "r.sqlite")
    assert upgraded.exit_code == 0, upgraded.output
    assert f"version {SCHEMA_VERSION - 1} upgraded to {SCHEMA_VERSION}" in upgraded.output
    assert "nothing to do" in cli("upgrade", "--db", "r.sqlite").output
    status = cli("status", "tiny.py", "--db", "r.sqlite", "--json")
    assert status.exit_code == 0 and '"COMPLETE": 4' in status.output
