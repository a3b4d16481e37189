"""CLI, a run on the terminal: `Progress` (a line per finished job, a status line with
one ETA, epoch lines in a log) and `progress`, the run's events wired to it, with the
messages of an interrupted or failed run and their exit codes.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click

from .. import runner
from ..records import EpochMetrics, JobResult, JobStatus
from .common import describe_result, fmt_seconds


class Progress:
    """What a run shows while it trains: one line per finished job, and

    - on a terminal, a status line kept at the bottom: jobs done, one ETA, and each
      running job with its epoch;
    - otherwise (a log file), also a line per epoch of jobs running longer than a minute.

    The ETA weighs jobs by their estimated cost (jobs run longest first, so counting jobs
    would overestimate the time left by a large factor) and counts the finished epochs of
    running jobs, so it moves while long jobs train.
    """

    def __init__(self, tty: bool | None = None, clock=time.monotonic):
        self.tty = sys.stdout.isatty() if tty is None else tty
        # without a terminal, epoch lines of jobs running longer than this many seconds
        self.long_job_s = float(os.environ.get("CNNBENCH_EPOCH_LINES_AFTER", "60"))
        self.clock = clock
        self.costs: dict[str, float] = {}
        self.done_cost, self.done, self.t0 = 0.0, 0, clock()
        self.running: dict[str, dict] = {}  # key -> label, epochs, epoch, since
        self.status_shown = False

    # --- events
    def started(self, n: int, costs: dict[str, float]) -> None:
        """A batch of `n` jobs starts (a sequential run starts one per look)."""
        self.costs, self.t0 = costs, self.clock()
        self.done_cost, self.done = 0.0, 0
        self._status()

    def job_running(self, key: str, label: str, epochs: int) -> None:
        self.running[key] = {"label": label, "epochs": epochs, "epoch": 0, "since": self.clock()}
        self._status()

    def epoch(self, key: str, metrics: EpochMetrics) -> None:
        job = self.running.get(key)
        if job is None:
            return
        job["epoch"] = max(job["epoch"], metrics.epoch)
        if not self.tty and self.clock() - job["since"] > self.long_job_s:
            acc = "" if math.isnan(metrics.test_accuracy) else (
                f", test acc {metrics.test_accuracy:.2f}%")
            click.echo(f"  {job['label']}: epoch {metrics.epoch}/{job['epochs']}, train loss "
                       f"{metrics.train_loss:.4f}{acc} ({metrics.seconds:.1f}s)")
        self._status()

    def finished(self, result: JobResult, label: str) -> None:
        self.running.pop(result.key, None)
        self.done_cost += self.costs.get(result.key, 0.0)
        self.done += 1
        self._print(f"[{self.done}/{len(self.costs)} ETA {self.eta()}] "
                    f"{describe_result(result, label)}")
        if result.status == JobStatus.FAILED:
            last = (result.error or "").strip().splitlines()[-1:]
            self._clear()
            click.echo(f"FAILED {label}: {' '.join(last)}", err=True)
        self._status()

    # --- the one ETA
    def progress_cost(self) -> float:
        partial = sum(self.costs.get(k, 0.0) * j["epoch"] / max(j["epochs"], 1)
                      for k, j in self.running.items())
        return self.done_cost + partial

    def eta(self) -> str:
        total, done = sum(self.costs.values()), self.progress_cost()
        if done <= 0:
            return "?"
        return fmt_seconds((self.clock() - self.t0) * (total - done) / done)

    # --- drawing
    def status_line(self) -> str:
        jobs = " | ".join(f"{j['label']} epoch {j['epoch']}/{j['epochs']}"
                          for j in self.running.values())
        return f"[{self.done}/{len(self.costs)} ETA {self.eta()}] {jobs}"

    def _status(self) -> None:
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self._write("\r\x1b[K" + self.status_line()[:width])
            self.status_shown = True

    def _clear(self) -> None:
        if self.status_shown:
            self._write("\r\x1b[K")
            self.status_shown = False

    @staticmethod
    def _write(text: str) -> None:
        # not click.echo: it strips the erase-line escape when it thinks there is no tty
        sys.stdout.write(text)
        sys.stdout.flush()

    def _print(self, line: str) -> None:
        self._clear()
        click.echo(line)

    def close(self) -> None:
        self._clear()


@contextmanager
def progress() -> Iterator[runner.RunEvents]:
    """The run's events on the terminal (see `Progress`); warnings and failures on
    stderr."""
    shown = Progress()

    def warn(line: str) -> None:
        shown._clear()
        click.echo(f"warning: {line}", err=True)

    events = runner.RunEvents(message=shown._print, warning=warn, started=shown.started,
                              running=shown.job_running, epoch=shown.epoch,
                              finished=shown.finished)
    try:
        yield events
    except runner.Interrupted as exc:
        shown.close()
        click.echo(f"\ninterrupted: {exc.finished} job(s) finished and saved, {exc.released} "
                   "returned to PENDING; run the same command again to resume", err=True)
        sys.exit(130)
    except runner.RunError as exc:
        shown.close()
        click.echo(f"\nerror: {exc}\n{exc.finished} job(s) finished and saved before it; the "
                   "ones in progress were stopped and will run again. Fix the cause (free disk "
                   "space, a writable path, the server) and run the same command to resume.",
                   err=True)
        sys.exit(1)
    shown.close()
