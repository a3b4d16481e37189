"""Aggregate stage: statistics over stored results (pure pandas/numpy/scipy, no torch).

Takes the tidy results frame of `ResultStore.results_frame` (one row per section, cell
and replicate); gives summary frames, each on the outcome its section or claim decides on
(`outcome.Outcome`: final test accuracy unless it names another recorded metric; a
difference is in that metric's unit, "better" follows its direction):

- `cell_table`: per cell, n seeds, mean, standard deviation and 95% confidence interval
  of the final test accuracy (percent), mean test loss, training seconds, parameter
  count, the published value and the gap to it. With one seed there is no interval:
  `noise_floor` gives the test set's binomial standard error instead.
- `effects`: per section, each cell against the section's first cell (its baseline):
  the difference in accuracy, paired by seed where at least two seeds match (Welch's
  test otherwise), its 95% CI and p-value, the paired P(better), and a verdict from the
  section's family (`decisions.closed_test`); a comparison a claim makes takes the
  claim's verdict instead. With one seed per side there is no test; the verdict compares
  the difference with the binomial noise of the test set and says so.
The study's claims and the seed planning are `claims` (`check_claims`, `power_table`), on
the same comparisons and closed test.

Accuracy differences are compared at the data's resolution (one test image, `decisions`);
other metrics as they are.

Only rows that are COMPLETE under the current code version count (`state.usable`); the
frame's stale rows are reported separately, never mixed in.

The t tests are written out from their textbook formulas on scipy.special's Student t
functions: scipy.stats costs a second of import time, a third of `cnnbench report`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.special import stdtr, stdtrit  # Student t CDF and quantile

from . import decisions, planning
from .outcome import ACCURACY, Outcome
from .policy import ALPHA, POWER, planning_alpha

TEST_SET_SIZE = 10_000  # MNIST test images; used for the one-seed noise floor

BETTER, WORSE, SAME = "better", "worse", "no detectable difference"
UNDECIDED = "undecided"  # with a margin: neither a difference nor equivalence shown
HOLM_ONLY = "p < 0.05 alone, not family-wise"  # one of many comparisons
UNTESTED_BEYOND = "1 seed: beyond test-set noise, seed noise unknown"
UNTESTED_WITHIN = "1 seed: within test-set noise"
CLAIMED = "claim"  # a table row a claim makes: its verdict is the claim's


def images_of(frame: pd.DataFrame, outcome: Outcome) -> int:
    """The images an accuracy is counted on: the validation split's (`val_size`) for
    val_accuracy, else the test set's (TEST_SET_SIZE)."""
    if outcome.metric == "val_accuracy" and "val_size" in frame and len(frame):
        return int(frame["val_size"].iloc[0]) or TEST_SET_SIZE
    return TEST_SET_SIZE


def binomial_se(accuracy_pct: float, n_test: int = TEST_SET_SIZE) -> float:
    """Standard error (percentage points) of an accuracy measured on n_test samples."""
    p = accuracy_pct / 100.0
    return 100.0 * math.sqrt(max(p * (1 - p), 0.0) / n_test)


def mean_ci(values: np.ndarray, level: float = 0.95,
            resolution: float = 0.0) -> tuple[float, float, float]:
    """Mean and the two ends of its t-based confidence interval (NaN ends for n < 2); the
    spread is floored at the data's resolution as `decisions` does."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    sd = max(float(values.std(ddof=1)), resolution)
    half = t_quantile(level, len(values) - 1) * sd / math.sqrt(len(values))
    return mean, mean - half, mean + half


def t_quantile(level: float, df: float) -> float:
    """Two-sided critical value of Student's t for a `level` confidence interval."""
    return float(stdtrit(df, 0.5 + level / 2))


def t_pvalue(t: float, df: float) -> float:
    """Two-sided p-value of a t statistic."""
    return float(2 * stdtr(df, -abs(t)))


def welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """Welch's test of mean(b) - mean(a): difference, CI ends (95%) and p-value (NaN
    ends and p without spread: no test)."""
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    diff = float(b.mean() - a.mean())
    if se == 0:
        return diff, math.nan, math.nan, math.nan
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = t_quantile(0.95, df) * se
    return diff, diff - half, diff + half, t_pvalue(diff / se, df)


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order (NaN entries stay NaN)."""
    indexed = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    indexed.sort()
    m, adjusted, running = len(indexed), [math.nan] * len(p_values), 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def resolution(frame: pd.DataFrame, outcome: Outcome = ACCURACY) -> float:
    """The step of an accuracy (pp) in a results frame: one test image (`decisions`); 0
    for any other outcome (no rounding)."""
    if not outcome.percent or not len(frame) or outcome.metric not in frame:
        return 0.0
    return decisions.resolution_of(frame[outcome.metric].dropna())


Outcomes = Mapping[str, Outcome] | Outcome | None  # per section, or one for every section


def outcome_in(outcomes: Outcomes, section: str) -> Outcome:
    """A section's outcome: from a mapping by section name, or the one given (accuracy)."""
    if isinstance(outcomes, Mapping):
        return outcomes.get(section, ACCURACY)
    return outcomes or ACCURACY


def values_of(frame: pd.DataFrame, outcome: Outcome) -> np.ndarray:
    """The outcome's values of `frame`'s rows (NaN where a row does not record it)."""
    if outcome.metric not in frame:
        return np.full(len(frame), math.nan)
    return frame[outcome.metric].to_numpy(dtype=float)


def cell_table(frame: pd.DataFrame, outcomes: Outcomes = None) -> pd.DataFrame:
    """Per (section, cell) statistics of the section's outcome (final test accuracy unless
    it decides on another metric); see the module doc."""
    rows = []
    for (section, position, cell), g in frame.groupby(["section", "position", "cell"],
                                                      sort=False):
        outcome = outcome_in(outcomes, section)
        res = resolution(frame[frame["section"] == section], outcome)
        acc = values_of(g, outcome)
        acc = acc[~np.isnan(acc)]
        if not len(acc):
            continue
        mean, low, high = mean_ci(acc, 0.95, res)
        published = g["published"].dropna()
        pub = (float(published.iloc[0]) if len(published) and outcome.metric == "test_accuracy"
               else math.nan)
        rows.append({
            "section": section, "position": position, "cell": cell, "n": len(acc),
            "metric": outcome.metric,
            "mean": mean, "std": float(acc.std(ddof=1)) if len(acc) > 1 else math.nan,
            "ci_low": low, "ci_high": high,
            "noise_floor": (binomial_se(mean, images_of(g, outcome))
                            if len(acc) == 1 and outcome.percent else math.nan),
            "test_accuracy_mean": float(g["test_accuracy"].mean()),
            "test_loss": float(g["test_loss"].mean()),
            "train_seconds": float(g["train_seconds"].mean()),
            "param_count": int(g["param_count"].iloc[0]),
            "published": pub, "gap": mean - pub,
        })
    return pd.DataFrame(rows)


def equivalent_text(margin: float, outcome: Outcome = ACCURACY) -> str:
    return f"equivalent within {outcome.band(margin)}"


def compare(base: pd.DataFrame, other: pd.DataFrame, margin: float | None = None,
            res: float | None = None, outcome: Outcome = ACCURACY) -> dict:
    """Difference other - base in the outcome (its own unit), with test, CI and method;
    with a `margin` (the outcome's unit), also TOST's p-value for "within +/- margin"
    (`p_equiv`, paired seeds only). `n_paired`: the seeds the paired test used (0 for
    Welch's or one seed). P(better) follows the outcome's direction."""
    res = resolution(pd.concat([base, other]), outcome) if res is None else res
    d = paired(base, other, outcome)
    row = _compare(base, other, d, res, outcome)
    row["p_equiv"] = math.nan
    if margin is not None and row["method"].startswith("paired"):
        row["p_equiv"] = decisions.ttost_paired(d, margin, res)[1]
    return row


def paired(base: pd.DataFrame, other: pd.DataFrame, outcome: Outcome = ACCURACY
            ) -> np.ndarray:
    """other - base by seed, for the seeds both sides record the outcome for."""
    column = outcome.metric
    if column not in base or column not in other:
        return np.array([])
    pairs = base[["seed", column]].merge(other[["seed", column]], on="seed",
                                         suffixes=("_base", "_other")).dropna()
    return (pairs[f"{column}_other"] - pairs[f"{column}_base"]).to_numpy(float)


def _compare(base: pd.DataFrame, other: pd.DataFrame, d: np.ndarray, res: float,
             outcome: Outcome = ACCURACY) -> dict:
    a, b = values_of(base, outcome), values_of(other, outcome)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(d) >= 2:  # d: the paired differences (`_paired`)
        diff, _, p = decisions.paired_t(d, res)
        rounded = decisions.at_resolution(d, res)
        _, low, high = mean_ci(rounded, 0.95, res)
        sd = max(float(rounded.std(ddof=1)), res)
        better, b_low, b_high = planning.probability_of_improvement(outcome.sign * d, res)
        return {"diff": diff, "ci_low": low, "ci_high": high, "p": p,
                "method": f"paired t, {len(d)} seeds", "sd_diff": sd, "n_paired": len(d),
                "p_improve": better, "p_improve_low": b_low, "p_improve_high": b_high}
    unpaired = {"sd_diff": math.nan, "p_improve": math.nan, "p_improve_low": math.nan,
                "p_improve_high": math.nan, "n_paired": 0}
    if len(a) >= 2 and len(b) >= 2:
        diff, low, high, p = welch(a, b)
        return {"diff": diff, "ci_low": low, "ci_high": high, "p": p, **unpaired,
                "method": f"Welch t, {len(b)} vs {len(a)} seeds (unpaired)"}
    diff = float(b.mean() - a.mean()) if len(a) and len(b) else math.nan
    if not outcome.percent:
        return {"diff": diff, "ci_low": math.nan, "ci_high": math.nan, "p": math.nan,
                **unpaired, "method": "1 seed; no noise estimate", "noise": math.nan}
    noise = math.hypot(binomial_se(a.mean(), images_of(base, outcome)),
                       binomial_se(b.mean(), images_of(other, outcome)))
    return {"diff": diff, "ci_low": math.nan, "ci_high": math.nan, "p": math.nan, **unpaired,
            "method": f"1 seed; test-set noise ±{noise:.2f} pp (1 SE)", "noise": noise}


def seeds_text(needed) -> str:
    """A seeds-needed figure as text: None or NaN (pandas' form of None) is past 1000."""
    return "over 1000" if needed is None or needed != needed else str(int(needed))


def plan_row(row: dict, family: int, power: float = POWER, alpha: float = ALPHA,
             effect: float | None = None) -> dict:
    """Seed planning for one paired comparison (`compare`'s result) in a family of
    `family` comparisons, at the level its verdict uses (`policy.planning_alpha`), with
    the seeds its paired test used: for the smallest effect of interest `effect` (the
    margin or `--effect`), the power those seeds have and the seeds a fixed-n design
    needs for `power`; without one, the smallest effect those seeds detect with `power`
    (`detectable`). Never the power at the observed difference (a transform of p)."""
    sd, n = row.get("sd_diff", math.nan), row.get("n_paired", 0)
    level = planning_alpha(alpha, family)
    out = {"effect": math.nan if effect is None else abs(effect), "power": math.nan,
           "seeds_needed": None, "detectable": math.nan, "level": level}
    if math.isnan(sd) or n < 2:
        return out
    if effect is None:
        out["detectable"] = planning.detectable_effect(sd, n, power, level)
        return out
    out["power"] = planning.paired_power(effect, sd, n, level)
    out["seeds_needed"] = planning.seeds_needed(effect, sd, power, level)
    return out


def beyond_noise(comparison: dict) -> bool:
    """A one-seed difference larger than twice the test set's standard error."""
    return abs(comparison["diff"]) > 2 * comparison["noise"]


def detectable_text(x: float, outcome: Outcome) -> str:
    """'±0.42 pp', or '±0.0123 s' in another outcome's unit."""
    return f"±{x:.2f} pp" if outcome.percent else outcome.band(float(f"{x:.3g}"))


def direction(diff: float, outcome: Outcome) -> str:
    return BETTER if outcome.better(diff) else WORSE


def _both_text(row: dict, margin: float, outcome: Outcome = ACCURACY) -> str:
    return (f"{equivalent_text(margin, outcome)}; also {direction(row['diff'], outcome)} by "
            f"{outcome.diff(row['diff'])} (a difference smaller than the margin)")


def _verdict(row: dict, margin: float | None = None, outcome: Outcome = ACCURACY) -> str:
    """A table row's verdict from its family's closed test (`reject_diff`, `reject_equiv`)."""
    d = outcome.diff(row["diff"])
    if math.isnan(row["p"]) and math.isnan(row.get("p_equiv", math.nan)):
        if row["method"].startswith("1 seed"):
            if not outcome.percent:
                return f"1 seed: no test ({d})"
            return UNTESTED_BEYOND if beyond_noise(row) else UNTESTED_WITHIN
        return f"no test: the seeds show no spread ({d})"
    if row["reject_equiv"] and row["reject_diff"]:
        return _both_text(row, margin, outcome)
    if row["reject_equiv"]:
        return equivalent_text(margin, outcome)
    if row["reject_diff"]:
        return direction(row["diff"], outcome)
    if row["p"] < ALPHA:
        return f"{HOLM_ONLY} ({d})"
    if margin is not None:
        band = outcome.band(margin)
        if math.isnan(row.get("sd_diff", math.nan)):
            return f"{UNDECIDED} ({d}; needs paired seeds to plan)"
        return (f"{UNDECIDED} ({d}; power {row['power']:.2f} for {band}, "
                f"{seeds_text(row['seeds_needed'])} seeds for 80%; "
                f"{seeds_text(row.get('seeds_equivalent'))} to show {band} if there is "
                "no difference)")
    if row["detectable"] == row["detectable"]:  # not NaN
        return (f"{SAME} ({d}; {row['n_paired']} paired seeds detect "
                f"{detectable_text(row['detectable'], outcome)} with 80% power)")
    return f"{SAME} ({d}; unpaired seeds: no plan)"


def family_test(rows: list[dict], alpha: float = ALPHA) -> None:
    """The closed test over one family's rows (each with `p`, `p_equiv`): sets
    `reject_diff`, `reject_equiv` and the `step_level` each row had to reach. A row with
    no test at all (one seed a side, or no data) cannot be rejected, falsely or not, so it
    takes no share of alpha: which rows have a test depends on the seeds run, not on
    their results."""
    for r in rows:
        r["reject_diff"], r["reject_equiv"], r["step_level"] = False, False, math.nan
    tested = [r for r in rows if r["p"] == r["p"] or r.get("p_equiv", math.nan) ==
              r.get("p_equiv", math.nan)]
    if not tested:
        return
    first = [r["p"] for r in tested]
    second = [r.get("p_equiv", math.nan) for r in tested]
    rej_diff, rej_eq = decisions.closed_test(first, second, alpha)
    larger = [max(a, b) if b == b else a for a, b in zip(first, second, strict=True)]
    levels = decisions.step_levels(larger, alpha)
    for r, d, e, level in zip(tested, rej_diff, rej_eq, levels, strict=True):
        r["reject_diff"], r["reject_equiv"], r["step_level"] = bool(d), bool(e), float(level)


def pair_key(section: str, cell: str, baseline: str, metric: str) -> tuple:
    """What identifies a comparison of two cells: a table row, or a claim making it."""
    return section, frozenset((cell, baseline)), metric


def claimed_pairs(claims) -> dict:
    """(section, {cell, baseline}, metric) -> claim, for the claims comparing two cells:
    the table rows whose verdict is a claim's (a claim on another metric than its
    section's makes no row of the section's table)."""
    return {pair_key(c.section, c.cell, c.baseline, (c.outcome or ACCURACY).metric): c
            for c in claims if c.kind in ("beats", "equivalent")}


def margin_for(margin: float | None, outcome: Outcome, study_outcome: Outcome
               ) -> float | None:
    """The study's margin where a comparison decides on the study's outcome (it is in
    that outcome's unit); none for a section or claim on another metric."""
    return margin if outcome == study_outcome else None


def effects(frame: pd.DataFrame, margin: float | None = None,
            claim_verdicts: dict | None = None, claims_family: int | None = None,
            alpha: float = ALPHA, outcomes: Outcomes = None,
            study_outcome: Outcome = ACCURACY) -> pd.DataFrame:
    """Each cell against its section's first cell, on the section's outcome (`outcomes`:
    by section name; test accuracy by default); see the module doc. With a `margin` (the
    study's smallest effect of interest, in the unit of `study_outcome`), each comparison
    on that outcome gets one of four verdicts: better, worse, equivalent within +/-
    margin (TOST), or undecided, from the section's family. `claim_verdicts`: (`pair_key`:
    section, the two cells, the metric) -> the verdict of the claim that makes this comparison
    (such rows leave the section's family and show it, and are planned in the claims'
    family of `claims_family` claims)."""
    claim_verdicts = claim_verdicts or {}
    claims_family = claims_family or max(len(claim_verdicts), 1)
    study_margin = margin
    out = []
    for section, g in frame.groupby("section", sort=False):
        outcome = outcome_in(outcomes, section)
        margin = margin_for(study_margin, outcome, study_outcome)
        res = resolution(g, outcome)
        g = g[~np.isnan(values_of(g, outcome))]
        cells = g.groupby(["position", "cell"], sort=True)
        groups = [(position, cell, sub) for (position, cell), sub in cells]
        # The baseline is the section's declared first cell; without its results, no test.
        if len(groups) < 2 or groups[0][0] != 0:
            continue
        _, base_cell, base = groups[0]
        rows = [{"section": section, "cell": cell, "baseline": base_cell, "metric": outcome.metric,
                 "n": len(sub), **compare(base, sub, margin, res, outcome)}
                for _, cell, sub in groups[1:]]
        own = [r for r in rows
               if pair_key(section, r["cell"], base_cell, outcome.metric) not in claim_verdicts]
        family_test(own, alpha)
        for row in rows:
            for key in ("noise", "sd_diff", "p_improve", "p_improve_low", "p_improve_high"):
                row.setdefault(key, math.nan)
            key = pair_key(section, row["cell"], base_cell, outcome.metric)
            family = claims_family if key in claim_verdicts else len(own) or 1
            row.update(plan_row(row, family, alpha=alpha, effect=margin))
            row["seeds_equivalent"] = (planning.tost_seeds_needed(
                0.0, row["sd_diff"], margin, POWER, row["level"])
                if margin is not None else None)
            if key in claim_verdicts:
                row.update(reject_diff=False, reject_equiv=False, step_level=math.nan)
                row["verdict"] = f"{CLAIMED}: {claim_verdicts[key]}"
            else:
                row["verdict"] = _verdict(row, margin, outcome)
            row["family"] = "claims" if key in claim_verdicts else f"section {section}"
        out += rows
    columns = ["section", "cell", "baseline", "metric", "n", "diff", "ci_low", "ci_high", "p",
               "step_level", "method", "noise", "verdict", "sd_diff", "n_paired", "p_improve",
               "p_improve_low", "p_improve_high", "effect", "power", "seeds_needed",
               "detectable", "level", "p_equiv", "reject_diff", "reject_equiv",
               "seeds_equivalent", "family"]
    return pd.DataFrame(out, columns=columns)
