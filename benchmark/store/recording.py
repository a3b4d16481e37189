"""Store stage, results in: a finished attempt (`record`: its run, its epochs and their
metrics, the job's new status) and the epochs of running attempts as the feed brings them
(`record_epochs`), each in one transaction, each written once however often a lost
connection retries it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sqlalchemy import and_, delete, or_, select, update

from ..records import EpochMetrics, JobResult, JobStatus
from .database import StoreError, now
from .leases import Runner
from .queries import select_in, utc
from .retry import retried
from .tables import EpochRow, JobRow, LiveEpochRow, MetricRow, RunRow


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class Recording:
    """Runs, epochs and live epochs (a part of `ResultStore`)."""

    @retried
    def record(self, result: JobResult, runner: Runner, adopt: bool = False) -> bool:
        """Store a finished attempt and set the job's status; False if the lease was lost.

        The run row is written either way: a result is never thrown away. Written once:
        when a lost connection leaves it unknown whether an attempt's commit reached the
        server, the retry finds that attempt's run row (same job, runner and start) and
        writes nothing more. `adopt` (a result kept while the database was away, see
        `spool`): the job takes its status also when no runner holds it now (PENDING, or
        RUNNING under a lease that is gone), never over another runner's or a finished
        job's; a kept FAILED attempt that cannot take the job is not written (another
        attempt stands). A job's live epochs go when its status is set.
        """
        final = result.final
        with self.session() as s:
            job_id = s.scalar(select(JobRow.job_id).where(JobRow.job_key == result.key))
            if job_id is None:
                raise StoreError(f"result for unknown job {result.key}")
            if result.started_at is not None and s.scalar(select(RunRow.run_id).where(
                    RunRow.job_id == job_id, RunRow.runner == runner.runner_id,
                    RunRow.started_at == utc(result.started_at),
                    RunRow.code_version == result.code_version).limit(1)) is not None:
                return True  # an earlier attempt of this call committed it
            held = and_(JobRow.runner == runner.runner_id,
                        JobRow.status == JobStatus.RUNNING.value)
            if adopt:  # or no runner holds it now: PENDING, or its runner's lease is gone
                held = or_(held, JobRow.status == JobStatus.PENDING.value, and_(
                    JobRow.status == JobStatus.RUNNING.value,
                    or_(JobRow.lease_expires.is_(None), JobRow.lease_expires < now())))
            if adopt and result.status == JobStatus.FAILED and s.scalar(
                    select(JobRow.job_id).where(JobRow.job_id == job_id, held)) is None:
                return False  # a kept failure another attempt has superseded: not shown
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
                started_at=utc(result.started_at), finished_at=utc(result.finished_at),
            )
            s.add(run)
            s.flush()
            s.add_all(EpochRow(run_id=run.run_id, epoch=e.epoch, train_loss=_finite(e.train_loss),
                               test_loss=_finite(e.test_loss),
                               test_accuracy=_finite(e.test_accuracy), seconds=e.seconds)
                      for e in result.epochs)
            s.add_all(MetricRow(run_id=run.run_id, epoch=e.epoch, name=name, value=_finite(v))
                      for e in result.epochs for name, v in e.metrics.items())
            owned = s.execute(
                update(JobRow)
                .where(JobRow.job_id == job_id, held)
                .values(status=result.status.value, code_version=result.code_version,
                        runner=None, runner_host=None, runner_pid=None, lease_expires=None,
                        updated_at=now())
            ).rowcount
            if owned:  # its live epochs are done with (another runner's, if it lost the job)
                s.execute(delete(LiveEpochRow).where(LiveEpochRow.job_id == job_id))
            return owned == 1

    @retried(outage=False)  # for watchers: not worth holding the run up while it is down
    def record_epochs(self, runner: Runner, items: Sequence[tuple[str, EpochMetrics]]) -> int:
        """Write epochs of running jobs as the feed brought them, in one transaction: each
        under the job's current attempt, for jobs this runner still holds (a job whose
        lease was lost, or that finished meanwhile, is left alone). Returns the rows
        written; an epoch written before (a retried worker's) is kept as it was."""
        keys = list(dict.fromkeys(key for key, _ in items))
        if not keys:
            return 0
        with self.session() as s:
            held = {key: (job_id, attempt) for key, job_id, attempt in select_in(
                s, select(JobRow.job_key, JobRow.job_id, JobRow.attempts)
                .where(JobRow.runner == runner.runner_id,
                       JobRow.status == JobStatus.RUNNING.value), JobRow.job_key, keys)}
            at = now()
            rows = [{"job_id": held[key][0], "attempt": held[key][1], "epoch": m.epoch,
                     "train_loss": _finite(m.train_loss), "test_loss": _finite(m.test_loss),
                     "test_accuracy": _finite(m.test_accuracy), "seconds": m.seconds,
                     "written_at": at}
                    for key, m in items if key in held]
            self.insert_ignore(s, LiveEpochRow, rows)
            return len(rows)
