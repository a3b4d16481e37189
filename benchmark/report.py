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

from . import aggregate
from .spec import DONE_STATUSES, JobStatus
from .store import ResultStore

TEMPLATE = Path(__file__).with_name("report_template.html")
NUMERIC_AXES = ("train_size", "width", "train_offset", "lr", "batch_size", "dropout_p",
                "hidden", "epochs")
LOG_AXES = ("train_size", "lr")
STYLE = "seaborn-v0_8-whitegrid"


class ReportError(RuntimeError):
    """Nothing to report as asked; the message says why."""


@dataclass(frozen=True)
class Figure:
    name: str  # file stem under figures/
    title: str
    png: bytes


# --------------------------------------------------------------------------- formatting


def slug(name: str) -> str:
    """A file-name-safe form of a user-given name (section and study names are free text)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "unnamed"


def _num(x: float, digits: int = 2) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _acc(row: pd.Series) -> str:
    if row["n"] >= 2:
        return f"{row['mean']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
    return f"{row['mean']:.2f} ± {row['noise_floor']:.2f}"


def _p(x: float) -> str:
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


def cell_rows(cells: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    headers = ["cell", "n", "test acc % (95% CI, or ±1 SE of the test set)", "published %",
               "gap pp", "test loss", "train s", "params"]
    rows = [[r["cell"], str(r["n"]), _acc(r), _num(r["published"], 1), _num(r["gap"]),
             _num(r["test_loss"], 4), _num(r["train_seconds"], 1), f"{r['param_count']:,}"]
            for _, r in cells.iterrows()]
    return headers, rows


def effect_rows(eff: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    headers = ["cell", "vs", "diff pp", "95% CI", "p", "p (Holm)", "method", "verdict"]
    rows = [[r["cell"], r["baseline"], f"{r['diff']:+.2f}",
             "" if math.isnan(r["ci_low"]) else f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]",
             _p(r["p"]), _p(r["p_holm"]), r["method"], r["verdict"]]
            for _, r in eff.iterrows()]
    return headers, rows


def published_rows(cells: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    pub = cells[cells["published"].notna()]
    headers = ["section", "cell", "published %", "reproduced %", "gap pp", "n"]
    rows = [[r["section"], r["cell"], _num(r["published"], 1), _acc(r), f"{r['gap']:+.2f}",
             str(r["n"])] for _, r in pub.iterrows()]
    return headers, rows


# --------------------------------------------------------------------------- figures


def _varying_axis(section: pd.DataFrame) -> str | None:
    """The one numeric config field that varies across a section's cells, if any."""
    varying = [c for c in NUMERIC_AXES if section[c].nunique(dropna=False) > 1]
    others = [c for c in ("arch", "batch_norm", "dropout", "activation", "optimizer",
                          "precision") if section[c].nunique() > 1]
    return varying[0] if len(varying) == 1 and not others else None


def _axes(width: float, height: float):
    """A new figure and axes in the report's one style (matplotlib's copy of seaborn's
    whitegrid: importing seaborn itself costs more than a second of every report)."""
    from matplotlib import style
    from matplotlib.figure import Figure as MplFigure

    with style.context(STYLE):
        fig = MplFigure(figsize=(width, height))
        return fig, fig.subplots()


def _png(fig) -> bytes:
    import io

    from matplotlib import style

    buffer = io.BytesIO()
    # Fixed margins instead of tight/constrained layout: those re-measure every text
    # element and doubled the report's time.
    fig.subplots_adjust(left=0.13, right=0.97, top=0.9, bottom=max(fig.subplotpars.bottom, 0.16))
    with style.context(STYLE):
        fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def section_figure(name: str, title: str, rows: pd.DataFrame, cells: pd.DataFrame) -> Figure:
    """Per-seed points, mean with 95% CI (or ±1 SE), published value as a red cross."""
    axis = _varying_axis(rows)
    fig, ax = _axes(max(4.5, 0.9 * len(cells) + 2), 3.4)
    if axis:
        x_of = dict(zip(rows["cell"], rows[axis], strict=False))
        xs = cells["cell"].map(x_of)
        ax.scatter(rows[axis], rows["test_accuracy"], color="0.55", s=14, zorder=1)
        ax.set_xlabel(axis.replace("_", " ") + (" (samples)" if axis == "train_size" else ""))
        if axis in LOG_AXES:
            ax.set_xscale("log")
    else:
        xs = pd.Series(range(len(cells)), index=cells.index)
        pos = dict(zip(cells["cell"], xs, strict=True))
        ax.scatter(rows["cell"].map(pos), rows["test_accuracy"], color="0.55", s=14, zorder=1)
        ax.set_xticks(list(xs), list(cells["cell"]), rotation=20, ha="right")
        fig.subplots_adjust(bottom=0.3)  # room for the rotated cell labels
        ax.set_xlabel("cell")
    low = cells["mean"] - cells["ci_low"].fillna(cells["mean"] - cells["noise_floor"])
    high = cells["ci_high"].fillna(cells["mean"] + cells["noise_floor"]) - cells["mean"]
    ax.errorbar(xs, cells["mean"], yerr=[low, high], fmt="o", color="C0", capsize=4,
                label="mean, 95% CI (1 seed: ±1 SE)", zorder=2)
    if cells["published"].notna().any():
        ax.scatter(xs, cells["published"], marker="x", color="C3", s=50, label="published",
                   zorder=3)
    ax.set_ylabel("test accuracy (%)")
    ax.margins(y=0.15)
    ax.set_title(f"{name}: {title}" if title else name, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return Figure(f"section_{slug(name)}", f"{name}: test accuracy by cell", _png(fig))


def curves_figure(name: str, epochs: pd.DataFrame) -> Figure:
    """Mean test accuracy by epoch per cell, with a t-based 95% band over seeds."""
    fig, ax = _axes(5.5, 3.4)
    for i, (cell, g) in enumerate(epochs.groupby("cell", sort=False)):
        stats = [(e, *aggregate.mean_ci(v["test_accuracy"].to_numpy()))
                 for e, v in g.groupby("epoch")]
        x, mean, low, high = (list(col) for col in zip(*stats, strict=True))
        ax.plot(x, mean, marker="o", markersize=3, color=f"C{i % 10}", label=cell)
        if not all(math.isnan(v) for v in low):
            ax.fill_between(x, low, high, color=f"C{i % 10}", alpha=0.2, linewidth=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{name}: learning curves (band: 95% CI over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")  # "best" costs a search over every line
    return Figure(f"curves_{slug(name)}", f"{name}: test accuracy by epoch", _png(fig))


def cost_figure(cells: pd.DataFrame) -> Figure:
    fig, ax = _axes(6, 3.8)
    for i, (section, g) in enumerate(cells.groupby("section", sort=False)):
        ax.scatter(g["train_seconds"], g["mean"], color=f"C{i % 10}", s=18, label=section)
    ax.legend(fontsize=7, title="section", title_fontsize=7, loc="lower right", ncol=2)
    ax.set_xscale("log")
    ax.set_xlabel("training time per job (s, log scale)")
    ax.set_ylabel("mean test accuracy (%)")
    ax.set_title("accuracy against training cost", fontsize=10)
    ax.grid(alpha=0.3)
    return Figure("cost", "accuracy against training cost", _png(fig))


# --------------------------------------------------------------------------- document


@dataclass
class Part:
    """One block of the report, rendered to both markdown and HTML."""

    kind: str  # "h2" | "p" | "table" | "figure"
    text: str = ""
    headers: list[str] | None = None
    rows: list[list[str]] | None = None
    figure: Figure | None = None
    plot: tuple | None = None  # (function, args) that makes `figure`; see render_figures


DONE = {s.value for s in DONE_STATUSES}
_PLOTS: list[tuple] = []  # read by forked figure workers


def _plot(index: int) -> Figure:
    function, args = _PLOTS[index]
    return function(*args)


def render_figures(parts: list[Part]) -> None:
    """Draw every figure part. Drawing is most of a report's time and each figure is
    independent, so with fork available they are drawn on all cores: forked workers
    inherit the imported matplotlib and the data, and send back only PNG bytes."""
    import multiprocessing
    import os

    pending = [p for p in parts if p.plot is not None]
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
    for part, figure in zip(pending, figures, strict=True):
        part.figure, part.plot = figure, None


def _summary(eff: pd.DataFrame) -> list[str]:
    lines = []
    for verdict in (aggregate.BETTER, aggregate.WORSE):
        hits = eff[eff["verdict"] == verdict]
        if len(hits):
            lines.append(f"{verdict.capitalize()} than the section baseline beyond seed noise "
                         f"(Holm-corrected p < {aggregate.ALPHA}): " + "; ".join(
                             f"{r.section} {r.cell} ({r.diff:+.2f} pp)"
                             for r in hits.itertuples()))
    tested = eff[eff["p"].notna()]
    same = tested[tested["verdict"] == aggregate.SAME]
    if len(same):
        lines.append("No detectable difference from the section baseline: " + "; ".join(
            f"{r.section} {r.cell}" for r in same.itertuples()))
    single = eff[eff["p"].isna()]
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
        ["cells by status", ", ".join(f"{k} {v}" for k, v in counts.items())],
        ["runs", f"{done['started_at'].min()} to {done['finished_at'].max()} UTC"
         if len(done) else "none"],
        ["report made", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")],
    ]


def build(store: ResultStore, study: str, code_version: str,
          seeds: Sequence[int] | None = None) -> tuple[str, list[Part]]:
    """The report's title and parts, from the database alone."""
    info = store.study_info(study)
    if info is None:
        known = ", ".join(store.study_names()) or "none"
        raise ReportError(f"no study {study!r} in {store.url_redacted} (studies there: {known})")
    frame = store.results_frame(study, seeds)
    good = aggregate.usable(frame, code_version)
    cells = aggregate.cell_table(good) if len(good) else pd.DataFrame()
    eff = aggregate.effects(good) if len(good) else pd.DataFrame(columns=["p", "verdict"])
    epochs = store.epochs_frame(study, seeds)
    epochs = epochs[epochs["code_version"] == code_version] if len(epochs) else epochs

    parts = [Part("p", info["description"])] if info["description"] else []
    parts.append(Part("h2", "Summary"))
    parts += [Part("p", line) for line in _summary(eff)]
    if info["claims"]:
        claims = aggregate.check_claims(good, info["claims"])
        parts.append(Part("h2", "Claims"))
        parts.append(Part("table", "", ["claim", "section", "verdict", "evidence"],
                          claims.astype(str).values.tolist()))
    missing = frame[~frame.index.isin(good.index) & (frame["status"] != JobStatus.SKIPPED.value)]
    if len(missing):
        parts.append(Part("p", f"{len(missing)} of {len(frame)} cell runs have no current "
                               "result (pending, running, failed, diverged or stale): see "
                               "'Missing and failed' below."))
    if len(cells) and cells["published"].notna().any():
        parts.append(Part("h2", "Reproduced vs published"))
        parts.append(Part("table", "", *published_rows(cells)))
    for sec in info["sections"]:
        parts += _section_parts(sec, good, cells, eff, epochs)
    if len(cells):
        parts += [Part("h2", "Cost"), Part("figure", plot=(cost_figure, (cells,)))]
    parts += _missing_parts(frame, missing, code_version)
    parts.append(Part("h2", "Provenance"))
    parts.append(Part("table", "", ["", ""], _provenance(store, info, frame, code_version)))
    render_figures(parts)
    return f"cnnbench report: {study}", parts


def _section_parts(sec: dict, good, cells, eff, epochs) -> list[Part]:
    name = sec["name"]
    parts = [Part("h2", f"{name}: {sec['title']}" if sec["title"] else name)]
    if sec["note"]:
        parts.append(Part("p", f"Note: {sec['note']}"))
    sec_cells = cells[cells["section"] == name] if len(cells) else cells
    if not len(sec_cells):
        return parts + [Part("p", "No current results yet.")]
    parts.append(Part("table", "", *cell_rows(sec_cells)))
    sec_eff = eff[eff["section"] == name] if len(eff) else eff
    if len(sec_eff):
        parts.append(Part("table", "", *effect_rows(sec_eff)))
    rows = good[good["section"] == name]
    parts.append(Part("figure", plot=(section_figure, (name, sec["title"], rows, sec_cells))))
    sec_epochs = epochs[epochs["section"] == name] if len(epochs) else epochs
    if len(sec_epochs) and sec_epochs["epoch"].nunique() > 1:
        parts.append(Part("figure", plot=(curves_figure, (name, sec_epochs))))
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
    return parts


def render_markdown(title: str, parts: list[Part]) -> str:
    out = [f"# {title}", ""]
    for part in parts:
        if part.kind == "h2":
            out += [f"## {part.text}", ""]
        elif part.kind == "p":
            out += [part.text, ""]
        elif part.kind == "table":
            out += [md_table(part.headers, part.rows), ""]
        elif part.kind == "figure":
            out += [f"![{part.figure.title}](figures/{part.figure.name}.png)", ""]
    return "\n".join(out)


def render_html(title: str, parts: list[Part]) -> str:
    body = []
    for part in parts:
        if part.kind == "h2":
            body.append(f"<h2>{html.escape(part.text)}</h2>")
        elif part.kind == "p":
            body.append(f"<p>{html.escape(part.text)}</p>")
        elif part.kind == "table":
            body.append(html_table(part.headers, part.rows))
        elif part.kind == "figure":
            data = base64.b64encode(part.figure.png).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(part.figure.title)}" '
                        f'src="data:image/png;base64,{data}"><figcaption>'
                        f"{html.escape(part.figure.title)}</figcaption></figure>")
    return Template(TEMPLATE.read_text()).substitute(title=html.escape(title),
                                                     body="\n".join(body))


def write(store: ResultStore, study: str, out_dir: Path, formats: tuple[str, ...],
          code_version: str, seeds: Sequence[int] | None = None) -> list[Path]:
    """Write the report files (of `seeds` only, when given); returns their paths."""
    title, parts = build(store, study, code_version, seeds)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if "md" in formats:
        (out_dir / "figures").mkdir(exist_ok=True)
        for part in parts:
            if part.figure:
                path = out_dir / "figures" / f"{part.figure.name}.png"
                path.write_bytes(part.figure.png)
        (out_dir / "report.md").write_text(render_markdown(title, parts))
        written.append(out_dir / "report.md")
    if "html" in formats:
        (out_dir / "index.html").write_text(render_html(title, parts))
        written.append(out_dir / "index.html")
    return written
