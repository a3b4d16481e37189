"""Store stage, who holds which job: a runner's identity (`Runner`), the atomic claim of a
runnable job under a lease, the heartbeat that keeps the lease, and the return of a
stopped or dead runner's jobs to PENDING.

The rules are `state`'s (`runnable_clause`, `dead_runner_clause`, beside their Python
twins): this part applies them to rows.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .. import provenance, state
from ..records import JobStatus
from .database import now
from .retry import retried
from .tables import JobRow

LEASE = timedelta(seconds=120)  # a runner that misses heartbeats this long loses its jobs
HEARTBEAT_SECONDS = 20.0


@dataclass(frozen=True)
class Runner:
    """Identity of one `cnnbench run` process, written into the leases it holds."""

    runner_id: str
    host: str
    pid: int

    @classmethod
    def here(cls) -> Runner:
        return cls(uuid.uuid4().hex[:16], provenance.host(), os.getpid())


class Leases:
    """Claim, heartbeat, release, reclaim (a part of `ResultStore`)."""

    heartbeat_seconds = HEARTBEAT_SECONDS  # how often `keep_alive` extends leases

    @retried
    def claim(self, key: str, runner: Runner, code_version: str,
              retry_failed: bool = False) -> bool:
        """Atomically take one runnable job; False if another runner has it or it is done."""
        runnable = state.runnable_clause(JobRow.status, JobRow.code_version, code_version,
                                         retry_failed)
        stmt = (update(JobRow)
                .where(JobRow.job_key == key, runnable)
                .values(status=JobStatus.RUNNING.value, runner=runner.runner_id,
                        runner_host=runner.host, runner_pid=runner.pid,
                        lease_expires=now() + LEASE, attempts=JobRow.attempts + 1,
                        updated_at=now()))
        with self.session() as s:
            return s.execute(stmt).rowcount == 1

    @retried
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

    @staticmethod
    def _to_pending(s: Session, where) -> int:
        stmt = (update(JobRow).where(JobRow.status == JobStatus.RUNNING.value, where)
                .values(status=JobStatus.PENDING.value, runner=None, runner_host=None,
                        runner_pid=None, lease_expires=None, updated_at=now()))
        return s.execute(stmt).rowcount

    @retried
    def release(self, runner: Runner) -> int:
        """Return the jobs this runner still holds to PENDING (interrupted or aborted run)."""
        with self.session() as s:
            return self._to_pending(s, JobRow.runner == runner.runner_id)

    @retried
    def reclaim(self, host: str | None = None) -> int:
        """Return jobs of dead runners (`state.dead_runner`) to PENDING: no lease or an
        expired one, or, on this host, a process that is gone."""
        host = host or provenance.host()
        with self.session() as s:
            pids = s.scalars(select(JobRow.runner_pid).distinct()
                             .where(JobRow.status == JobStatus.RUNNING.value,
                                    JobRow.runner_host == host,
                                    JobRow.runner_pid.is_not(None))).all()
            dead = [pid for pid in pids if not state.pid_alive(pid)]
            return self._to_pending(s, state.dead_runner_clause(
                JobRow.lease_expires, JobRow.runner_host, JobRow.runner_pid, at=now(),
                here=host, dead_pids=dead))
