"""CLI, where a study stands: `cnnbench status` (counts by status per section, the
running jobs' curves, --json, --watch) and `cnnbench list` (sections, cells, jobs and what
is done; `show_plan`, which a dry run prints too). Both read; neither writes.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import click

from .. import plan, runner, state
from ..provenance import code_version
from ..records import DONE_STATUSES, JobSpec, JobStatus
from ..store import ResultStore
from ..studyfile import LoadedStudy, load_study
from .common import S, db_option, opened, seeds_option, study_argument, user_errors

STATUS_ORDER = [S.COMPLETE, S.DIVERGED, S.FAILED, S.RUNNING, S.PENDING, S.STALE, S.SKIPPED]


@click.command()
@study_argument
@db_option
@seeds_option()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--watch", type=click.FloatRange(min=0.5), is_flag=False, flag_value=5.0,
              metavar="[SECONDS]", help="Refresh every SECONDS (default 5) until nothing is "
                                       "left to run (no job pending, running or stale).")
def status(study_file: Path, db: str | None, seeds: list[int] | None, as_json: bool,
           watch: float | None) -> None:
    """Counts of STUDY's cells by status, per section.

    Every seed the database holds for the study's cells counts, not only the study
    file's. STALE cells were done by older training code and run again on the next `run`.
    """
    with user_errors():
        loaded = load_study(study_file, seeds)
        while True:
            with opened(db, read_only=True) as store:
                specs = runner.members(loaded, store, seeds)
                jobs = state.of_jobs(store, specs)
                counts = state.counts(specs, jobs, (s.name for s in loaded.study.sections))
                live = _running(specs, jobs, store) if any(
                    c[S.RUNNING] for c in counts.values()) else []
                where = store.url_redacted
            total: Counter = sum(counts.values(), Counter())
            if watch is not None and sys.stdout.isatty():
                click.echo("\x1b[H\x1b[2J", nl=False)  # the table in place, not scrolling
            if watch is not None:
                click.echo(f"{loaded.study.name} at {time.strftime('%H:%M:%S')}")
            _print_status(loaded, counts, total, where, as_json, live)
            if watch is None or state.finished(total):
                return
            try:
                time.sleep(watch)
            except KeyboardInterrupt:
                sys.exit(130)


def _running(specs: Sequence[JobSpec], jobs: dict[str, state.JobState],
             store: ResultStore) -> list[dict]:
    """Each running job's curve so far, as its runner wrote it to the database."""
    labels = runner.job_labels(specs)
    running = {s.key: s for s in specs if state.cell_status(s, jobs) == S.RUNNING}
    live = store.live_epochs(running)
    out = []
    for key, spec in running.items():
        rows = live[live["job_key"] == key] if len(live) else live
        accuracy = rows["test_accuracy"].dropna() if len(rows) else rows
        out.append({"key": key, "label": labels[key], "epochs": spec.config.epochs,
                    "epochs_done": int(rows["epoch"].max()) if len(rows) else 0,
                    "test_accuracy": float(accuracy.iloc[-1]) if len(accuracy) else None,
                    "curve": [float(a) if a == a else None for a in rows["test_accuracy"]]
                    if len(rows) else []})
    return out


def _print_status(loaded: LoadedStudy, counts: dict, total: Counter, where: str,
                  as_json: bool, running: list[dict]) -> None:
    if as_json:
        click.echo(json.dumps({
            "study": loaded.study.name, "database": where,
            "code_version": code_version(),
            "sections": {name: {k.value: n for k, n in c.items()} for name, c in counts.items()},
            "total": {k.value: n for k, n in total.items()},
            "done": all(k in (*DONE_STATUSES, S.SKIPPED) for k in total),
            "running": running,
        }, indent=2))
        return
    cols = [s for s in STATUS_ORDER if total[s]] or [S.PENDING]
    width = max(len(n) for n in [*counts, "section"]) + 2
    click.echo(f"{'section':<{width}}" + "".join(f"{c.value:>10}" for c in cols))
    for name, c in [*counts.items(), ("total", total)]:
        click.echo(f"{name:<{width}}" + "".join(f"{c[k]:>10}" for k in cols))
    for job in running:
        acc = job["test_accuracy"]
        curve = " ".join(f"{a:.1f}" for a in job["curve"] if a is not None)
        click.echo(f"running {job['label']}: epoch {job['epochs_done']}/{job['epochs']}"
                   + (f", test acc {acc:.2f}% (by epoch: {curve})" if acc is not None else ""))


def show_plan(loaded: LoadedStudy, specs: Sequence[JobSpec], store: ResultStore,
               verbose: bool, retry_failed: bool = False) -> set[str]:
    """Print the study's sections and job counts; give the keys of the jobs left to run."""
    study = loaded.study
    jobs = state.of_jobs(store, specs)
    click.echo(f"study {study.name} ({loaded.path})")
    if study.description:
        click.echo(f"  {study.description}")
    for section in study.sections:
        rows = [s for s in specs if s.section == section.name]
        done = sum(state.cell_status(s, jobs) in DONE_STATUSES for s in rows)
        title = f" {section.title}" if section.title else ""
        click.echo(f"\n[{section.name}]{title}: {len(section.cells)} cells, "
                   f"{len(rows)} jobs, {done} done")
        if section.note:
            click.echo(f"  note: {section.note}")
        if verbose and rows:
            width = max(len(s.cell) for s in rows) + 2
            for s in rows:
                acc = jobs[s.key].test_accuracy if s.key in jobs else None
                _show_cell(s, state.cell_status(s, jobs), acc, width)
    unique = set(plan.unique_jobs(specs))
    done = state.done_keys(specs, jobs)
    left = state.left_to_run(specs, jobs, retry_failed)
    click.echo(f"\n{len(specs)} cell runs, {len(unique)} distinct jobs to train, "
               f"{len(done & unique)} done, {len(left)} to run")
    return left


def _show_cell(spec: JobSpec, status: JobStatus, accuracy: float | None, width: int) -> None:
    acc = f"{accuracy:6.2f}%" if accuracy is not None else " " * 7
    pub = f"published {spec.published:.1f}%" if spec.published is not None else ""
    why = f"({spec.skip_reason})" if spec.skip_reason else ""
    line = (f"  {spec.cell:<{width}} seed {spec.config.seed:<7} {status.value:<9} {acc}  "
            f"{pub}{why}")
    click.echo(line.rstrip())


@click.command("list")
@study_argument
@db_option
@seeds_option()
def list_(study_file: Path, db: str | None, seeds: list[int] | None) -> None:
    """Sections, cells and jobs of STUDY, with what is done and its accuracy. Runs nothing.

    Lists every seed the database holds for the study's cells, and the study file's."""
    with user_errors(), opened(db, read_only=True) as store:
        loaded = load_study(study_file, seeds)
        show_plan(loaded, runner.members(loaded, store, seeds), store,
                   verbose=True)
