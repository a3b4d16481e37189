"""Execute stage: run jobs in parallel worker processes and stream their results back.

Takes `Task`s (job key, config, dataset directory) and a list of device slots; gives a
stream of `JobResult`s in completion order. Knows nothing of the database: the caller
passes a `claim` callback, asked just before each task is dispatched, and records the
results it receives.

Workers are joblib (loky) processes that persist for the whole grid, so the dataset is
loaded and moved to the device once per worker, not once per job. Each worker holds one
device slot for its lifetime: a lock file per slot, taken at its first job, released by
the operating system when the process ends, so `cuda:0x4` puts at most four jobs on that
GPU at any time, whichever worker runs them. A job that raises comes back FAILED with its
traceback; the other jobs go on. Jobs that differ only in seed and training slice can be
fused into one vectorised training step (`fuse`), which pays off on a GPU.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from joblib import Parallel, delayed, parallel_config

from . import provenance
from .plan import fusion_key
from .spec import JobResult, JobStatus, TrainConfig


class DeviceError(ValueError):
    """A --devices specification that cannot be satisfied here."""


@dataclass(frozen=True)
class Task:
    key: str
    config: TrainConfig
    data_dir: str  # resolved directory of the config's dataset


_DEVICE_RE = re.compile(r"^(cpu|cuda(?::(\d+))?)(?:x(\d+))?$")


def parse_devices(spec: str, jobs: int | None = None,
                  cuda_count: Callable[[], int] | None = None) -> list[str]:
    """Device slots from a --devices string: one entry per job that may run at once.

    "cpu" gives `jobs` slots (default: one per CPU core); "cuda" one slot per visible GPU;
    "cuda:1" one slot on GPU 1; "cuda:0x4" four slots on GPU 0; items join with commas.
    """
    slots: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        match = _DEVICE_RE.match(item)
        if not match:
            raise DeviceError(f"bad device {item!r} in --devices {spec!r}: use cpu, cuda, "
                              "cuda:N, or any of these followed by xSLOTS (e.g. cuda:0x4)")
        name, index, per = match.group(1), match.group(2), match.group(3)
        if name == "cpu":
            # "cpu" alone: --jobs workers, default one per core; "cpuxN": N workers.
            per = per or jobs or os.cpu_count() or 1
        per = int(per or 1)
        if per < 1:
            raise DeviceError(f"device {item!r} needs at least one slot")
        if name == "cpu":
            slots += ["cpu"] * per
            continue
        available = (cuda_count or _cuda_count)()
        if available == 0:
            raise DeviceError(f"--devices {spec!r} asks for CUDA, but no GPU is visible here: "
                              "use --devices cpu")
        gpus = range(available) if index is None else [int(index)]
        for gpu in gpus:
            if gpu >= available:
                raise DeviceError(f"device cuda:{gpu} does not exist: {available} GPU(s) "
                                  f"visible (cuda:0 to cuda:{available - 1})")
            slots += [f"cuda:{gpu}"] * per
    return slots


def _cuda_count() -> int:
    import torch  # only a CUDA spec pays for the import

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


# --------------------------------------------------------------------------- worker side

_WORKER: dict = {}  # per-process state: the held slot, thread setting, resident datasets


def _acquire_slot(slot_dir: str, devices: tuple[str, ...]) -> str:
    """The device of the slot this process holds, taking a free one on first use."""
    held = _WORKER.get("slot")
    if held and held[0] == slot_dir:
        return held[1]
    if held:
        os.close(held[2])  # a slot of an earlier grid in this reused process
    os.makedirs(slot_dir, exist_ok=True)
    while True:
        for i, device in enumerate(devices):
            fd = os.open(os.path.join(slot_dir, f"slot-{i}.lock"), os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            _WORKER["slot"] = (slot_dir, device, fd)
            return device
        time.sleep(0.05)  # every slot busy: a finishing process is about to free one


def _device_data(data_dir: str, device: str):
    """The dataset resident on `device`, loaded once per process."""
    from . import data, train

    cache = _WORKER.setdefault("data", {})
    if (data_dir, device) not in cache:
        cache.clear()  # one resident dataset per process is the common case; bound memory
        a = data.load_arrays(data_dir)
        cache[(data_dir, device)] = train.to_device(a.train_x, a.train_y, a.test_x, a.test_y,
                                                    device)
    return cache[(data_dir, device)]


def _is_oom(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "CUDA out of memory" in str(exc)


@contextlib.contextmanager
def _flock(path: str, mode: int) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)  # releases the lock


def with_oom_retry(attempt: Callable[[], object], device: str, lock_dir: str | None):
    """Run `attempt()` on a GPU shared by several slots; on CUDA out-of-memory, run it
    once more alone on that GPU: wait for the jobs of the other slots to finish while
    new ones wait (a gate lock), so the retry has the whole device (one slot instead of
    several). A second out-of-memory is raised, and the job is recorded as FAILED.

    Every job holds its device's lock shared; the retry takes it exclusive.
    """
    if lock_dir is None or not device.startswith("cuda"):
        return attempt()
    name = device.replace(":", "-")
    gate, busy = (os.path.join(lock_dir, f"{name}.{part}") for part in ("gate", "busy"))
    with _flock(gate, fcntl.LOCK_SH):
        pass  # an OOM retry holds the gate: do not start beside it
    try:
        with _flock(busy, fcntl.LOCK_SH):
            return attempt()
    except Exception as exc:
        if not _is_oom(exc):
            raise
    _empty_cache()
    with _flock(gate, fcntl.LOCK_EX), _flock(busy, fcntl.LOCK_EX):
        try:
            return attempt()
        finally:
            _empty_cache()


def _empty_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_group(tasks: Sequence[Task], slot_dir: str | None, devices: tuple[str, ...],
              threads: int, eval_every: int = 1,
              checkpoints: str | None = None) -> list[JobResult]:
    """Worker entry point: train one job, or several fused into one vectorised model.

    Never raises: a failure is a FAILED result for every job of the group.
    """
    started, t0 = time.time(), time.perf_counter()
    device = None
    versions = {"python": provenance.python_version()}
    try:
        # Loky workers share this machine's slots; a Dask worker is a slot by itself.
        device = _acquire_slot(slot_dir, devices) if slot_dir else devices[0]
        import torch

        from . import train

        if _WORKER.get("threads") != threads:
            torch.set_num_threads(threads)
            _WORKER["threads"] = threads
        versions.update(torch=torch.__version__, cuda=torch.version.cuda or "")
        if device.startswith("cuda"):
            torch.cuda.set_device(device)
        resident = _device_data(tasks[0].data_dir, device)

        def attempt():
            if len(tasks) > 1:
                return train.train_fused([t.config for t in tasks], resident, eval_every)
            checkpoint = None
            if checkpoints:  # per job and training code: older code never resumes
                os.makedirs(checkpoints, exist_ok=True)
                checkpoint = Path(checkpoints) / f"{tasks[0].key}-{provenance.code_version()}.pt"
            return [train.train(tasks[0].config, resident, eval_every, checkpoint)]

        outcomes = with_oom_retry(attempt, device, slot_dir)
        done = [(o.status, o.error, o.epochs, o.param_count, o.train_seconds) for o in outcomes]
    except Exception:
        done = [(JobStatus.FAILED, traceback.format_exc(), (), None, None)] * len(tasks)
    finished, wall = time.time(), time.perf_counter() - t0
    return [
        JobResult(
            key=task.key, status=status, error=error, epochs=epochs, param_count=params,
            train_seconds=train_s, wall_seconds=wall / len(tasks), started_at=started,
            finished_at=finished, device=device, host=provenance.host(),
            code_version=provenance.code_version(), versions=versions,
        )
        for task, (status, error, epochs, params, train_s) in zip(tasks, done, strict=True)
    ]


# --------------------------------------------------------------------------- parent side


def fuse(tasks: Sequence[Task], size: int) -> list[list[Task]]:
    """Groups of at most `size` tasks that can train as one vectorised model.

    Tasks fuse when their configs differ only in seed and training-slice start and they
    use the same dataset; a group takes the position of its first task, so an order such
    as longest-first is kept. `size` 1 gives one task per group.
    """
    groups: list[list[Task]] = []
    open_groups: dict[tuple, list[Task]] = {}
    for task in tasks:
        key = (fusion_key(task.config), task.data_dir) if size > 1 else (task.key,)
        group = open_groups.get(key)
        if group is None or len(group) >= size:
            group = open_groups[key] = []
            groups.append(group)
        group.append(task)
    return groups


def execute(groups: Iterable[Sequence[Task]], slots: list[str], *, threads: int = 1,
            claim: Callable[[Task], bool] | None = None, backend: str = "loky",
            eval_every: int = 1, checkpoints: str | None = None) -> Iterator[JobResult]:
    """Run groups of tasks on `len(slots)` workers, yielding results as they complete.

    A group of one is a plain job; a larger group trains fused (see `fuse`).
    `claim(task)` is called just before a group is handed to a worker (from joblib's
    dispatch thread); a task it refuses is not run.

    backend "loky": worker processes on this machine, one per slot. Backend "dask": the
    Dask cluster of the current `distributed.Client` (see `dask_client`); every worker
    thread of the cluster runs one job at a time on `slots[0]`'s device kind (cpu, or
    cuda:0 = the GPU that worker sees), and the dataset directory must be readable there.

    `checkpoints`: a directory for per-epoch checkpoints of unfused jobs, so a job cut
    short resumes after its last finished epoch (on Dask, a directory all workers share).
    """
    if backend == "dask":
        slot_dir, devices, n_jobs = None, (slots[0],), -1
    else:
        slot_dir = tempfile.mkdtemp(prefix="cnnbench-slots-")
        devices, n_jobs = tuple(slots), len(slots)

    def dispatched():
        for group in groups:
            claimed = tuple(t for t in group if claim is None or claim(t))
            if claimed:
                yield delayed(run_group)(claimed, slot_dir, devices, threads, eval_every,
                                         checkpoints)

    # pre_dispatch="n_jobs": claim a job only when a worker is about to be free for it.
    with parallel_config(backend=backend):  # registers joblib's Dask backend when asked
        parallel = Parallel(n_jobs=n_jobs, batch_size=1, pre_dispatch="n_jobs",
                            return_as="generator_unordered")
    for results in parallel(dispatched()):
        yield from results


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[object]:
    """A Dask client: connected to `scheduler` (tcp://HOST:PORT), or to a local cluster of
    `workers` single-thread worker processes on loopback, closed on exit."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise DeviceError("--backend dask needs Dask's distributed scheduler: "
                          "pip install 'cnnbench[dask]'") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise DeviceError(f"cannot reach the Dask scheduler at {scheduler}: {exc}; start "
                              "it with `dask scheduler` or leave out --scheduler for a "
                              "local cluster") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client
