"""Store stage: the result database, and the only code that talks SQL.

Takes expanded studies, claims and `JobResult`s; gives plain frozen value objects
(`JobState`, `SyncSummary`) and pandas frames for reports, never ORM rows. Any
SQLAlchemy URL works; the default is an SQLite file in WAL mode. Writes from the
threads of one process are serialised by a lock (joblib dispatches from a callback
thread, a heartbeat thread extends leases).

Job life cycle: `sync_study` writes the whole grid (PENDING, or SKIPPED where every
membership excludes it); `claim` moves one job to RUNNING under a lease, atomically, so
two runners never hold one job; `record` stores a finished attempt as a `runs` row and
sets the job's status; `release` and `reclaim` return RUNNING jobs whose runner stopped
or died to PENDING. Resume is "run what is not done under the current code version"
(`state` says where each job stands). `record_epochs` writes running jobs' epochs as they
arrive, for every reader to see. A reader's store (`read_only=True`) never writes: no
migration, no journal-mode change, read-only connections. No torch here.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import (
    and_,
    case,
    create_engine,
    delete,
    event,
    func,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy import (
    insert as sa_insert,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DBAPIError,
    IntegrityError,
    OperationalError,
)
from sqlalchemy.orm import Session

from . import provenance, state
from .config import CONFIG_FIELDS
from .plan import with_stored_seeds
from .records import EpochMetrics, JobResult, JobSpec, JobStatus
from .state import JobState
from .study import Claim, Section
from .tables import (
    ADDED_COLUMNS,
    SCHEMA_VERSION,
    Base,
    CellRow,
    ClaimRow,
    EpochRow,
    JobRow,
    LiveEpochRow,
    MetaRow,
    RunRow,
    SectionRow,
    StudyRow,
)

DEFAULT_DB = "results/cnnbench.sqlite"
LEASE = timedelta(seconds=120)  # a runner that misses heartbeats this long loses its jobs
HEARTBEAT_SECONDS = 20.0
LEGACY_NORM = "+mnist-norm"  # code version suffix of runs adopted by `_adopt_path_keys`
CONFIG_COLUMNS = list(CONFIG_FIELDS)  # every TrainConfig field is a column of `jobs`


class StoreError(RuntimeError):
    """The database cannot be used as asked; the message says why and what to do."""


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def database_url(db: str | None) -> str:
    """An SQLAlchemy URL from --db / CNNBENCH_DB: a URL as is, anything else an SQLite path."""
    db = db or DEFAULT_DB
    return db if "://" in db else f"sqlite:///{db}"


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


RETRY_SECONDS = 60.0  # how long a write waits out a locked, contended or unreachable database
BUSY_TIMEOUT_MS = 10_000  # SQLite: how long one statement waits for another writer's lock


class _Contended(Exception):
    """Another process is mid-way through the same write (schema creation, a sync)."""


def _transient(exc: BaseException) -> bool:
    """Locked, busy or racing: worth retrying. An integrity error (NOT NULL, a foreign key,
    a duplicate) is a bug or bad input, never contention: writes that two runners may race
    on are written as upserts, so they raise none."""
    if isinstance(exc, _Contended):
        return True
    if isinstance(exc, IntegrityError):
        return False
    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, OperationalError) and any(
        word in text for word in ("locked", "busy", "deadlock", "could not serialize"))


_LOST = ("terminating connection", "server closed the connection", "connection refused",
         "could not connect", "connection failed", "connection timed out", "is starting up",
         "is shutting down", "in recovery mode", "connection reset", "connection is closed",
         "no connection to the server", "consuming input failed", "ssl syscall error",
         "read-only transaction")  # a failover's old primary, now a replica


def _lost(exc: BaseException) -> bool:
    """The database server went away (a restart, a failover, the network): worth waiting
    for. SQLAlchemy flags a connection it had to drop; the texts are PostgreSQL's (libpq)."""
    if not isinstance(exc, DBAPIError) or isinstance(exc, IntegrityError):
        return False
    text = str(getattr(exc, "orig", exc)).lower()
    return exc.connection_invalidated or any(word in text for word in _LOST)


def _retried(method=None, *, outage: bool = True):
    """Retry a store operation, whole, with exponential backoff while the database is
    locked, another runner races it for the same rows, or (`outage`) the server is
    unreachable, for `self.retry_seconds` in all; then a clear StoreError. An outage is
    told to `self.notify` when it starts and when it ends.

    Every retried operation is one transaction, so a failed attempt left nothing behind;
    one whose commit may have reached the server before the connection died checks for
    its own rows first (`record`)."""
    if method is None:
        return functools.partial(_retried, outage=outage)

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        start, delay, lost = time.monotonic(), 0.05, None
        while True:
            try:
                result = method(self, *args, **kwargs)
                if lost is not None:
                    self._told("back")
                return result
            except Exception as exc:
                down = outage and _lost(exc)
                if not (down or _transient(exc)):
                    raise
                cause = getattr(exc, "orig", None) or exc
                if time.monotonic() - start > self.retry_seconds:
                    what = "unreachable" if down else "locked or contended"
                    fix = ("check the server, then run again: the run resumes" if down else
                           "another process holds it; retry when it finishes")
                    raise StoreError(
                        f"{redact(self.url)} stayed {what} for {self.retry_seconds:.0f} s "
                        f"({' '.join(str(cause).split())}): {fix} (nothing was written)") from None
                if down and lost is None:
                    lost = time.monotonic()
                    self._told("lost", cause)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)
    return wrapper


@dataclass(frozen=True)
class Runner:
    """Identity of one `cnnbench run` process, written into the leases it holds."""

    runner_id: str
    host: str
    pid: int

    @classmethod
    def here(cls) -> Runner:
        return cls(uuid.uuid4().hex[:16], provenance.host(), os.getpid())


@dataclass(frozen=True)
class SyncSummary:
    cells: int  # (section, cell, seed) rows of the study
    jobs: int  # distinct job keys of the study
    new_jobs: int  # of which were not yet in the database
    kept_seeds: int = 0  # cell runs of seeds stored earlier that the study file did not name


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class ResultStore:
    """The result database behind one URL."""

    heartbeat_seconds = HEARTBEAT_SECONDS  # how often `keep_alive` extends leases

    def __init__(self, url: str, *, create: bool = True, required: bool = True,
                 read_only: bool = False, retry_seconds: float | None = None,
                 notify: Callable[[str], None] | None = None):
        """Open the database behind `url`. `create`: make it (file and schema) when it is
        not there; otherwise a missing SQLite file is an error when `required`, or an
        empty store (`missing`) when not. Nothing is written to a database before it is
        known to be a cnnbench one (SQLite's journal mode included).

        `read_only`: a reader's store (status, list, report, compare, export, serve,
        load_results), which never writes: no schema creation or migration (an older
        schema is refused, naming `cnnbench upgrade`), no journal-mode change, and every
        connection read-only (see `_reader_engine`).

        `retry_seconds`: how long a write waits out a locked or contended database or a
        lost server (default $CNNBENCH_DB_RETRY_SECONDS, else a minute); `notify(line)`
        hears when the server is lost and when it is back."""
        self.url = url
        self.read_only = read_only
        self.retry_seconds = retry_seconds if retry_seconds is not None else float(
            os.environ.get("CNNBENCH_DB_RETRY_SECONDS") or RETRY_SECONDS)
        self.notify = notify
        self._down_since: float | None = None  # when the server was lost, for one notice
        self.upgraded_from: int | None = None  # the schema version `_migrate` found
        create = create and not read_only
        self._lock = threading.RLock()
        path = _sqlite_path(url)
        self.missing = not create and path is not None and not path.exists()
        if self.missing:
            if required:
                raise StoreError(f"no such database: {path}. Check --db / CNNBENCH_DB, or "
                                 "run `cnnbench run STUDY` first to create it")
            return
        if path is not None and not path.parent.exists():
            raise StoreError(f"cannot create database {path}: directory {path.parent} "
                             "does not exist")
        try:
            self.engine = (_reader_engine(url, path) if read_only else
                           create_engine(url, pool_pre_ping=path is None))
        except ArgumentError as exc:
            raise StoreError(f"bad database URL {redact(url)!r}: {exc}") from None
        except ImportError as exc:
            raise StoreError(f"the database driver for {redact(url)!r} is not installed "
                             f"({exc}): pip install it, or use an SQLite path") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            self._open(create)
        except BaseException:
            self.engine.dispose()
            raise

    # ----------------------------------------------------------------- schema

    @_retried
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
            if _transient(exc):
                raise
            path = _sqlite_path(self.url)
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
            raise _Contended(str(exc)) from None
        with self.session() as s:
            self._insert_ignore(s, MetaRow, [{"name": "schema_version",
                                              "value": str(SCHEMA_VERSION)}])

    def _insert_ignore(self, s: Session, model, rows: list[dict]) -> None:
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

    def _check_version(self) -> None:
        with Session(self.engine) as s:
            row = s.get(MetaRow, "schema_version")
        found = int(row.value) if row else 0
        if row is None:
            raise _Contended("schema being created by another process")
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
            self._migrate(found)

    def _migrate(self, found: int) -> None:
        """Bring an older schema up to date: new tables (create_all never alters or drops
        what exists), then the columns later versions added to existing tables, each with
        a default that reads as the behaviour before it. Idempotent, so a runner racing
        another through it finds the work done."""
        Base.metadata.create_all(self.engine)
        for version in sorted(v for v in ADDED_COLUMNS if v > found):
            for table, column, ddl in ADDED_COLUMNS[version]:
                if column in {c["name"] for c in inspect(self.engine).get_columns(table)}:
                    continue
                try:
                    with self.engine.begin() as conn:
                        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")
                except DatabaseError:
                    names = {c["name"] for c in inspect(self.engine).get_columns(table)}
                    if column not in names:  # not another runner's doing: a real failure
                        raise
        with self.session() as s:
            s.execute(update(MetaRow).where(MetaRow.name == "schema_version")
                      .values(value=str(SCHEMA_VERSION)))
        self.upgraded_from = found

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

    # ----------------------------------------------------------------- grid

    @_retried
    def sync_study(self, name: str, path: str, file_hash: str, description: str,
                   sections: Sequence[Section], specs: Sequence[JobSpec],
                   claims: Sequence[Claim] = (), margin_pp: float | None = None,
                   ) -> SyncSummary:
        """Write the study's whole grid: new jobs as PENDING (SKIPPED if excluded everywhere).

        Membership is the union of the study file's cells and every seed the database
        already holds for them (see `plan.with_stored_seeds`), read and written in one
        transaction with the study row locked, so two runners syncing at once lose nothing.
        """
        with self.session() as s:
            self._insert_ignore(s, StudyRow, [dict(name=name, path=path, file_hash=file_hash,
                                                   description=description, updated_at=now())])
            study = s.scalar(select(StudyRow).where(StudyRow.name == name).with_for_update())
            study.path, study.file_hash = path, file_hash
            study.description, study.updated_at = description, now()
            study.margin_pp = margin_pp
            stored = self._stored_seeds(s, study.study_id)
            members = with_stored_seeds(specs, stored)
            needed = {m.key for m in members if m.skip_reason is None}
            configs = {m.key: m.config for m in members}
            s.execute(delete(SectionRow).where(SectionRow.study_id == study.study_id))
            s.add_all(SectionRow(study_id=study.study_id, name=sec.name, position=i,
                                 title=sec.title, note=sec.note) for i, sec in enumerate(sections))
            s.execute(delete(ClaimRow).where(ClaimRow.study_id == study.study_id))
            s.add_all(ClaimRow(study_id=study.study_id, position=i, text=c.text,
                               section=c.section, kind=c.kind, cell=c.cell, baseline=c.baseline,
                               margin=c.margin)
                      for i, c in enumerate(claims))
            self._adopt_path_keys(s, configs)
            self._adopt_earlier_keys(s, members)
            known = self._job_ids(s, configs)
            new = [k for k in configs if k not in known]
            self._insert_ignore(s, JobRow, [
                dict(job_key=k, **configs[k].to_dict(), updated_at=now(), attempts=0,
                     status=(JobStatus.PENDING if k in needed else JobStatus.SKIPPED).value)
                for k in new])
            s.execute(update(JobRow).where(JobRow.job_key.in_(needed),
                                           JobRow.status == JobStatus.SKIPPED.value)
                      .values(status=JobStatus.PENDING.value, updated_at=now()))
            ids = self._job_ids(s, configs)
            s.execute(delete(CellRow).where(CellRow.study_id == study.study_id))
            s.add_all(CellRow(study_id=study.study_id, section=m.section, cell=m.cell,
                              position=m.position, replicate=m.config.seed, job_id=ids[m.key],
                              published=m.published, skip_reason=m.skip_reason)
                      for m in members)
        return SyncSummary(len(members), len(configs), len(new), len(members) - len(specs))

    @staticmethod
    def _adopt_path_keys(s: Session, configs: dict) -> None:
        """Jobs on a directory dataset stored before schema 4 were keyed by its path: give
        each the content-keyed identity of the job now at that path, with its history.
        Those runs normalised with MNIST's mean and std, not the data's own, so their code
        version gains LEGACY_NORM and they show as STALE (kept, never mixed, rerun)."""
        legacy = {c.path_key(): k for k, c in configs.items() if c.data_hash}
        if not legacy:
            return
        found = ResultStore._job_ids(s, dict.fromkeys(legacy))
        taken = ResultStore._job_ids(s, dict.fromkeys(legacy[old] for old in found))
        for old, job_id in found.items():
            new = legacy[old]
            if new in taken:
                continue
            s.execute(update(JobRow).where(JobRow.job_id == job_id).values(
                job_key=new, data_hash=configs[new].data_hash,
                code_version=func.coalesce(JobRow.code_version, "") + LEGACY_NORM))
            s.execute(update(RunRow).where(RunRow.job_id == job_id).values(
                code_version=func.coalesce(RunRow.code_version, "") + LEGACY_NORM))

    @staticmethod
    def _adopt_earlier_keys(s: Session, members: Sequence[JobSpec]) -> None:
        """Jobs stored before settings that others leave unused were normalised out of job
        keys (SGD's momentum inherited by an Adam cell): give each the key and the columns
        of the identical job it is now, with its history. The training was the same, so
        its results stay current."""
        earlier = {m.earlier_key: m for m in members if m.earlier_key}
        if not earlier:
            return
        found = ResultStore._job_ids(s, dict.fromkeys(earlier))
        taken = ResultStore._job_ids(s, dict.fromkeys(earlier[old].key for old in found))
        for old, job_id in found.items():
            member = earlier[old]
            if member.key in taken:
                continue
            s.execute(update(JobRow).where(JobRow.job_id == job_id).values(
                job_key=member.key, **{name: getattr(member.config, name)
                                       for name, _ in member.unused}))

    @staticmethod
    def _stored_seeds(s: Session, study_id: int) -> dict[tuple[str, str], dict[int, str]]:
        rows = s.execute(select(CellRow.section, CellRow.cell, JobRow.seed, JobRow.job_key)
                         .join(JobRow, JobRow.job_id == CellRow.job_id)
                         .where(CellRow.study_id == study_id))
        stored: dict[tuple[str, str], dict[int, str]] = {}
        for section, cell, seed, key in rows:
            stored.setdefault((section, cell), {})[seed] = key
        return stored

    def stored_seeds(self, study: str) -> dict[tuple[str, str], dict[int, str]]:
        """(section, cell) -> {seed: job key} of every replicate the study holds."""
        if not self.exists:
            return {}
        with self.session() as s:
            study_id = s.scalar(select(StudyRow.study_id).where(StudyRow.name == study))
            return {} if study_id is None else self._stored_seeds(s, study_id)

    @staticmethod
    def _job_ids(s: Session, configs: dict) -> dict[str, int]:
        keys, ids = list(configs), {}
        for i in range(0, len(keys), 500):  # stay under SQLite's bound-parameter limit
            rows = s.execute(select(JobRow.job_key, JobRow.job_id)
                             .where(JobRow.job_key.in_(keys[i:i + 500])))
            ids.update({key: job_id for key, job_id in rows})
        return ids

    @staticmethod
    def _runnable_clause(code_version: str, retry_failed: bool):
        """`state.runnable` for stored rows (a dead runner's jobs are PENDING again once
        `reclaim` ran)."""
        clauses = [
            JobRow.status.in_([s.value for s in state.RUNNABLE_STORED]),
            and_(JobRow.status.in_([s.value for s in state.RERUN_WHEN_OTHER_CODE]),
                 or_(JobRow.code_version.is_(None), JobRow.code_version != code_version)),
        ]
        if retry_failed:
            clauses.append(JobRow.status.in_([s.value for s in state.RETRYABLE]))
        return or_(*clauses)

    # ----------------------------------------------------------------- leases

    @_retried
    def claim(self, key: str, runner: Runner, code_version: str,
              retry_failed: bool = False) -> bool:
        """Atomically take one runnable job; False if another runner has it or it is done."""
        stmt = (update(JobRow)
                .where(JobRow.job_key == key, self._runnable_clause(code_version, retry_failed))
                .values(status=JobStatus.RUNNING.value, runner=runner.runner_id,
                        runner_host=runner.host, runner_pid=runner.pid,
                        lease_expires=now() + LEASE, attempts=JobRow.attempts + 1,
                        updated_at=now()))
        with self.session() as s:
            return s.execute(stmt).rowcount == 1

    @_retried
    def heartbeat(self, runner: Runner) -> None:
        with self.session() as s:
            s.execute(update(JobRow)
                      .where(JobRow.runner == runner.runner_id,
                             JobRow.status == JobStatus.RUNNING.value)
                      .values(lease_expires=now() + LEASE))

    @contextmanager
    def keep_alive(self, runner: Runner, on_error=None) -> Iterator[None]:
        """Extend `runner`'s leases every HEARTBEAT_SECONDS in a background thread while
        the block runs. A missed beat is retried on the next one (the lease has slack);
        `on_error(exc)` hears of it."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat_seconds):
                try:
                    self.heartbeat(runner)
                except Exception as exc:
                    if on_error:
                        on_error(exc)

        thread = threading.Thread(target=beat, name="cnnbench-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _to_pending(self, s: Session, where) -> int:
        stmt = (update(JobRow).where(JobRow.status == JobStatus.RUNNING.value, where)
                .values(status=JobStatus.PENDING.value, runner=None, runner_host=None,
                        runner_pid=None, lease_expires=None, updated_at=now()))
        return s.execute(stmt).rowcount

    @_retried
    def release(self, runner: Runner) -> int:
        """Return the jobs this runner still holds to PENDING (interrupted or aborted run)."""
        with self.session() as s:
            return self._to_pending(s, JobRow.runner == runner.runner_id)

    @_retried
    def reclaim(self, host: str | None = None) -> int:
        """Return jobs of dead runners to PENDING: lease expired, or (on this host) pid gone."""
        host = host or provenance.host()
        with self.session() as s:
            count = self._to_pending(s, JobRow.lease_expires < now())
            rows = s.execute(select(JobRow.job_id, JobRow.runner_pid)
                             .where(JobRow.status == JobStatus.RUNNING.value,
                                    JobRow.runner_host == host)).all()
            dead = [job_id for job_id, pid in rows if pid is None or not _pid_alive(pid)]
            if dead:
                count += self._to_pending(s, JobRow.job_id.in_(dead))
            return count

    # ----------------------------------------------------------------- results

    @_retried
    def record(self, result: JobResult, runner: Runner) -> bool:
        """Store a finished attempt and set the job's status; False if the lease was lost.

        The run row is written either way: a result is never thrown away. Written once:
        when a lost connection leaves it unknown whether an attempt's commit reached the
        server, the retry finds that attempt's run row (same job, runner and start) and
        writes nothing more.
        """
        final = result.final
        with self.session() as s:
            job_id = s.scalar(select(JobRow.job_id).where(JobRow.job_key == result.key))
            if job_id is None:
                raise StoreError(f"result for unknown job {result.key}")
            if result.started_at is not None and s.scalar(select(RunRow.run_id).where(
                    RunRow.job_id == job_id, RunRow.runner == runner.runner_id,
                    RunRow.started_at == _utc(result.started_at),
                    RunRow.code_version == result.code_version).limit(1)) is not None:
                return True  # an earlier attempt of this call committed it
            run = RunRow(
                job_id=job_id, status=result.status.value, error=result.error,
                code_version=result.code_version,
                test_accuracy=_finite(final.test_accuracy) if final else None,
                test_loss=_finite(final.test_loss) if final else None,
                train_loss=_finite(final.train_loss) if final else None,
                epochs_done=len(result.epochs), param_count=result.param_count,
                train_seconds=result.train_seconds, wall_seconds=result.wall_seconds,
                device=result.device, host=result.host, slurm_job_id=result.slurm_job_id,
                runner=runner.runner_id,
                python_version=result.versions.get("python"),
                torch_version=result.versions.get("torch"),
                cuda_version=result.versions.get("cuda"),
                started_at=_utc(result.started_at), finished_at=_utc(result.finished_at),
            )
            s.add(run)
            s.flush()
            s.add_all(EpochRow(run_id=run.run_id, epoch=e.epoch, train_loss=_finite(e.train_loss),
                               test_loss=_finite(e.test_loss),
                               test_accuracy=_finite(e.test_accuracy), seconds=e.seconds)
                      for e in result.epochs)
            s.execute(delete(LiveEpochRow).where(LiveEpochRow.job_id == job_id))
            owned = s.execute(
                update(JobRow)
                .where(JobRow.job_id == job_id, JobRow.runner == runner.runner_id,
                       JobRow.status == JobStatus.RUNNING.value)
                .values(status=result.status.value, code_version=result.code_version,
                        runner=None, runner_host=None, runner_pid=None, lease_expires=None,
                        updated_at=now())
            ).rowcount
            return owned == 1

    @_retried(outage=False)  # for watchers: not worth holding the run up while it is down
    def record_epochs(self, runner: Runner, items: Sequence[tuple[str, EpochMetrics]]) -> int:
        """Write epochs of running jobs as the feed brought them, in one transaction: each
        under the job's current attempt, for jobs this runner still holds (a job whose
        lease was lost, or that finished meanwhile, is left alone). Returns the rows
        written; an epoch written before (a retried worker's) is kept as it was."""
        keys = list(dict.fromkeys(key for key, _ in items))
        if not keys:
            return 0
        with self.session() as s:
            held = {}
            for i in range(0, len(keys), 500):
                held.update({key: (job_id, attempt) for key, job_id, attempt in s.execute(
                    select(JobRow.job_key, JobRow.job_id, JobRow.attempts)
                    .where(JobRow.job_key.in_(keys[i:i + 500]),
                           JobRow.runner == runner.runner_id,
                           JobRow.status == JobStatus.RUNNING.value))})
            at = now()
            rows = [{"job_id": held[key][0], "attempt": held[key][1], "epoch": m.epoch,
                     "train_loss": _finite(m.train_loss), "test_loss": _finite(m.test_loss),
                     "test_accuracy": _finite(m.test_accuracy), "seconds": m.seconds,
                     "written_at": at}
                    for key, m in items if key in held]
            self._insert_ignore(s, LiveEpochRow, rows)
            return len(rows)

    # ----------------------------------------------------------------- reading

    def live_epochs(self, keys=None, *, study: str | None = None, after: int = 0):
        """Epochs of the attempts running now, as the runners wrote them: a frame with
        `live_epoch_id` (increasing: pass the largest seen as `after` to get only what
        came since), `job_key`, `epoch` and the metrics, for `keys` or for every cell of
        `study` (then with `section`, `cell` and `position`: a job serving two cells
        comes twice), in order of arrival."""
        import pandas as pd

        if not self.exists:
            return pd.DataFrame()
        query = (select(LiveEpochRow.live_epoch_id, JobRow.job_key, LiveEpochRow.epoch,
                        LiveEpochRow.train_loss, LiveEpochRow.test_loss,
                        LiveEpochRow.test_accuracy, LiveEpochRow.seconds,
                        LiveEpochRow.written_at)
                 .join(JobRow, JobRow.job_id == LiveEpochRow.job_id)
                 .where(LiveEpochRow.live_epoch_id > after,
                        LiveEpochRow.attempt == JobRow.attempts,
                        JobRow.status == JobStatus.RUNNING.value)
                 .order_by(LiveEpochRow.live_epoch_id))
        if study is not None:  # one row per epoch and cell of the study the job serves
            query = (query.add_columns(CellRow.section, CellRow.cell, CellRow.position)
                     .join(CellRow, CellRow.job_id == JobRow.job_id)
                     .join(StudyRow, StudyRow.study_id == CellRow.study_id)
                     .where(StudyRow.name == study, CellRow.skip_reason.is_(None)))
        frames = []

        def frame(result):
            return pd.DataFrame(result.all(), columns=list(result.keys()))

        with self.session() as s:
            if keys is None:
                frames.append(frame(s.execute(query)))
            else:
                keys = list(dict.fromkeys(keys))
                for i in range(0, len(keys), 500):
                    frames.append(frame(s.execute(query.where(
                        JobRow.job_key.in_(keys[i:i + 500])))))
        frames = [f for f in frames if len(f)]
        return (pd.concat(frames, ignore_index=True).sort_values("live_epoch_id")
                if frames else pd.DataFrame())

    def study_names(self) -> list[str]:
        if not self.exists:
            return []
        with self.session() as s:
            return list(s.scalars(select(StudyRow.name).order_by(StudyRow.name)))

    def job_states(self, keys, code_version: str) -> dict[str, JobState]:
        """Where each job stands (`state.derive`), by key, whichever study put it in the
        database."""
        keys = list(dict.fromkeys(keys))
        if not self.exists or not keys:
            return {}
        out: dict[str, JobState] = {}
        here, t = provenance.host(), now()
        with self.session() as s:
            for i in range(0, len(keys), 500):  # stay under SQLite's bound-parameter limit
                rows = s.execute(select(JobRow.job_key, JobRow.status, JobRow.code_version,
                                        JobRow.lease_expires, JobRow.runner_host,
                                        JobRow.runner_pid, RunRow.test_accuracy)
                                 .outerjoin(latest := _latest_runs(),
                                            latest.c.job_id == JobRow.job_id)
                                 .outerjoin(RunRow, RunRow.run_id == latest.c.run_id)
                                 .where(JobRow.job_key.in_(keys[i:i + 500])))
                for key, status, cv, lease, host, pid, acc in rows:
                    out[key] = state.derive(status, cv, lease, host, pid, acc, code_version,
                                            at=t, here=here, alive=_pid_alive)
        return out

    @_retried
    def set_design(self, study: str, design: dict) -> None:
        """Store the decision rule of a sequential run with its study (JSON), so that a
        report analyses the design that was run."""
        with self.session() as s:
            row = s.scalar(select(StudyRow).where(StudyRow.name == study))
            if row is None:
                raise StoreError(f"no study {study!r} in {self.url_redacted}")
            row.design = json.dumps(design, sort_keys=True)

    def study_info(self, study: str) -> dict | None:
        """The study row (path, file hash, description, last sync) and its sections in order."""
        if not self.exists:
            return None
        with self.session() as s:
            row = s.scalar(select(StudyRow).where(StudyRow.name == study))
            if row is None:
                return None
            sections = s.execute(select(SectionRow.name, SectionRow.title, SectionRow.note)
                                 .where(SectionRow.study_id == row.study_id)
                                 .order_by(SectionRow.position)).all()
            claims = s.scalars(select(ClaimRow).where(ClaimRow.study_id == row.study_id)
                               .order_by(ClaimRow.position)).all()
            return {"name": row.name, "path": row.path, "file_hash": row.file_hash,
                    "description": row.description, "updated_at": row.updated_at,
                    "margin_pp": row.margin_pp,
                    "design": json.loads(row.design) if row.design else None,
                    "sections": [dict(r._mapping) for r in sections],
                    "claims": [Claim(c.text, c.section, c.kind, c.cell, c.baseline, c.margin)
                               for c in claims]}

    def results_frame(self, study: str, seeds: Sequence[int] | None = None,
                      code_version: str | None = None, sections: Sequence[str] | None = None):
        """Tidy pandas frame: one row per (section, cell, seed), config columns, job
        status, and the metrics and provenance of the job's latest finished run (under
        `code_version`, when given: how results of older code are compared with new).
        `seeds` narrows to those seeds, `sections` to those sections."""
        import pandas as pd

        if not self.exists:
            return pd.DataFrame()
        config_cols = [getattr(JobRow, f) for f in CONFIG_COLUMNS]
        latest = _latest_runs(code_version)
        query = (_study_cell_rows(
                    study, CellRow.section, CellRow.cell, CellRow.position, CellRow.replicate,
                    CellRow.published, CellRow.skip_reason, JobRow.job_key, JobRow.status,
                    *config_cols, RunRow.run_id, RunRow.status.label("run_status"),
                    RunRow.code_version, RunRow.error, RunRow.test_accuracy, RunRow.test_loss,
                    RunRow.train_loss, RunRow.epochs_done, RunRow.param_count,
                    RunRow.train_seconds, RunRow.wall_seconds, RunRow.device, RunRow.host,
                    RunRow.slurm_job_id, RunRow.torch_version, RunRow.cuda_version,
                    RunRow.started_at, RunRow.finished_at)
                 .outerjoin(latest, latest.c.job_id == JobRow.job_id)
                 .outerjoin(RunRow, RunRow.run_id == latest.c.run_id)
                 .where(*_seed_filter(seeds),
                        *([] if sections is None else [CellRow.section.in_(list(sections))])))
        with self.session() as s:
            result = s.execute(query)
            frame = pd.DataFrame(result.all(), columns=list(result.keys()))
        if frame.empty:
            return pd.DataFrame()
        if code_version is not None:  # where that version stands, not the job's latest
            frame["status"] = frame["run_status"].fillna(JobStatus.PENDING.value)
        frame.loc[frame["skip_reason"].notna(), "status"] = JobStatus.SKIPPED.value
        return frame

    def epochs_frame(self, study: str, seeds: Sequence[int] | None = None):
        """Per-epoch metrics of the latest run of each of the study's jobs, with cell labels."""
        import pandas as pd

        if not self.exists:
            return pd.DataFrame()
        latest = _latest_runs()
        query = (select(CellRow.section, CellRow.cell, CellRow.position, JobRow.seed,
                        EpochRow.epoch, EpochRow.train_loss, EpochRow.test_loss,
                        EpochRow.test_accuracy, EpochRow.seconds, RunRow.code_version)
                 .join(JobRow, JobRow.job_id == CellRow.job_id)
                 .join(StudyRow, StudyRow.study_id == CellRow.study_id)
                 .join(latest, latest.c.job_id == JobRow.job_id)
                 .join(RunRow, RunRow.run_id == latest.c.run_id)
                 .join(EpochRow, EpochRow.run_id == RunRow.run_id)
                 .where(StudyRow.name == study, CellRow.skip_reason.is_(None),
                        *_seed_filter(seeds))
                 .order_by(CellRow.section, CellRow.position, JobRow.seed, EpochRow.epoch))
        with self.session() as s:
            rows = s.execute(query).all()
        return pd.DataFrame([r._mapping for r in rows])

    # ----------------------------------------------------------------- dashboard reads

    def studies_overview(self) -> list[dict]:
        """Per study: its row, cell runs by (stored status, result code version), and the
        last activity (the latest job change of its cells). Aggregated in the database."""
        if not self.exists:
            return []
        with self.session() as s:
            studies = s.execute(select(StudyRow.study_id, StudyRow.name, StudyRow.description,
                                       StudyRow.updated_at).order_by(StudyRow.name)).all()
            groups = s.execute(
                select(CellRow.study_id, JobRow.status, JobRow.code_version,
                       (CellRow.skip_reason.is_not(None)).label("skipped"),
                       func.count(), func.max(JobRow.updated_at))
                .join(JobRow, JobRow.job_id == CellRow.job_id)
                .group_by(CellRow.study_id, JobRow.status, JobRow.code_version,
                          CellRow.skip_reason.is_not(None))).all()
        out = {sid: {"name": name, "description": description, "synced_at": synced,
                     "groups": [], "last_activity": None}
               for sid, name, description, synced in studies}
        for sid, status, cv, skipped, count, last in groups:
            row = out[sid]
            row["groups"].append((status, cv, bool(skipped), count))
            if last is not None and (row["last_activity"] is None or last > row["last_activity"]):
                row["last_activity"] = last
        return list(out.values())

    def _cell_runs_query(self, study: str):
        """(section, cell, seed) rows of a study with their job's state, its latest run,
        its run counts and the epochs its running attempt has written (`dashboard._jobs`
        unpacks the columns in this order)."""
        counts = (select(RunRow.job_id, func.max(RunRow.run_id).label("run_id"),  # the latest
                         func.count().label("runs"),
                         func.sum(case((RunRow.status == JobStatus.FAILED.value, 1),
                                       else_=0)).label("failures"))
                  .group_by(RunRow.job_id).subquery())
        live = (select(LiveEpochRow.job_id, LiveEpochRow.attempt,
                       func.max(LiveEpochRow.epoch).label("live_epochs"))
                .group_by(LiveEpochRow.job_id, LiveEpochRow.attempt).subquery())
        return (_study_cell_rows(study, CellRow.section, CellRow.cell, CellRow.position,
                                 JobRow.seed, CellRow.skip_reason, JobRow.job_key,
                                 JobRow.status, JobRow.code_version, JobRow.attempts,
                                 JobRow.epochs, JobRow.lease_expires, JobRow.runner_host,
                                 JobRow.runner_pid, JobRow.updated_at, RunRow.test_accuracy,
                                 RunRow.epochs_done, RunRow.run_id, counts.c.runs,
                                 counts.c.failures, live.c.live_epochs)
                .outerjoin(counts, counts.c.job_id == JobRow.job_id)
                .outerjoin(RunRow, RunRow.run_id == counts.c.run_id)
                .outerjoin(live, and_(live.c.job_id == JobRow.job_id,
                                      live.c.attempt == JobRow.attempts)))

    def cell_runs(self, study: str, changed_after: datetime | None = None) -> list[dict]:
        """The study's cell runs as rows with named fields (see `_cell_runs_query`); with
        `changed_after`, only those whose job changed since then."""
        if not self.exists:
            return []
        query = self._cell_runs_query(study)
        if changed_after is not None:
            query = query.where(JobRow.updated_at > changed_after)
        with self.session() as s:
            return s.execute(query).all()  # named tuples: row.job_key, row.status, ...

    def marks(self, study: str) -> dict:
        """Where a study's data stands now: the newest run, live epoch and job change of
        its cells (a reader's cursor: anything newer is what changed)."""
        if not self.exists:
            return {"run_id": 0, "live_epoch_id": 0, "updated_at": None}
        members = (select(CellRow.job_id).join(StudyRow, StudyRow.study_id == CellRow.study_id)
                   .where(StudyRow.name == study))
        with self.session() as s:
            run_id = s.scalar(select(func.max(RunRow.run_id))
                              .where(RunRow.job_id.in_(members)))
            live_id = s.scalar(select(func.max(LiveEpochRow.live_epoch_id))
                               .where(LiveEpochRow.job_id.in_(members)))
            updated = s.scalar(select(func.max(JobRow.updated_at))
                               .where(JobRow.job_id.in_(members)))
        return {"run_id": run_id or 0, "live_epoch_id": live_id or 0, "updated_at": updated}

    def _curve_query(self, study: str, acc_columns):
        acc = EpochRow.test_accuracy
        return (select(*acc_columns)
                .join(JobRow, JobRow.job_id == CellRow.job_id)
                .join(StudyRow, StudyRow.study_id == CellRow.study_id)
                .join(RunRow, RunRow.job_id == JobRow.job_id)
                .join(EpochRow, EpochRow.run_id == RunRow.run_id)
                .where(StudyRow.name == study, CellRow.skip_reason.is_(None),
                       acc.is_not(None)))

    def curve_sums(self, study: str, code_version: str):
        """Per (section, cell, position, epoch): the count, sum and sum of squares of the
        test accuracy of each job's latest run under `code_version` where it is COMPLETE
        (the learning curves' mean and interval across seeds), aggregated in the database;
        and {job id: that run's id}, the runs these sums hold."""
        import pandas as pd

        if not self.exists:
            return pd.DataFrame(), {}
        latest = _latest_runs(code_version)
        acc = EpochRow.test_accuracy
        query = (self._curve_query(study, [CellRow.section, CellRow.cell, CellRow.position,
                                           EpochRow.epoch, func.count(acc).label("n"),
                                           func.sum(acc).label("sum"),
                                           func.sum(acc * acc).label("sumsq")])
                 .join(latest, latest.c.run_id == RunRow.run_id)
                 .where(RunRow.status == JobStatus.COMPLETE.value)
                 .group_by(CellRow.section, CellRow.cell, CellRow.position, EpochRow.epoch))
        runs = (select(RunRow.job_id, RunRow.run_id)
                .join(latest, latest.c.run_id == RunRow.run_id)
                .join(CellRow, CellRow.job_id == RunRow.job_id)
                .join(StudyRow, StudyRow.study_id == CellRow.study_id)
                .where(StudyRow.name == study, RunRow.status == JobStatus.COMPLETE.value)
                .distinct())
        with self.session() as s:
            result = s.execute(query)
            sums = pd.DataFrame(result.all(), columns=list(result.keys()))
            return sums, dict(s.execute(runs).all())

    def curve_points(self, study: str, run_ids):
        """The test accuracy at each epoch of the runs `run_ids`, once per cell of `study`
        their job serves: a frame of run_id, job_id, section, cell, position, epoch, acc."""
        import pandas as pd

        columns = ["run_id", "job_id", "section", "cell", "position", "epoch", "acc"]
        ids, rows = list(run_ids), []
        if not self.exists or not ids:
            return pd.DataFrame(columns=columns)
        query = self._curve_query(study, [RunRow.run_id, JobRow.job_id, CellRow.section,
                                          CellRow.cell, CellRow.position, EpochRow.epoch,
                                          EpochRow.test_accuracy])
        with self.session() as s:
            for i in range(0, len(ids), 500):
                rows += s.execute(query.where(RunRow.run_id.in_(ids[i:i + 500]))).all()
        return pd.DataFrame(rows, columns=columns)

    def latest_complete_runs(self, code_version: str, job_ids) -> dict[int, int]:
        """{job id: its latest run under `code_version`} for `job_ids`, where that run is
        COMPLETE (the run a learning curve holds)."""
        ids, out = list(job_ids), {}
        if not self.exists or not ids:
            return out
        latest = _latest_runs(code_version)
        with self.session() as s:
            for i in range(0, len(ids), 500):
                out.update(s.execute(
                    select(RunRow.job_id, RunRow.run_id)
                    .join(latest, latest.c.run_id == RunRow.run_id)
                    .where(RunRow.status == JobStatus.COMPLETE.value,
                           RunRow.job_id.in_(ids[i:i + 500]))).all())
        return out

    def changed_since(self, study: str, run_id: int) -> list[tuple[int, str]]:
        """(job id, section) of the study's cells whose job has a run newer than `run_id`."""
        if not self.exists:
            return []
        newer = select(RunRow.job_id).where(RunRow.run_id > run_id)
        with self.session() as s:
            return [tuple(r) for r in s.execute(
                select(CellRow.job_id, CellRow.section).distinct()
                .join(StudyRow, StudyRow.study_id == CellRow.study_id)
                .where(StudyRow.name == study, CellRow.job_id.in_(newer)))]

    def job_detail(self, key: str) -> dict | None:
        """One job: its config and state, every run (provenance, error), the epochs of its
        latest run, the live epochs of its running attempt, and the cells it serves."""
        if not self.exists:
            return None
        with self.session() as s:
            job = s.scalar(select(JobRow).where(JobRow.job_key == key))
            if job is None:
                return None
            config = {f: getattr(job, f) for f in CONFIG_COLUMNS}
            runs = s.scalars(select(RunRow).where(RunRow.job_id == job.job_id)
                             .order_by(RunRow.run_id)).all()
            run_cols = [c.key for c in RunRow.__table__.columns if c.key != "job_id"]
            runs = [{c: getattr(r, c) for c in run_cols} for r in runs]
            epochs = []
            if runs:
                epochs = [dict(r._mapping) for r in s.execute(
                    select(EpochRow.epoch, EpochRow.train_loss, EpochRow.test_loss,
                           EpochRow.test_accuracy, EpochRow.seconds)
                    .where(EpochRow.run_id == runs[-1]["run_id"]).order_by(EpochRow.epoch))]
            live = [dict(r._mapping) for r in s.execute(
                select(LiveEpochRow.epoch, LiveEpochRow.train_loss, LiveEpochRow.test_loss,
                       LiveEpochRow.test_accuracy, LiveEpochRow.seconds)
                .where(LiveEpochRow.job_id == job.job_id,
                       LiveEpochRow.attempt == job.attempts)
                .order_by(LiveEpochRow.epoch))]
            cells = [dict(r._mapping) for r in s.execute(
                select(StudyRow.name.label("study"), CellRow.section, CellRow.cell)
                .join(StudyRow, StudyRow.study_id == CellRow.study_id)
                .where(CellRow.job_id == job.job_id))]
            return {"key": key, "config": config, "status": job.status,
                    "code_version": job.code_version, "attempts": job.attempts,
                    "runner_host": job.runner_host, "lease_expires": job.lease_expires,
                    "runner_pid": job.runner_pid, "updated_at": job.updated_at,
                    "runs": runs, "epochs": epochs, "live_epochs": live, "cells": cells}



def _study_cell_rows(study: str, *columns):
    """SELECT `columns` over the (section, cell, seed) rows of `study` joined to their jobs
    and sections, in the study's order (sections, then cells, then seeds)."""
    return (select(*columns)
            .join(JobRow, JobRow.job_id == CellRow.job_id)
            .join(StudyRow, StudyRow.study_id == CellRow.study_id)
            .join(SectionRow, and_(SectionRow.study_id == StudyRow.study_id,
                                   SectionRow.name == CellRow.section))
            .where(StudyRow.name == study)
            .order_by(SectionRow.position, CellRow.position, JobRow.seed))


def _seed_filter(seeds: Sequence[int] | None) -> list:
    return [] if seeds is None else [JobRow.seed.in_(list(seeds))]


def _latest_runs(code_version: str | None = None):
    """Subquery: (run_id, job_id) of each job's most recent finished run (under
    `code_version`, when given)."""
    query = select(func.max(RunRow.run_id).label("run_id"), RunRow.job_id)
    if code_version is not None:
        query = query.where(RunRow.code_version == code_version)
    return query.group_by(RunRow.job_id).subquery()


def _utc(t: float | None) -> datetime | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).replace(tzinfo=None)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    """Per-connection settings that write nothing (WAL is set once the file is ours)."""
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _reader_engine(url: str, path: Path | None):
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


def open_store(db: str | None, *, create: bool = True, required: bool = True,
               read_only: bool = False, retry_seconds: float | None = None) -> ResultStore:
    """The store behind --db; the default SQLite file's directory is made when needed.

    `create` False: a missing SQLite file is a StoreError ("no such database") when
    `required`, else an empty store. `read_only`: a reader's store (never writes, never
    creates; see `ResultStore`). `retry_seconds`: see `ResultStore`."""
    if db is None and create and not read_only:
        Path(DEFAULT_DB).parent.mkdir(parents=True, exist_ok=True)
    return ResultStore(database_url(db), create=create, required=required,
                       read_only=read_only, retry_seconds=retry_seconds)


__all__ = ["JobState", "DEFAULT_DB", "HEARTBEAT_SECONDS", "ResultStore", "Runner",
           "StoreError", "SyncSummary", "database_url", "open_store", "redact"]
