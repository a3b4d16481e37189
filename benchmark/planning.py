"""Seed planning and the probability of improvement (pure numpy/scipy, no torch).

- `seeds_needed`: fixed-n planning for a paired comparison (two cells trained with the
  same seeds): the smallest number of seeds n for which a two-sided paired t test at
  level `alpha` detects a true mean difference `effect` with probability `power`, given
  the standard deviation of the per-seed differences. Exact power from the noncentral t
  distribution, not the normal approximation (which understates n for small n). Plan
  n first, then run n seeds and test once: adding seeds until p < alpha inflates false
  positives, so nothing here looks at the p-value.
- `paired_power`: the power a paired t test with n seeds has for an effect.
- `probability_of_improvement`: P(B > A) over seeds (the Mann-Whitney statistic
  U / (n_A n_B), ties counting one half), with the Hanley-McNeil standard error and a
  normal 95% interval clipped to [0, 1], as the reliable-evaluation literature
  (Agarwal et al., 2021) recommends beside the mean difference.

Written on scipy.special's t and noncentral t functions, like `aggregate` (scipy.stats
would add a second to every report's import time).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import nctdtr, stdtrit  # noncentral t CDF, Student t quantile

MAX_SEEDS = 1000


def _grid() -> np.ndarray:
    """The seed counts the searches try: every n from 2 to 64, then 10% steps to
    MAX_SEEDS (exact where it matters, fast beyond)."""
    ns, n = [], 2
    while n <= MAX_SEEDS:
        ns.append(n)
        n = n + 1 if n < 64 else int(n * 1.1)
    return np.array(ns)


GRID = _grid()


def _paired_powers(effect: float, sd: float, n, alpha: float) -> np.ndarray:
    """`paired_power` at every seed count in the array `n` at once (n >= 2)."""
    n = np.asarray(n, dtype=float)
    if sd <= 0:
        return np.full(n.shape, 1.0 if effect else alpha)
    df = n - 1
    crit = stdtrit(df, 1 - alpha / 2)
    nc = abs(effect) / (sd / np.sqrt(n))
    with np.errstate(invalid="ignore"):
        upper = 1 - nctdtr(df, nc, crit)
        # The wrong-sign tail is below P(T < 0) = Phi(-nc); far out, nctdtr can be NaN.
        lower = np.where(nc > 8, 0.0, nctdtr(df, nc, -crit))
    bad = np.isnan(upper) | np.isnan(lower)
    if bad.any():
        from scipy.stats import nct  # slower to import, sturdier in the far tails

        upper[bad] = nct.sf(crit[bad], df[bad], nc[bad])
        lower[bad] = nct.cdf(-crit[bad], df[bad], nc[bad])
    return upper + lower


def paired_power(effect: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Power of a two-sided paired t test with `n` pairs for a true mean difference
    `effect` when the differences have standard deviation `sd`."""
    if n < 2:
        return math.nan
    return float(_paired_powers(effect, sd, [n], alpha)[0])


def _first(powers: np.ndarray, power: float) -> int | None:
    reached = np.flatnonzero(powers >= power)
    return int(GRID[reached[0]]) if len(reached) else None


def seeds_needed(effect: float, sd: float, power: float = 0.8, alpha: float = 0.05) -> int | None:
    """Smallest n (>= 2, on `GRID`) of paired seeds reaching `power`; None beyond
    MAX_SEEDS or for a zero effect (no n detects nothing). Every n in one vectorised
    evaluation: a report with a thousand comparisons plans them in well under a second."""
    if effect == 0 or math.isnan(effect) or math.isnan(sd):
        return None
    return _first(_paired_powers(effect, sd, GRID, alpha), power)


def _tost_powers(effect: float, sd: float, n, margin: float, alpha: float) -> np.ndarray:
    n = np.asarray(n, dtype=float)
    if sd <= 0:
        return np.full(n.shape, 1.0 if abs(effect) < margin else 0.0)
    df, se = n - 1, sd / np.sqrt(n)
    crit = stdtrit(df, 1 - alpha)
    with np.errstate(invalid="ignore"):
        fail_low = nctdtr(df, (effect + margin) / se, crit)  # P(T_low <= crit)
        fail_high = 1 - nctdtr(df, (effect - margin) / se, -crit)  # P(T_high >= -crit)
    bad = np.isnan(fail_low) | np.isnan(fail_high)
    if bad.any():
        from scipy.stats import nct  # sturdier in the far tails

        fail_low[bad] = nct.cdf(crit[bad], df[bad], ((effect + margin) / se)[bad])
        fail_high[bad] = nct.sf(-crit[bad], df[bad], ((effect - margin) / se)[bad])
    return np.maximum(0.0, 1 - fail_low - fail_high)


def tost_power(effect: float, sd: float, n: int, margin: float, alpha: float = 0.05) -> float:
    """Power of the paired TOST (`decisions.ttost_paired` at level `alpha`) with `n` pairs to
    show "within +/- margin" when the true mean difference is `effect`: one minus the
    chances that either one-sided test fails (noncentral t; a lower bound, close where the
    power is high, since both tests share the sample's standard deviation)."""
    if n < 2:
        return math.nan
    return float(_tost_powers(effect, sd, [n], margin, alpha)[0])


def tost_seeds_needed(effect: float, sd: float, margin: float, power: float = 0.8,
                      alpha: float = 0.05) -> int | None:
    """Smallest n (>= 2, on `GRID`) of paired seeds for which TOST shows "within +/-
    margin" with `power` when the true difference is `effect`; None beyond MAX_SEEDS, or
    when the effect is not inside the margin (no n shows a false equivalence on purpose)."""
    if math.isnan(effect) or math.isnan(sd) or abs(effect) >= margin:
        return None
    return _first(_tost_powers(effect, sd, GRID, margin, alpha), power)


def probability_of_improvement(a, b) -> tuple[float, float, float]:
    """P(B > A) with the ends of its 95% interval (NaN ends when either side has < 2)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    greater = (b[:, None] > a[None, :]).sum() + 0.5 * (b[:, None] == a[None, :]).sum()
    pairs = len(a) * len(b)
    p = float(greater / pairs)
    if len(a) < 2 or len(b) < 2:
        return p, math.nan, math.nan
    # At 0 or 1 the Hanley-McNeil variance vanishes; half a pair moved keeps the interval
    # from collapsing onto a point that a handful of seeds cannot establish.
    v = min(max(p, 0.5 / pairs), 1 - 0.5 / pairs)
    q1, q2 = v / (2 - v), 2 * v * v / (1 + v)
    var = (v * (1 - v) + (len(b) - 1) * (q1 - v * v) + (len(a) - 1) * (q2 - v * v)) / pairs
    half = 1.959964 * math.sqrt(max(var, 0.0))
    return p, max(0.0, p - half), min(1.0, p + half)


def seeds_command(study_file: str, n: int) -> str:
    """The `cnnbench run` line that brings every cell of a study to seeds 0..n-1."""
    return f"cnnbench run {study_file} --seeds 0-{n - 1}"
