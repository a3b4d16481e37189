"""Seed planning and the paired probability of improvement (pure numpy/scipy, no torch).

- `paired_power`: the power of a two-sided paired t test with n seeds at level `alpha`
  for a true mean difference `effect`, given the standard deviation of the per-seed
  differences. Exact power from the noncentral t distribution, computed here by
  quadrature over the chi-square law of the sample variance (`nct_cdf`): scipy's
  noncentral t returns NaN in parts of the planning range, this has no such hole.
- `seeds_needed`: the smallest number of seeds n reaching `power` for an effect.
- `detectable_effect`: the smallest effect n seeds detect with `power` (the minimal
  detectable effect), what a report gives where no effect of interest was declared.
- `tost_seeds_needed`: the same for equivalence (two one-sided tests).
  Plan n first, then run n seeds and test once: adding seeds until p < alpha inflates
  false positives, so nothing here looks at the p-value. Every figure is for the level
  the verdict will use (the caller passes it: `policy.planning_alpha`).
- `probability_of_improvement`: P(B > A) on a seed, over matched seeds (the share of
  paired differences above zero, ties counting one half), with a Clopper-Pearson
  interval; `perf/sequential.py --coverage` measures its coverage.

Written on scipy.special (scipy.stats would add a second to every report's import time).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.special import betaincinv, gammaincinv, ndtr, stdtrit

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


@lru_cache(maxsize=4)
def _nodes(points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on (0, 1)."""
    x, w = np.polynomial.legendre.leggauss(points)
    return (x + 1) / 2, w / 2


def _scales(df: np.ndarray) -> np.ndarray:
    """sqrt(V / df) at V's quantiles at the quadrature nodes, one row per df."""
    u, _ = _nodes()
    return np.sqrt(2 * gammaincinv(df[..., None] / 2, u) / df[..., None])


@lru_cache(maxsize=1)
def _grid_scales() -> np.ndarray:
    return _scales(GRID - 1.0)  # the searches' degrees of freedom, computed once


def nct_cdf(x, df, nc, scales: np.ndarray | None = None) -> np.ndarray:
    """P(T <= x) for T noncentral t with `df` degrees of freedom and noncentrality `nc`
    (arrays broadcast): T = (Z + nc) / sqrt(V / df), V chi-square on df, so the CDF is
    E[Phi(x sqrt(V / df) - nc)], integrated over V's quantiles by Gauss-Legendre
    quadrature (200 points: within 1e-5 of scipy's noncentral t where scipy is finite,
    and finite everywhere). `scales`: `_scales(df)`, when the caller has it already."""
    x, df, nc = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, df, nc)))
    _, w = _nodes()
    s = _scales(df) if scales is None else scales
    return np.sum(w * ndtr(x[..., None] * s - nc[..., None]), axis=-1)


def _paired_powers(effect: float, sd: float, n, alpha: float) -> np.ndarray:
    """`paired_power` at every seed count in the array `n` at once (n >= 2)."""
    n = np.asarray(n, dtype=float)
    if sd <= 0:
        return np.full(n.shape, 1.0 if effect else alpha)
    df = n - 1
    crit = stdtrit(df, 1 - alpha / 2)
    nc = abs(effect) / (sd / np.sqrt(n))
    scales = _grid_scales() if n.shape == GRID.shape and np.all(n == GRID) else None
    return 1 - nct_cdf(crit, df, nc, scales) + nct_cdf(-crit, df, nc, scales)


def paired_power(effect: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Power of a two-sided paired t test with `n` pairs for a true mean difference
    `effect` when the differences have standard deviation `sd`."""
    if n < 2 or math.isnan(sd) or math.isnan(effect):
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


def detectable_effect(sd: float, n: int, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest true mean difference (same unit as `sd`) that a two-sided paired t
    test with `n` seeds at `alpha` detects with probability `power`: the minimal
    detectable effect (NaN with fewer than 2 seeds or no spread estimate)."""
    if n < 2 or math.isnan(sd) or sd <= 0:
        return math.nan
    high = sd
    while paired_power(high, sd, n, alpha) < power:
        high *= 2
    low = 0.0
    for _ in range(60):  # bisection to a relative 1e-15 or so
        mid = (low + high) / 2
        low, high = (mid, high) if paired_power(mid, sd, n, alpha) < power else (low, mid)
    return high


def _tost_powers(effect: float, sd: float, n, margin: float, alpha: float) -> np.ndarray:
    n = np.asarray(n, dtype=float)
    if sd <= 0:
        return np.full(n.shape, 1.0 if abs(effect) < margin else 0.0)
    df, se = n - 1, sd / np.sqrt(n)
    crit = stdtrit(df, 1 - alpha)
    scales = _grid_scales() if n.shape == GRID.shape and np.all(n == GRID) else None
    fail_low = nct_cdf(crit, df, (effect + margin) / se, scales)  # P(T_low <= crit)
    fail_high = 1 - nct_cdf(-crit, df, (effect - margin) / se, scales)  # P(T_high >= -crit)
    return np.maximum(0.0, 1 - fail_low - fail_high)


def tost_seeds_needed(effect: float, sd: float, margin: float, power: float = 0.8,
                      alpha: float = 0.05) -> int | None:
    """Smallest n (>= 2, on `GRID`) of paired seeds for which TOST shows "within +/-
    margin" with `power` when the true difference is `effect`; None beyond MAX_SEEDS, or
    when the effect is not inside the margin (no n shows a false equivalence on purpose)."""
    if math.isnan(effect) or math.isnan(sd) or abs(effect) >= margin:
        return None
    return _first(_tost_powers(effect, sd, GRID, margin, alpha), power)


def clopper_pearson(hits: float, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of a binomial proportion (`hits` may be fractional: the
    ends are then taken at floor(hits) and ceil(hits), which keeps the coverage)."""
    tail = (1 - level) / 2
    low_hits, high_hits = math.floor(hits), math.ceil(hits)
    low = 0.0 if low_hits == 0 else float(betaincinv(low_hits, trials - low_hits + 1, tail))
    high = (1.0 if high_hits == trials
            else float(betaincinv(high_hits + 1, trials - high_hits, 1 - tail)))
    return low, high


def probability_of_improvement(diffs, resolution: float = 0.0) -> tuple[float, float, float]:
    """P(cell > baseline on a seed) from the paired differences cell - baseline of matched
    seeds: the share above zero, ties (within half the data's `resolution`) counting one
    half, with the ends of a 95% interval (NaN ends with fewer than 2 seeds).

    The interval's lower end is Clopper-Pearson's for the wins alone (P(D > 0)), its upper
    end for wins and ties (P(D >= 0)), each at 97.5%, so it covers P(D > 0) + P(D = 0) / 2
    with at least 95% probability whatever the ties (its coverage measured by simulation
    in `perf/sequential.py --coverage`). Seeds are the unit: the test set's images are
    shared by both cells and are not resampled."""
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    if not n:
        return math.nan, math.nan, math.nan
    tie = max(resolution / 2, 1e-9)
    wins, ties = int((d > tie).sum()), int((np.abs(d) <= tie).sum())
    p = (wins + ties / 2) / n
    if n < 2:
        return p, math.nan, math.nan
    low = clopper_pearson(wins, n, 0.95)[0] if wins else 0.0
    high = clopper_pearson(wins + ties, n, 0.95)[1] if wins + ties < n else 1.0
    return p, low, high


def seeds_command(study_file: str, n: int) -> str:
    """The `cnnbench run` line that brings every cell of a study to seeds 0..n-1."""
    return f"cnnbench run {study_file} --seeds 0-{n - 1}"
