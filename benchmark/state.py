"""Where every job stands: the one definition of done, current, stale, runnable and a dead
runner's job, for one job or a whole study.

The store reads a job's raw row (stored status, the code version of its latest result,
its lease and the host and process of the runner that holds it) and hands it to `derive`;
everything that asks where a job stands asks here: the runner (what to train, what the
atomic claim accepts), `status`, `list`, `report`, `load_results` and `serve`.

- A job is *done* when its latest result is COMPLETE or DIVERGED.
- *Current*: done under this cnnbench's training code version. Only current COMPLETE
  results enter statistics (`usable`). A done job of another code version shows as
  STALE: kept and shown, never mixed in, trained again by the next run.
- *Held by a dead runner*: RUNNING under a lease that expired, or held by a process on
  this host that no longer exists; `reclaimable`, so the next run takes it back.
- *Runnable*: not in the database yet, PENDING, STALE, FAILED when asked to retry, or
  held by a dead runner. `RUNNABLE_STORED`, `RERUN_WHEN_OTHER_CODE` and `RETRYABLE` say
  the same for rows as stored, for the store's claim (a dead runner's jobs go back to
  PENDING first, by `ResultStore.reclaim`).

Each rule the store applies in SQL has its twin here, beside the Python one:
`runnable_clause` (what the atomic claim takes) and `dead_runner_clause` (what `reclaim`
returns to PENDING), written over the columns the store passes in, so this module knows
no table. `tests/test_state.py` holds each pair together on every case.

Pure functions of plain values (pandas only for frames, SQLAlchemy's operators only for
the twins); no torch.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_

from .records import DONE_STATUSES, JobSpec, JobStatus

RUNNABLE_STORED = (JobStatus.PENDING,)  # a stored status that is always runnable
RERUN_WHEN_OTHER_CODE = DONE_STATUSES  # runnable when its result is of other code (STALE)
RETRYABLE = (JobStatus.FAILED,)  # runnable with --retry-failed
WAITING = (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.STALE)  # a grid not finished
DONE_VALUES = tuple(s.value for s in DONE_STATUSES)


@dataclass(frozen=True)
class JobState:
    status: JobStatus  # STALE: done under older training code
    test_accuracy: float | None  # final epoch of the latest finished run, percent
    reclaimable: bool = False  # RUNNING under a lease that expired or a runner here that died


def shown_status(stored: str | JobStatus, result_code: str | None, code: str) -> JobStatus:
    """The status a job shows: its stored one, or STALE for a result of other code."""
    status = JobStatus(stored)
    if status in DONE_STATUSES and result_code != code:
        return JobStatus.STALE
    return status


def dead_runner(lease_expires: datetime | None, host: str | None, pid: int | None, *,
                at: datetime, here: str, alive) -> bool:
    """Whether a RUNNING job's runner is gone: its lease expired (or it has none), or it
    ran on this host (`here`) in a process that `alive(pid)` says no longer exists."""
    if lease_expires is None or lease_expires < at:
        return True
    return host == here and (pid is None or not alive(pid))


def dead_runner_clause(lease_expires, host, pid, *, at: datetime, here: str,
                       dead_pids: Iterable[int]):
    """`dead_runner` in SQL over a job row's columns; `dead_pids`: the pids of this host's
    runners that `alive` says are gone (the database cannot ask the operating system)."""
    return or_(lease_expires.is_(None), lease_expires < at,
               and_(host == here, or_(pid.is_(None), pid.in_(list(dead_pids)))))


def pid_alive(pid: int) -> bool:
    """Whether a process of this host exists (`dead_runner`'s `alive` for local runners)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def derive(stored: str, result_code: str | None, lease_expires: datetime | None,
           host: str | None, pid: int | None, accuracy: float | None, code: str, *,
           at: datetime, here: str, alive) -> JobState:
    """A job's `JobState` from its row as stored (see the module doc)."""
    status = shown_status(stored, result_code, code)
    dead = status == JobStatus.RUNNING and dead_runner(lease_expires, host, pid, at=at,
                                                       here=here, alive=alive)
    shown = status in (*DONE_STATUSES, JobStatus.STALE)
    return JobState(status, accuracy if shown else None, dead)


def of_jobs(store, specs: Iterable[JobSpec]) -> dict[str, JobState]:
    """Where each of `specs`' jobs stands in `store` under this cnnbench's code version."""
    from .provenance import code_version

    return store.job_states((s.key for s in specs), code_version())


def runnable(state: JobState | None, retry_failed: bool = False) -> bool:
    """Whether a run trains this job (None: not in the database yet)."""
    if state is None:
        return True
    return (state.status in RUNNABLE_STORED or state.status == JobStatus.STALE
            or (retry_failed and state.status in RETRYABLE)
            or (state.status == JobStatus.RUNNING and state.reclaimable))


def runnable_clause(status, result_code, code: str, retry_failed: bool = False):
    """`runnable` in SQL over a job row's stored `status` and its result's code version, for
    the atomic claim (a dead runner's jobs are PENDING again once `reclaim` ran)."""
    clauses = [
        status.in_([s.value for s in RUNNABLE_STORED]),
        and_(status.in_([s.value for s in RERUN_WHEN_OTHER_CODE]),
             or_(result_code.is_(None), result_code != code)),
    ]
    if retry_failed:
        clauses.append(status.in_([s.value for s in RETRYABLE]))
    return or_(*clauses)


def cell_status(spec: JobSpec, jobs: Mapping[str, JobState]) -> JobStatus:
    """Where one cell run stands, by job key (a job another study trained counts)."""
    if spec.skip_reason:
        return JobStatus.SKIPPED
    return jobs[spec.key].status if spec.key in jobs else JobStatus.PENDING


def left_to_run(specs: Sequence[JobSpec], jobs: Mapping[str, JobState],
                retry_failed: bool = False) -> set[str]:
    """Keys of the jobs a run trains (`runnable`), skipped cells left out."""
    return {s.key for s in specs if not s.skip_reason and runnable(jobs.get(s.key),
                                                                    retry_failed)}


def done_keys(specs: Sequence[JobSpec], jobs: Mapping[str, JobState]) -> set[str]:
    return {s.key for s in specs if cell_status(s, jobs) in DONE_STATUSES}


def counts(specs: Iterable[JobSpec], jobs: Mapping[str, JobState],
           sections: Iterable[str] = ()) -> dict[str, Counter]:
    """Section -> Counter of cell-run statuses, `sections` first (in the study's order)."""
    out: dict[str, Counter] = {name: Counter() for name in sections}
    for spec in specs:
        out.setdefault(spec.section, Counter())[cell_status(spec, jobs)] += 1
    return out


def finished(total: Mapping[JobStatus, int]) -> bool:
    """Whether nothing of a grid is waiting to run or running."""
    return not any(total.get(s) for s in WAITING)


# ------------------------------------------------------------------ frames (one row a job)


def current(frame, code: str):
    """Boolean Series: rows whose latest result is done under `code` (the frame has the
    stored `status` and the result's `code_version`)."""
    return frame["status"].isin(DONE_VALUES) & (frame["code_version"] == code)


def usable(frame, code: str | None = None):
    """Rows with a COMPLETE result (under `code`, when given): what statistics use."""
    ok = (frame["status"] == JobStatus.COMPLETE.value) & frame["test_accuracy"].notna()
    if code is not None:
        ok &= frame["code_version"] == code
    return frame[ok]


__all__ = ["JobState", "cell_status", "counts", "current", "dead_runner", "dead_runner_clause",
           "derive", "done_keys", "finished", "left_to_run", "of_jobs", "pid_alive", "runnable",
           "runnable_clause", "shown_status", "usable"]
