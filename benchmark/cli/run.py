"""CLI, `cnnbench run`: a study file -> its grid in the database -> workers -> results,
or, with --dry-run, what would run and how long it would take; with --until-decided, the
sequential design's looks. Where the jobs train (backend, devices, cluster settings) is one
option group, `placement_options`, handed to the command as one `Placement`.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from .. import backends, data, plan, runner, sequential_run
from ..config import SpecError
from ..studyfile import LoadedStudy, load_study
from .common import (
    S,
    UserError,
    db_option,
    fmt_seconds,
    opened,
    seeds_option,
    study_argument,
    user_errors,
)
from .progress import progress
from .status import show_plan


@dataclass(frozen=True)
class Placement:
    """Where a run's jobs train, as the options said it: `backend()` makes it."""

    backend: str
    devices: str
    jobs: int | None
    cluster: dict  # the dask and Slurm settings (--scheduler ... --cluster-config)

    def create(self) -> backends.Backend:
        return backends.create(self.backend, self.devices, self.jobs, **self.cluster)


CLUSTER_OPTIONS = ("scheduler", "partition", "account", "walltime", "memory", "cpus_per_job",
                   "gpus_per_job", "sbatch", "cluster_config")

_PLACEMENT = [
    click.option("--jobs", "-j", type=click.IntRange(min=1),
                 help="Worker processes on CPU (default: one single-thread worker per core); "
                      "with --backend slurm, the Slurm jobs to keep up (default 1)."),
    click.option("--devices", default="cpu", show_default=True,
                 help="Device slots: cpu, cuda (every GPU), cuda:0,cuda:1, cuda:0x4 (4 jobs on "
                      "GPU 0 at once)."),
    click.option("--backend", type=click.Choice(list(backends.NAMES)), default="loky",
                 show_default=True,
                 help="loky: worker processes on this machine. dask: a Dask cluster, local "
                      "(--jobs single-thread workers) or the one at --scheduler. slurm: Dask "
                      "workers in --jobs Slurm jobs (see the README's cluster section)."),
    click.option("--scheduler", metavar="tcp://HOST:PORT",
                 help="Dask scheduler to send jobs to (with --backend dask)."),
    click.option("--partition", help="Slurm partition of the worker jobs (--backend slurm)."),
    click.option("--account", help="Slurm account to charge (--backend slurm)."),
    click.option("--walltime", metavar="TIME",
                 help="Wall time of each Slurm job, e.g. 02:00:00 (--backend slurm; default "
                      "from the dask-jobqueue configuration, 00:30:00). Workers retire a "
                      "margin before it and are replaced."),
    click.option("--memory", metavar="SIZE",
                 help="Memory of each Slurm job, e.g. 8GB (--backend slurm; default 4GB)."),
    click.option("--cpus-per-job", type=click.IntRange(min=1), metavar="N",
                 help="CPUs of each Slurm job; on --devices cpu, its slots (--backend slurm)."),
    click.option("--gpus-per-job", type=click.IntRange(min=0), metavar="N",
                 help="GPUs of each Slurm job (#SBATCH --gres=gpu:N; default 1 with --devices "
                      "cuda, else 0). Its jobs train on the first (--backend slurm)."),
    click.option("--sbatch", multiple=True, metavar="ARGS",
                 help="An extra #SBATCH line for the worker jobs, e.g. --sbatch "
                      "'--qos=short' (repeatable; --backend slurm)."),
    click.option("--cluster-config", type=click.Path(exists=True, dir_okay=False),
                 metavar="FILE",
                 help="A dask-jobqueue configuration file for site defaults (its `jobqueue: "
                      "slurm:` keys; --backend slurm). ~/.config/dask/jobqueue.yaml is read "
                      "anyway."),
]


def placement_options(command):
    """The options that say where jobs train, given to `command` as `placement`."""
    @functools.wraps(command)
    def wrapper(*args, backend: str, devices: str, jobs: int | None, **kwargs):
        cluster = {name: kwargs.pop(name) for name in CLUSTER_OPTIONS}
        return command(*args, placement=Placement(backend, devices, jobs, cluster), **kwargs)

    for option in reversed(_PLACEMENT):
        wrapper = option(wrapper)
    return wrapper


@click.command()
@study_argument
@db_option
@placement_options
@click.option("--retry-failed", is_flag=True, help="Also rerun jobs that FAILED before.")
@seeds_option("Replicate seeds, replacing the study's.")
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
def run(study_file: Path, db: str | None, placement: Placement, seeds: list[int] | None,
        retry_failed: bool, fuse: int, eval_every: int, checkpoints: str | None,
        db_retry: float | None, dry_run: bool, until_decided: bool, max_seeds: int,
        batch: int) -> None:
    """Run the jobs of STUDY that are not yet done.

    The whole grid is written to the database first; then pending jobs train in
    parallel worker processes, longest first. A rerun trains only what is not
    COMPLETE under the current training code; jobs of a killed run are reclaimed.
    Exit code 1 if any job failed, 2 for bad input.
    """
    with user_errors():
        loaded = load_study(study_file, seeds)
        where = placement.create()
        options = runner.RunOptions(
            slots=tuple(where.slots()), retry_failed=retry_failed, eval_every=eval_every,
            fuse=fuse, backend=where,
            checkpoints=str(Path(checkpoints).resolve()) if checkpoints else None)
        if until_decided and seeds:
            raise UserError("--until-decided adds seeds itself: leave out --seeds")
        until = sequential_run.UntilDecided(max_seeds=max_seeds, batch=batch)
        if until_decided:
            sequential_run.check_until(loaded, until)  # before the database is opened
        if dry_run:
            _dry_run(loaded, db, options)
            return
        inputs = runner.check_inputs(loaded, click.echo)  # before the database is opened
        with progress() as events, opened(db, retry_seconds=db_retry,
                                          notify=events.warning) as store:
            design = (store.study_info(loaded.study.name) or {}).get("design")
            if design and not until_decided:
                raise UserError(
                    f"study {loaded.study.name!r} runs a sequential design (looks at "
                    f"{', '.join(map(str, design['looks']))} seeds): continue it with "
                    f"`cnnbench run {study_file} --until-decided --max-seeds "
                    f"{design['max_seeds']} --batch {design['batch']}`; a fixed number of "
                    "seeds would mix two designs (give that study another name)")
            if until_decided:
                summary = sequential_run.run_until_decided(loaded, store, options, until, events,
                                                   _print_look, inputs)
            else:
                summary = runner.run_study(loaded, store, options, events, inputs=inputs)
    _finish(summary, study_file)


def _print_look(look: sequential_run.LookSummary) -> None:
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
    click.echo(f"wall time {fmt_seconds(summary.wall_seconds)}")
    click.echo(f"finished: {done or 'nothing (other runners hold the pending jobs)'}")
    if summary.counts.get(S.FAILED.value):
        click.echo(f"{summary.counts[S.FAILED.value]} job(s) failed; see `cnnbench status "
                   f"{study_file}` and rerun with --retry-failed after fixing the cause",
                   err=True)
        sys.exit(1)


def _dry_run(loaded: LoadedStudy, db: str | None, options: runner.RunOptions) -> None:
    try:
        dirs, _ = runner.datasets(loaded.specs, fetch=False)
    except data.DataError:
        dirs = None  # said below, with the estimate
    if dirs is not None:
        runner.check_user_nets(loaded, dirs)
    with opened(db, read_only=True, required=False) as store:
        if store.missing:
            click.echo(f"database {store.url_redacted} does not exist yet: `run` creates it")
        pending = show_plan(loaded, loaded.specs, store, verbose=False,
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
    from ..estimate import estimate, shape_of

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
        f"estimated wall time {fmt_seconds(est.wall_seconds)} for {len(jobs)} job(s) "
        f"(sum of job times {fmt_seconds(sum(est.job_seconds.values()))}), from timing "
        f"training steps and a test batch of each of {est.networks} distinct network(s) on "
        f"{len(slots)} slot(s) side by side ({est.calibration_seconds:.0f} s), then replaying "
        "the longest-first schedule"
        + ("; fusion (--fuse) is not modelled" if fuse > 1 else ""))
