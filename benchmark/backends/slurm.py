"""Backend `slurm`: Dask workers in Slurm jobs, through dask-jobqueue's `SLURMCluster`.

The scheduler runs in the `cnnbench run` process (a login node); each Slurm job runs one
Dask worker with one thread per slot (`--cpus-per-job` CPU slots, or the slots of
`--devices cuda:0xK` on the job's first GPU); `--jobs` Slurm jobs are kept up for the run.

- Every setting a Slurm user sets has an option (partition, account, wall time, memory,
  CPUs and GPUs per job, extra `#SBATCH` lines); the rest, and site defaults, come from
  dask-jobqueue's configuration (`~/.config/dask/jobqueue.yaml`, or `--cluster-config`).
- The job script is checked by `sbatch --test-only` before anything is written, so a
  wrong partition or account is an error naming it, not a run that waits forever.
- Workers retire before their wall time (`--lifetime` with a stagger, so that they do
  not all leave at once), and a Slurm job that ends (wall time, preemption, `scancel`,
  a node lost) is replaced, so the run keeps `--jobs` jobs. A job cut short is retried by
  the scheduler on another worker; with `--checkpoints` on a shared path it resumes after
  its last finished epoch.
- Each run row records the Slurm job id (`runs.slurm_job_id`) and node (`runs.host`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .base import Backend, DeviceError
from .dask import DaskPool

DEFAULT_MEMORY = "4GB"  # per Slurm job, where neither --memory nor the configuration says
_SLOTS_RE = re.compile(r"^(cpu|cuda(?::0)?)(?:x(\d+))?$")
_WALLTIME_RE = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def walltime_seconds(text: str) -> int:
    """Seconds of a Slurm time limit: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS."""
    match = _WALLTIME_RE.match(text.strip())
    if not match:
        raise DeviceError(f"bad wall time {text!r}: use Slurm's format, e.g. 90 (minutes), "
                          "01:30:00 or 1-12:00:00")
    days, a, b, c = (int(g) if g else None for g in match.groups())
    if days is not None:  # D-HH[:MM[:SS]]
        return days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    if c is not None:  # HH:MM:SS
        return a * 3600 + b * 60 + c
    return a * 60 + (b or 0)  # MM[:SS]


def memory_bytes(text: str) -> int:
    """A Slurm job's memory as dask reads it ("8GB", "512MiB"); DeviceError if it is none."""
    try:
        from dask.utils import parse_bytes
    except ImportError:  # said when the cluster starts: --backend slurm needs dask-jobqueue
        return -1
    try:
        size = parse_bytes(text)
    except (ValueError, TypeError):
        size = 0
    if size <= 0:
        raise DeviceError(f"bad memory {text!r}: give a size with its unit, e.g. 8GB or "
                          "512MiB")
    return size


def retirement(walltime: int) -> tuple[int, int]:
    """(lifetime, stagger) of a worker in a Slurm job of `walltime` seconds: it leaves
    between lifetime - stagger and lifetime + stagger, always a margin (a minute, or 5% of
    long jobs) before Slurm would kill it."""
    stagger = min(300, walltime // 20)
    margin = max(min(60, walltime // 4), walltime // 20)
    return max(1, walltime - margin - stagger), stagger


@dataclass(frozen=True)
class SlurmBackend(Backend):
    """`--backend slurm`: `--jobs` Slurm jobs (default 1), one Dask worker each."""

    partition: str | None = None
    account: str | None = None
    walltime: str | None = None
    memory: str | None = None
    cpus_per_job: int | None = None
    gpus_per_job: int | None = None
    sbatch: tuple[str, ...] = ()
    cluster_config: str | None = None
    name: ClassVar[str] = "slurm"
    settings: ClassVar[tuple[str, ...]] = ("partition", "account", "walltime", "memory",
                                           "cpus_per_job", "gpus_per_job", "sbatch",
                                           "cluster_config")

    def __post_init__(self) -> None:  # bad options fail at once, before any database work
        self.per_job()
        if self.walltime is not None:
            walltime_seconds(self.walltime)
        if self.memory is not None:
            memory_bytes(self.memory)
        self._config()

    def per_job(self) -> list[str]:
        """The slots of one Slurm job. Inside a job its GPUs are numbered from 0."""
        match = _SLOTS_RE.match(self.devices.strip())
        if not match:
            raise DeviceError(f"--devices {self.devices!r} with --backend slurm: use cpu, "
                              "cpuxN, cuda or cuda:0xN (the slots of each Slurm job; its "
                              "GPUs are numbered from 0 inside it, so ask for GPUs with "
                              "--gpus-per-job)")
        kind, per = match.group(1), match.group(2)
        if kind == "cpu":
            return ["cpu"] * int(per or self.cpus_per_job or 1)
        return ["cuda:0"] * int(per or 1)

    def slots(self) -> list[str]:
        return self.per_job() * (self.jobs or 1)

    def where(self, slots: Sequence[str]) -> str:
        return (f"{self.jobs or 1} Slurm job(s) of {len(self.per_job())} slot(s) "
                f"({self.per_job()[0]})")

    def pool(self, slots: Sequence[str]) -> DaskPool:
        return DaskPool(slots[0], size=len(slots))

    # ------------------------------------------------------------------ the cluster

    def _config(self) -> dict:
        if not self.cluster_config:
            return {}
        import yaml

        path = Path(self.cluster_config)
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise DeviceError(f"cannot read the dask-jobqueue configuration "
                              f"{path}: {exc}") from None
        if not isinstance(loaded, dict) or not isinstance(loaded.get("jobqueue"), dict):
            raise DeviceError(f"{path} is no dask-jobqueue configuration: it needs a "
                              "top-level `jobqueue:` mapping (with `slurm:` under it)")
        return loaded

    def cluster_kwargs(self, walltime: str) -> dict:
        """SLURMCluster's arguments: what the options set, over the configuration."""
        import dask

        def conf(key):
            return dask.config.get(f"jobqueue.slurm.{key}", None)

        per_job = self.per_job()
        gpus = self.gpus_per_job if self.gpus_per_job is not None else (
            1 if per_job[0].startswith("cuda") else 0)
        lifetime, stagger = retirement(walltime_seconds(walltime))
        kwargs = {
            "cores": len(per_job),  # the worker's threads: one job per slot
            "processes": 1,
            "memory": self.memory or conf("memory") or DEFAULT_MEMORY,
            "walltime": walltime,
            "worker_extra_args": [*(conf("worker-extra-args") or []),
                                  "--lifetime", f"{lifetime}s",
                                  "--lifetime-stagger", f"{stagger}s"],
            "job_extra_directives": [*(conf("job-extra-directives") or []),
                                     *(f"--gres=gpu:{gpus}",) * bool(gpus), *self.sbatch],
            "python": conf("python") or sys.executable,
            "log_directory": conf("log-directory") or str(log_directory()),
            "scheduler_options": {"dashboard_address": ":0",  # never a user's 8787
                                  **(conf("scheduler-options") or {})},
        }
        for key, value in (("queue", self.partition), ("account", self.account),
                           ("job_cpu", self.cpus_per_job)):
            if value is not None:
                kwargs[key] = value
        return kwargs

    @contextlib.contextmanager
    def started(self, slots: Sequence[str], message: Callable[[str], None]) -> Iterator[None]:
        try:
            import dask
            from dask_jobqueue import SLURMCluster
            from distributed import Client
        except ImportError:
            raise DeviceError("--backend slurm needs dask-jobqueue: "
                              "pip install 'cnnbench[slurm]'") from None
        if shutil.which("sbatch") is None:
            raise DeviceError("--backend slurm needs Slurm's sbatch on PATH: run cnnbench "
                              "on a login node of the cluster")
        jobs = self.jobs or 1
        with dask.config.set(self._config()):
            walltime = self.walltime or dask.config.get("jobqueue.slurm.walltime")
            kwargs = self.cluster_kwargs(walltime)
            with SLURMCluster(**kwargs) as cluster:
                test_only(cluster.job_script())
                cluster.scale(jobs=jobs)
                with Client(cluster), _Replacer(cluster, jobs):  # the client DaskPool finds
                    lifetime, stagger = retirement(walltime_seconds(walltime))
                    message(f"Slurm: {jobs} job(s) of {walltime} "
                            f"({', '.join(kwargs['job_extra_directives']) or 'no extra lines'}), "
                            f"{len(self.per_job())} slot(s) each; workers retire after "
                            f"{lifetime} s (± {stagger} s); logs in "
                            f"{kwargs['log_directory']}")
                    yield


def log_directory() -> Path:
    """Where the Slurm jobs' output goes unless the configuration says (under $HOME,
    which a cluster shares with its nodes)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "cnnbench" / "slurm"


def test_only(script: str) -> None:
    """`sbatch --test-only` on the job script: a wrong partition, account or resource is a
    DeviceError with Slurm's own words, before anything is submitted or written."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
        f.write(script)
    try:
        done = subprocess.run(["sbatch", "--test-only", f.name], capture_output=True,
                              text=True, timeout=60)
    finally:
        os.unlink(f.name)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().replace("sbatch: error: ", "")
        raise DeviceError(f"Slurm refuses the worker job: {said}. Check --partition, "
                          "--account, --walltime, --memory, --cpus-per-job, --gpus-per-job "
                          "and --sbatch (see `sinfo` for what the cluster has)")


class _Replacer:
    """Keeps `jobs` Slurm jobs up: a job that ended (its worker retired before the wall
    time, or it was preempted, cancelled, or lost with its node) is replaced by a new one:
    dropped from the cluster's running workers, it is started again from its spec by
    distributed's SpecCluster when the cluster is scaled (test_slurm cancels one)."""

    interval = 2.0

    def __init__(self, cluster, jobs: int):
        self.cluster, self.jobs = cluster, jobs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cnnbench-slurm", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # the cluster is closing, or sbatch failed:
                self.replace_ended()  # try again next time

    def replace_ended(self) -> None:
        cluster = self.cluster
        queued = in_queue()
        ended = [name for name, job in list(cluster.workers.items())
                 if getattr(job, "job_id", None) and job.job_id not in queued]
        for name in ended:
            cluster.workers.pop(name, None)
        if ended:
            cluster.scale(jobs=self.jobs)


def in_queue() -> set[str]:
    """Ids of this user's Slurm jobs that are pending or running (or completing)."""
    done = subprocess.run(["squeue", "--noheader", "--me", "--format=%i %t"],
                          capture_output=True, text=True, timeout=30, check=True)
    return {job for job, state in (line.split() for line in done.stdout.splitlines())
            if state not in ("CD", "F", "CA", "TO", "PR", "NF", "OOM", "BF", "DL")}
