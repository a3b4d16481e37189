"""Execute stage: run jobs in parallel workers and stream their results back.

Takes `Task`s (job key, config, dataset directory) and a backend's pool (`backends`);
gives a stream of `JobResult`s in completion order. Knows nothing of the database: the
caller passes a `claim` callback, asked just before each task is dispatched, and records
the results it receives.

Every slot of the pool runs one job (or one fused group) at a time; a worker keeps its
dataset resident on its device across jobs, and `cuda:0x4` puts at most four jobs on
that GPU at any time. A worker that dies (a signal, a segfault, the kernel's OOM killer,
a Slurm job cancelled) costs only its own job: the pool's `retries` say how often it is
retried on a fresh worker (a Dask scheduler retries by itself), then it is recorded FAILED
with the cause while the other slots go on. A job that raises comes back FAILED with its
traceback; the other jobs go on. Jobs that differ only in seed and training slice can be
fused into one vectorised training step (`fuse`), which pays off on a GPU.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import provenance
from .backends import Backend
from .backends.local import LocalBackend
from .config import TrainConfig
from .plan import fusable, fusion_key
from .records import EpochMetrics, JobResult, JobStatus


@dataclass(frozen=True)
class Task:
    key: str
    config: TrainConfig
    data_dir: str  # resolved directory of the config's dataset
    import_dirs: tuple[str, ...] = ()  # where a "module:function" net is imported from


# --------------------------------------------------------------------------- worker side

_WORKER: dict = {}  # per-process state: thread setting, resident datasets


def _device_data(data_dir: str, device: str):
    """The dataset resident on `device`, loaded once per process."""
    from . import data, train

    cache = _WORKER.setdefault("data", {})
    if (data_dir, device) not in cache:
        cache.clear()  # one resident dataset per process is the common case; bound memory
        a = data.load_arrays(data_dir)
        cache[(data_dir, device)] = train.to_device(a.train_x, a.train_y, a.test_x, a.test_y,
                                                    device, a.mean, a.std)
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


@dataclass(frozen=True)
class Threads:
    """A worker's intra-op threads: `count` when its job starts; when fewer jobs than CPU
    slots are left (a grid's tail, a single job), the parent writes a new count to `path`
    and the worker takes it up after each epoch, so the running jobs share the idle cores."""

    count: int
    path: str | None = None

    def current(self) -> int:
        if self.path is None:
            return self.count
        try:
            return max(1, int(Path(self.path).read_text()))
        except (OSError, ValueError):  # not written yet, or mid-replace: keep the last one
            return self.count


def _set_threads(count: int) -> None:
    import torch

    if _WORKER.get("threads") != count:
        torch.set_num_threads(count)
        _WORKER["threads"] = count


def shares(cores: int, running: int) -> list[int]:
    """Intra-op threads for each of `running` CPU jobs sharing `cores`: all cores used,
    none oversubscribed while there are at least as many jobs as cores (1 each then)."""
    base, extra = divmod(cores, running)
    return [max(1, base + (i < extra)) for i in range(running)]


class Retiring(Exception):  # noqa: N818 (a signal, not an error)
    """Raised at an epoch's end when the worker retires before another epoch would end."""


class Retirement:
    """A job's view of its worker's retirement (a Dask worker's --lifetime, set by the
    Slurm backend before the wall time): after each epoch, if the next one would not end
    before the worker leaves, the job stops there, its checkpoint just written, and goes
    back to the scheduler to resume on another worker, instead of being cut mid-epoch.

    `deadline`: unix time the worker leaves; `margin`: seconds kept in hand."""

    margin = 10.0

    def __init__(self, deadline: float, clock: Callable[[], float] = time.time):
        self.deadline, self.clock = deadline, clock
        self.last = clock()

    def check(self) -> None:
        now = self.clock()
        epoch, self.last = now - self.last, now
        if now + 1.5 * epoch + self.margin > self.deadline:
            raise Retiring(f"the worker retires in {self.deadline - now:.0f} s; an epoch "
                           f"takes {epoch:.0f} s")

    @classmethod
    def of_worker(cls, tasks: Sequence[Task], checkpoints: str | None) -> Retirement | None:
        """For a checkpointed single job on a Dask worker with a lifetime, else None (a
        job that cannot resume gains nothing from stopping early)."""
        if not checkpoints or len(tasks) > 1 or "distributed" not in sys.modules:
            return None
        from .backends.dask import retirement_deadline

        deadline = retirement_deadline()
        return None if deadline is None else cls(deadline)


def run_group(tasks: Sequence[Task], device: str, lock_dir: str | None,
              threads: int | Threads, eval_every: int = 1, checkpoints: str | None = None,
              feed=None) -> list[JobResult]:
    """Worker entry point: train one job, or several fused into one vectorised model.

    Never raises: a failure is a FAILED result for every job of the group. `feed` (a
    `feed` sender) hears of every finished epoch, for live progress. `threads`: torch's
    intra-op threads, fixed, or a `Threads` the parent may raise while the job runs.
    """
    share = threads if isinstance(threads, Threads) else Threads(threads)
    retirement = Retirement.of_worker(tasks, checkpoints)

    def on_epoch(index: int, metrics) -> None:
        if share.path is not None:
            with contextlib.suppress(Exception):
                _set_threads(share.current())
        if feed is not None:
            with contextlib.suppress(Exception):  # progress is never worth a failed job
                feed.put(tasks[index].key, metrics)
        if retirement is not None:
            retirement.check()

    started, t0 = time.time(), time.perf_counter()
    versions = {"python": provenance.python_version()}
    try:
        import torch

        from . import train

        _set_threads(share.current())
        versions.update(torch=torch.__version__, cuda=torch.version.cuda or "")
        if device.startswith("cuda"):
            torch.cuda.set_device(device)
        resident = _device_data(tasks[0].data_dir, device)

        def attempt():
            dirs = tasks[0].import_dirs
            if len(tasks) > 1:
                return train.train_fused([t.config for t in tasks], resident, eval_every, dirs,
                                         on_epoch)
            checkpoint = None
            if checkpoints:  # per job and training code: older code never resumes
                os.makedirs(checkpoints, exist_ok=True)
                checkpoint = Path(checkpoints) / f"{tasks[0].key}-{provenance.code_version()}.pt"
            return [train.train(tasks[0].config, resident, eval_every, checkpoint, dirs,
                                on_epoch)]

        outcomes = with_oom_retry(attempt, device, lock_dir)
        done = [(o.status, o.error, o.epochs, o.param_count, o.train_seconds) for o in outcomes]
    except Retiring as exc:
        from .backends.dask import hand_back

        hand_back(str(exc))  # raises: the scheduler runs it again elsewhere
    except Exception:
        done = [(JobStatus.FAILED, traceback.format_exc(), (), None, None)] * len(tasks)
    finished, wall = time.time(), time.perf_counter() - t0
    return [
        JobResult(
            key=task.key, status=status, error=error, epochs=epochs, param_count=params,
            train_seconds=train_s, wall_seconds=wall / len(tasks), started_at=started,
            finished_at=finished, device=device, host=provenance.host(),
            slurm_job_id=os.environ.get("SLURM_JOB_ID"), code_version=provenance.code_version(),
            versions=versions,
        )
        for task, (status, error, epochs, params, train_s) in zip(tasks, done, strict=True)
    ]


def stop_helpers() -> None:
    """Stop the helper processes that multiprocessing and loky keep beside a parent (their
    resource trackers, joblib's reusable worker pool) and wait for them to exit, so that
    nothing of a command outlives it. For a command's own process as it ends: in a caller's
    process these also track what the caller itself shares between processes."""
    reusable = sys.modules.get("joblib.externals.loky.reusable_executor")  # never imported:
    executor = getattr(reusable, "_executor", None)  # nothing to stop (joblib.Parallel's pool)
    if executor is not None:
        executor.shutdown(wait=True, kill_workers=True)
    for module in ("joblib.externals.loky.backend.resource_tracker",
                   "multiprocessing.resource_tracker"):
        tracker = getattr(sys.modules.get(module), "_resource_tracker", None)
        with contextlib.suppress(Exception):  # not started, or already gone
            tracker._stop()


def failed_results(tasks: Sequence[Task], error: str, device: str | None) -> list[JobResult]:
    """FAILED results written by the parent for jobs whose worker never returned."""
    now = time.time()
    return [JobResult(key=t.key, status=JobStatus.FAILED, error=error, started_at=now,
                      finished_at=now, device=device, host=provenance.host(),
                      code_version=provenance.code_version(),
                      versions={"python": provenance.python_version()}) for t in tasks]


# --------------------------------------------------------------------------- parent side


def fuse(tasks: Sequence[Task], size: int) -> list[list[Task]]:
    """Groups of at most `size` tasks that can train as one vectorised model.

    Tasks fuse when their configs differ only in seed and training-slice start, they use
    the same dataset and the built-in training pieces (`plan.fusable`); a group takes the
    position of its first task, so an order such as longest-first is kept. `size` 1 gives
    one task per group.
    """
    groups: list[list[Task]] = []
    open_groups: dict[tuple, list[Task]] = {}
    for task in tasks:
        key = ((fusion_key(task.config), task.data_dir) if size > 1 and fusable(task.config)
               else (task.key,))
        group = open_groups.get(key)
        if group is None or len(group) >= size:
            group = open_groups[key] = []
            groups.append(group)
        group.append(task)
    return groups


def execute(groups: Iterable[Sequence[Task]], slots: list[str], *, threads: int = 1,
            cores: int | None = None, claim: Callable[[Task], bool] | None = None,
            backend: Backend | None = None, eval_every: int = 1, checkpoints: str | None = None,
            notify: Callable[[str], None] | None = None,
            on_epochs: Callable[[list[tuple[str, EpochMetrics]]], None] | None = None,
            work: Callable[..., list[JobResult]] = run_group) -> Iterator[JobResult]:
    """Run groups of tasks on the slots, yielding results as they complete.

    A group of one is a plain job; a larger group trains fused (see `fuse`).
    `claim(task)` is called just before a group is handed to a free slot; a task it
    refuses is not run. `notify(line)` hears of dead workers and retries.

    `backend` (default: local worker processes) gives the pool of `slots`; a cluster backend
    runs inside its `started()` block, and the dataset directory must be readable there.

    `threads`: torch's intra-op threads per job. `cores` (local backend only): the CPU cores that
    the jobs running on "cpu" slots share instead; each has its share (`shares`), one
    thread each while the slots are full, more when fewer jobs than slots run (a single
    job, a grid's tail), taken up by a running job after its current epoch.
    `checkpoints`: a directory for per-epoch checkpoints of unfused jobs, so a job cut
    short resumes after its last finished epoch (on Dask, a directory all workers share).
    `on_epochs(items)` hears of the finished epochs of running jobs, (key, metrics) pairs,
    once per poll while the results are awaited (live progress; the runner writes each
    batch to the database in one transaction). `work` is the worker function (tests substitute
    one that dies).
    """
    pool = (backend or LocalBackend()).pool(slots)
    finished: queue.Queue = queue.Queue()
    free, busy = list(range(pool.size))[::-1], set()
    pending = iter(groups)
    given: dict[int, int] = {}  # slot -> the intra-op threads its job was last given

    exhausted = False

    def next_group() -> tuple[Task, ...] | None:
        nonlocal exhausted
        for group in pending:
            claimed = tuple(t for t in group if claim is None or claim(t))
            if claimed:
                return claimed
        exhausted = True
        return None

    def room() -> int:
        """Jobs that may start now: free slots that a worker can take at once (a cluster's
        workers may still wait in a queue: a job is claimed when it can start, not
        before)."""
        return 0 if exhausted else min(len(free), pool.capacity() - len(busy))

    def share_out() -> None:
        on_cpu = sorted(s for s in busy if pool.device(s) == "cpu")
        if cores is None or pool.lock_dir is None or not on_cpu:
            return
        for slot, count in zip(on_cpu, shares(cores, len(on_cpu)), strict=True):
            if given.get(slot) != count:
                path = _threads_path(pool.lock_dir, slot)
                Path(path + ".new").write_text(str(count))
                os.replace(path + ".new", path)  # a reader sees the old count or the new
                given[slot] = count

    def dispatch(slot: int, group: tuple[Task, ...], attempt: int) -> None:
        share = (Threads(given[slot], _threads_path(pool.lock_dir, slot)) if slot in given
                 else Threads(threads))
        future = pool.submit(slot, work, group, pool.device(slot), pool.lock_dir, share,
                             eval_every, checkpoints, pool.feed.sender)
        future.add_done_callback(lambda f: finished.put((slot, group, attempt, f)))

    def poll() -> None:
        items = list(pool.feed.receive())
        if items and on_epochs is not None:
            on_epochs(items)

    clean = False
    try:
        while True:
            starting = []
            for _ in range(room()):
                if (group := next_group()) is None:
                    break
                starting.append((free.pop(), group))
            busy.update(slot for slot, _ in starting)
            share_out()  # before the new jobs start: they start on their share
            for slot, group in starting:
                dispatch(slot, group, 0)
            if not busy and exhausted:
                break
            done = _next(finished, poll, lambda: room() > 0)
            if done is None:  # workers came: start more jobs
                continue
            slot, group, attempt, future = done
            results = _results(pool, slot, group, attempt, future, notify)
            if results is None:  # the worker died: run the group again on a fresh one
                dispatch(slot, group, attempt + 1)
                continue
            free.append(slot)
            busy.discard(slot)
            pool.feed.done(t.key for t in group)
            yield from results
        clean = True
    finally:
        pool.close(kill=not clean)


def _threads_path(lock_dir: str, slot: int) -> str:
    return os.path.join(lock_dir, f"threads-{slot}")


def _next(finished: queue.Queue, poll: Callable[[], None], wake: Callable[[], bool]):
    """The next finished future, or None as soon as `wake()` says more jobs can start."""
    while True:  # a timeout keeps the main thread responsive to Ctrl-C, and the feed read
        poll()
        with contextlib.suppress(queue.Empty):
            return finished.get(timeout=0.5)
        if wake():
            return None


def _results(pool, slot: int, group: tuple[Task, ...], attempt: int, future,
             notify: Callable[[str], None] | None) -> list[JobResult] | None:
    """A finished future's results; None when its worker died and it gets another try."""
    try:
        return future.result()
    except Exception as exc:
        cause = pool.death(exc)
        if cause is None:  # e.g. a result that cannot be unpickled
            return failed_results(group, "".join(traceback.format_exception(exc)),
                                  pool.device(slot))
    pool.restart(slot)
    keys = ", ".join(t.key for t in group)
    if attempt < pool.retries:
        if notify:
            notify(f"worker died ({cause}) while training {keys}; retrying on a fresh worker")
        return None
    tries = f" on {attempt + 1} workers" if attempt else ""
    error = (f"worker died: {cause}{tries}. The process training this job ended without a "
             "result (a signal such as the kernel's out-of-memory killer, or a crash in "
             "native code); rerun with --retry-failed once the cause is fixed")
    if notify:
        notify(f"worker died ({cause}) while training {keys}: recorded FAILED")
    return failed_results(group, error, pool.device(slot))
