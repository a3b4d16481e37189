"""Store stage, the core every part of `ResultStore` stands on: open a database (refusing
one that is not cnnbench's, creating or upgrading the schema for a writer), one
transaction at a time (`session`), dialect upserts (`insert_ignore`), and the notices of a
lost server.

Nothing is written to a database before it is known to be a cnnbench one (SQLite's journal
mode included). A reader's store (`read_only=True`) never writes: no migration, no
journal-mode change, read-only connections (`database.reader_engine`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import event, inspect
from sqlalchemy import insert as sa_insert
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError
from sqlalchemy.orm import Session

from . import migrations
from .database import (
    StoreError,
    reader_engine,
    redact,
    settings,
    sqlite_path,
    sqlite_pragmas,
    writer_engine,
)
from .retry import Contended, retried, transient
from .tables import SCHEMA_VERSION, Base, MetaRow


class StoreBase:
    """The database behind one URL: engine, schema, transactions."""

    def __init__(self, url: str, *, create: bool = True, required: bool = True,
                 read_only: bool = False, retry_seconds: float | None = None,
                 notify: Callable[[str], None] | None = None):
        """Open the database behind `url`. `create`: make it (file and schema) when it is
        not there; otherwise a missing SQLite file is an error when `required`, or an
        empty store (`missing`) when not.

        `read_only`: a reader's store (status, list, report, compare, export, serve,
        load_results), which never writes: no schema creation or migration (an older
        schema is refused, naming `cnnbench upgrade`), no journal-mode change, and every
        connection read-only.

        `retry_seconds`: how long a write waits out a locked or contended database or a
        lost server (see `database.settings`); `notify(line)` hears when the server is
        lost and when it is back."""
        self.url = url
        self.read_only = read_only
        self.retry_seconds = settings(url, retry_seconds).retry_seconds
        self.notify = notify
        self._down_since: float | None = None  # when the server was lost, for one notice
        self.upgraded_from: int | None = None  # the schema version `_migrate` found
        create = create and not read_only
        self._lock = threading.RLock()
        path = sqlite_path(url)
        self.missing = not create and path is not None and not path.exists()
        if self.missing:
            if required:
                raise StoreError(f"no such database: {path}. Check --db / CNNBENCH_DB, or "
                                 "run `cnnbench run STUDY` first to create it")
            return
        if path is not None and path.is_dir():
            raise StoreError(f"{path} is a directory, not a database file: pass a file in it, "
                             f"e.g. --db {path / 'cnnbench.sqlite'}")
        if path is not None and not path.parent.exists():
            raise StoreError(f"cannot create database {path}: directory {path.parent} "
                             "does not exist")
        try:
            self.engine = reader_engine(url, path) if read_only else writer_engine(url, path)
        except ArgumentError as exc:
            raise StoreError(f"bad database URL {redact(url)!r}: {exc}") from None
        except ImportError as exc:
            raise StoreError(f"the database driver for {redact(url)!r} is not installed "
                             f"({exc}): pip install it, or use an SQLite path") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", sqlite_pragmas)
        try:
            self._open(create)
        except BaseException:
            self.engine.dispose()
            raise

    # ----------------------------------------------------------------- schema

    @retried
    def _open(self, create: bool) -> None:
        try:
            names = set(inspect(self.engine).get_table_names())  # reads only
            if names and MetaRow.__tablename__ not in names:
                raise StoreError(
                    f"{redact(self.url)} is not a cnnbench database (it has tables "
                    f"{', '.join(sorted(names)[:5])}): pass another --db or CNNBENCH_DB"
                )
            if names:
                self._check_version()
            elif create:
                self._create()
            else:
                return  # an empty database: nothing to read, nothing written
            if self.engine.dialect.name == "sqlite" and not self.read_only:  # ours: writable
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")  # readers never block
        except OperationalError as exc:
            if transient(exc):
                raise
            path = sqlite_path(self.url)
            if path is not None:
                raise StoreError(f"cannot open SQLite database {path}: {exc.orig}. Check that "
                                 f"{path.parent} is writable and has free space, or pass "
                                 "another --db / CNNBENCH_DB") from None
            raise StoreError(f"cannot open database {redact(self.url)}: {exc.orig}. "
                             "Check the --db / CNNBENCH_DB URL and that the server is up; "
                             "if another process holds the lock, retry when it finishes") from None
        except DatabaseError as exc:
            raise StoreError(f"{redact(self.url)} is not a usable database: {exc.orig}") from None

    def _create(self) -> None:
        """Tables, then the version row: a database with tables but no version row is one
        another process is creating right now (see `_check_version`)."""
        try:
            Base.metadata.create_all(self.engine)
        except DatabaseError as exc:  # another process created a table first
            raise Contended(str(exc)) from None
        with self.session() as s:
            self.insert_ignore(s, MetaRow, [{"name": "schema_version",
                                             "value": str(SCHEMA_VERSION)}])

    def _check_version(self) -> None:
        with Session(self.engine) as s:
            row = s.get(MetaRow, "schema_version")
        found = int(row.value) if row else 0
        if row is None:
            raise Contended("schema being created by another process")
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"{redact(self.url)} has schema version {found}, newer than this cnnbench "
                f"understands ({SCHEMA_VERSION}): upgrade cnnbench, or pass another --db"
            )
        if found < 1:
            raise StoreError(f"{redact(self.url)} has no usable schema version ({found}): "
                             "pass another --db")
        if found < SCHEMA_VERSION and self.read_only:
            raise StoreError(
                f"{redact(self.url)} has schema version {found}, older than this cnnbench's "
                f"({SCHEMA_VERSION}), and reading commands never change a database: upgrade "
                f"it with `cnnbench upgrade --db {redact(self.url)}` (a `cnnbench run` on it "
                "upgrades it too), then retry")
        if found < SCHEMA_VERSION:
            with self._lock:
                migrations.upgrade(self.engine, found)
            self.upgraded_from = found

    # ----------------------------------------------------------------- transactions

    def insert_ignore(self, s: Session, model, rows: list[dict]) -> None:
        """INSERT rows, skipping those whose unique key exists already: two runners writing
        the same grid both succeed, and no duplicate ever raises an integrity error."""
        if not rows:
            return
        name = self.engine.dialect.name
        if name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:  # another dialect: a plain insert (concurrent runners need SQLite or PostgreSQL)
            s.execute(sa_insert(model), rows)
            return
        s.execute(insert(model).on_conflict_do_nothing(), rows)

    @property
    def url_redacted(self) -> str:
        return redact(self.url)

    @property
    def exists(self) -> bool:
        return not self.missing and MetaRow.__tablename__ in inspect(self.engine).get_table_names()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        with self._lock, Session(self.engine) as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def close(self) -> None:
        if not self.missing:
            self.engine.dispose()

    def _told(self, event: str, cause: BaseException | None = None) -> None:
        """One notice when the server is lost and one when it is back, whichever threads
        (the runner, its heartbeat) meet the outage."""
        with self._lock:
            if (event == "lost") == (self._down_since is not None):
                return
            if event == "lost":
                self._down_since = time.monotonic()
                line = (f"lost the database {self.url_redacted} ({' '.join(str(cause).split())}); "
                        f"waiting up to {self.retry_seconds:.0f} s for it to come back, "
                        "keeping the results that finish meanwhile")
            else:
                line = (f"the database is back after "
                        f"{time.monotonic() - self._down_since:.0f} s")
                self._down_since = None
        if self.notify is not None:
            self.notify(line)
