"""Aggregate stage: statistics over stored results (pure pandas/numpy/scipy, no torch).

Takes the tidy results frame of `ResultStore.results_frame` (one row per section, cell
and replicate); gives summary frames:

- `cell_table`: per cell, n seeds, mean, standard deviation and 95% confidence interval
  of the final test accuracy (percent), mean test loss, training seconds, parameter
  count, the published value and the gap to it. With one seed there is no interval:
  `noise_floor` gives the test set's binomial standard error instead.
- `effects`: per section, each cell against the section's first cell (its baseline):
  the difference in accuracy, paired by seed where at least two seeds match (Welch's
  test otherwise), its 95% CI and p-value, Holm-corrected within the section, and a
  verdict. With one seed per side there is no test; the verdict compares the difference
  with the binomial noise of the test set and says so.

Only rows that are COMPLETE under the current code version count (`state.usable`); the
frame's stale rows are reported separately, never mixed in.

The t tests are written out from their textbook formulas on scipy.special's Student t
functions: scipy.stats costs a second of import time, a third of `cnnbench report`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import stdtr, stdtrit  # Student t CDF and quantile

from . import decisions, planning

ALPHA = 0.05
# A comparison not shown beyond noise is "underpowered" when its seeds had less than this
# power to detect a true difference as large as the one observed: a planning statement
# (how many seeds would settle it), not evidence for or against the difference.
POWER = 0.8
TEST_SET_SIZE = 10_000  # MNIST test images; used for the one-seed noise floor

BETTER, WORSE, SAME = "better", "worse", "no detectable difference"
UNDECIDED = "undecided"  # with a margin: neither a difference nor equivalence shown
HOLM_ONLY = "p < 0.05 alone, not after Holm correction"  # one of many comparisons
UNTESTED_BEYOND = "1 seed: beyond test-set noise, seed noise unknown"
UNTESTED_WITHIN = "1 seed: within test-set noise"


def binomial_se(accuracy_pct: float, n_test: int = TEST_SET_SIZE) -> float:
    """Standard error (percentage points) of an accuracy measured on n_test samples."""
    p = accuracy_pct / 100.0
    return 100.0 * math.sqrt(max(p * (1 - p), 0.0) / n_test)


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two ends of its t-based confidence interval (NaN ends for n < 2)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = t_quantile(level, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def t_quantile(level: float, df: float) -> float:
    """Two-sided critical value of Student's t for a `level` confidence interval."""
    return float(stdtrit(df, 0.5 + level / 2))


def t_pvalue(t: float, df: float) -> float:
    """Two-sided p-value of a t statistic."""
    return float(2 * stdtr(df, -abs(t)))


def welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """Welch's test of mean(b) - mean(a): difference, CI ends (95%) and p-value."""
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    diff = float(b.mean() - a.mean())
    if se == 0:
        return diff, diff, diff, (0.0 if diff else 1.0)
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


def cell_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (section, cell) statistics of the final test accuracy; see the module doc."""
    rows = []
    for (section, position, cell), g in frame.groupby(["section", "position", "cell"],
                                                      sort=False):
        acc = g["test_accuracy"].to_numpy(dtype=float)
        mean, low, high = mean_ci(acc)
        published = g["published"].dropna()
        pub = float(published.iloc[0]) if len(published) else math.nan
        rows.append({
            "section": section, "position": position, "cell": cell, "n": len(acc),
            "mean": mean, "std": float(acc.std(ddof=1)) if len(acc) > 1 else math.nan,
            "ci_low": low, "ci_high": high,
            "noise_floor": binomial_se(mean) if len(acc) == 1 else math.nan,
            "test_loss": float(g["test_loss"].mean()),
            "train_seconds": float(g["train_seconds"].mean()),
            "param_count": int(g["param_count"].iloc[0]),
            "published": pub, "gap": mean - pub,
        })
    return pd.DataFrame(rows)


def equivalent_text(margin: float) -> str:
    return f"equivalent within ±{margin:g} pp"


def compare(base: pd.DataFrame, other: pd.DataFrame, margin: float | None = None) -> dict:
    """Difference other - base in accuracy, with test, CI and method; with a `margin`
    (pp), also TOST's p-value for "within +/- margin" (`p_equiv`, paired seeds only)."""
    d = _paired(base, other)
    row = _compare(base, other, d)
    row["p_equiv"] = math.nan
    if margin is not None and row["method"].startswith("paired"):
        row["p_equiv"] = decisions.ttost_paired(d, margin)[1]
    return row


def _paired(base: pd.DataFrame, other: pd.DataFrame) -> np.ndarray:
    pairs = base[["seed", "test_accuracy"]].merge(other[["seed", "test_accuracy"]], on="seed",
                                                   suffixes=("_base", "_other"))
    return (pairs["test_accuracy_other"] - pairs["test_accuracy_base"]).to_numpy(float)


def _compare(base: pd.DataFrame, other: pd.DataFrame, d: np.ndarray) -> dict:
    a, b = base["test_accuracy"].to_numpy(float), other["test_accuracy"].to_numpy(float)
    if len(d) >= 2:  # d: the paired differences (`_paired`)
        diff, low, high = mean_ci(d)
        se = d.std(ddof=1) / math.sqrt(len(d))
        p = t_pvalue(diff / se, len(d) - 1) if se > 0 else (0.0 if diff else 1.0)
        return {"diff": diff, "ci_low": low, "ci_high": high, "p": p,
                "method": f"paired t, {len(d)} seeds", "sd_diff": float(d.std(ddof=1)),
                **_improvement(a, b)}
    if len(a) >= 2 and len(b) >= 2:
        diff, low, high, p = welch(a, b)
        return {"diff": diff, "ci_low": low, "ci_high": high, "p": p,
                "method": f"Welch t, {len(b)} vs {len(a)} seeds", **_improvement(a, b)}
    diff = float(b.mean() - a.mean())
    noise = math.hypot(binomial_se(a.mean()), binomial_se(b.mean()))
    return {"diff": diff, "ci_low": math.nan, "ci_high": math.nan, "p": math.nan,
            "method": f"1 seed; test-set noise ±{noise:.2f} pp (1 SE)", "noise": noise}


def _improvement(a: np.ndarray, b: np.ndarray) -> dict:
    p, low, high = planning.probability_of_improvement(a, b)
    return {"p_improve": p, "p_improve_low": low, "p_improve_high": high}


def seeds_text(needed) -> str:
    """A seeds-needed figure as text: None or NaN (pandas' form of None) is past 1000."""
    return "over 1000" if needed is None or needed != needed else str(int(needed))


def plan_row(row: dict, power: float = POWER, alpha: float = ALPHA,
             effect: float | None = None) -> dict:
    """Seed planning for one paired comparison (`compare`'s result, with its seed count
    `n`): the power the current seeds have to detect `effect` (default: the observed
    difference) and the seeds a fixed-n design needs to reach `power`."""
    sd = row.get("sd_diff", math.nan)
    target = abs(row["diff"]) if effect is None else abs(effect)
    if math.isnan(sd) or not row["method"].startswith("paired"):
        return {"effect": target, "power": math.nan, "seeds_needed": None}
    return {"effect": target, "power": planning.paired_power(target, sd, row["n"], alpha),
            "seeds_needed": planning.seeds_needed(target, sd, power, alpha)}


def beyond_noise(comparison: dict) -> bool:
    """A one-seed difference larger than twice the test set's standard error."""
    return abs(comparison["diff"]) > 2 * comparison["noise"]


def _verdict(row: dict, margin: float | None = None) -> str:
    if math.isnan(row["p"]):
        return UNTESTED_BEYOND if beyond_noise(row) else UNTESTED_WITHIN
    if margin is not None:  # one of four: better, worse, equivalent, undecided
        if row["p_equiv_holm"] < ALPHA:
            return equivalent_text(margin)
        if row["p_holm"] < ALPHA:
            return BETTER if row["diff"] > 0 else WORSE
        if math.isnan(row.get("sd_diff", math.nan)):
            return f"{UNDECIDED} ({row['diff']:+.2f} pp; needs paired seeds to plan)"
        needed = row.get("seeds_equivalent")
        return (f"{UNDECIDED} ({row['diff']:+.2f} pp; {seeds_text(needed)} seeds to show "
                f"±{margin:g} pp if there is no difference)")
    if row["p_holm"] < ALPHA:
        return BETTER if row["diff"] > 0 else WORSE
    if row["p"] < ALPHA:
        return f"{HOLM_ONLY} ({row['diff']:+.2f} pp)"
    if row.get("power", math.nan) < POWER:  # a real difference this size would go unseen
        needed = row.get("seeds_needed")
        return (f"{SAME} (underpowered for {row['diff']:+.2f} pp: {seeds_text(needed)} "
                "seeds for 80% power)")
    return SAME


def effects(frame: pd.DataFrame, margin: float | None = None) -> pd.DataFrame:
    """Each cell against its section's first cell; see the module doc. With a `margin`
    (the study's smallest effect of interest, pp), each gets one of four verdicts:
    better, worse, equivalent within +/- margin (TOST, Holm-corrected within the
    section like the differences; it takes precedence: a difference smaller than the
    margin is no effect of interest), or undecided."""
    out = []
    for section, g in frame.groupby("section", sort=False):
        cells = g.groupby(["position", "cell"], sort=True)
        groups = [(position, cell, sub) for (position, cell), sub in cells]
        # The baseline is the section's declared first cell; without its results, no test.
        if len(groups) < 2 or groups[0][0] != 0:
            continue
        _, base_cell, base = groups[0]
        rows = [{"section": section, "cell": cell, "baseline": base_cell,
                 "n": len(sub), **compare(base, sub, margin)} for _, cell, sub in groups[1:]]
        equiv = holm([1.0 if math.isnan(r["p_equiv"]) else r["p_equiv"] for r in rows])
        for row, p, pe in zip(rows, holm([r["p"] for r in rows]), equiv, strict=True):
            row["p_holm"] = p
            row["p_equiv_holm"] = math.nan if math.isnan(row["p_equiv"]) else pe
            for key in ("noise", "sd_diff", "p_improve", "p_improve_low", "p_improve_high"):
                row.setdefault(key, math.nan)
            row.update(plan_row(row))
            row["seeds_equivalent"] = (planning.tost_seeds_needed(
                0.0, row["sd_diff"], margin) if margin is not None else None)
            row["verdict"] = _verdict(row, margin)
        out += rows
    columns = ["section", "cell", "baseline", "n", "diff", "ci_low", "ci_high", "p", "p_holm",
               "method", "noise", "verdict", "sd_diff", "p_improve", "p_improve_low",
               "p_improve_high", "effect", "power", "seeds_needed", "p_equiv", "p_equiv_holm",
               "seeds_equivalent"]
    return pd.DataFrame(out, columns=columns)


def check_claims(frame: pd.DataFrame, claims, margin: float | None = None) -> pd.DataFrame:
    """Each claim (spec.Claim) with a verdict and the evidence behind it. `margin`: the
    study's smallest effect of interest, against which a "beats" claim can also be shown
    not to matter (equivalent within it)."""
    rows = []
    for claim in claims:
        section = frame[frame["section"] == claim.section]
        if claim.kind == "beats":
            verdict, evidence = _check_beats(section, claim.cell, claim.baseline, margin)
        elif claim.kind == "equivalent":
            verdict, evidence = _check_equivalent(section, claim.cell, claim.baseline,
                                                  claim.margin)
        else:
            verdict, evidence = _check_increasing(section)
        rows.append({"claim": claim.text, "section": claim.section, "verdict": verdict,
                     "evidence": evidence})
    return pd.DataFrame(rows, columns=["claim", "section", "verdict", "evidence"])


def _check_equivalent(section: pd.DataFrame, cell: str, baseline: str,
                      margin: float) -> tuple[str, str]:
    """"cell and baseline are within +/- margin": holds when TOST shows it (the 90% CI
    inside the band), contradicted when the 90% CI lies wholly outside it (a difference
    beyond the margin, each one-sided test at alpha), else undecided."""
    a, b = section[section["cell"] == baseline], section[section["cell"] == cell]
    if not len(a) or not len(b):
        return "no data", f"needs results for {cell!r} and {baseline!r}"
    r = compare(a, b, margin)
    if math.isnan(r["p_equiv"]):
        return "undecided: needs 2+ paired seeds", f"{r['diff']:+.2f} pp; {r['method']}"
    d = _paired(a, b)
    low, high = (mean_ci(d, 0.90)[1:] if d.std(ddof=1) > 0 else (r["diff"], r["diff"]))
    evidence = (f"{r['diff']:+.2f} pp, 90% CI [{low:+.2f}, {high:+.2f}] against ±{margin:g} "
                f"pp, TOST p = {r['p_equiv']:.3g} ({r['method']})")
    if r["p_equiv"] < ALPHA:
        return "holds", evidence
    if low > margin or high < -margin:
        return "contradicted: the difference exceeds the margin", evidence
    needed = planning.tost_seeds_needed(0.0, r["sd_diff"], margin)
    return (f"undecided ({seeds_text(needed)} seeds to show ±{margin:g} pp if there is no "
            "difference)"), evidence


def _check_beats(section: pd.DataFrame, cell: str, baseline: str,
                 margin: float | None = None) -> tuple[str, str]:
    a, b = section[section["cell"] == baseline], section[section["cell"] == cell]
    if not len(a) or not len(b):
        return "no data", f"needs results for {cell!r} and {baseline!r}"
    r = compare(a, b, margin)
    if math.isnan(r["p"]):
        direction = "consistent with" if r["diff"] > 0 else "against"
        within = "" if beyond_noise(r) else ", within test-set noise"
        return (f"1 seed: {direction} the claim{within}",
                f"{r['diff']:+.2f} pp; {r['method']}; seed noise untested")
    evidence = (f"{r['diff']:+.2f} pp, 95% CI [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}], "
                f"p = {r['p']:.3g} ({r['method']}); P(better) = {r['p_improve']:.2f}")
    if margin is not None and r["p_equiv"] < ALPHA:
        return (f"not shown: {equivalent_text(margin)} (TOST p = {r['p_equiv']:.3g}): any "
                "difference is smaller than the study's margin"), evidence
    if r["p"] < ALPHA:
        return ("holds" if r["diff"] > 0 else "contradicted"), evidence
    plan = plan_row({**r, "n": len(b)})
    if plan["power"] < POWER:
        return (f"not shown: underpowered for {r['diff']:+.2f} pp "
                f"({seeds_text(plan['seeds_needed'])} seeds for 80% power)"), evidence
    return "not shown: no detectable difference", evidence


def _check_increasing(section: pd.DataFrame) -> tuple[str, str]:
    if section["position"].nunique() < 3:
        return "no data", "needs results for at least 3 cells"
    means = section.groupby("position")["test_accuracy"].mean().sort_index()
    rho, p = spearman(section["position"], section["test_accuracy"])
    steps = int((means.diff().dropna() > 0).sum())
    p_text = "p < 0.001" if p < 0.001 else f"p = {p:.3g}"
    evidence = (f"Spearman rho = {rho:+.2f} over {len(section)} results ({p_text}); "
                f"mean rises in {steps} of {len(means) - 1} steps")
    if p < ALPHA:
        return ("holds" if rho > 0 else "contradicted"), evidence
    return "not shown", evidence


def spearman(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    """Spearman's rho (Pearson on average ranks) and its t-approximation p-value."""
    rho = float(np.corrcoef(x.rank().to_numpy(float), y.rank().to_numpy(float))[0, 1])
    n = len(x)
    if abs(rho) >= 1 or n < 3:
        return rho, 0.0 if abs(rho) >= 1 else math.nan
    return rho, t_pvalue(rho * math.sqrt((n - 2) / (1 - rho * rho)), n - 2)


def power_table(frame: pd.DataFrame, claims=(), effect: float | None = None,
                power: float = POWER, alpha: float = ALPHA,
                margin: float | None = None) -> pd.DataFrame:
    """Seed planning for every comparison of `effects` (cell vs section baseline) and every
    "beats" and "equivalent" claim: seeds now, the observed paired difference and its
    spread, the effect planned for (`effect` pp, default the observed difference), the
    power the current seeds have for it, and the seeds a fixed-n design needs to reach
    `power`. With a margin (the study's, or an equivalence claim's own), also the seeds
    TOST needs to show "within +/- margin" with `power` if the true difference is the
    observed one (`seeds_equivalent`; None where it lies outside the margin), and whether
    either test decides the comparison already."""
    pairs = [(r["section"], r["cell"], r["baseline"], "", margin)
             for _, r in effects(frame).iterrows()]
    pairs += [(c.section, c.cell, c.baseline, c.text,
               c.margin if c.kind == "equivalent" else margin)
              for c in claims if c.kind in ("beats", "equivalent")]
    rows = []
    for section, cell, baseline, claim, band in pairs:
        sub = frame[frame["section"] == section]
        a, b = sub[sub["cell"] == baseline], sub[sub["cell"] == cell]
        if not len(a) or not len(b):
            continue
        r = {**compare(a, b, band), "n": min(len(a), len(b))}
        planned = plan_row(r, power, alpha, effect)
        equivalent = (planning.tost_seeds_needed(r["diff"], r["sd_diff"], band, power, alpha)
                      if band is not None and "sd_diff" in r else None)
        rows.append({"section": section, "cell": cell, "baseline": baseline, "claim": claim,
                     "n": r["n"], "diff": r["diff"], "sd_diff": r.get("sd_diff", math.nan),
                     "p": r["p"], "margin": band, "p_equiv": r["p_equiv"],
                     "decided": bool(r["p"] < alpha or r["p_equiv"] < alpha), **planned,
                     "seeds_equivalent": equivalent})
    columns = ["section", "cell", "baseline", "claim", "n", "diff", "sd_diff", "p", "margin",
               "p_equiv", "decided", "effect", "power", "seeds_needed", "seeds_equivalent"]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- sequential


def claim_designs(record: dict, claims) -> dict[str, decisions.Design]:
    """Each claim's design from a stored sequential record (`runner.design_record`): the
    stored looks and levels; its margin is its own (an equivalence claim) or the study's."""
    return {c.text: decisions.Design(tuple(record["looks"]), record["alpha"],
                                     c.margin if c.kind == "equivalent" else record["margin_pp"],
                                     record["claims"], record["spending"]) for c in claims}


def sequence_diffs(frame: pd.DataFrame, record: dict, claim) -> np.ndarray:
    """A claim's paired differences in the order of the design's seed sequence, up to
    the first seed missing on either side."""
    sub = frame[frame["section"] == claim.section]
    a = dict(zip(sub[sub["cell"] == claim.baseline]["seed"],
                 sub[sub["cell"] == claim.baseline]["test_accuracy"], strict=True))
    b = dict(zip(sub[sub["cell"] == claim.cell]["seed"],
                 sub[sub["cell"] == claim.cell]["test_accuracy"], strict=True))
    diffs = []
    for seed in record["seeds"]:
        if seed not in a or seed not in b:
            break
        diffs.append(float(b[seed]) - float(a[seed]))
    return np.array(diffs)


def claim_progress(frame: pd.DataFrame, record: dict, claims) -> dict:
    """Claim text -> `decisions.Progress`: each claim's course so far, replayed from the
    usable results."""
    designs = claim_designs(record, claims)
    return {c.text: decisions.replay(designs[c.text], sequence_diffs(frame, record, c))
            for c in claims}


_SEQUENTIAL_VERDICTS = {  # (claim kind, rule verdict) -> the claim's verdict
    ("beats", decisions.BETTER): "holds",
    ("beats", decisions.WORSE): "contradicted",
    ("equivalent", decisions.EQUIVALENT): "holds",
    ("equivalent", decisions.BETTER): "not shown: the cells differ (better)",
    ("equivalent", decisions.WORSE): "not shown: the cells differ (worse)",
}


def sequential_claims(frame: pd.DataFrame, record: dict, claims) -> pd.DataFrame:
    """The claims of a sequential run with the verdicts of the design that was run: each
    claim's decision, the look that made it, and its evidence at that look (the p-value
    against the look's spent level, and the repeated confidence interval, simultaneous
    over the looks and the claims at 1 - alpha)."""
    designs = claim_designs(record, claims)
    rows = []
    for c in claims:
        design = designs[c.text]
        d = sequence_diffs(frame, record, c)
        p = decisions.replay(design, d)
        margin = design.margin
        verdict = _SEQUENTIAL_VERDICTS.get((c.kind, p.verdict))
        if verdict is None and p.verdict == decisions.EQUIVALENT:
            verdict = f"not shown: {equivalent_text(margin)}"
        if verdict is None:
            verdict = (f"undecided after {p.seeds} seeds (the most)" if p.finished else
                       f"undecided so far ({p.seeds} seeds; next look at {p.needs})")
        k = p.look if p.look is not None else (design.looks.index(p.seeds)
                                               if p.seeds in design.looks else None)
        rows.append({"claim": c.text, "section": c.section, "verdict": verdict,
                     "evidence": _look_evidence(d, design, k), "look": k, "seeds": p.seeds})
    return pd.DataFrame(rows, columns=["claim", "section", "verdict", "evidence", "look",
                                       "seeds"])


def _look_halfwidths(x: np.ndarray, design: decisions.Design, look: int) -> tuple[float, float]:
    """Half-widths of a look's repeated confidence interval (two-sided, at the look's
    difference level) and of its equivalence interval (one-sided level each way, what
    TOST compares with the margin; infinite without a margin or where nothing is spent)."""
    n = len(x)
    se = float(x.std(ddof=1)) / math.sqrt(n)
    level = design.difference_levels[look]
    gamma = design.equivalence_levels[look] if design.margin is not None else 0.0
    half = float(stdtrit(n - 1, 1 - level / 2)) * se if level > 0 else math.inf
    eq = float(stdtrit(n - 1, 1 - gamma)) * se if gamma > 0 else math.inf
    return half, eq


def _look_evidence(d: np.ndarray, design: decisions.Design, look: int | None) -> str:
    if look is None:
        return f"{len(d)} paired seed(s) so far; first look at {design.looks[0]}"
    n = design.looks[look]
    x = d[:n]
    mean, _, p = decisions.paired_t(x)
    level = design.difference_levels[look]
    half, eq = _look_halfwidths(x, design, look)
    text = (f"{mean:+.2f} pp at look {look + 1} of {len(design.looks)} ({n} seeds), "
            f"repeated {1 - design.alpha:.0%} CI [{mean - half:+.2f}, {mean + half:+.2f}]; "
            f"p = {p:.3g} against the look's level {level:.2g}")
    if design.margin is not None:
        tost = decisions.ttost_paired(x, design.margin)[1]
        gamma = design.equivalence_levels[look]
        text += (f"; TOST p = {tost:.3g} against {gamma:.2g}: equivalence interval "
                 f"[{mean - eq:+.2f}, {mean + eq:+.2f}] against ±{design.margin:g} pp")
    return text


def sequential_looks(frame: pd.DataFrame, record: dict, claims) -> pd.DataFrame:
    """One row per claim and look it reached: seeds, mean paired difference, the repeated
    confidence interval at that look's difference level, the equivalence interval at its
    equivalence level (what TOST compares with the margin; infinite without one), the
    margin (NaN: none) and whether that look decided the claim (the report's figure)."""
    designs = claim_designs(record, claims)
    rows = []
    for c in claims:
        design, d = designs[c.text], sequence_diffs(frame, record, c)
        p = decisions.replay(design, d)
        for k, n in enumerate(design.looks):
            if n > len(d) or (p.look is not None and k > p.look):
                break
            mean = float(d[:n].mean())
            half, eq = _look_halfwidths(d[:n], design, k)
            rows.append({"claim": c.text, "seeds": n, "mean": mean, "low": mean - half,
                         "high": mean + half, "eq_low": mean - eq, "eq_high": mean + eq,
                         "decided": p.look == k,
                         "margin": design.margin if design.margin is not None else math.nan,
                         "verdict": p.verdict if p.look == k else ""})
    return pd.DataFrame(rows, columns=["claim", "seeds", "mean", "low", "high", "eq_low",
                                       "eq_high", "decided", "margin", "verdict"])
