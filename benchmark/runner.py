"""Runner stage: run a loaded study against a result store on device slots.

Takes a `LoadedStudy`, a `ResultStore` and `RunOptions`; gives a `RunSummary`. The
one place that wires the stages of a run together (as benchopt's `run_benchmark`):
check the datasets, start the backend's cluster, write the grid, reclaim jobs of dead runners,
decide what is left to run (`state.left_to_run`, shared with `run --dry-run`, `status`
and `list`), claim each job just before a worker takes it, write each poll's live epochs and
record each result as it comes back, extend the leases while it works, and hand held jobs
back when it stops early.
It prints nothing: what a person should see goes to the `RunEvents` the caller gives.
No torch here.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import DatabaseError

from . import data, plan, spool, state, userdata
from .backends import Backend
from .backends.local import LocalBackend
from .config import SpecError
from .execute import Task, execute, fuse, shares
from .provenance import code_version
from .records import EpochMetrics, JobResult, JobSpec, JobStatus
from .state import cell_status, left_to_run
from .store import ResultStore, Runner, StoreError, SyncSummary
from .studyfile import LoadedStudy


class RunError(RuntimeError):
    """The run stopped early; `finished` jobs were recorded, held ones returned to PENDING."""

    def __init__(self, message: str, finished: int, released: int):
        super().__init__(message)
        self.finished, self.released = finished, released


class Interrupted(RunError):
    """Ctrl-C (KeyboardInterrupt) during the run."""


@dataclass(frozen=True)
class RunOptions:
    slots: Sequence[str] = ("cpu",)  # one entry per job that may run at once
    retry_failed: bool = False  # also rerun jobs that FAILED before
    eval_every: int = 1  # test-set evaluation every N epochs (and after the last)
    fuse: int = 1  # jobs differing only in seed/slice trained as one vectorised model
    backend: Backend = LocalBackend()  # where the jobs train (`backends.create`)
    checkpoints: str | None = None  # directory for per-epoch checkpoints, or None


@dataclass
class RunEvents:
    """What the runner tells its caller; every hook is optional."""

    message: Callable[[str], None] = lambda line: None  # a line for the person running it
    warning: Callable[[str], None] = lambda line: None
    started: Callable[[int, dict[str, float]], None] = lambda n, costs: None  # jobs, cost/key
    running: Callable[[str, str, int], None] = lambda key, label, epochs: None  # handed out
    epoch: Callable[[str, EpochMetrics], None] = lambda key, metrics: None  # live, per epoch
    finished: Callable[[JobResult, str], None] = lambda result, label: None  # result, label


@dataclass
class RunSummary:
    sync: SyncSummary | None = None
    reclaimed: int = 0
    to_run: int = 0
    counts: Counter = field(default_factory=Counter)  # JobStatus value -> results recorded
    failed_before: int = 0  # FAILED jobs left alone (no --retry-failed)
    wall_seconds: float = 0.0


# --------------------------------------------------------------------------- what is left


def members(loaded: LoadedStudy, store: ResultStore,
            seeds: Sequence[int] | None = None) -> list[JobSpec]:
    """The study's cell runs: the file's, plus every seed the database holds for its cells
    (a study never loses seeds). `seeds` narrows to those seeds."""
    specs = plan.with_stored_seeds(loaded.specs, store.stored_seeds(loaded.study.name))
    return [s for s in specs if s.config.seed in seeds] if seeds is not None else specs


# --------------------------------------------------------------------------- datasets


def datasets(specs: Sequence[JobSpec], fetch: bool,
             log: Callable[[str], None] = lambda m: None) -> tuple[dict[str, str],
                                                                   dict[str, int]]:
    """Dataset name -> directory and -> training-set size; checks every job's slice fits.

    DataError when a dataset is missing (and cannot be fetched), SpecError when a slice
    does not fit."""
    dirs, sizes, image_hw = {}, {}, {}
    digests = {s.config.dataset: s.config.data_hash for s in specs}
    for name in sorted(digests):
        directory = (userdata.location(name, digests[name])
                     if userdata.is_function(name) and digests[name] else
                     data.resolve(name, fetch=fetch, log=log))
        dirs[name] = str(directory)
        shapes = data.shapes_of(directory)["train_images"]
        sizes[name], image_hw[name] = shapes[0], shapes[2:]
        data.classes_of(directory)  # its labels checked before anything is written
    for s in specs:
        c, n = s.config, sizes[s.config.dataset]
        problem = plan.size_problem(c.arch, image_hw[c.dataset])
        if problem:
            raise SpecError(f"section {s.section!r}, cell {s.cell!r}: {problem} (dataset "
                            f"{c.dataset!r})")
        end = c.train_offset + (c.train_size or 0)
        if c.train_offset >= n or end > n:
            raise SpecError(
                f"section {s.section!r}, cell {s.cell!r}: training slice starts at "
                f"{c.train_offset} with train_size {c.train_size}, beyond the {n} training "
                f"samples of {c.dataset!r}: lower train_offset/train_size"
            )
    return dirs, sizes


def precision_advice(specs: Sequence[JobSpec], keys: set[str],
                     slots: Sequence[str]) -> str | None:
    """A warning when the jobs to run ask for bf16 where this CPU only emulates it."""
    precisions = {s.config.precision for s in specs if s.key in keys}
    if "bf16" not in precisions:
        return None  # no torch import for the common case
    from .hardware import bf16_warning

    return bf16_warning(precisions, slots)


def check_user_nets(loaded: LoadedStudy, dirs: dict[str, str]) -> None:
    """Build every "module:function" network of the study once and run a batch of 2 through
    it, on the input shape and class count of its dataset: a missing module or function, a
    return value that is no nn.Module, or a wrong output shape is a StudyFileError (file
    and line), before anything is written. Imports torch only for such studies."""
    from .config import is_user_arch
    from .studyfile import StudyFileError

    seen = set()
    for spec in loaded.specs:
        config = spec.config
        shape_key = plan.fusion_key(config)
        if not is_user_arch(config.arch) or shape_key in seen:
            continue
        seen.add(shape_key)
        from . import nets, usernets

        input_shape, classes = data.input_shape_and_classes(dirs[config.dataset])
        try:
            nets.check_user_net(config, input_shape, classes, loaded.import_dirs)
        except usernets.UserNetError as exc:
            raise StudyFileError(f"{loaded.where(config.arch)}: {exc}") from None


def check_pieces(loaded: LoadedStudy, dirs: dict[str, str], sizes: dict[str, int]) -> None:
    """Call every "module:function" piece of the study once (`pieces.check`) on a batch
    of its dataset's shape, and check each validation split against its training slice:
    a StudyFileError naming the study file's line and the piece's, before anything is
    written. Imports torch only for such studies."""
    from . import pieces
    from .config import user_pieces
    from .studyfile import StudyFileError

    names: dict = {}  # fusion key -> the names its jobs record
    for spec in loaded.specs:
        config = spec.config
        if config.val_size and spec.skip_reason is None:
            samples = plan.train_samples(config, sizes)
            if config.val_size >= samples:
                raise StudyFileError(
                    f"{loaded.where('val_size')}: section {spec.section!r}, cell "
                    f"{spec.cell!r}: val_size {config.val_size} leaves no training samples "
                    f"of the {samples} in its training slice: hold out fewer")
        own = user_pieces(config)
        shape_key = plan.fusion_key(config)
        if shape_key in names or spec.skip_reason is not None:
            continue
        names[shape_key] = pieces.recorded(config)
        if not own:
            continue
        input_shape, classes = data.input_shape_and_classes(dirs[config.dataset])
        try:
            mine = pieces.check(config, input_shape, classes, loaded.import_dirs)
        except pieces.PieceError as exc:
            culprit = next((p for p in own.values() if repr(p) in str(exc)),
                           next(iter(own.values())))
            raise StudyFileError(f"{loaded.where(culprit)}: {exc}") from None
        names[shape_key] = pieces.recorded(config, mine)
    check_outcomes(loaded, {s.key: names[plan.fusion_key(s.config)] for s in loaded.specs
                            if s.skip_reason is None})


def check_outcomes(loaded: LoadedStudy, recorded: dict[str, set[str]]) -> None:
    """Every section and claim decides on a number its cells' jobs record (StudyFileError
    naming the study file's line and what the jobs record, before anything is written)."""
    from .studyfile import StudyFileError

    study = loaded.study
    wanted = [(f"section {s.name!r}", study.section_outcome(s.name).metric, s.name, None)
              for s in study.sections]
    wanted += [(f"claim {c.text!r}", c.outcome.metric, c.section,
                None if c.kind == "increasing" else {c.cell, c.baseline})
               for c in study.claims]
    for what, metric, section, cells in wanted:
        jobs = [s for s in loaded.specs if s.section == section and s.key in recorded
                and (cells is None or s.cell in cells)]
        lacking = [s for s in jobs if metric not in recorded[s.key]]
        if lacking:
            s = lacking[0]
            has = sorted(recorded[s.key])
            raise StudyFileError(
                f"{loaded.where(metric)}: {what} decides on {metric!r}, which the jobs of "
                f"cell {s.cell!r} do not record (they record: {', '.join(has)}): name a "
                "recorded metric, or give those cells the metric (metrics=...) or the "
                "validation split (val_size=...) that records it")


def job_labels(specs: Sequence[JobSpec]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for s in specs:
        labels.setdefault(s.key, f"{s.section}/{s.cell} seed {s.config.seed}")
    return labels


def cores() -> int:
    """CPU cores this process may run on (its affinity mask, where the OS has one)."""
    with contextlib.suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def threads_per_worker(slots: Sequence[str]) -> int:
    """Threads per worker while every slot is busy: the cores shared out on CPU, one per
    GPU slot."""
    on_cpu = all(s == "cpu" for s in slots)
    return max(1, cores() // len(slots)) if on_cpu else 1


# --------------------------------------------------------------------------- the run


class Cluster:
    """A backend's cluster (`Backend.started`), started by the first `start` and stopped
    at the end of the `with` block: one for a run, or for all the looks of a sequential
    run (a Slurm cluster is not resubmitted at every look)."""

    def __init__(self, backend: Backend, slots: Sequence[str]):
        self.backend, self.slots = backend, slots
        self._stack = contextlib.ExitStack()
        self.up = False

    def start(self, message: Callable[[str], None]) -> None:
        if not self.up:
            self._stack.enter_context(self.backend.started(self.slots, message))
            self.up = True

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()


@dataclass(frozen=True)
class Inputs:
    """A study's datasets, found (fetched if need be) and checked, and its own networks
    checked on them: what a run needs before it writes anything."""

    dirs: dict[str, str]  # dataset name -> directory (or file)
    sizes: dict[str, int]  # dataset name -> training-set size


def check_inputs(loaded: LoadedStudy, log: Callable[[str], None] = lambda m: None) -> Inputs:
    """`Inputs` of `loaded`; DataError, SpecError or StudyFileError naming the problem."""
    dirs, sizes = datasets(loaded.specs, fetch=True, log=log)
    check_user_nets(loaded, dirs)
    check_pieces(loaded, dirs, sizes)
    return Inputs(dirs, sizes)


def run_study(loaded: LoadedStudy, store: ResultStore, options: RunOptions,
              events: RunEvents | None = None, cluster: Cluster | None = None,
              inputs: Inputs | None = None) -> RunSummary:
    """Train what is left of `loaded` and record it in `store`.

    Raises DataError/SpecError/StoreError/DeviceError for bad input before anything is
    written; `Interrupted` on Ctrl-C and `RunError` when the database fails mid-run, in
    both cases after handing the held jobs back to PENDING. `cluster`: the backend's
    cluster kept up after this call (the looks of a sequential run share one).
    """
    events = events or RunEvents()
    inputs = inputs or check_inputs(loaded, events.message)
    dirs, sizes = inputs.dirs, inputs.sizes
    summary = RunSummary()
    with contextlib.ExitStack() as stack:
        if cluster is None:
            cluster = stack.enter_context(Cluster(options.backend, options.slots))
        cluster.start(events.message)
        study = loaded.study
        summary.sync = store.sync_study(
            study.name, str(loaded.path), loaded.file_hash, study.description, study.sections,
            loaded.specs, study.claims, study.margin_pp,
            membership=functools.partial(plan.with_stored_seeds, loaded.specs),
            factors=study.factors, outcome=study.outcome)
        summary.reclaimed = store.reclaim()
        _replay(store, events)  # results of an earlier run the database did not get
        sync = summary.sync
        kept = f", {sync.kept_seeds} cell run(s) of seeds stored earlier" if sync.kept_seeds else ""
        events.message(f"{study.name}: {sync.cells} cells, {sync.jobs} distinct jobs "
                       f"({sync.new_jobs} new{kept}) in {store.url_redacted}; "
                       f"code version {code_version()}")
        if summary.reclaimed:
            events.message(f"reclaimed {summary.reclaimed} job(s) left RUNNING by a runner "
                           "that died")
        jobs = state.of_jobs(store, loaded.specs)
        keys = left_to_run(loaded.specs, jobs, options.retry_failed)
        summary.failed_before = sum(cell_status(s, jobs) == JobStatus.FAILED
                                    for s in loaded.specs if s.key not in keys)
        summary.to_run = len(keys)
        advice = precision_advice(loaded.specs, keys, options.slots)
        if advice:
            events.warning(advice)
        if keys:
            _train(store, loaded.specs, keys, dirs, sizes, options, events, summary,
                   loaded.import_dirs)
    return summary


def _cause(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip()


def _replay(store: ResultStore, events: RunEvents, quiet: bool = False) -> int:
    """Record the results kept while the database was away (`spool.replay`); the number
    recorded. A database still away keeps them (said unless `quiet`)."""
    try:
        done = spool.replay(store, events.warning)
    except (StoreError, DatabaseError) as exc:
        if not spool.unavailable(exc):
            raise
        if not quiet:
            events.warning(f"results kept in {spool.folder(store.url)} wait for the "
                           f"database ({_cause(exc)})")
        return 0
    if done:
        events.message(f"recorded {done} result(s) kept while the database was away")
    return done


def _train(store: ResultStore, specs: Sequence[JobSpec], keys: set[str], dirs: dict[str, str],
           sizes: dict[str, int], options: RunOptions, events: RunEvents,
           summary: RunSummary, import_dirs: tuple[str, ...] = ()) -> None:
    cv, runner = code_version(), Runner.here()
    configs = plan.unique_jobs(specs)
    costs = plan.estimated_costs({k: configs[k] for k in keys}, sizes)
    tasks = [Task(k, configs[k], dirs[configs[k].dataset], import_dirs)
             for k in plan.longest_first(costs)]
    groups = fuse(tasks, options.fuse)
    labels = job_labels(specs)
    local = options.backend.local
    threads = threads_per_worker(options.slots) if local else 1
    shared = cores() if local and "cpu" in options.slots else None  # for the last jobs
    fused = f" in {len(groups)} fused group(s)" if len(groups) < len(tasks) else ""
    alone = sum(not plan.fusable(t.config) for t in tasks) if options.fuse > 1 else 0
    if alone:
        events.message(f"{alone} job(s) with training pieces of their own or a validation "
                       "split train unfused (--fuse trains the built-in ones)")
    where = options.backend.where(options.slots)
    first = (min(shares(shared, min(len(groups), len(options.slots)))) if shared
             else threads)  # the threads the first jobs start with; the last get more
    spread = " (the last jobs take the cores others free)" if shared and len(groups) > 1 else ""
    events.message(f"training {len(tasks)} job(s){fused} on {where}, {first} thread(s) "
                   f"each{spread}")
    events.started(len(tasks), costs)

    lost: list[BaseException] = []  # the database, gone past --db-retry: no job starts now

    def database_lost(exc: BaseException) -> None:
        if not lost:
            events.warning(f"the database stays unreachable ({_cause(exc)}): no job starts "
                           "now; the running ones finish and their results are kept in "
                           f"{spool.folder(store.url)}")
        lost.append(exc)

    unkept: list[OSError] = []  # the spool cannot be written: results go to the database only

    def keep(result: JobResult):
        try:
            return spool.keep(store.url, result, runner)
        except OSError as exc:
            if not unkept:
                events.warning(f"results are not kept on disk ({exc}): each goes to the "
                               "database only")
            unkept.append(exc)
            return None

    def claim(task: Task) -> bool:
        if lost:
            return False
        try:
            claimed = store.claim(task.key, runner, cv, options.retry_failed)
        except (StoreError, DatabaseError) as exc:
            if not spool.unavailable(exc):
                raise
            database_lost(exc)
            return False
        if claimed:
            events.running(task.key, labels[task.key], task.config.epochs)
        return claimed

    failing: list[BaseException] = []

    def live(items: list[tuple[str, EpochMetrics]]) -> None:
        """Each poll's epochs: to the database in one transaction, so that any reader sees
        a running job's curve, then to the caller. For watchers only: a failed write is
        a warning (one until a write succeeds again), the next poll writes its own."""
        try:
            store.record_epochs(runner, items)
            failing.clear()
        except (StoreError, DatabaseError) as exc:
            if not failing:
                events.warning(f"live epochs not written "
                               f"({str(getattr(exc, 'orig', None) or exc).strip()}); the "
                               "results are unaffected")
            failing.append(exc)
        for key, metrics in items:
            events.epoch(key, metrics)

    t0 = time.monotonic()
    try:
        with store.keep_alive(runner, lambda e: events.warning(f"heartbeat failed: {e}")):
            for result in execute(groups, list(options.slots), threads=threads, cores=shared,
                                  claim=claim,
                                  eval_every=options.eval_every, backend=options.backend,
                                  checkpoints=options.checkpoints, notify=events.warning,
                                  on_epochs=live):
                kept = keep(result)  # on disk before anything
                if not lost:
                    try:
                        if not store.record(result, runner):
                            events.warning(f"lease on {result.key} was lost; result kept")
                        if kept is not None:
                            spool.drop(kept)
                    except (StoreError, DatabaseError) as exc:
                        if not spool.unavailable(exc):
                            raise
                        database_lost(exc)
                summary.counts[result.status.value] += 1
                events.finished(result, labels[result.key])
        if lost:  # one more try, the next contact: recorded now if the database is back
            _replay(store, events, quiet=True)
            left = sum(f"-{runner.runner_id}-" in p.name for p in spool.kept(store.url))
            kept = (f"; {left} finished result(s) are kept in {spool.folder(store.url)}, and "
                    "the next `cnnbench run` on this database records them" if left else
                    "; it came back, and every finished result is recorded")
            raise RunError(f"cannot write results to {store.url_redacted}: "
                           f"{_cause(lost[0])}{kept}", sum(summary.counts.values()), 0)
    except KeyboardInterrupt:
        released = 0
        if not lost:  # else the release would wait out --db-retry again
            with contextlib.suppress(StoreError, DatabaseError):
                released = store.release(runner)
        raise Interrupted("interrupted", sum(summary.counts.values()), released) from None
    except (StoreError, DatabaseError) as exc:  # disk full, read-only, server gone...
        raise RunError(f"cannot write results to {store.url_redacted}: {_cause(exc)}",
                       sum(summary.counts.values()), 0) from None
    finally:
        if not lost:
            with contextlib.suppress(StoreError, DatabaseError):  # it may be the problem
                store.release(runner)  # anything claimed but not finished (aborted pool)
        summary.wall_seconds = time.monotonic() - t0
