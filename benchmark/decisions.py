"""Decisions: settle paired comparisons with error rates that hold for t statistics
(pure numpy/scipy, no torch).

Functions of plain arrays of paired per-seed differences (cell minus baseline,
percentage points), each returning its statistic and p-value, with the error rate it
controls in its docstring. `policy` states how the report, the claims, `compare`,
`power` and `--until-decided` use them.

- Ties at the data's resolution: accuracies are counts of test images, so differences
  are rounded to one image (`resolution`, in pp) and a spread below one image is taken
  as one image (sd >= resolution): no spread is never "p = 0". (Half an image is not
  enough: seeds that differ by +/-1 image at random would then be "better" at 4 seeds in
  12% of cases at alpha 0.05; one image keeps every such case under 0.05.)
- `paired_t`, `ttost_paired` (Schuirmann's two one-sided tests), `ttost_welch`.
- `closed_test`: the family-wise step-down used everywhere. Each comparison carries two
  null hypotheses, "no difference" (mean 0) and, with a margin, "not equivalent"
  (|mean| >= margin); at most one of them is true. Closed testing with Bonferroni
  intersection tests over the intersections that can be true together controls the
  family-wise rate of any false verdict (better, worse or equivalent) at alpha, whatever
  the dependence between comparisons; without margins it is Holm's procedure.
- `t_bounds` and `Design`: group-sequential designs whose levels are calibrated for the
  t statistics themselves: under the null the joint law of a claim's t statistics at its
  looks does not depend on the noise scale, so each look's critical t is found by
  simulating 10^6 null paths (a fixed seed: the same design always gets the same
  bounds), spending alpha by a Lan-DeMets function; the level is lowered by four Monte
  Carlo standard errors so that the true level stays under the nominal one.
  `perf/sequential.py` measures the error rates that result.
- `replay`: a whole study's claims through a design, vectorised over simulated studies
  as well: at each look the undecided claims get their next seeds, each claim's
  sequential p-value (the least level of the family's ladder alpha/K, ..., alpha/1 whose
  bound it crosses at that look) goes into `closed_test`, and a claim leaves the
  sampling once a hypothesis of it is rejected, keeping that p-value; the step-down then
  gives the others the alpha the closed test allows (Maurer and Bretz 2013). Valid: a
  true null is rejected only if the intersection of the true nulls is, at some look,
  and that happens with probability at most the sum of the claims' calibrated levels.
  With margins a claim frees its share of alpha only once both its hypotheses are
  rejected, so with margins the step-down rarely frees anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy.special import ndtr, ndtri, stdtr

BETTER, WORSE, EQUIVALENT, UNDECIDED = "better", "worse", "equivalent", "undecided"
SPENDING = ("front-loaded", "obrien-fleming", "pocock")
DEFAULT_SPENDING = "front-loaded"
FIRST_SHARE = 0.4  # front-loaded: the share of alpha the first look spends,
REST_POWER = 1.5  # and the rest as (share of the information after it) ** REST_POWER
RULE = "t-calibrated closed testing"  # what a stored design record was decided by
PATHS = 1_000_000  # null paths a design's bounds are calibrated on
CALIBRATION_SEED = 20261203
SLACK_SE = 4.0  # the calibration aims this many Monte Carlo standard errors under alpha
_CODES = {0: UNDECIDED, 1: BETTER, 2: WORSE, 3: EQUIVALENT}


# --------------------------------------------------------------------------- resolution


def resolution_of(percentages) -> float:
    """The step (pp) of accuracies measured as whole test images, from the values
    themselves: 100 / N for the least N that makes every value a count (N <= 10^7);
    0.0 when the values are not such counts (then no rounding is done)."""
    denominators = 1
    for v in np.unique(np.asarray(percentages, dtype=float)):
        if not math.isfinite(v):
            continue
        f = Fraction(float(v) / 100).limit_denominator(10**7)
        if abs(float(f) * 100 - v) > 1e-7:
            return 0.0
        denominators = math.lcm(denominators, f.denominator)
        if denominators > 10**7:
            return 0.0
    return 100.0 / denominators if denominators > 1 else 0.0


def at_resolution(diffs, resolution: float) -> np.ndarray:
    """Differences rounded to the data's resolution (as they are when no resolution)."""
    d = np.asarray(diffs, dtype=float)
    return np.round(d / resolution) * resolution if resolution > 0 else d


def mean_se(diffs, resolution: float):
    """Mean and standard error along the last axis of differences at the resolution
    (`at_resolution`), the sd floored at the resolution; the standard error is NaN where
    there is no spread to test with (no resolution and values equal up to float noise)."""
    d = np.asarray(diffs, dtype=float)
    mean = d.mean(axis=-1)
    sd = np.maximum(d.std(axis=-1, ddof=1), resolution)
    spread = sd >= 1e-12 * np.maximum(1.0, np.abs(mean))
    return mean, np.where(spread, sd, np.nan) / math.sqrt(d.shape[-1])


# --------------------------------------------------------------------------- tests


def paired_t(diffs, resolution: float = 0.0) -> tuple[float, float, float]:
    """Mean of the paired differences, t statistic and two-sided p-value of "mean 0".
    Without spread (and no resolution to floor it) there is no test: t and p are NaN."""
    d = at_resolution(diffs, resolution)
    if len(d) < 2:
        return float(d.mean()) if len(d) else math.nan, math.nan, math.nan
    mean, se = (float(x) for x in mean_se(d, resolution))
    if math.isnan(se):
        return mean, math.nan, math.nan
    t = mean / se
    return mean, t, float(2 * stdtr(len(d) - 1, -abs(t)))


def ttost_paired(diffs, margin: float, resolution: float = 0.0) -> tuple[float, float, float]:
    """Schuirmann's two one-sided tests of "-margin < mean difference < margin".

    Returns the mean difference, the larger of the two one-sided p-values (equivalence
    holds at level alpha when it is <= alpha; that rate of a false "equivalent" when the
    true difference sits at or beyond +/- margin is at most alpha) and the binding
    one-sided statistic, negative where it favours equivalence. NaN without spread."""
    d = at_resolution(diffs, resolution)
    if len(d) < 2:
        return float(d.mean()) if len(d) else math.nan, math.nan, math.nan
    mean, se = (float(x) for x in mean_se(d, resolution))
    if math.isnan(se):
        return mean, math.nan, math.nan
    df = len(d) - 1
    t_low, t_high = (mean + margin) / se, (mean - margin) / se  # H0: mean <= -m, mean >= m
    p = max(float(stdtr(df, -t_low)), float(stdtr(df, t_high)))
    return mean, p, max(-t_low, t_high)


def ttost_welch(a, b, margin: float) -> tuple[float, float]:
    """TOST of "-margin < mean(b) - mean(a) < margin" for two independent samples, with
    Welch's standard error and degrees of freedom: the difference and the larger one-sided
    p-value (NaN with fewer than 2 values a side or no spread)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(b.mean() - a.mean()) if len(a) and len(b) else math.nan
    if len(a) < 2 or len(b) < 2:
        return diff, math.nan
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, math.nan
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return diff, max(float(stdtr(df, -(diff + margin) / se)),
                     float(stdtr(df, (diff - margin) / se)))


# --------------------------------------------------------------------------- family


def closed_test(first, second=None, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Which hypotheses of a family of comparisons are rejected, family-wise at `alpha`.

    `first[i]`: comparison i's p-value for "no difference"; `second[i]`: its p-value for
    "not equivalent" (NaN or None: it has no such hypothesis). At most one of a
    comparison's two nulls is true, so an intersection that can be true takes at most one
    hypothesis from each comparison; each is tested by Bonferroni. A hypothesis with
    p-value p is rejected iff every such intersection holding it is: iff p <= alpha /
    (s + 1) for the largest s such that at least s other comparisons have their larger
    p-value above alpha / (s + 1). NaN p-values are never rejected and keep their place
    in the family. Vectorised: arrays of shape (..., comparisons). Returns the two
    rejection masks (second's is False where there is no second hypothesis)."""
    p1 = np.nan_to_num(np.asarray(first, dtype=float), nan=np.inf)
    if second is None:
        p2 = np.full(p1.shape, np.inf)
        has2 = np.zeros(p1.shape, dtype=bool)
    else:
        raw = np.array(second, dtype=float)  # None -> nan
        has2 = ~np.isnan(raw)
        p2 = np.where(has2, raw, np.inf)
    # the level each comparison's hypotheses must reach
    level = step_levels(np.where(has2, np.maximum(p1, p2), p1), alpha)
    tol = 1 + 1e-12  # ladder levels computed as alpha / m compare exactly with themselves
    return p1 <= level * tol, has2 & (p2 <= level * tol)


def step_levels(p_larger, alpha: float = 0.05) -> np.ndarray:
    """The level each comparison of a family had to reach in `closed_test` (alpha / (s+1)
    for its s), given each comparison's larger p-value: for the report's evidence."""
    larger = np.nan_to_num(np.asarray(p_larger, dtype=float), nan=np.inf)
    level = np.full(larger.shape, alpha)
    for s in range(1, larger.shape[-1]):
        cut = alpha / (s + 1)
        above = larger > cut
        others = above.sum(axis=-1, keepdims=True) - above  # other comparisons above cut
        level = np.where(others >= s, cut, level)
    return level


# --------------------------------------------------------------------------- spending


def spending(kind: str, fraction, alpha: float):
    """Alpha spent by information `fraction` (0..1] (the share of the most seeds):
    O'Brien-Fleming type 2 - 2 Phi(z_{alpha/2} / sqrt(t)) (almost nothing early), Pocock
    type alpha ln(1 + (e - 1) t) (evenly), or front-loaded: FIRST_SHARE of alpha at the
    first look `fraction[0]`, the rest as alpha u^REST_POWER over the share u of the
    information after it (Kim-DeMets' power family), so that a clear effect is decided on
    the first seeds whatever the most. All spend alpha at 1."""
    t = np.asarray(fraction, dtype=float)
    if kind == "obrien-fleming":
        return 2 - 2 * ndtr(ndtri(1 - alpha / 2) / np.sqrt(t))
    if kind == "pocock":
        return alpha * np.log1p((math.e - 1) * t)
    if kind == "front-loaded":
        t0 = float(np.ravel(t)[0])
        if t0 >= 1:
            return np.full(t.shape, alpha)
        rest = np.clip((t - t0) / (1 - t0), 0.0, 1.0)
        return np.where(t <= t0, FIRST_SHARE * alpha,
                        alpha * (FIRST_SHARE + (1 - FIRST_SHARE) * rest ** REST_POWER))
    raise ValueError(f"unknown spending function {kind!r}; choose from {', '.join(SPENDING)}")


def t_bounds(looks: tuple[int, ...], levels: tuple[float, ...], kind: str,
             two_sided: bool, paths: int = PATHS) -> np.ndarray:
    """Critical t values, shape (len(levels), len(looks)): at level `levels[i]`, a claim
    whose t statistic at look k reaches `bounds[i, k]` (|t| two-sided, t one-sided) is
    rejected there, and the chance of a first crossing at look k under the null is what
    `kind` spends between looks k-1 and k (within Monte Carlo error, aimed SLACK_SE
    standard errors under). inf: the look spends nothing at that level. Each bound is
    at least the one of the next larger level (raising a bound never adds a crossing)."""
    return _calibrate(tuple(looks), tuple(levels), kind, (two_sided,), paths)[0]


@lru_cache(maxsize=32)
def _calibrate(looks: tuple[int, ...], levels: tuple[float, ...], kind: str,
               sides: tuple[bool, ...], paths: int = PATHS) -> tuple[np.ndarray, ...]:
    """`t_bounds` for each of `sides` (True: two-sided) from one set of simulated null
    paths, simulated exactly for paired t statistics: each batch of b seeds adds a normal
    sum and a chi-square(b - 1) within-batch square sum, so a path costs two draws a look
    whatever the number of sides."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    fractions = np.asarray(looks, dtype=float) / looks[-1]
    aims = [a * (1 - SLACK_SE / math.sqrt(a * paths)) if a * paths > SLACK_SE ** 2 else 0.0
            for a in levels]
    # two-sided: each side spends by the function at alpha / 2 (symmetric bounds, as the
    # published tables give them)
    spent = [[(2 * spending(kind, fractions, a / 2) if two_sided else
               spending(kind, fractions, a)) if a > 0 else np.zeros(len(looks))
              for a in aims] for two_sided in sides]
    alive = np.ones((len(sides), len(levels), paths), dtype=bool)
    crossed = np.zeros((len(sides), len(levels)), dtype=int)
    out = np.full((len(sides), len(levels), len(looks)), math.inf)
    s, q, n = np.zeros(paths), np.zeros(paths), 0
    for k, nk in enumerate(looks):
        b = nk - n
        batch = rng.standard_normal(paths) * math.sqrt(b)
        within = rng.chisquare(b - 1, paths) if b > 1 else 0.0
        q = q + within + ((n * b / nk) * (s / n - batch / b) ** 2 if n else 0.0)
        s, n = s + batch, nk
        t = s / np.sqrt(n * q / (n - 1))
        for j, two_sided in enumerate(sides):
            x = np.abs(t) if two_sided else t
            _calibrate_look(x, k, spent[j], alive[j], crossed[j], out[j])
    return tuple(np.maximum.accumulate(o[::-1], axis=0)[::-1]  # non-increasing in the level
                 for o in out)


def _calibrate_look(x: np.ndarray, k: int, spent, alive: np.ndarray, crossed: np.ndarray,
                    out: np.ndarray) -> None:
    """Look k's bound at each level: the value that as many of the paths still going
    (`alive`) reach as the level spends there; updates `alive`, `crossed` and `out`."""
    paths = len(x)
    counts = [int(math.floor((spent[i][k] - crossed[i] / paths) * paths + 1e-9))
              for i in range(len(spent))]
    # the count-th largest live value is among the largest (count + crossed) of all
    need = min(paths, max(c + int(d) for c, d in zip(counts, crossed, strict=True)) + 1)
    top = np.argpartition(x, paths - need)[paths - need:]
    for i, count in enumerate(counts):
        if count <= 0:
            continue
        live = x[top[alive[i, top]]]
        c = 0.0 if count >= len(live) else float(
            np.partition(live, len(live) - count)[len(live) - count])
        out[i, k] = c
        newly = alive[i] & (x >= c)
        crossed[i] += int(newly.sum())
        alive[i] &= ~newly


# --------------------------------------------------------------------------- designs


def _bounds_json(bounds: np.ndarray) -> list[list[float | None]]:
    return [[None if not math.isfinite(c) else round(float(c), 10) for c in row]
            for row in bounds]


def _bounds_array(rows) -> np.ndarray:
    return np.array([[math.inf if c is None else float(c) for c in row] for row in rows])


@dataclass(frozen=True)
class Design:
    """A group-sequential design for the claims of one study.

    Seeds are added in batches: looks at `looks` seeds (increasing; the last is the most
    any claim gets). `alpha` is the family-wise rate, over the study's `claims` claims, of
    any false verdict: a false "better"/"worse", or a false "equivalent" where a true
    difference sits at or beyond +/- `margin` (percentage points; None: no equivalence
    decision). Each claim's tests are calibrated at every level of the ladder alpha /
    claims, ..., alpha / 1 that the closed test can give it. `bounds`: stored critical
    values ({"difference": rows, "equivalence": rows or None}, as `bounds_record` gives
    them) to use instead of calibrating, so a stored study replays with the bounds it was
    run with. `equivalence`: whether any claim is tested for equivalence (claims may
    carry margins of their own, `replay`'s `margins`); default: when `margin` is set."""

    looks: tuple[int, ...]
    alpha: float = 0.05
    margin: float | None = None
    claims: int = 1
    spending: str = DEFAULT_SPENDING
    bounds: dict | None = field(default=None, compare=False, repr=False)
    equivalence: bool | None = None  # calibrate TOST's bounds (default: with a margin)

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
        spending(self.spending, np.array([0.5, 1.0]), self.alpha)  # checks the name
        object.__setattr__(self, "looks", looks)
        if self.bounds is not None:
            diff = _bounds_array(self.bounds["difference"])
            eq = (_bounds_array(self.bounds["equivalence"])
                  if self.bounds.get("equivalence") is not None else None)
            if diff.shape != (self.claims, len(looks)):
                raise ValueError(f"stored bounds are for another design: {diff.shape}")
        else:
            want = self.margin is not None if self.equivalence is None else self.equivalence
            diff, *rest = _calibrate(looks, self.ladder, self.spending,
                                     (True, False) if want else (True,))
            eq = rest[0] if want else None
        object.__setattr__(self, "_diff", diff)
        object.__setattr__(self, "_eq", eq)

    @property
    def ladder(self) -> tuple[float, ...]:
        """The levels a claim can be tested at, smallest first: alpha / claims, ...,
        alpha (the closed test raises a claim's level as others are decided)."""
        return tuple(self.alpha / (self.claims - j) for j in range(self.claims))

    def bounds_record(self) -> dict:
        """The critical values as JSON (inf as null), to store with a study."""
        return {"difference": _bounds_json(self._diff),  # type: ignore[attr-defined]
                "equivalence": None if self._eq is None  # type: ignore[attr-defined]
                else _bounds_json(self._eq)}  # type: ignore[attr-defined]

    def difference_bounds(self, step: int = 0) -> list[float]:
        """Critical |t| at each look at ladder level `step` (0: alpha / claims)."""
        return [float(c) for c in self._diff[step]]  # type: ignore[attr-defined]

    def equivalence_bounds(self, step: int = 0) -> list[float]:
        """Critical t of each one-sided test of TOST at each look (inf without a margin)."""
        if self._eq is None:  # type: ignore[attr-defined]
            return [math.inf] * len(self.looks)
        return [float(c) for c in self._eq[step]]  # type: ignore[attr-defined]

    def decide(self, diffs, look: int, resolution: float = 0.0) -> str:
        """One claim's verdict at look `look` (an index into `looks`) from its first
        looks[look] paired differences, at the family's Bonferroni level alpha / claims
        (what the claim gets when no other is decided): `replay` with one claim."""
        d = np.asarray(diffs, dtype=float)
        if len(d) != self.looks[look]:
            raise ValueError(f"look {look} is at {self.looks[look]} seeds, got {len(d)}")
        single = Design(self.looks[:look + 1], self.alpha, self.margin, 1, self.spending,
                        bounds={"difference": [self.difference_bounds(0)[:look + 1]],
                                "equivalence": None if self._eq is None  # type: ignore[attr-defined]
                                else [self.equivalence_bounds(0)[:look + 1]]})
        verdict = replay(single, d[None, None, :], resolution=resolution)
        return _CODES[int(verdict.verdict[0, 0])] if verdict.look[0, 0] == look else UNDECIDED


def sequence_looks(first: int, batch: int, most: int) -> tuple[int, ...]:
    """Looks at `first` seeds, then every `batch` more, and at `most` (the last)."""
    looks = list(range(first, most + 1, batch))
    if looks[-1] != most:
        looks.append(most)
    return tuple(looks)


# --------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class Replay:
    """Claims through a design, arrays of shape (studies, claims): `verdict` 0 undecided,
    1 better, 2 worse, 3 equivalent (the first fact); `also` the same codes for a second
    fact rejected too (equivalent and better: a difference inside the margin), else 0;
    `look` the deciding look's index (-1: undecided); `seeds` the seeds its last look
    used; `needs` the seeds its next look needs (0: finished)."""

    verdict: np.ndarray
    also: np.ndarray
    look: np.ndarray
    seeds: np.ndarray
    needs: np.ndarray
    p_difference: np.ndarray  # sequential p-values: the least ladder level crossed at the
    #                           last look (inf: none)
    p_equivalence: np.ndarray


def _first_step(stat: np.ndarray, column: np.ndarray) -> np.ndarray:
    """The least ladder index whose bound `stat` reaches (len(column): none); `column`
    non-increasing along the ladder. NaN statistics reach nothing."""
    stat = np.where(np.isnan(stat), -np.inf, stat)
    return np.searchsorted(-column, -stat, side="left")


def replay(design: Design, diffs, lengths=None, resolution: float = 0.0,
           margins=None) -> Replay:
    """Every study's claims through `design`: `diffs` (studies, claims, seeds) paired
    differences in the order of the seed sequence; `lengths` (studies, claims) the seeds
    present for each claim (default: all). Look by look, each undecided claim's tests at
    that look update its sequential p-values; `closed_test` over the family (decided
    claims keep the p-values they stopped with) decides the claims it rejects, which
    then get no more seeds. A claim that lacks the next look's seeds waits there (`needs`)
    while the others go on. `margins` (claims,): each claim's equivalence margin
    (NaN or None: none; default the design's). Deterministic: the same results reach the
    same look."""
    d = at_resolution(diffs, resolution)
    studies, claims = d.shape[:2]
    if claims != design.claims:
        raise ValueError(f"the design is for {design.claims} claims, got {claims}")
    have = (np.full((studies, claims), d.shape[2]) if lengths is None
            else np.asarray(lengths, dtype=int))
    margin = np.array([math.nan if m is None else m for m in (
        [design.margin] * claims if margins is None else margins)], dtype=float)
    tested = ~np.isnan(margin)
    if tested.any() and design._eq is None:  # type: ignore[attr-defined]
        raise ValueError("claims with a margin need a design with equivalence bounds")
    ladder = np.array(design.ladder + (math.inf,))
    levels = len(design.ladder)
    p_diff = np.full((studies, claims), levels)  # ladder index crossed (levels: none)
    p_eq = np.full((studies, claims), levels)
    sign = np.zeros((studies, claims))
    decided = np.zeros((studies, claims), dtype=bool)
    look = np.full((studies, claims), -1)
    seeds = np.zeros((studies, claims), dtype=int)
    needs = np.zeros((studies, claims), dtype=int)
    waiting = np.zeros((studies, claims), dtype=bool)  # lacks the seeds of a look
    verdict = np.zeros((studies, claims), dtype=int)
    rej_diff = rej_eq = np.zeros((studies, claims), dtype=bool)  # the last look's closed test
    for k, n in enumerate(design.looks):
        # a claim without this look's seeds waits there, untested (p-value inf: valid) or
        # with the one of the last look it had; the others go on
        short = ~decided & ~waiting & (have < n)
        needs = np.where(short, n, needs)
        waiting |= short
        active = ~decided & ~waiting
        if not active.any():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            mean, se = mean_se(d[..., :n], resolution)
            # an undecided claim's sequential p-value is what it crosses at this look (a
            # verdict rests on the data it has now, its sign the current mean's); a decided
            # claim keeps the one it stopped with
            step = _first_step(np.abs(mean / se), design._diff[:, k])  # type: ignore[attr-defined]
            sign = np.where(active, np.sign(mean), sign)
            p_diff = np.where(active, step, p_diff)
            if tested.any():
                tost = np.minimum((mean + margin) / se, (margin - mean) / se)
                step = _first_step(tost, design._eq[:, k])  # type: ignore[attr-defined]
                p_eq = np.where(active & tested, step, p_eq)
        seeds = np.where(active, n, seeds)
        rej_diff, rej_eq = closed_test(ladder[p_diff], np.where(tested, ladder[p_eq], np.nan),
                                       design.alpha)
        now = active & (rej_diff | rej_eq)
        look = np.where(now, k, look)
        verdict = np.where(now, np.where(rej_eq, 3, np.where(sign > 0, 1, 2)), verdict)
        decided |= now
        last = k == len(design.looks) - 1
        needs = np.where(active & ~now & ~last, design.looks[min(k + 1, len(design.looks) - 1)],
                         np.where(active, 0, needs))
    # the p-values have not changed since the last look's closed test: its rejections stand
    also = np.where(decided & (verdict == 3) & rej_diff, np.where(sign > 0, 1, 2),
                    np.where(decided & (verdict != 3) & rej_eq, 3, 0))
    return Replay(verdict, also, look, seeds, needs, ladder[p_diff], ladder[p_eq])


@dataclass(frozen=True)
class Progress:
    """Where one claim stands in a sequential run."""

    verdict: str  # better | worse | equivalent | undecided
    look: int | None  # index of the look that decided it; None while undecided
    seeds: int  # the seeds its last look used (0 before the first look)
    needs: int | None  # the seeds its next look needs; None when it is finished
    also: str | None = None  # a second fact shown too (equivalent and better, say)
    p_difference: float = math.inf  # its sequential p-values (least ladder level crossed)
    p_equivalence: float = math.inf

    @property
    def finished(self) -> bool:
        return self.needs is None


def progress(design: Design, diffs: Sequence, resolution: float = 0.0,
             margins=None) -> list[Progress]:
    """Each claim's course through `design`, from its paired differences in the order of
    the seed sequence (a missing seed ends the usable prefix): `replay` of one study."""
    most = max([len(x) for x in diffs] + [design.looks[-1]])
    padded = np.zeros((1, len(diffs), most))
    for i, x in enumerate(diffs):
        padded[0, i, :len(x)] = x
    r = replay(design, padded, [[len(x) for x in diffs]], resolution, margins)
    return [Progress(_CODES[int(r.verdict[0, i])], int(r.look[0, i]) if r.look[0, i] >= 0
                     else None, int(r.seeds[0, i]),
                     int(r.needs[0, i]) if r.needs[0, i] else None,
                     _CODES[int(r.also[0, i])] if r.also[0, i] else None,
                     float(r.p_difference[0, i]), float(r.p_equivalence[0, i]))
            for i in range(len(diffs))]
