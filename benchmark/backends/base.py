"""The interface every backend implements, and device slots (`parse_devices`)."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol


class DeviceError(ValueError):
    """A --devices or backend specification that cannot be satisfied here."""


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
        available = (cuda_count or visible_gpus)()
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


def visible_gpus() -> int:
    """GPUs visible to this process."""
    import torch  # only a CUDA spec pays for the import

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class Pool(Protocol):
    """What the execute stage drives: `size` slots, each on `device(slot)`.

    - `submit(slot, fn, *args)` gives a concurrent.futures-like future;
    - `capacity()`: how many slots can start a job now (a cluster's workers may still
      wait in a queue);
    - `feed` carries the live epochs of running jobs (`feed.sender` goes to the worker,
      `feed.receive()` and `feed.done(keys)` stay here);
    - `death(exc)`: the cause if a future's exception means its worker died, else None;
      `restart(slot)` replaces a dead slot's worker; `retries`: how often execute itself
      retries a job whose worker died (a Dask scheduler retries on its own);
    - `lock_dir`: a directory the slots on this machine share (GPU out-of-memory gates,
      thread counts), or None; `close(kill)` ends it all."""

    retries: int
    lock_dir: str | None
    feed: object
    size: int

    def device(self, slot: int) -> str: ...
    def capacity(self) -> int: ...
    def submit(self, slot: int, fn: Callable, *args): ...
    def death(self, exc: BaseException) -> str | None: ...
    def restart(self, slot: int) -> None: ...
    def close(self, kill: bool) -> None: ...


@dataclass(frozen=True)
class Backend:
    """A place to run jobs, with the run's --devices and --jobs. Subclasses set `name`, the
    run options only they take (`settings`, fields of theirs), and whether their workers
    share this machine's cores (`local`: threads are shared out among the running jobs)."""

    devices: str = "cpu"
    jobs: int | None = None
    name: ClassVar[str]
    settings: ClassVar[tuple[str, ...]] = ()
    local: ClassVar[bool] = False

    def slots(self) -> list[str]:
        """Device slots: one entry per job that may run at once."""
        return parse_devices(self.devices, self.jobs)

    @contextlib.contextmanager
    def started(self, slots: Sequence[str], message: Callable[[str], None]) -> Iterator[None]:
        """The backend's cluster, up for as long as the run trains. Entered before the grid
        is written, so that a cluster that cannot start changes nothing."""
        yield

    def pool(self, slots: Sequence[str]) -> Pool:
        raise NotImplementedError

    def where(self, slots: Sequence[str]) -> str:
        """Where the jobs train, for the run's message."""
        return f"{len(slots)} slot(s) ({', '.join(sorted(set(slots)))})"
