"""CLI, results out of the database: `cnnbench report` (HTML and markdown per study),
`export` (the tidy frames as CSV or parquet), `compare` (two studies, code versions or
databases side by side) and `power` (the seeds each comparison needs). All read only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import click

from .. import state
from ..provenance import code_version
from ..store import ResultStore
from .common import UserError, db_option, opened, seeds_option, user_errors


def _study_names(store: ResultStore, studies: Sequence[str]) -> list[str]:
    """Study names from names or study files (the name a file declares), each stored in
    `store` (StoreError otherwise); default: all."""
    from ..results import study_name

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


@click.command()
@click.argument("studies", nargs=-1, metavar="[STUDY]...")
@db_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="reports",
              show_default=True, help="Reports go to OUT/<study>/.")
@click.option("--format", "formats", default="html,md", show_default=True,
              help="Comma-separated: html (one self-contained file), md (with PNGs).")
@seeds_option("Only these replicate seeds (default: every seed stored for the study).")
def report(studies: tuple[str, ...], db: str | None, out: Path, formats: str,
           seeds: list[int] | None) -> None:
    """Write reports/<study>/index.html and report.md from the database.

    STUDY is a study name or study file; default: every study in the database.
    Reads results only, trains nothing. Results of older training code are listed
    as stale, not mixed into the statistics.
    """
    from .. import report as reporting
    from ..figures import slug

    wanted = _formats(formats)
    with user_errors(), opened(db, read_only=True) as store:
        names = _study_names(store, studies)
        t0 = time.perf_counter()
        for name in names:
            try:
                paths = reporting.write(store, name, out / slug(name), wanted,
                                        code_version(), seeds)
            except reporting.ReportError as exc:
                raise UserError(str(exc)) from None
            click.echo(f"{name}: " + ", ".join(str(p) for p in paths))
    click.echo(f"report took {time.perf_counter() - t0:.1f}s")


@click.command()
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
    from ..figures import slug
    from ..results import frames

    with user_errors(), opened(db, read_only=True) as store:
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


@click.command()
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
    from .. import compare as comparing
    from .. import report as reporting
    from ..figures import slug

    wanted = _formats(formats)
    with user_errors(), opened(db, read_only=True) as store_a, \
            opened(db_b or db, read_only=True) as store_b:
        sides = []
        for store, study, version in ((store_a, study_a, code_a), (store_b, study_b, code_b)):
            name = _study_names(store, (study,))[0]
            known = store.code_versions(name)
            if version is not None and version not in known:
                raise UserError(f"study {name!r} has no results of code version {version!r}; "
                                f"it has: {', '.join(known) or 'none yet'}")
            sides.append(comparing.Side(store, name, version or code_version(),
                                        name if version is None else f"{name} @ {version}"))
        if sides[0].label == sides[1].label and store_a.url == store_b.url:
            raise UserError("A and B are the same results: name two studies, or give "
                            "--code-a/--code-b or --db-b")
        title, parts = comparing.build(*sides)
    folder = out / "_vs_".join(
        slug(name) + ("" if version is None else f"_{slug(version)}")
        for name, version in ((sides[0].study, code_a), (sides[1].study, code_b)))
    reporting.save(title, parts, folder, wanted)
    claims = next((p.rows for p in parts if p.kind == "table" and p.headers
                   and p.headers[0] == "claim"), [])
    for claim, verdict_a, _, verdict_b, _, agree in claims:
        click.echo(f"{'agree   ' if agree == 'yes' else 'DIFFER  '}{claim}: A {verdict_a}; "
                   f"B {verdict_b}")
    click.echo(f"comparison written to {folder}")


@click.command()
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
    from .. import aggregate, planning, verdicts
    from ..outcome import ACCURACIES

    with user_errors(), opened(db, read_only=True) as store:
        name = _study_names(store, (study,))[0]
        info = store.study_info(name)
        good = state.usable(store.results_frame(name), code_version())
        if not len(good):
            raise UserError(f"{name}: no current results in {store.url_redacted}: run it first")
        outcomes = {sec["name"]: sec["outcome"] for sec in info["sections"]}
        table = verdicts.power_table(good, info["claims"], effect, target, alpha,
                                      info["margin_pp"], outcomes, info["outcome"])
    file = study if study.endswith(".py") else info["path"]
    planned = ("the study's margin" if effect is None and info["margin_pp"] is not None else
               "the smallest detectable difference" if effect is None else
               f"{effect:g} pp" if info["outcome"].percent else
               f"{effect:g} in {info['outcome'].label}")
    margins = table["margin"].notna().any() if len(table) else False
    click.echo(f"{name}: seeds for {target:.0%} power to detect {planned} "
               f"(paired t at alpha {alpha:g} over each comparison's family)"
               + ("; TOST: seeds to show equivalence within the margin if there is no "
                  "difference" if margins else ""))
    others = sorted({m for m in table["metric"].dropna()} - {"test_accuracy"}) if len(
        table) else []
    if others:
        click.echo("diff and sd in each comparison's metric's unit (pp for accuracy; "
                   f"metrics: test_accuracy, {', '.join(others)})")
    click.echo(f"{'comparison':<44} {'n':>3} {'diff pp' if not others else 'diff':>8} "
               f"{'sd':>6} {'level':>7} "
               f"{'power':>6} {'seeds':>6}" + (f" {'TOST':>6}" if margins else "") + "  state")
    undecided = []
    for r in table.itertuples():
        label = r.claim or f"{r.section}: {r.cell} vs {r.baseline}"
        needed = None if aggregate.seeds_text(r.seeds_needed) == "over 1000" else int(
            r.seeds_needed)
        seeds = "" if math.isnan(r.power) else aggregate.seeds_text(needed)
        tost = ("" if r.n_paired < 2 or r.seeds_equivalent is None
                or r.seeds_equivalent != r.seeds_equivalent else str(int(r.seeds_equivalent)))
        pp = r.metric in ACCURACIES  # in pp (as Outcome.percent); else the metric's own unit
        digits = ".2f" if pp else ".3g"
        power_text = (_fmt(r.power) if not math.isnan(r.power) else
                      f"±{r.detectable:{digits}}" if not math.isnan(r.detectable) else "")
        verdict = ("decided" if r.decided else
                   "needs 2+ paired seeds to plan" if r.n_paired < 2 else
                   f"detects ±{r.detectable:{digits}}{' pp' if pp else ''} now"
                   if math.isnan(r.power) else
                   "enough seeds" if r.power >= target else "undecided: more seeds")
        settle = min([x for x in (needed, int(tost) if tost else None) if x] or [0])
        if not r.decided and not math.isnan(r.power) and r.power < target and settle:
            undecided.append(settle)
        diff, sd = (f"{r.diff:+.2f}", _fmt(r.sd_diff)) if pp else (f"{r.diff:+.4f}",
                                                                   f"{r.sd_diff:.4f}")
        click.echo(f"{label[:44]:<44} {r.n:>3} {diff:>8} {sd:>6} "
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
