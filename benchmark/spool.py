"""Runner stage, results kept on local disk: every finished result is written here first
(one file, fsynced) and removed once the database holds it, so a result that finishes
while the database is away past --db-retry, or as the runner dies, is never lost. The
next `cnnbench run` on that database, of any study, records what is kept (`replay`),
exactly once: a kept result carries its runner and start, and the store's `record`
writes an attempt it already holds no second time.

One folder per database (by its URL without the password), under the data directory:
$CNNBENCH_DATA/spool/<hash>/, one JSON file per result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from . import data
from .records import EpochMetrics, JobResult, JobStatus
from .store import ResultStore, Runner, StoreError, redact


def folder(url: str) -> Path:
    """Where results for the database at `url` are kept."""
    return data.data_root() / "spool" / hashlib.sha256(redact(url).encode()).hexdigest()[:16]


def keep(url: str, result: JobResult, runner: Runner) -> Path:
    """Write `result` to the spool of `url`, durably (fsynced, atomically renamed)."""
    where = folder(url)
    where.mkdir(parents=True, exist_ok=True)
    started = f"{result.started_at:.6f}" if result.started_at is not None else "none"
    path = where / f"{result.key}-{runner.runner_id}-{started}.json"
    part = path.with_name(f".{path.name}.part")
    record = {"database": redact(url), "runner": dataclasses.asdict(runner),
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
    """Record every result kept for `store`'s database; the number recorded. A result for
    a job this database does not know stays kept (warned about); a lost database raises
    StoreError and keeps the rest."""
    done = 0
    for path in kept(store.url):
        try:
            result, runner = _read(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warn(f"{path} is no readable kept result ({exc}); left there")
            continue
        try:
            store.record(result, runner, adopt=True)
        except StoreError as exc:
            if "unknown job" not in str(exc):
                raise
            warn(f"a kept result for job {result.key} is not for {store.url_redacted} "
                 f"(no such job); left in {path.parent}")
            continue
        drop(path)
        done += 1
    return done


def _read(path: Path) -> tuple[JobResult, Runner]:
    record = json.loads(path.read_text())
    result = dict(record["result"])
    result["status"] = JobStatus(result["status"])
    result["epochs"] = tuple(EpochMetrics(**e) for e in result["epochs"])
    return JobResult(**result), Runner(**record["runner"])


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
