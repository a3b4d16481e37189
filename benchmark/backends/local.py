"""Backend `loky`: worker processes on this machine, one single-worker loky executor per
device slot, kept for the whole grid (so each worker loads its dataset once). A worker
that dies breaks only its own slot's executor (loky breaks a whole shared pool when one
worker dies, hence one per slot); its job is retried once on a fresh worker."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from ..feed import FileFeed
from ..state import pid_alive
from .base import Backend

_EXIT_CODES = re.compile(r"exit codes of the workers are \{([^}]*)\}")
LOCKS = "cnnbench-locks-"  # + the runner's pid: a pool's folder of GPU gates and live epochs
OWNER = "owner.lock"  # in it: held (flock) by the pool's process for the pool's life


def lock_dir() -> tuple[str, int | None]:
    """A new folder for this process's pool, and the descriptor of its owner lock (held
    until the pool closes it), after removing the folders of runners that are gone (a
    killed run cannot remove its own)."""
    sweep_locks()
    folder = tempfile.mkdtemp(prefix=f"{LOCKS}{os.getpid()}-")
    fd = os.open(os.path.join(folder, OWNER), os.O_CREAT | os.O_RDWR, 0o600)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    return folder, fd


def sweep_locks() -> None:
    """Remove the pool folders of runners that are gone: whose owner lock can be taken
    (its holder exited, however it ended; a lock works across the pid namespaces of
    containers that share the folder). Without one (an older cnnbench's, or a folder being
    made this instant), by age."""
    for old in Path(tempfile.gettempdir()).glob(f"{LOCKS}*"):
        try:
            gone = _unowned(old / OWNER) if (old / OWNER).exists() else (
                time.time() - old.stat().st_mtime > 3600)
        except OSError:  # removed meanwhile by another runner's sweep
            continue
        if gone:
            shutil.rmtree(old, ignore_errors=True)


def _unowned(lock: Path) -> bool:
    if fcntl is None:  # no flock (Windows): by the pid in the folder's name
        owner = lock.parent.name[len(LOCKS):].split("-")[0]
        return owner.isdigit() and not pid_alive(int(owner))
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # its pool is open
    finally:
        os.close(fd)  # (a lock taken goes with it)
    return True


class LocalPool:
    """Worker processes on this machine: one single-worker loky executor per slot.

    `retries` 1: a job whose worker died runs once more on a fresh worker of its slot.
    """

    retries = 1

    def __init__(self, slots: Sequence[str]):
        self.devices = list(slots)
        self.lock_dir, self._owner = lock_dir()  # GPU out-of-memory gates
        self.feed = FileFeed(Path(self.lock_dir) / "epochs")  # live progress
        self._executors: list = [None] * len(self.devices)

    @property
    def size(self) -> int:
        return len(self.devices)

    def capacity(self) -> int:
        return self.size  # a worker is started for each slot on demand

    def device(self, slot: int) -> str:
        return self.devices[slot]

    def submit(self, slot: int, fn: Callable, *args):
        from multiprocessing import resource_tracker as stdlib_tracker

        from joblib.externals.loky.backend import resource_tracker
        from joblib.externals.loky.process_executor import ProcessPoolExecutor

        resource_tracker.ensure_running()  # both trackers first: starting the standard
        stdlib_tracker.ensure_running()  # library's unblocks SIGINT (loky starts it too)
        with _ctrl_c_blocked():  # loky starts the worker in this call, in this thread
            if self._executors[slot] is None:
                self._executors[slot] = ProcessPoolExecutor(max_workers=1)
            return self._executors[slot].submit(fn, *args)

    @staticmethod
    def death(exc: BaseException) -> str | None:
        """The cause if `exc` says the worker process died, else None."""
        from joblib.externals.loky.process_executor import BrokenProcessPool

        if not isinstance(exc, BrokenProcessPool):
            return None
        codes = _EXIT_CODES.search(str(exc))
        if codes:  # "SIGKILL(-9)" or "EXIT(1)": the signal or exit status
            return codes.group(1).split("(")[0].strip() or "unknown cause"
        return str(exc).splitlines()[0]

    def restart(self, slot: int) -> None:
        """Drop a broken executor; the next submit starts a fresh worker."""
        executor, self._executors[slot] = self._executors[slot], None
        if executor is not None:
            executor.shutdown(wait=False, kill_workers=True)

    def close(self, kill: bool) -> None:
        """Shut every worker down (`kill`: at once, mid-job) and wait for it to exit."""
        for slot in range(self.size):
            executor, self._executors[slot] = self._executors[slot], None
            if executor is None:
                continue
            try:
                executor.shutdown(wait=True, kill_workers=kill)
            except RuntimeError:
                # Ctrl-C landed while loky was starting this executor's manager thread:
                # "cannot join thread before it is started". Nothing of it runs yet; stop
                # its workers without waiting, so the interrupt, not this, is what ends
                # the run (it hands the jobs back and says how to resume).
                executor.shutdown(wait=False, kill_workers=True)
        shutil.rmtree(self.lock_dir, ignore_errors=True)
        if self._owner is not None:
            os.close(self._owner)
            self._owner = None



@contextmanager
def _ctrl_c_blocked() -> Iterator[None]:
    """Ctrl-C held off while workers start, in two ways.

    SIGINT is blocked in this thread, so the workers start with it blocked (the mask is
    inherited through fork and exec) and never see a Ctrl-C: it is the runner's to handle
    (it hands the jobs back, then stops the workers), and one reaching a worker while
    Python started up printed a traceback. And the runner's own KeyboardInterrupt waits
    until the block ends: raised inside loky's start of a worker, it would leave that
    worker unknown to the pool, never stopped (and the runner waiting for it at exit)."""
    if not hasattr(signal, "pthread_sigmask"):  # not POSIX
        yield
        return
    deferred: list[tuple] = []
    handler = signal.getsignal(signal.SIGINT)
    defer = callable(handler) and threading.current_thread() is threading.main_thread()
    if defer:
        signal.signal(signal.SIGINT, lambda *args: deferred.append(args))
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        if defer:
            signal.signal(signal.SIGINT, handler)
            if deferred:
                handler(*deferred[0])  # KeyboardInterrupt, now that the pool knows its workers


@dataclass(frozen=True)
class LocalBackend(Backend):
    """Processes here: `--jobs` and `--devices` give the slots; CPU jobs share the cores."""

    name: ClassVar[str] = "loky"
    local: ClassVar[bool] = True

    def pool(self, slots: Sequence[str]) -> LocalPool:
        return LocalPool(slots)
