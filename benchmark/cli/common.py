"""CLI, what every command shares: the user's-mistake error (one message, exit code 2),
the options of the database, the study file and the seeds (parsed once, by the option),
and the one way a command opens the database (`opened`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from .. import data
from ..backends import DeviceError
from ..config import SpecError
from ..records import JobResult, JobStatus
from ..store import ResultStore, StoreError, open_store
from ..studyfile import StudyFileError
from ..usernets import UserNetError

S = JobStatus


class UserError(click.ClickException):
    """A problem with the user's input: one clean message, exit code 2."""

    exit_code = 2


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except (StudyFileError, StoreError, data.DataError, DeviceError, SpecError,
            UserNetError) as exc:
        raise UserError(str(exc)) from None


db_option = click.option(
    "--db", metavar="URL",  # CNNBENCH_DB and the default: store.database.settings, once
    help="Result database: an SQLAlchemy URL or an SQLite path "
         "[env CNNBENCH_DB; default results/cnnbench.sqlite].",
)
study_argument = click.argument("study_file", metavar="STUDY",
                                type=click.Path(dir_okay=False, path_type=Path))


def parse_seeds(text: str | None) -> list[int] | None:
    """A --seeds value ("0,1,2", "0-4", "0-1,5") as distinct non-negative seeds."""
    if text is None:
        return None
    try:
        seeds = []
        for item in (s.strip() for s in text.split(",") if s.strip()):
            low, dash, high = item.partition("-")  # "0-9": a range, both ends included
            seeds += list(range(int(low), int(high) + 1)) if dash and low else [int(item)]
    except ValueError:
        raise click.BadParameter(f"{text!r}: give comma-separated integers or ranges, e.g. "
                                 "0,1,2 or 0-4", param_hint="--seeds") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise click.BadParameter(f"{text!r}: give distinct non-negative integers",
                                 param_hint="--seeds")
    return seeds


def seeds_option(help: str = "Only these replicate seeds (default: the study's and every "
                             "seed stored for it)."):
    """--seeds, handed to the command as a list of seeds (or None)."""
    return click.option("--seeds", metavar="S1,S2,...", help=help,
                        callback=lambda ctx, param, value: parse_seeds(value))


@contextmanager
def opened(db: str | None, **kwargs) -> Iterator[ResultStore]:
    """The store behind --db (`open_store`), closed (connections and SQLite's -wal/-shm
    files) at the end."""
    store = open_store(db, **kwargs)
    try:
        yield store
    finally:
        store.close()


def fmt_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def describe_result(r: JobResult, label: str) -> str:
    acc = f" {r.final.test_accuracy:.2f}%" if r.final and r.status == JobStatus.COMPLETE else ""
    took = f" in {r.wall_seconds:.1f}s" if r.wall_seconds else ""
    return f"{label}: {r.status.value}{acc}{took} on {r.device or '?'}"
