"""Decisions: settle a paired comparison with the fewest seeds (pure numpy/scipy, no torch).

Beside `aggregate` and `planning`: functions of plain arrays of paired per-seed
differences (cell minus baseline, percentage points), each returning its statistic,
p-value and interval, with the error rate it controls in its docstring.

- `paired_t`: the two-sided paired t test of "the mean difference is 0".
- `ttost_paired`: equivalence by two one-sided tests (Schuirmann's TOST): "the mean
  difference lies within +/- margin" at level alpha, i.e. the (1 - 2 alpha) interval
  lies inside the margin band. Controls the rate of declaring equivalence when the true
  difference sits at (or beyond) +/- margin at alpha. `ttost_welch`: the same for two
  independent samples (an effect on one dataset against the same effect on another).
- `spending` and `boundaries`: Lan-DeMets alpha spending (O'Brien-Fleming or Pocock
  type) and the group-sequential critical values it implies at given information
  fractions, by numerical integration of the Brownian-motion recursion (Armitage,
  McPherson and Rowe 1969).
- `Design.decide`: one look of a group-sequential design at n seeds: each look's
  nominal levels are the spent ones, applied to the t tests' p-values (the usual
  nominal-p adaptation to an unknown variance; `perf/sequential.py` simulates the error
  rates it gives at the small seed counts ablation studies have). A claim is
  "equivalent" when TOST passes at the look's equivalence level, else "better" or
  "worse" when the paired t test passes at the look's superiority level, else
  "undecided"; at the last look an undecided claim stays undecided. Multiplicity across
  the claims of a study: Bonferroni (each claim gets alpha / claims on each side), valid
  whatever the correlation between claims that share cells and seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri, stdtr

BETTER, WORSE, EQUIVALENT, UNDECIDED = "better", "worse", "equivalent", "undecided"
SPENDING = ("obrien-fleming", "pocock")


def paired_t(diffs) -> tuple[float, float, float]:
    """Mean of the paired differences, t statistic and two-sided p-value of "mean 0".
    All differences equal: t is +/-inf (p 0) for a non-zero mean, 0 (p 1) for zero."""
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2:
        return float(d.mean()) if len(d) else math.nan, math.nan, math.nan
    mean, se = float(d.mean()), float(d.std(ddof=1)) / math.sqrt(len(d))
    if se == 0:
        return mean, (math.copysign(math.inf, mean) if mean else 0.0), (0.0 if mean else 1.0)
    t = mean / se
    return mean, t, float(2 * stdtr(len(d) - 1, -abs(t)))


def ttost_paired(diffs, margin: float) -> tuple[float, float, float]:
    """Schuirmann's two one-sided tests of "-margin < mean difference < margin".

    Returns the mean difference, the larger of the two one-sided p-values (equivalence
    holds at level alpha when it is <= alpha) and the binding one-sided statistic, signed
    so that it is negative where that test favours equivalence (-inf for identical
    differences inside the band). Identical differences: p 0 when the mean lies inside
    the band, 1 otherwise.
    """
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2:
        return float(d.mean()) if len(d) else math.nan, math.nan, math.nan
    mean, se = float(d.mean()), float(d.std(ddof=1)) / math.sqrt(len(d))
    if se == 0:
        inside = -margin < mean < margin
        return mean, 0.0 if inside else 1.0, -math.inf if inside else math.inf
    df = len(d) - 1
    t_low, t_high = (mean + margin) / se, (mean - margin) / se  # H0: mean <= -m, mean >= m
    p = max(float(stdtr(df, -t_low)), float(stdtr(df, t_high)))
    return mean, p, max(-t_low, t_high)


def ttost_welch(a, b, margin: float) -> tuple[float, float]:
    """TOST of "-margin < mean(b) - mean(a) < margin" for two independent samples, with
    Welch's standard error and degrees of freedom: the difference and the larger one-sided
    p-value (NaN with fewer than 2 values a side)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(b.mean() - a.mean()) if len(a) and len(b) else math.nan
    if len(a) < 2 or len(b) < 2:
        return diff, math.nan
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, 0.0 if -margin < diff < margin else 1.0
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return diff, max(float(stdtr(df, -(diff + margin) / se)),
                     float(stdtr(df, (diff - margin) / se)))


def spending(kind: str, fraction, alpha: float):
    """Alpha spent by information `fraction` (0..1] under a Lan-DeMets spending function:
    O'Brien-Fleming type 2 - 2 Phi(z_{alpha/2} / sqrt(t)) (almost nothing early), or
    Pocock type alpha ln(1 + (e - 1) t) (evenly). Both spend exactly alpha at t = 1."""
    t = np.asarray(fraction, dtype=float)
    if kind == "obrien-fleming":
        return 2 - 2 * ndtr(ndtri(1 - alpha / 2) / np.sqrt(t))
    if kind == "pocock":
        return alpha * np.log1p((math.e - 1) * t)
    raise ValueError(f"unknown spending function {kind!r}; choose from {', '.join(SPENDING)}")


def boundaries(fractions: Sequence[float], alpha: float, kind: str = "obrien-fleming",
               two_sided: bool = True, points: int = 801) -> list[float]:
    """Critical values of the standardised statistic Z_k at each look (reject at look k
    when |Z_k| >= c_k, or Z_k >= c_k one-sided) such that, for a Brownian-motion score
    observed at the information `fractions` (increasing, the last one 1), the probability
    of a first rejection at look k under the null is what the spending function spends
    between looks k-1 and k; two-sided, each side spends alpha/2 (symmetric bounds, as
    the published tables give them). A look that spends (nearly) nothing gets c = inf."""
    fractions = [float(f) for f in fractions]
    if not fractions or any(b <= a for a, b in zip(fractions, fractions[1:], strict=False)):
        raise ValueError(f"information fractions must increase, got {fractions}")
    sides = 2.0 if two_sided else 1.0
    spent = sides * spending(kind, fractions, alpha / sides)  # two-sided: alpha/2 a side
    c0 = float(ndtri(1 - spent[0] / sides)) if spent[0] > 0 else math.inf
    crit, previous = [c0], fractions[0]
    # density of the score W at the first look, on the continuation region
    w, weights = _continuation_grid(c0, previous, two_sided, points)
    density = np.exp(-w * w / (2 * previous)) / math.sqrt(2 * math.pi * previous)
    for k in range(1, len(fractions)):
        t, dt = fractions[k], fractions[k] - previous
        target = float(spent[k] - spent[k - 1])
        mass = density * weights
        c = _bound(target, lambda x: _exits(x, t, dt, w, mass, two_sided))  # noqa: B023
        crit.append(c)
        new_w, new_weights = _continuation_grid(c, t, two_sided, points)
        kernel = np.exp(-(new_w[:, None] - w[None, :]) ** 2 / (2 * dt)) / math.sqrt(
            2 * math.pi * dt)
        density, w, weights, previous = kernel @ mass, new_w, new_weights, t
    return crit


def _exits(c: float, t: float, dt: float, w: np.ndarray, mass: np.ndarray,
           two_sided: bool) -> float:
    """Probability that a path still going at the previous look (score `w`, weight
    `mass`) crosses the critical value `c` at the look at information `t`, `dt` later."""
    b = c * math.sqrt(t)
    up = ndtr((w - b) / math.sqrt(dt))
    down = ndtr((-b - w) / math.sqrt(dt)) if two_sided else 0.0
    return float(np.sum(mass * (up + down)))


def _bound(target: float, exits) -> float:
    """The critical value whose crossing probability `exits(c)` is `target`."""
    if target <= 1e-15 or exits(40.0) >= target:
        return math.inf  # this look spends nothing
    if exits(0.0) <= target:
        return 0.0  # more to spend than is left: every path still going is rejected
    return float(brentq(lambda x: exits(x) - target, 0.0, 40.0, xtol=1e-10))


def _continuation_grid(c: float, t: float, two_sided: bool, points: int):
    """Grid of the score W = Z sqrt(t) over the region where no look has rejected yet,
    with Simpson weights; an infinite bound is cut 9 standard deviations out."""
    reach = 9 * math.sqrt(t)
    high = min(c * math.sqrt(t), reach)
    low = -high if two_sided else -reach
    w = np.linspace(low, high, points)
    h = (high - low) / (points - 1)
    weights = np.full(points, 2.0)
    weights[1::2] = 4.0
    weights[0] = weights[-1] = 1.0
    return w, weights * h / 3


def nominal_levels(fractions: Sequence[float], alpha: float, kind: str = "obrien-fleming",
                   two_sided: bool = True) -> list[float]:
    """The p-value each look must reach: the normal tail beyond its critical value."""
    sides = 2.0 if two_sided else 1.0
    return [sides * float(ndtr(-c)) if math.isfinite(c) else 0.0
            for c in boundaries(fractions, alpha, kind, two_sided)]


@dataclass(frozen=True)
class Design:
    """A group-sequential design for the claims of one study.

    Seeds are added in batches: looks at `looks` seeds (increasing; the last is the most
    any claim gets). `alpha` is the family-wise rate, over the study's `claims` claims
    (Bonferroni: alpha / claims each), of a false "better"/"worse", and likewise of a false
    "equivalent" where true differences sit at +/- `margin` (percentage points; None: no
    equivalence decision, a claim is then decided only by a difference). Differences that
    are all equal (no spread) decide nothing unless they are all exactly 0, the same job on
    both sides (equivalent, with a margin): a t test without spread has no error rate.
    """

    looks: tuple[int, ...]
    alpha: float = 0.05
    margin: float | None = None
    claims: int = 1
    spending: str = "obrien-fleming"

    def __post_init__(self) -> None:
        looks = tuple(int(n) for n in self.looks)
        if not looks or looks[0] < 2 or any(b <= a for a, b in zip(looks, looks[1:],
                                                                    strict=False)):
            raise ValueError(f"looks must be increasing seed counts from 2 up, got {looks}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.margin is not None and not (math.isfinite(self.margin) and self.margin > 0):
            raise ValueError(f"margin must be a positive finite number, got {self.margin}")
        if self.claims < 1:
            raise ValueError(f"claims must be >= 1, got {self.claims}")
        spending(self.spending, 1.0, self.alpha)  # checks the name
        object.__setattr__(self, "looks", looks)
        fractions = [n / looks[-1] for n in looks]
        per_claim = self.alpha / self.claims
        object.__setattr__(self, "_difference", nominal_levels(fractions, per_claim,
                                                               self.spending, True))
        object.__setattr__(self, "_equivalence", nominal_levels(fractions, per_claim,
                                                                self.spending, False))

    @property
    def difference_levels(self) -> list[float]:
        """Two-sided p-value a paired t test must reach at each look."""
        return list(self._difference)  # type: ignore[attr-defined]

    @property
    def equivalence_levels(self) -> list[float]:
        """p-value TOST must reach at each look (each one-sided test)."""
        return list(self._equivalence)  # type: ignore[attr-defined]

    def look_of(self, n: int) -> int | None:
        """Index of the look at `n` seeds, or None when no look is planned there."""
        return self.looks.index(n) if n in self.looks else None

    def decide(self, diffs, look: int) -> str:
        """The verdict of one claim at look `look` (an index into `looks`) from its paired
        differences (the first looks[look] seeds)."""
        d = np.asarray(diffs, dtype=float)
        if len(d) != self.looks[look]:
            raise ValueError(f"look {look} is at {self.looks[look]} seeds, got {len(d)}")
        if len(d) and np.all(d == d[0]):  # no spread: only the same job twice is decided
            return EQUIVALENT if d[0] == 0 and self.margin is not None else UNDECIDED
        if self.margin is not None:
            _, p_equivalent, _ = ttost_paired(d, self.margin)
            if p_equivalent <= self._equivalence[look]:  # type: ignore[attr-defined]
                return EQUIVALENT
        mean, _, p = paired_t(d)
        if p <= self._difference[look]:  # type: ignore[attr-defined]
            return BETTER if mean > 0 else WORSE
        return UNDECIDED


def sequence_looks(first: int, batch: int, most: int) -> tuple[int, ...]:
    """Looks at `first` seeds, then every `batch` more, and at `most` (the last)."""
    looks = list(range(first, most + 1, batch))
    if looks[-1] != most:
        looks.append(most)
    return tuple(looks)


@dataclass(frozen=True)
class Progress:
    """Where one claim stands in a sequential run."""

    verdict: str  # better | worse | equivalent | undecided
    look: int | None  # index of the look that decided it; None while undecided
    seeds: int  # the seeds its last look used (0 before the first look)
    needs: int | None  # the seeds its next look needs; None when it is finished

    @property
    def finished(self) -> bool:
        return self.needs is None


def replay(design: Design, diffs) -> Progress:
    """One claim's course through `design`, from its paired differences in the order of
    the seed sequence (the first n values are its first n seeds; a missing seed ends the
    usable prefix). Deterministic: a rerun of the same results reaches the same look, so a
    killed sequential run continues where it stopped."""
    d = np.asarray(diffs, dtype=float)
    seen = 0
    for k, n in enumerate(design.looks):
        if len(d) < n:
            return Progress(UNDECIDED, None, seen, n)
        verdict = design.decide(d[:n], k)
        seen = n
        if verdict != UNDECIDED:
            return Progress(verdict, k, n, None)
    return Progress(UNDECIDED, None, seen, None)  # the last look did not decide it
