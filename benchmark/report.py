"""Report stage: the result database -> tables, figures, markdown and one HTML file.

Takes a `ResultStore` and a study name; writes `report.md` with PNG figures beside it
and `index.html` with the same figures embedded (one self-contained file that opens
offline). Reads the database only; never trains, never imports torch.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from string import Template

import pandas as pd

from . import aggregate, policy, sequential_verdicts, state, verdicts
from .figures import (
    Figure,
    FigureCache,
    cache_key,
    cost_figure,
    curves_figure,
    section_figure,
    sequential_figure,
)
from .outcome import ACCURACY, Outcome
from .records import DONE_STATUSES, JobStatus
from .store import ResultStore

TEMPLATE = Path(__file__).with_name("report_template.html")
CACHE_DIR = ".figure-cache"  # under the report's folder: PNGs by hash of what they show


class ReportError(RuntimeError):
    """Nothing to report as asked; the message says why."""


# --------------------------------------------------------------------------- formatting


def _num(x: float, digits: int = 2) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def acc_text(row: pd.Series, outcome: Outcome = ACCURACY) -> str:
    def num(x: float) -> str:
        return f"{x:.2f}" if outcome.percent else f"{x:.4g}"

    if row["n"] >= 2:
        return f"{num(row['mean'])} [{num(row['ci_low'])}, {num(row['ci_high'])}]"
    if row["noise_floor"] == row["noise_floor"]:
        return f"{num(row['mean'])} ± {num(row['noise_floor'])}"
    return num(row["mean"])


def p_text(x: float) -> str:
    if math.isnan(x):
        return ""
    return "<0.001" if x < 0.001 else f"{x:.3f}"


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    def esc(s: str) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --------------------------------------------------------------------------- tables


def cell_rows(cells: pd.DataFrame, outcome: Outcome = ACCURACY
              ) -> tuple[list[str], list[list[str]]]:
    if outcome == ACCURACY:
        headers = ["cell", "n", "test acc % (95% CI, or ±1 SE of the test set)", "published %",
                   "gap pp", "test loss", "train s", "params"]
        rows = [[r["cell"], str(r["n"]), acc_text(r), _num(r["published"], 1), _num(r["gap"]),
                 _num(r["test_loss"], 4), _num(r["train_seconds"], 1), f"{r['param_count']:,}"]
                for _, r in cells.iterrows()]
        return headers, rows
    headers = ["cell", "n", f"{outcome.label} (95% CI)", "test acc %", "test loss", "train s",
               "params"]
    rows = [[r["cell"], str(r["n"]), acc_text(r, outcome), _num(r["test_accuracy_mean"]),
             _num(r["test_loss"], 4), _num(r["train_seconds"], 1), f"{r['param_count']:,}"]
            for _, r in cells.iterrows()]
    return headers, rows


def improve_text(r) -> str:
    """P(better) with its interval, from a comparison (dict or row); "" without one."""
    p, low = r.get("p_improve", math.nan), r.get("p_improve_low", math.nan)
    if math.isnan(p):
        return ""
    return f"{p:.2f}" if math.isnan(low) else f"{p:.2f} [{low:.2f}, {r['p_improve_high']:.2f}]"


def _power(r, outcome: Outcome = ACCURACY) -> str:
    """What the paired seeds could see: power for the effect of interest (seeds for 80%),
    or without one the smallest difference they detect with 80% power."""
    if r["power"] == r["power"]:
        return (f"{r['power']:.2f} for {outcome.band(r['effect'])} "
                f"({aggregate.seeds_text(r['seeds_needed'])} seeds for 80%)")
    if r["detectable"] == r["detectable"]:
        return f"detects {aggregate.detectable_text(r['detectable'], outcome)}"
    return ""


def _level(r) -> str:
    return "" if r["step_level"] != r["step_level"] else f"{r['step_level']:.3g}"


def effect_rows(eff: pd.DataFrame, outcome: Outcome = ACCURACY
                ) -> tuple[list[str], list[list[str]]]:
    def num(x: float) -> str:
        return f"{x:+.2f}" if outcome.percent else f"{x:+.4g}"

    if outcome == ACCURACY:
        diff, better = "diff pp", "P(cell > vs on a seed) [95% CI]"
    else:
        diff = f"diff {outcome.metric}" + (f" ({outcome.unit})" if outcome.unit else "")
        better = f"P(cell better on a seed; {outcome.direction}) [95% CI]"
    headers = ["cell", "vs", diff, "95% CI", "p", "level (family)", "method", better,
               "80% power (paired seeds)", "verdict"]
    rows = [[r["cell"], r["baseline"], num(r["diff"]),
             "" if math.isnan(r["ci_low"]) else f"[{num(r['ci_low'])}, {num(r['ci_high'])}]",
             p_text(r["p"]), _level(r), r["method"], improve_text(r), _power(r, outcome),
             r["verdict"]]
            for _, r in eff.iterrows()]
    return headers, rows


def seed_rows(rows: pd.DataFrame, cells: pd.DataFrame, outcome: Outcome = ACCURACY
              ) -> tuple[list[str], list[list[str]]]:
    """One row per cell, one column per seed: the drill-down behind each mean."""
    seeds = sorted(rows["seed"].unique())
    acc = rows.pivot_table(index="cell", columns="seed", values=outcome.metric,
                           aggfunc="first")
    digits = 2 if outcome.percent else 4
    table = [[cell, *[_num(acc.at[cell, seed], digits) if seed in acc.columns else ""
                      for seed in seeds]]
             for cell in cells["cell"] if cell in acc.index]
    return ["cell", *[f"seed {seed}" for seed in seeds]], table


def published_rows(cells: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    pub = cells[cells["published"].notna()]
    headers = ["section", "cell", "published %", "reproduced %", "gap pp", "n"]
    rows = [[r["section"], r["cell"], _num(r["published"], 1), acc_text(r), f"{r['gap']:+.2f}",
             str(r["n"])] for _, r in pub.iterrows()]
    return headers, rows


# --------------------------------------------------------------------------- document


@dataclass
class Part:
    """One block of the report, rendered to both markdown and HTML."""

    kind: str  # "h2" | "p" | "table" | "figure" | "pre" (preformatted text)
    text: str = ""
    headers: list[str] | None = None
    rows: list[list[str]] | None = None
    figure: Figure | None = None
    plot: tuple | None = None  # (function, args) that makes `figure`; see render_figures
    fold: str | None = None  # folded under this summary line (<details>), if given


def anchor(text: str) -> str:
    """The id of a section heading, for the table of contents."""
    return "s-" + re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


DONE = {s.value for s in DONE_STATUSES}
_PLOTS: list[tuple] = []  # read by forked figure workers


def _plot(index: int) -> Figure:
    function, args = _PLOTS[index]
    return function(*args)


def render_figures(parts: list[Part], cache: FigureCache | None = None) -> None:
    """Draw every figure part not in `cache`. Drawing is most of a report's time and each
    figure is independent, so with fork available they are drawn on all cores: forked
    workers inherit the imported modules and the data, and send back only PNG bytes."""
    import multiprocessing
    import os

    cache = cache or FigureCache(None)
    keys = {id(p): cache_key(*p.plot) for p in parts if p.plot is not None}
    for part in parts:
        if part.plot is not None:
            part.figure = cache.get(keys[id(part)])
            part.plot = None if part.figure is not None else part.plot
    pending = [p for p in parts if p.plot is not None]
    pending_keys = [keys[id(p)] for p in pending]
    _PLOTS[:] = [p.plot for p in pending]
    workers = min(os.cpu_count() or 1, len(pending) // 4)
    try:
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                figures = pool.map(_plot, range(len(pending)))
        else:
            figures = [_plot(i) for i in range(len(pending))]
    finally:
        _PLOTS.clear()
    for part, key, figure in zip(pending, pending_keys, figures, strict=True):
        part.figure, part.plot = figure, None
        cache.put(key, figure)
    cache.prune(set(keys.values()))


def _summary(eff: pd.DataFrame, outcomes=None) -> list[str]:
    def diff(r) -> str:
        return aggregate.outcome_in(outcomes, r.section).diff(r.diff)

    lines = []
    own = eff[~eff["verdict"].astype(str).str.startswith(aggregate.CLAIMED)] if len(eff) else eff
    for verdict in (aggregate.BETTER, aggregate.WORSE):
        hits = own[own["verdict"] == verdict]
        if len(hits):
            lines.append(f"{verdict.capitalize()} than the section baseline beyond seed noise "
                         f"(family-wise alpha {aggregate.ALPHA} in each section): " + "; ".join(
                             f"{r.section} {r.cell} ({diff(r)})"
                             for r in hits.itertuples()))
    tested = own[own["p"].notna() | own["p_equiv"].notna()] if len(own) else own
    same = tested[tested["verdict"].str.startswith(aggregate.SAME)]
    if len(same):
        lines.append("No detectable difference from the section baseline (what the seeds "
                     "could see is in the tables): " + "; ".join(
                         f"{r.section} {r.cell}" for r in same.itertuples()))
    multiple = tested[tested["verdict"].str.startswith(aggregate.HOLM_ONLY)]
    if len(multiple):
        lines.append("Different at p < 0.05 on their own, but not family-wise (the closed "
                     "test over the section): " + "; ".join(
                         f"{r.section} {r.cell} ({diff(r)}, p = {r.p:.3f})"
                         for r in multiple.itertuples()))
    equivalent = tested[tested["verdict"].str.startswith("equivalent within")]
    if len(equivalent):
        lines.append("Equivalent to the section baseline within the study's margin (TOST, "
                     "family-wise): " + "; ".join(
                         f"{r.section} {r.cell} ({diff(r)}"
                         + ("; also different" if r.reject_diff else "") + ")"
                         for r in equivalent.itertuples()))
    undecided = tested[tested["verdict"].str.startswith(aggregate.UNDECIDED)]
    if len(undecided):
        lines.append("Undecided, neither a difference nor equivalence shown: " + "; ".join(
            f"{r.section} {r.cell} ({diff(r)}, "
            f"{aggregate.seeds_text(r.seeds_equivalent)} seeds to show equivalence)"
            for r in undecided.itertuples()))
    single = own[own["p"].isna() & own["method"].astype(str).str.startswith("1 seed")] \
        if len(own) else own
    if len(single):
        lines.append(f"{len(single)} comparison(s) rest on one seed per side: there is no "
                     "test of seed noise; the tables give ±1 SE of the 10,000-image test set "
                     "as a floor. Rerun with `cnnbench run STUDY --seeds 0,1,2,3,4` to test.")
    return lines or ["No comparisons yet."]


def _provenance(store: ResultStore, info: dict, frame: pd.DataFrame,
                code_version: str) -> list[list[str]]:
    done = frame[frame["run_id"].notna()]
    counts = frame["status"].value_counts()
    return [
        ["study file", f"{info['path']} (sha256 {info['file_hash'][:16]})"],
        ["database", store.url_redacted],
        ["current code version", code_version],
        ["code versions in results", ", ".join(sorted(done["code_version"].dropna().unique()))],
        ["torch", ", ".join(sorted(done["torch_version"].dropna().unique()))],
        ["devices", ", ".join(sorted(done["device"].dropna().unique()))],
        ["hosts", ", ".join(sorted(done["host"].dropna().unique()))],
        *([["Slurm jobs", _slurm_jobs(done.drop_duplicates("run_id")["slurm_job_id"])]]
          if "slurm_job_id" in done and done["slurm_job_id"].notna().any() else []),
        ["cells by status", ", ".join(f"{k} {v}" for k, v in counts.items())],
        ["runs", f"{done['started_at'].min()} to {done['finished_at'].max()} UTC"
         if len(done) else "none"],
        ["report made", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")],
    ]


def _slurm_jobs(ids: pd.Series) -> str:
    """The Slurm jobs that trained the results, with how many runs each."""
    counts = ids.dropna().astype(str).value_counts()
    return ", ".join(f"{job} ({n} run{'s' * (n > 1)})"
                     for job, n in sorted(counts.items(), key=lambda kv: int(kv[0])
                                          if kv[0].isdigit() else 0))


SPENDING_NAMES = {"obrien-fleming": "O'Brien-Fleming", "pocock": "Pocock",
                  "front-loaded": "front-loaded (40% of alpha at the first look)"}


def _sequential_parts(good: pd.DataFrame, design: dict,
                      judged: sequential_verdicts.StudyClaims) -> list[Part]:
    """The claims of a sequential run, analysed by the design that was run."""
    rule = design.get("rule", "")
    words = (f"Sequential design (cnnbench run --until-decided): the study's first "
             f"{design['first']} seeds, then {design['batch']} more at a time to the claims "
             f"still undecided, up to {design['max_seeds']} (looks at "
             f"{', '.join(map(str, design['looks']))} seeds); "
             f"{SPENDING_NAMES.get(design['spending'], design['spending'])} spending, "
             f"family-wise alpha {design['alpha']:g} over the {design['claims']} claims by "
             "the closed test (see Method)."
             + ("" if rule == "t-calibrated closed testing" else
                " This study was run under an earlier rule; its looks are replayed here "
                "with the current one."))
    parts = [Part("h2", "Claims"), Part("p", words),
             Part("table", "", verdicts.CLAIM_COLUMNS,
                  judged.table[verdicts.CLAIM_COLUMNS].astype(str).values.tolist())]
    looks = sequential_verdicts.sequential_looks(good, design, judged.decided)
    if len(looks):
        parts.append(Part("figure", plot=(sequential_figure, (looks,))))
    if judged.trends is not None:  # not part of the design, tested once on what is there
        parts.append(Part("p", "Trend claims are not part of the sequential design: they "
                               "form a family of their own, tested once (fixed n) on the "
                               "seeds there are."))
        parts.append(Part("table", "", ["claim (fixed-n, not in the design)", "section",
                                        "verdict", "evidence"],
                          judged.trends[verdicts.CLAIM_COLUMNS].astype(str).values.tolist()))
    return parts


def build(store: ResultStore, study: str, code_version: str,
          seeds: Sequence[int] | None = None,
          cache: FigureCache | None = None) -> tuple[str, list[Part]]:
    """The report's title and parts, from the database alone."""
    info = store.study_info(study)
    if info is None:
        known = ", ".join(store.study_names()) or "none"
        raise ReportError(f"no study {study!r} in {store.url_redacted} (studies there: {known})")
    frame = store.results_frame(study, seeds)
    if seeds is not None and not len(frame):
        stored = sorted({seed for runs in store.stored_seeds(study).values() for seed in runs})
        raise ReportError(f"study {study!r} has no cell runs with seed(s) "
                          f"{', '.join(map(str, seeds))}: its seeds are "
                          f"{', '.join(map(str, stored)) or 'none'}; leave out --seeds or "
                          "pick from those")
    good = state.usable(frame, code_version)
    outcome = info["outcome"]
    outcomes = {sec["name"]: sec["outcome"] for sec in info["sections"]}
    cells = aggregate.cell_table(good, outcomes) if len(good) else pd.DataFrame()
    margin = info.get("margin_pp")
    design = info.get("design")
    judged = sequential_verdicts.judge(good, info["claims"], margin, design, outcome)
    claim_parts = []
    if info["claims"] and design:
        claim_parts = _sequential_parts(good, design, judged)
    elif info["claims"]:
        claim_parts = [Part("h2", "Claims"),
                       Part("p", f"The {judged.family} claims form one family: each verdict "
                                 f"holds family-wise at alpha {aggregate.ALPHA} (see Method)."),
                       Part("table", "", verdicts.CLAIM_COLUMNS,
                            judged.table[verdicts.CLAIM_COLUMNS].astype(str).values.tolist())]
    eff = (aggregate.effects(good, margin, judged.rows, judged.family, outcomes=outcomes,
                             study_outcome=outcome) if len(good)
           else pd.DataFrame(columns=["p", "p_equiv", "verdict", "method"]))
    epochs = store.epochs_frame(study, seeds)
    epochs = epochs[epochs["code_version"] == code_version] if len(epochs) else epochs

    parts = [Part("p", info["description"])] if info["description"] else []
    parts.append(Part("h2", "Summary"))
    if outcome != ACCURACY:
        parts.append(Part("p", f"Decided on {outcome.label}: differences are the cell's "
                               "value minus the baseline's, and better follows the metric's "
                               "direction."))
    if margin is not None:
        on = "" if outcome == ACCURACY else f" in {outcome.metric}"
        parts.append(Part("p", f"Smallest effect of interest: {outcome.band(margin)}{on}. Each "
                               "comparison is better, worse, equivalent within it (two "
                               "one-sided tests), or undecided."))
    parts += [Part("p", line) for line in _summary(eff, outcomes)]
    parts += claim_parts
    missing = frame[~frame.index.isin(good.index) & (frame["status"] != JobStatus.SKIPPED.value)]
    if len(missing):
        parts.append(Part("p", f"{len(missing)} of {len(frame)} cell runs have no current "
                               "result (pending, running, failed, diverged or stale): see "
                               "'Missing and failed' below."))
    if len(cells) and cells["published"].notna().any():
        parts.append(Part("h2", "Reproduced vs published"))
        parts.append(Part("table", "", *published_rows(cells)))
    for sec in info["sections"]:
        parts += _section_parts(sec, good, cells, eff, epochs, outcome, info["factors"])
    if len(cells):
        parts += [Part("h2", "Cost"), Part("figure", plot=(cost_figure, (cells,)))]
    parts += _missing_parts(frame, missing, code_version)
    parts.append(Part("h2", "Method"))
    others = sorted({o.label for o in [outcome, *outcomes.values(),
                                      *(c.outcome for c in info["claims"] if c.outcome)]
                     if o != ACCURACY})
    parts += [Part("p", text) for text in policy.method_paragraphs(design, margin, others)]
    parts.append(Part("h2", "Provenance"))
    parts.append(Part("table", "", ["", ""], _provenance(store, info, frame, code_version)))
    render_figures(parts, cache)
    return f"cnnbench report: {study}", parts


def _section_parts(sec: dict, good, cells, eff, epochs, study_outcome=ACCURACY,
                   factors=()) -> list[Part]:
    name, outcome = sec["name"], sec.get("outcome") or ACCURACY
    parts = [Part("h2", f"{name}: {sec['title']}" if sec["title"] else name)]
    if sec["note"]:
        parts.append(Part("p", f"Note: {sec['note']}"))
    if outcome != study_outcome:
        parts.append(Part("p", f"This section decides on {outcome.label}."))
    sec_cells = cells[cells["section"] == name] if len(cells) else cells
    if not len(sec_cells):
        return parts + [Part("p", "No current results yet.")]
    parts.append(Part("table", "", *cell_rows(sec_cells, outcome)))
    sec_eff = eff[eff["section"] == name] if len(eff) else eff
    if len(sec_eff):
        parts.append(Part("table", "", *effect_rows(sec_eff, outcome)))
    rows = good[good["section"] == name]
    if rows["seed"].nunique() > 1:
        what = "test accuracy (%)" if outcome == ACCURACY else outcome.metric
        parts.append(Part("table", "", *seed_rows(rows, sec_cells, outcome),
                          fold=f"{name}: each seed's {what}"))
    parts.append(Part("figure", plot=(section_figure, (name, sec["title"], rows, sec_cells,
                                                       outcome, tuple(factors)))))
    sec_epochs = epochs[epochs["section"] == name] if len(epochs) else epochs
    if len(sec_epochs) and sec_epochs["epoch"].nunique() > 1:
        args = (name, sec_epochs) + (() if outcome == ACCURACY else (outcome,))
        parts.append(Part("figure", plot=(curves_figure, args)))
    return parts


def _missing_parts(frame: pd.DataFrame, rest: pd.DataFrame, code_version: str) -> list[Part]:
    """Cell runs without a current result (`rest`) and the skipped ones, with reasons."""
    skipped = frame[frame["status"] == JobStatus.SKIPPED.value]
    if not len(rest) and not len(skipped):
        return []
    parts = [Part("h2", "Missing and failed")]
    rows = []
    for _, r in pd.concat([rest, skipped]).iterrows():
        status = r["status"]
        if status in DONE and r["code_version"] != code_version:
            status = f"{JobStatus.STALE.value} (code {r['code_version']}, now {code_version})"
        detail = r["skip_reason"] if r["status"] == JobStatus.SKIPPED.value else (
            str(r["error"]).strip().splitlines()[-1] if isinstance(r["error"], str) else "")
        rows.append([r["section"], r["cell"], str(r["seed"]), status, detail])
    parts.append(Part("table", "", ["section", "cell", "seed", "status", "detail"], rows))
    failed = rest[rest["error"].notna()] if "error" in rest else rest.iloc[:0]
    for _, r in failed.iterrows():
        parts.append(Part("pre", str(r["error"]).strip(),
                          fold=f"{r['section']}/{r['cell']} seed {r['seed']}: "
                               f"{r['status']}, traceback"))
    return parts


def _contents(parts: list[Part]) -> list[str]:
    return [p.text for p in parts if p.kind == "h2"]


def render_markdown(title: str, parts: list[Part]) -> str:
    out = [f"# {title}", "", "Contents:", "",
           *[f"- [{h}](#{anchor(h)})" for h in _contents(parts)], ""]
    for part in parts:
        block: list[str] = []
        if part.kind == "h2":
            block = [f'<a id="{anchor(part.text)}"></a>', "", f"## {part.text}"]
        elif part.kind == "p":
            block = [part.text]
        elif part.kind == "table":
            block = [md_table(part.headers, part.rows)]
        elif part.kind == "pre":
            block = ["```text", part.text.replace("```", "` ` `"), "```"]
        elif part.kind == "figure":
            block = [f"![{part.figure.title}](figures/{part.figure.name}.png)"]
        if part.fold is not None:  # GitHub and most viewers fold <details> in markdown too
            block = ["<details>", f"<summary>{html.escape(part.fold, quote=False)}</summary>", "",
                     *block, "", "</details>"]
        out += [*block, ""]
    return "\n".join(out)


def render_html(title: str, parts: list[Part]) -> str:
    toc = "".join(f'<li><a href="#{anchor(h)}">{html.escape(h)}</a></li>'
                  for h in _contents(parts))
    body = [f"<nav><strong>Contents</strong><ol>{toc}</ol></nav>"]
    for part in parts:
        block = ""
        if part.kind == "h2":
            block = f'<h2 id="{anchor(part.text)}">{html.escape(part.text)}</h2>'
        elif part.kind == "p":
            block = f"<p>{html.escape(part.text)}</p>"
        elif part.kind == "table":
            block = html_table(part.headers, part.rows)
        elif part.kind == "pre":
            block = f"<pre>{html.escape(part.text)}</pre>"
        elif part.kind == "figure":
            data = base64.b64encode(part.figure.png).decode("ascii")
            block = (f'<figure><img alt="{html.escape(part.figure.title)}" '
                     f'src="data:image/png;base64,{data}"><figcaption>'
                     f"{html.escape(part.figure.title)}</figcaption></figure>")
        if part.fold is not None:
            block = f"<details><summary>{html.escape(part.fold)}</summary>{block}</details>"
        body.append(block)
    return Template(TEMPLATE.read_text()).substitute(title=html.escape(title),
                                                     body="\n".join(body))


def write(store: ResultStore, study: str, out_dir: Path, formats: tuple[str, ...],
          code_version: str, seeds: Sequence[int] | None = None) -> list[Path]:
    """Write the report files (of `seeds` only, when given); returns their paths. Figures
    whose data have not changed come from OUT/.figure-cache instead of being drawn."""
    title, parts = build(store, study, code_version, seeds, FigureCache(out_dir / CACHE_DIR))
    return save(title, parts, out_dir, formats)


def save(title: str, parts: list[Part], out_dir: Path, formats: tuple[str, ...]) -> list[Path]:
    """Write `parts` as OUT/report.md (figures as PNGs in OUT/figures/) and/or one
    self-contained OUT/index.html; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if "md" in formats:
        for part in parts:
            if part.figure:
                (out_dir / "figures").mkdir(exist_ok=True)
                path = out_dir / "figures" / f"{part.figure.name}.png"
                path.write_bytes(part.figure.png)
        (out_dir / "report.md").write_text(render_markdown(title, parts))
        written.append(out_dir / "report.md")
    if "html" in formats:
        (out_dir / "index.html").write_text(render_html(title, parts))
        written.append(out_dir / "index.html")
    return written
