"""Report figures, drawn with seaborn, and their cache.

Takes the report's tidy frames (per-seed results, the cell table, per-epoch metrics);
gives `Figure`s (PNG bytes). Intervals are the report's own: the t-based 95% confidence
interval of the mean over seeds (`t_interval`, passed to seaborn as its `errorbar`), so
a figure's bars and the tables' numbers agree; with one seed, ±1 standard error of the
test set, as the tables say. No bootstrap: with 2-5 seeds it understates the spread.

Drawing is most of a report's time, so every figure is cached under a hash of its input
data, its drawing function and the figure style (`cache_key`): an unchanged report draws
nothing, and seaborn is imported only when something must be drawn. No torch here.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from . import aggregate
from .outcome import ACCURACY, Outcome

FIGURE_VERSION = "3"  # bump when a drawing function changes what it draws
NUMERIC_AXES = ("train_size", "width", "train_offset", "lr", "batch_size", "dropout_p",
                "hidden", "epochs", "weight_decay", "warmup_epochs", "val_size")
LOG_AXES = ("train_size", "lr", "weight_decay")
METRICS = {"test_accuracy": "test accuracy (%)", "train_loss": "train loss",
           "test_loss": "test loss"}
DPI = 100


@dataclass(frozen=True)
class Figure:
    name: str  # file stem under figures/
    title: str
    png: bytes


def slug(name: str) -> str:
    """A file name for a user-given name (study, section and cell names are free text):
    the name itself where it is one (letters of any script, digits, _ . -, at most 100
    bytes), else its readable part and a hash of the whole name, so that two names never
    share a file ("α_run" and "β_run", "a b" and "a_b") and any file system takes it."""
    readable = re.sub(r"[^\w.-]+", "_", name).strip("._")
    if name and readable == name and len(name.encode()) <= 100:
        return name
    readable = readable.encode()[:80].decode(errors="ignore").rstrip("._-")
    return f"{readable or 'unnamed'}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


# --------------------------------------------------------------------------- intervals


def t_interval(values) -> tuple[float, float]:
    """seaborn `errorbar`: the t-based 95% CI of the mean (as the tables); one value: ±1
    binomial standard error of an accuracy on the test set (a floor, as the tables say)."""
    values = np.asarray(values, dtype=float)
    mean, low, high = aggregate.mean_ci(values)
    if math.isnan(low):
        se = aggregate.binomial_se(mean) if 0 <= mean <= 100 else 0.0
        return mean - se, mean + se
    return low, high


def t_interval_or_none(values) -> tuple[float, float]:
    """seaborn `errorbar` for losses: the t-based 95% CI, no bar for one value."""
    mean, low, high = aggregate.mean_ci(np.asarray(values, dtype=float))
    return (mean, mean) if math.isnan(low) else (low, high)


# --------------------------------------------------------------------------- cache


def _frame_digest(frame: pd.DataFrame) -> bytes:
    cells = pd.util.hash_pandas_object(frame.astype(object).where(frame.notna(), None),
                                       index=False).to_numpy()
    return hashlib.sha256(cells.tobytes() + repr(list(frame.columns)).encode()).digest()


def cache_key(function, args: tuple) -> str:
    """Hash of what a figure shows: its drawing function, input data and style versions."""
    digest = hashlib.sha256(f"{function.__module__}.{function.__qualname__}|{FIGURE_VERSION}|"
                            f"{_version('seaborn')}|{_version('matplotlib')}".encode())
    for arg in args:
        digest.update(_frame_digest(arg) if isinstance(arg, pd.DataFrame) else repr(arg).encode())
    return digest.hexdigest()[:24]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


class FigureCache:
    """Figures by cache key in one directory (the report's `.figure-cache/`): KEY.png and
    KEY.txt (the figure's file stem and title)."""

    def __init__(self, directory: Path | None):
        self.directory = directory
        self.hits = self.misses = 0

    def get(self, key: str) -> Figure | None:
        if self.directory is not None:
            png, labels = self.directory / f"{key}.png", self.directory / f"{key}.txt"
            if png.is_file() and labels.is_file():
                name, _, title = labels.read_text().partition("\n")
                self.hits += 1
                return Figure(name, title, png.read_bytes())
        self.misses += 1
        return None

    def put(self, key: str, figure: Figure) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for suffix, content in ((".txt", f"{figure.name}\n{figure.title}".encode()),
                                (".png", figure.png)):  # the .png last: it marks a whole entry
            tmp = self.directory / f".{key}{suffix}.tmp"
            tmp.write_bytes(content)
            tmp.replace(self.directory / f"{key}{suffix}")  # a killed report tears no file

    def prune(self, keep: set[str]) -> None:
        """Drop cached figures no current report part uses (old data, old style)."""
        if self.directory is None or not self.directory.is_dir():
            return
        for path in [*self.directory.glob("*.png"), *self.directory.glob("*.txt")]:
            if path.stem not in keep:
                path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- drawing


def _sns():
    """seaborn, imported only when a figure is drawn (a second of import time), themed."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    return sns


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buffer.getvalue()


def varying_axis(rows: pd.DataFrame, factors: Sequence[str] = ()) -> str | None:
    """The one numeric config field or declared factor that varies across a section's
    cells, if nothing else does (no other field, factor or piece of your own)."""
    numeric = [*NUMERIC_AXES, *(f for f in factors if f in rows
                                and pd.api.types.is_numeric_dtype(rows[f])
                                and not pd.api.types.is_bool_dtype(rows[f]))]
    varying = [c for c in numeric if c in rows and rows[c].nunique(dropna=False) > 1]
    others = [c for c in ("arch", "batch_norm", "dropout", "activation", "optimizer",
                          "precision", "schedule", "dataset", "augment", "loss", "step",
                          "metrics", *(f for f in factors if f not in numeric))
              if c in rows and rows[c].nunique() > 1]
    return varying[0] if len(varying) == 1 and not others else None


def axis_label(outcome: Outcome) -> str:
    if outcome == ACCURACY:
        return "test accuracy (%)"
    return f"{outcome.metric}" + (f" ({outcome.unit})" if outcome.unit else "")


def section_figure(name: str, title: str, rows: pd.DataFrame, cells: pd.DataFrame,
                   outcome: Outcome = ACCURACY, factors: Sequence[str] = ()) -> Figure:
    """Each seed's value of the section's outcome (grey), the mean with its 95% CI (blue),
    the published value (red cross); on a numeric axis (size, width, lr...) when one is all
    that varies."""
    sns = _sns()
    import matplotlib.pyplot as plt

    y = outcome.metric
    rows = rows[rows[y].notna()] if y in rows else rows.iloc[:0].assign(**{y: []})
    mean_label = "mean, 95% CI" + (" (1 seed: ±1 SE)" if outcome.percent else "")
    axis = varying_axis(rows, factors)
    order = list(cells["cell"])
    width = max(4.8, 0.75 * len(order) + 2.2) if axis is None else 5.6
    fig, ax = plt.subplots(figsize=(width, 3.6))
    if axis:
        x, data = axis, rows.assign(**{axis: rows[axis].astype(float)})
        sns.scatterplot(data=data, x=x, y=y, color="0.6", s=18, ax=ax,
                        label="each seed")
        sns.lineplot(data=data, x=x, y=y, errorbar=t_interval if outcome.percent
                     else t_interval_or_none, marker="o",
                     err_style="bars", err_kws={"capsize": 4}, color="C0", ax=ax,
                     label=mean_label)
        published = cells.assign(x=cells["cell"].map(dict(zip(rows["cell"], data[axis],
                                                               strict=False))))
        if axis in LOG_AXES:
            ax.set_xscale("log")
        ax.set_xlabel(axis.replace("_", " ") + (" (samples)" if axis == "train_size" else ""))
    else:
        sns.stripplot(data=rows, x="cell", y=y, order=order, color="0.6",
                      size=4, jitter=0.08, ax=ax, label="each seed")
        sns.pointplot(data=rows, x="cell", y=y, order=order,
                      errorbar=t_interval if outcome.percent else t_interval_or_none,
                      linestyle="none", capsize=0.15, color="C0",
                      markers="o", ax=ax, label=mean_label)
        published = cells.assign(x=range(len(order)))
        ax.tick_params(axis="x", labelrotation=20 if len(order) > 3 else 0)
        ax.set_xlabel("")
    if cells["published"].notna().any():
        ax.scatter(published["x"], published["published"], marker="x", color="C3", s=55,
                   zorder=5, label="published")
    _dedupe_legend(ax)
    ax.set_ylabel(axis_label(outcome) + ("" if outcome == ACCURACY else
                                         f", {outcome.direction}"))
    ax.margins(y=0.12)
    ax.set_title(f"{name}: {title}" if title else name)
    what = "test accuracy" if outcome == ACCURACY else outcome.metric
    return Figure(f"section_{slug(name)}", f"{name}: {what} by cell", _png(fig))


def _dedupe_legend(ax) -> None:
    """One legend entry per label, outside the axes (right): a legend covers no data."""
    handles, labels = ax.get_legend_handles_labels()
    seen: dict[str, object] = {}
    for h, label in zip(handles, labels, strict=True):
        seen.setdefault(label, h)
    ax.legend(seen.values(), seen.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False, fontsize=8)


def curves_figure(name: str, epochs: pd.DataFrame, outcome: Outcome = ACCURACY) -> Figure:
    """Per cell, mean test accuracy, train loss and test loss by epoch (and the section's
    outcome, where it is another metric recorded per epoch), with 95% CI bands over
    seeds, side by side; integer epochs; the legend beside the panels."""
    sns = _sns()
    from matplotlib.ticker import MaxNLocator

    shown = dict(METRICS)
    if outcome.metric not in shown and outcome.metric in epochs:
        shown[outcome.metric] = axis_label(outcome)
    long = epochs.melt(id_vars=["cell", "seed", "epoch"], value_vars=list(shown),
                       var_name="metric", value_name="value").dropna(subset=["value"])
    long["metric"] = long["metric"].map(shown)
    grid = sns.relplot(data=long, x="epoch", y="value", hue="cell", col="metric", kind="line",
                       col_order=[m for m in shown.values() if m in set(long["metric"])],
                       errorbar=t_interval_or_none, marker="o", markersize=4,
                       facet_kws={"sharey": False}, height=3.0, aspect=1.05)
    grid.set_titles("{col_name}")
    grid.set_axis_labels("epoch", "")
    for ax in grid.axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    grid.figure.suptitle(f"{name}: learning curves (bands: 95% CI over seeds)", y=1.04)
    return Figure(f"curves_{slug(name)}", f"{name}: accuracy and losses by epoch",
                  _png(grid.figure))


def cost_figure(cells: pd.DataFrame) -> Figure:
    """Mean test accuracy of each cell against its cost, coloured by section: its
    network's parameters (left) and its mean training time (right), both log scale. The
    cells of sections deciding on another metric show their test accuracy too
    (`test_accuracy_mean`)."""
    sns = _sns()
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.8), sharey=True)
    for ax, x, label in ((axes[0], "param_count", "parameters (log scale)"),
                         (axes[1], "train_seconds", "training time per job (s, log scale)")):
        sns.scatterplot(data=cells, x=x, y="test_accuracy_mean", hue="section", s=36, ax=ax,
                        legend=ax is axes[1])
        ax.set_xscale("log")
        ax.set_xlabel(label)
    axes[0].set_ylabel("mean test accuracy (%)")
    fig.suptitle("accuracy against cost: parameters and training time")
    axes[1].legend(title="section", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                   frameon=False, fontsize=8, ncol=1 + len(cells["section"].unique()) // 12)
    return Figure("cost", "accuracy against cost (parameters, training time)", _png(fig))


def sequential_figure(looks: pd.DataFrame) -> Figure:
    """Each claim of a sequential run at every look it reached: the mean paired difference
    with its repeated confidence interval against the seeds, zero, and the margin band;
    the look that decided it filled and labelled."""
    _sns()
    import matplotlib.pyplot as plt

    claims = list(dict.fromkeys(looks["claim"]))
    fig, axes = plt.subplots(len(claims), 1, figsize=(6.4, 1.9 * len(claims) + 0.4),
                             squeeze=False)
    for ax, claim in zip(axes[:, 0], claims, strict=True):
        rows = looks[looks["claim"] == claim]
        margin = rows["margin"].iloc[0]
        unit = rows["unit"].iloc[0] if "unit" in rows else "pp"
        if margin == margin:  # not NaN
            ax.axhspan(-margin, margin, color="tab:green", alpha=0.12, lw=0,
                       label=f"±{margin:g} {unit}".rstrip())
        ax.axhline(0, color="0.4", lw=0.8)
        finite = rows[np.isfinite(rows["high"] - rows["low"])]
        ax.errorbar(finite["seeds"], finite["mean"],
                    yerr=[finite["mean"] - finite["low"], finite["high"] - finite["mean"]],
                    fmt="o", color="tab:blue", mfc="white", capsize=3, lw=1,
                    label="repeated CI (difference)")
        eq = rows[np.isfinite(rows["eq_high"] - rows["eq_low"])]
        if len(eq):  # what TOST compares with the margin band
            ax.errorbar(eq["seeds"] + 0.15, eq["mean"],
                        yerr=[eq["mean"] - eq["eq_low"], eq["eq_high"] - eq["mean"]],
                        fmt="none", color="tab:green", capsize=3, lw=2,
                        label="equivalence interval")
        if len(eq) or margin == margin:
            ax.legend(fontsize=7, loc="upper right", frameon=False)
        done = rows[rows["decided"]]
        ax.plot(done["seeds"], done["mean"], "o", color="tab:blue")
        for r in done.itertuples():
            ax.annotate(r.verdict, (r.seeds, r.mean), textcoords="offset points",
                        xytext=(6, 4), fontsize=8)
        ax.set_title(claim, fontsize=9, loc="left")
        ax.set_ylabel(f"difference ({unit})" if unit else "difference")
        ax.set_xticks(sorted(rows["seeds"].unique()))
    axes[-1, 0].set_xlabel("seeds at the look (repeated CIs: 95% simultaneous over claims "
                           "and looks)")
    fig.tight_layout(h_pad=1.2)
    return Figure("sequential", "claims at every look of the sequential run", _png(fig))
