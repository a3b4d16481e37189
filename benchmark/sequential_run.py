"""Runner stage, the sequential design (`cnnbench run --until-decided`): the study's seeds,
then seeds added a batch at a time to the cells of the claims still undecided, each look
decided by a group-sequential rule (`decisions.Design`) stored with the study, until every
claim is decided or has `--max-seeds`. Each look is one `runner.run_study`; every look is
replayed from the stored results, so a killed run continues at the look it reached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import decisions, policy, runner, state
from .config import SpecError
from .outcome import ACCURACY
from .provenance import code_version
from .store import ResultStore
from .studyfile import LoadedStudy


@dataclass(frozen=True)
class UntilDecided:
    """`run --until-decided`: seeds added `batch` at a time to the claims still undecided,
    up to `max_seeds`, decided by a group-sequential rule (`decisions.Design`)."""

    max_seeds: int = 20
    batch: int = 2
    alpha: float = 0.05
    spending: str = decisions.DEFAULT_SPENDING


@dataclass
class LookSummary:
    seeds: int  # the most seeds any claim has been looked at with
    progress: dict[str, object]  # claim text -> decisions.Progress
    trained: int  # jobs trained before this look
    left: int = 0  # jobs the next look needs trained


def seed_sequence(loaded: LoadedStudy, most: int) -> list[int]:
    """The study's seeds, then the next integers after the largest, `most` in all: the
    order in which a sequential run adds seeds (its n-th look uses the first n)."""
    seeds = list(loaded.study.seeds)
    nxt = max(seeds) + 1
    while len(seeds) < most:
        seeds.append(nxt)
        nxt += 1
    return seeds[:most]


def sequential_claims(loaded: LoadedStudy) -> list:
    """The claims a sequential run decides: "beats" and "equivalent" (paired cells)."""
    claims = [c for c in loaded.study.claims if c.kind in ("beats", "equivalent")]
    if not claims:
        raise SpecError(f"study {loaded.study.name!r} has no claims comparing two cells "
                        "(Claim.beats or Claim.equivalent): --until-decided decides claims; "
                        "add some, or run a fixed number of seeds with --seeds")
    skipped = {(s.section, s.cell) for s in loaded.specs if s.skip_reason}
    own_seed = {(sec.name, c.label) for sec in loaded.study.sections for c in sec.cells
                if "seed" in {**sec.fixed, **c.overrides}}
    own_seeds = {sec.name: sec.seeds for sec in loaded.study.sections if sec.seeds is not None}
    for c in claims:
        for cell in (c.cell, c.baseline):
            if (c.section, cell) in skipped:
                raise SpecError(f"claim {c.text!r} compares cell {cell!r} of section "
                                f"{c.section!r}, which the study excludes (SKIPPED): it can "
                                "never be decided; drop the claim or the exclusion")
            if (c.section, cell) in own_seed:
                raise SpecError(f"claim {c.text!r} compares cell {cell!r} of section "
                                f"{c.section!r}, which sets its own seed: it cannot get "
                                "more seeds; drop the claim or the cell's seed")
        seeds = own_seeds.get(c.section)
        if seeds is not None:
            raise SpecError(f"claim {c.text!r} is on section {c.section!r}, which runs its "
                            f"own seeds {list(seeds)}: --until-decided cannot add seeds to "
                            "it; drop the section's seeds (it then takes the study's), or "
                            "the claim")
    return claims


def check_until(loaded: LoadedStudy, until: UntilDecided) -> list:
    """What --until-decided refuses before anything is opened or written; the claims it
    decides."""
    claims = sequential_claims(loaded)
    first = len(loaded.study.seeds)
    if first < 2:
        raise SpecError(f"study {loaded.study.name!r} starts with {first} seed: a paired test "
                        "needs 2 or more; give the Study seeds=[0, 1, 2] (or more)")
    if until.max_seeds < first:
        raise SpecError(f"--max-seeds {until.max_seeds} is below the {first} seeds the study "
                        f"runs first: give --max-seeds {first} or more")
    return claims


def design_record(loaded: LoadedStudy, until: UntilDecided) -> dict:
    """What is stored with the study: everything the report needs to redo the analysis,
    the design's calibrated bounds included (`decisions.Design.bounds_record`)."""
    claims = sequential_claims(loaded)
    first = len(loaded.study.seeds)
    looks = decisions.sequence_looks(first, until.batch, until.max_seeds)
    outcome = loaded.study.outcome
    margins = policy.claim_margins(claims, loaded.study.margin_pp, outcome)
    design = decisions.Design(looks, until.alpha, loaded.study.margin_pp, len(claims),
                              until.spending, equivalence=any(m is not None for m in margins))
    record = {"rule": decisions.RULE, "spending": until.spending, "alpha": until.alpha,
              "correction": "closed testing", "claims": len(claims), "first": first,
              "claimed": [_claimed(c) for c in claims],
              "batch": until.batch, "max_seeds": until.max_seeds,
              "seeds": seed_sequence(loaded, until.max_seeds), "looks": list(looks),
              "margin_pp": loaded.study.margin_pp, "bounds": design.bounds_record()}
    if outcome != ACCURACY:  # (records of accuracy studies read as they always did)
        record["outcome"] = outcome.to_dict()
    return record


def _claimed(claim) -> list:
    """A claim as its design record holds it; its metric where it is not test accuracy."""
    entry = [claim.kind, claim.section, claim.cell, claim.baseline, claim.margin]
    if claim.outcome is not None and claim.outcome != ACCURACY:
        entry.append(claim.outcome.to_dict())
    return entry


def _same_design(stored: dict, record: dict) -> list[str]:
    """The keys in which two design records differ; the bounds are derived from the rest
    (a stored record's own bounds are the ones its study replays with)."""
    return [k for k in sorted({*record, *stored})
            if k != "bounds" and record.get(k) != stored.get(k)]


def run_until_decided(loaded: LoadedStudy, store: ResultStore, options: runner.RunOptions,
                      until: UntilDecided, events: runner.RunEvents | None = None,
                      on_look: Callable[[LookSummary], None] = lambda look: None,
                      inputs: runner.Inputs | None = None) -> runner.RunSummary:
    """Run the study's seeds, then add `until.batch` seeds at a time to the cells of the
    claims still undecided, until every claim is decided or has had `until.max_seeds`.

    The rule (`design_record`) is stored with the study; every look is replayed from the
    stored results, so a killed run, run again, continues at the look it reached."""
    from . import sequential_verdicts
    events = events or runner.RunEvents()
    claims = check_until(loaded, until)
    inputs = inputs or runner.check_inputs(loaded, events.message)
    first = len(loaded.study.seeds)
    record = design_record(loaded, until)
    stored = store.study_info(loaded.study.name) if store.exists else None
    if stored and stored.get("design") and _same_design(stored["design"], record):
        changed = ", ".join(_same_design(stored["design"], record))
        raise SpecError(f"study {loaded.study.name!r} was run with another sequential design "
                        f"({_design_text(stored['design'])}; this one differs in: {changed}); "
                        "rerun with the same options and claims, or give the study another "
                        "name for a new design")
    if stored and stored.get("design"):
        record = stored["design"]  # its stored bounds: the ones it was run with
    if stored and not stored.get("design"):
        extra = sorted({seed for runs in store.stored_seeds(loaded.study.name).values()
                        for seed in runs} - set(loaded.study.seeds))
        if extra:
            raise SpecError(
                f"study {loaded.study.name!r} already holds seeds {extra[0]}-{extra[-1]} "
                "beyond its own from a fixed-n run: a sequential design chosen after seeing "
                "them would not keep its error rates. Report it as the fixed-n design it is, "
                "or give the sequential run another study name")
    full = loaded.with_seeds(record["seeds"])
    total = runner.RunSummary()
    cv = code_version()
    with runner.Cluster(options.backend, options.slots) as cluster:
        idle_at = None  # the progress a round that trained nothing left behind
        while True:
            frame = store.results_frame(loaded.study.name) if store.exists else None
            good = (state.usable(frame, cv) if frame is not None and len(frame)
                    else _empty_frame())
            replayed = sequential_verdicts.claim_progress(good, record, claims)
            progress = dict(zip((c.text for c in claims), replayed, strict=True))
            if idle_at is not None and progress == idle_at:
                # nothing this runner can train blocks a look: stop (a round that trained
                # nothing but found results other studies had trained goes on)
                events.warning("the next look needs results this run cannot train: jobs that "
                               "FAILED (rerun with --retry-failed once the cause is fixed) or "
                               "that another runner holds (rerun when it is done)")
                break
            wanted = _wanted_seeds(claims, progress, record)
            subset = full.running(lambda s, wanted=wanted: s.config.seed in wanted.get(
                (s.section, s.cell), record["seeds"][:first]))
            left = (len(state.left_to_run(subset.specs, state.of_jobs(store, subset.specs)))
                    if store.exists else len(subset.specs))
            on_look(LookSummary(max((p.seeds for p in progress.values()), default=0), progress,
                                sum(total.counts.values()), left))
            if all(p.finished for p in progress.values()) and total.sync is not None:
                break
            summary = runner.run_study(subset, store, options, events, cluster, inputs)
            if total.sync is None:
                store.set_design(loaded.study.name, record)
            total.sync = total.sync or summary.sync
            total.counts.update(summary.counts)
            total.to_run += summary.to_run
            total.wall_seconds += summary.wall_seconds
            total.failed_before = summary.failed_before
            if summary.to_run == 0 and all(p.finished for p in progress.values()):
                break
            idle_at = progress if summary.to_run == 0 else None
    return total


def _design_text(record: dict) -> str:
    return (f"{record['spending']} spending, alpha {record['alpha']}, looks at "
            f"{', '.join(map(str, record['looks']))} seeds, margin {record['margin_pp']}")


def _empty_frame():
    import pandas as pd

    return pd.DataFrame(columns=["section", "cell", "seed", "test_accuracy"])


def _wanted_seeds(claims, progress, record) -> dict[tuple[str, str], list]:
    """(section, cell) -> the seeds it needs now: the first `first` for every cell, as
    many as the next look of the claims it is in needs (or has had) otherwise."""
    seeds = record["seeds"]
    wanted: dict[tuple[str, str], list] = {}
    for c in claims:
        p = progress[c.text]
        n = max(record["first"], p.seeds if p.needs is None else p.needs)
        for cell in (c.cell, c.baseline):
            key = (c.section, cell)
            if len(wanted.get(key, ())) < n:
                wanted[key] = seeds[:n]
    return wanted
