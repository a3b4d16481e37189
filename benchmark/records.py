"""Records that flow between stages: a job of the grid (`JobSpec`), its status vocabulary
(`JobStatus`), what a job trains on (`DeviceData`) and what a worker returns (`JobResult`,
its `EpochMetrics`).

Plain frozen values: the planner makes `JobSpec`s, a worker returns a `JobResult`, the store
writes it, a job trains on a `DeviceData`; nothing here imports another stage but `config`
(and no torch).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import TrainConfig


class JobStatus(str, enum.Enum):
    """Life cycle of a job row: PENDING -> RUNNING -> COMPLETE | FAILED | DIVERGED, or SKIPPED.

    STALE is what a COMPLETE or DIVERGED job shows as when its result came from another
    training-code version (`provenance.code_version`): it runs again on the next `run`.
    The database stores the result's own status and code version; STALE is derived.
    """

    PENDING = "PENDING"  # in the grid, not yet run (or returned after an interrupted run)
    RUNNING = "RUNNING"  # claimed by a runner holding a lease
    COMPLETE = "COMPLETE"  # trained and evaluated
    FAILED = "FAILED"  # raised; the traceback is stored with the run
    DIVERGED = "DIVERGED"  # the training loss became non-finite
    SKIPPED = "SKIPPED"  # excluded by the study, with a reason
    STALE = "STALE"  # done under other training code: shown, never mixed in, run again

    def __str__(self) -> str:
        return self.value


# Results that count as "done" for resume: a diverged run is a result, not an error.
DONE_STATUSES = (JobStatus.COMPLETE, JobStatus.DIVERGED)


@dataclass(frozen=True)
class JobSpec:
    """One (section, cell, replicate) of an expanded study and the config it resolves to."""

    section: str
    cell: str
    position: int  # cell index within its section, for stable ordering
    replicate: int  # the replicate's seed (a cell runs once per seed)
    config: TrainConfig
    published: float | None = None
    skip_reason: str | None = None
    unused: tuple[tuple[str, Any], ...] = ()  # inherited values `normalised` reset

    @property
    def key(self) -> str:
        return self.config.key()

    @property
    def earlier_key(self) -> str | None:
        """The key cnnbench gave this job before unused settings were normalised out of
        job keys (schema < 5), where that differs: stored jobs under it are adopted."""
        return self.config.unnormalised_key(dict(self.unused)) if self.unused else None


@dataclass(frozen=True)
class DeviceData:
    """A dataset normalised and resident on one device (torch tensors; what a job trains
    on, and what a metric of yours gets as `data`)."""

    train_x: Any  # torch.Tensor, float32 (N, C, H, W)
    train_y: Any  # torch.Tensor, int64 (N,)
    test_x: Any
    test_y: Any
    num_classes: int = 10  # 1 + the largest label of either split

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float  # mean NLL over the epoch's training batches
    test_loss: float  # mean NLL over the full test set
    test_accuracy: float  # percent
    seconds: float  # training time of the epoch, evaluation excluded
    metrics: Mapping[str, float] = field(default_factory=dict)  # your own metrics and the
    #     validation split's (val_loss, val_accuracy, val_<metric>), when evaluated


@dataclass(frozen=True)
class JobResult:
    """What a worker returns for one job; only the parent process writes it to the store."""

    key: str
    status: JobStatus
    error: str | None = None
    epochs: tuple[EpochMetrics, ...] = ()
    param_count: int | None = None
    train_seconds: float | None = None  # sum of epoch training times
    wall_seconds: float | None = None  # whole job: data to device, build, train, evaluate
    started_at: float | None = None  # unix time
    finished_at: float | None = None
    device: str | None = None
    host: str | None = None
    slurm_job_id: str | None = None  # SLURM_JOB_ID of the worker's Slurm job, if any
    code_version: str | None = None
    versions: Mapping[str, str] = field(default_factory=dict)  # python, torch, cuda, ...

    @property
    def final(self) -> EpochMetrics | None:
        return self.epochs[-1] if self.epochs else None
