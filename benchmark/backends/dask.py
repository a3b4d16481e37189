"""Backend `dask`: the Dask cluster of the current `distributed.Client`, either a local
cluster of single-thread worker processes started for the run, or the one at
`--scheduler`. The scheduler retries a task whose worker died (`allowed-failures`, 1 for
the local cluster) and then reports it as a killed worker, recorded FAILED; the dataset
and checkpoint directories must be readable by every worker."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

from ..feed import TopicFeed
from .base import Backend, DeviceError


class DaskPool:
    """The Dask cluster of the current `distributed.Client`: every worker thread is a slot
    on `device`'s kind (cpu, or cuda:0 = the GPU that worker sees), or `size` slots where
    the workers are still to come (Slurm jobs in the queue). The scheduler itself retries a
    task whose worker died (`allowed-failures`), so `retries` is 0 here."""

    retries = 0
    lock_dir = None

    def __init__(self, device: str, size: int | None = None):
        from distributed import get_client

        self.client = get_client()
        self._device = device
        self.size = size or max(1, sum(self.client.nthreads().values()))
        self._futures: set = set()
        self.feed = TopicFeed(self.client)

    def capacity(self) -> int:
        """Slots the connected workers can run now (Slurm jobs still in the queue add
        none), at most `size`."""
        return min(self.size, sum(self.client.nthreads().values()))

    def device(self, slot: int) -> str:
        return self._device

    def submit(self, slot: int, fn: Callable, *args):
        future = self.client.submit(fn, *args, pure=False)
        self._futures.add(future)
        future.add_done_callback(self._futures.discard)
        return future

    @staticmethod
    def death(exc: BaseException) -> str | None:
        from distributed import KilledWorker

        return f"Dask reported a killed worker ({exc})" if isinstance(exc, KilledWorker) else None

    def restart(self, slot: int) -> None:
        pass  # the scheduler replaces dead workers (its nanny restarts them)

    def close(self, kill: bool) -> None:
        self.feed.close()
        if kill and self._futures:
            self.client.cancel(list(self._futures))



@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[object]:
    """A Dask client: connected to `scheduler` (tcp://HOST:PORT), or to a local cluster of
    `workers` single-thread worker processes on loopback, closed on exit. The local
    cluster retries a task once when its worker dies (allowed-failures 1)."""
    try:
        import dask
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
    # No dashboard; the scheduler's HTTP routes (health, metrics) it always serves go to a
    # free loopback port, not 8787, which a user's Jupyter Dask dashboard may hold.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                         host="127.0.0.1", dashboard_address=None,
                         scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                         silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client


@dataclass(frozen=True)
class DaskBackend(Backend):
    """`--backend dask`: a local cluster of `--jobs` workers, or the one at `scheduler`."""

    scheduler: str | None = None  # tcp://HOST:PORT; None: a local cluster
    name: ClassVar[str] = "dask"
    settings: ClassVar[tuple[str, ...]] = ("scheduler",)

    @contextlib.contextmanager
    def started(self, slots: Sequence[str], message: Callable[[str], None]) -> Iterator[None]:
        with dask_client(self.scheduler, len(slots)) as client:
            where = self.scheduler or f"a local cluster of {len(slots)} worker(s)"
            message(f"Dask: {where}, {sum(client.nthreads().values())} worker thread(s)")
            yield

    def pool(self, slots: Sequence[str]) -> DaskPool:
        return DaskPool(slots[0])

    def where(self, slots: Sequence[str]) -> str:
        return "the Dask cluster"


# --------------------------------------------------------------------------- worker side


def retirement_deadline() -> float | None:
    """Unix time this Dask worker leaves by its --lifetime (stagger included), or None
    when it has none or this is no Dask worker. The lifetime counts from the worker's
    start, taken as its process's: a little early, never late."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    if not worker.lifetime:
        return None
    import psutil

    return psutil.Process().create_time() + worker.lifetime


def hand_back(reason: str) -> None:
    """Give the running task back to the scheduler and retire this worker now, so that the
    task runs again on another worker (from its checkpoint). Raises `Reschedule`."""
    from distributed import Reschedule, get_worker

    worker = get_worker()
    worker.loop.add_callback(worker.close_gracefully, reason=f"cnnbench: {reason}")
    raise Reschedule()
