"""Runner stage, results kept on local disk: every finished result is written here first
(one file, fsynced) and removed once the database holds it, so a result that finishes
while the database is away past --db-retry, or as the runner dies, is never lost. The
next `cnnbench run` on that database, of any study, records what is kept (`replay`),
exactly once: a kept result carries its runner and start, and the store's `record`
writes an attempt it already holds no second time.

One folder per database (by its URL without the password, an SQLite file by its absolute
path), under the data directory: $CNNBENCH_DATA/spool/<hash>/, one JSON file per result.
Two runners on one machine share it: a file is taken for replay by renaming it first, and
the files of another runner still alive here are its own to record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.exc import OperationalError

from . import data, provenance, state
from .records import EpochMetrics, JobResult, JobStatus
from .store import DatabaseUnavailable, ResultStore, Runner, redact
from .store.database import sqlite_path


def database_of(url: str) -> str:
    """The database's name in the spool: its URL without the password, an SQLite file's
    resolved (the same relative path in two folders is two databases)."""
    path = sqlite_path(url)
    return f"sqlite:///{path.resolve()}" if path is not None else redact(url)


def folder(url: str) -> Path:
    """Where results for the database at `url` are kept."""
    digest = hashlib.sha256(database_of(url).encode()).hexdigest()[:16]
    return data.data_root() / "spool" / digest


def unavailable(exc: BaseException) -> bool:
    """The database is away or cannot take writes now (an outage past the retry bound, a
    full disk, a read-only file): worth keeping results for. Not a bad write."""
    return isinstance(exc, (DatabaseUnavailable, OperationalError))


def keep(url: str, result: JobResult, runner: Runner) -> Path:
    """Write `result` to the spool of `url`, durably (fsynced, atomically renamed)."""
    where = folder(url)
    where.mkdir(parents=True, exist_ok=True)
    started = f"{result.started_at:.6f}" if result.started_at is not None else "none"
    path = where / f"{result.key}-{runner.runner_id}-{started}.json"
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    record = {"database": database_of(url), "runner": dataclasses.asdict(runner),
              "result": {**dataclasses.asdict(result), "status": result.status.value}}
    with open(part, "w") as f:
        json.dump(record, f, allow_nan=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)
    _sync_dir(where)
    return path


def drop(path: Path) -> None:
    """The database holds the result now: forget it here."""
    path.unlink(missing_ok=True)


def kept(url: str) -> list[Path]:
    where = folder(url)
    return sorted(where.glob("*.json")) if where.is_dir() else []


def replay(store: ResultStore, warn: Callable[[str], None] = lambda line: None) -> int:
    """Record every result kept for `store`'s database; the number recorded. A result the
    database refuses as wrong (not as away) is moved aside with a warning; a database away
    raises and keeps the rest."""
    where, here, done = folder(store.url), provenance.host(), 0
    for path in kept(store.url):
        try:
            result, runner, database = _read(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warn(f"{path} is no readable kept result ({exc}); left there")
            continue
        if database != database_of(store.url):
            continue  # not this database's (a hash collision, or a file moved by hand)
        if runner.host == here and runner.pid != os.getpid() and state.pid_alive(runner.pid):
            continue  # a runner still at work here records its own
        taken = path.with_name(f".{path.name}.{os.getpid()}.replaying")
        try:
            os.replace(path, taken)  # ours alone now: another replaying runner skips it
        except FileNotFoundError:
            continue
        try:
            store.record(result, runner, adopt=True)
        except Exception as exc:
            if unavailable(exc):
                os.replace(taken, path)
                raise
            aside = path.with_suffix(".refused")  # refused as wrong (or no such job here)
            os.replace(taken, aside)
            warn(f"{store.url_redacted} refuses the kept result of job {result.key} "
                 f"({str(getattr(exc, 'orig', None) or exc).strip()}); moved to {aside}")
            continue
        taken.unlink(missing_ok=True)
        done += 1
    _recover(where)
    return done


def _recover(where: Path) -> None:
    """Files a replaying runner took and then died with go back; half-written ones of
    runners that are gone are removed (their results never got this far)."""
    if not where.is_dir():
        return
    for leftover in where.glob(".*"):
        parts = leftover.name.rsplit(".", 2)
        if len(parts) != 3 or not parts[1].isdigit() or state.pid_alive(int(parts[1])):
            continue
        if parts[2] == "replaying":
            os.replace(leftover, where / parts[0][1:])
        elif parts[2] == "part":
            leftover.unlink(missing_ok=True)


def _read(path: Path) -> tuple[JobResult, Runner, str]:
    record = json.loads(path.read_text())
    result = dict(record["result"])
    result["status"] = JobStatus(result["status"])
    result["epochs"] = tuple(EpochMetrics(**e) for e in result["epochs"])
    return JobResult(**result), Runner(**record["runner"]), record["database"]


def _sync_dir(path: Path) -> None:
    """The rename itself made durable (POSIX; elsewhere a no-op)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
