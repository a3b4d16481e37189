"""Store stage, the connection: which database, with which settings, through which engine.

The one place where `--db`, `CNNBENCH_DB`, the default SQLite path, `--db-retry` and
`CNNBENCH_DB_RETRY_SECONDS` become a `Settings` (`settings`), and where engines are made:
a writer's (SQLite: busy timeout, foreign keys; PostgreSQL: pre-ping) and a reader's
whose connections cannot write (`reader_engine`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DB = "results/cnnbench.sqlite"
DB_VARIABLE = "CNNBENCH_DB"  # the database when --db is not given
RETRY_VARIABLE = "CNNBENCH_DB_RETRY_SECONDS"  # the retry bound when --db-retry is not given
RETRY_SECONDS = 60.0  # how long a write waits out a locked, contended or unreachable database
BUSY_TIMEOUT_MS = 10_000  # SQLite: how long one statement waits for another writer's lock


class StoreError(RuntimeError):
    """The database cannot be used as asked; the message says why and what to do."""


def now() -> datetime:
    """The store's clock: UTC, naive (as every timestamp column holds it)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class Settings:
    """A database and how long its writes wait out locks and outages."""

    url: str
    retry_seconds: float
    default: bool  # the default SQLite file: its directory is made when needed


def settings(db: str | None = None, retry_seconds: float | None = None) -> Settings:
    """`db` (--db; else $CNNBENCH_DB; else the default SQLite file) and `retry_seconds`
    (--db-retry; else $CNNBENCH_DB_RETRY_SECONDS; else a minute), resolved once."""
    db = db or os.environ.get(DB_VARIABLE) or None
    if retry_seconds is None:
        retry_seconds = float(os.environ.get(RETRY_VARIABLE) or RETRY_SECONDS)
    return Settings(database_url(db), float(retry_seconds), default=db is None)


def database_url(db: str | None) -> str:
    """An SQLAlchemy URL from --db / CNNBENCH_DB: a URL as is, anything else an SQLite path."""
    db = db or DEFAULT_DB
    return db if "://" in db else f"sqlite:///{db}"


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL; None for a server or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def writer_engine(url: str, path: Path | None):
    """A pooled engine; a server's connections are pinged before use (a restart)."""
    return create_engine(url, pool_pre_ping=path is None)


def sqlite_pragmas(dbapi_conn, _record) -> None:
    """Per-connection settings that write nothing (WAL is set once the file is ours)."""
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def reader_engine(url: str, path: Path | None):
    """An engine whose connections cannot write.

    SQLite: one connection per use (no pool), each opened by `_sqlite_reader`. PostgreSQL:
    every transaction READ ONLY (`default_transaction_read_only`). Other dialects: a plain
    engine (readers issue no writes)."""
    from sqlalchemy.pool import NullPool

    if path is not None:
        return create_engine("sqlite://", creator=lambda: _sqlite_reader(path),
                             poolclass=NullPool)
    if make_url(url).get_backend_name() == "postgresql":
        return create_engine(url, poolclass=NullPool,
                             connect_args={"options": "-c default_transaction_read_only=on"})
    return create_engine(url, poolclass=NullPool)


def _sqlite_reader(path: Path):
    """A connection to an existing SQLite file that leaves it as it found it.

    While a `-wal` file exists (a runner is writing, or one died before checkpointing), the
    connection is opened read-only (`mode=ro`): it never checkpoints, so the main file's
    bytes stay the same, and the -wal/-shm files it reads were there before. With no -wal
    file every change is already in the main file: the connection opens read-write but
    `query_only` (SQLite refuses every write), so that closing the last connection removes
    the -wal/-shm files opening it made (a read-only connection would leave them behind)
    while its checkpoint of an empty log writes nothing. Neither form creates a file."""
    import sqlite3
    from urllib.parse import quote

    wal = Path(f"{path}-wal").exists()
    uri = f"file:{quote(str(path.resolve()))}?mode={'ro' if wal else 'rw'}"
    con = sqlite3.connect(uri, uri=True, check_same_thread=False)
    con.execute("PRAGMA query_only=1")
    return con
