"""Sequential verdicts: the claims of a `run --until-decided` study, replayed from its
stored results through the design that was run (pure pandas/numpy, no torch).

Beside `aggregate` (the fixed-n tables and claims): takes the usable results frame, the
stored design record (`sequential_run.design_record`) and the claims it decides; gives each
claim's `decisions.Progress` (what the runner needs for its next look), the claims'
verdicts with their evidence and the per-look rows of the report's figure.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import aggregate, decisions, policy, verdicts
from .aggregate import equivalent_text, resolution
from .outcome import ACCURACY, Outcome, from_dict
from .verdicts import claim_outcome


def study_design(record: dict, claims) -> decisions.Design:
    """The design a stored sequential record (`sequential_run.design_record`) describes: its
    looks, alpha, claims and spending, with the bounds stored with it (calibrated now
    for a record written before bounds were stored)."""
    margins = policy.claim_margins(claims, record["margin_pp"], record_outcome(record))
    return decisions.Design(tuple(record["looks"]), record["alpha"], record["margin_pp"],
                            len(claims), record["spending"], bounds=record.get("bounds"),
                            equivalence=any(m is not None for m in margins))


def record_outcome(record: dict) -> Outcome:
    """The study's outcome a sequential record was written for (test accuracy before
    records said)."""
    return from_dict(record.get("outcome")) or ACCURACY


def sequence_diffs(frame: pd.DataFrame, record: dict, claim) -> np.ndarray:
    """A claim's paired differences on its outcome in the order of the design's seed
    sequence, up to the first seed missing on either side; oriented so that a positive
    difference is better (cell - baseline, or baseline - cell where lower is better)."""
    outcome = claim_outcome(claim)
    sub = frame[frame["section"] == claim.section]
    if outcome.metric not in sub:
        return np.array([])
    sub = sub[sub[outcome.metric].notna()]
    a = dict(zip(sub[sub["cell"] == claim.baseline]["seed"],
                 sub[sub["cell"] == claim.baseline][outcome.metric], strict=True))
    b = dict(zip(sub[sub["cell"] == claim.cell]["seed"],
                 sub[sub["cell"] == claim.cell][outcome.metric], strict=True))
    diffs = []
    for seed in record["seeds"]:
        if seed not in a or seed not in b:
            break
        diffs.append(outcome.sign * (float(b[seed]) - float(a[seed])))
    return np.array(diffs)


def design_resolution(frame: pd.DataFrame, claims) -> float:
    """The resolution the design's tests round at: an accuracy's test image where every
    claim decides on one accuracy, else none (each accuracy claim's differences are
    rounded to its own step before, `_replayed`)."""
    outcomes = {claim_outcome(c) for c in claims}
    if len(outcomes) == 1:
        return resolution(frame, outcomes.pop())
    return 0.0


def claim_progress(frame: pd.DataFrame, record: dict, claims) -> list:
    """Each claim's `decisions.Progress` (in the claims' order): the study's claims
    replayed together through the stored design from the usable results."""
    return _replayed(frame, record, list(claims))[-1]


def _replayed(frame: pd.DataFrame, record: dict, claims: list):
    """The design, each claim's margin and paired differences, the data's resolution and
    each claim's progress: what the sequential tables and figure are made of, once."""
    design = study_design(record, claims)
    margins = policy.claim_margins(claims, record["margin_pp"], record_outcome(record))
    diffs = [decisions.at_resolution(sequence_diffs(frame, record, c),
                                     resolution(frame, claim_outcome(c))) for c in claims]
    res = design_resolution(frame, claims)
    return design, margins, diffs, res, decisions.progress(design, diffs, res, margins)


_SEQUENTIAL_VERDICTS = {  # (claim kind, rule verdict) -> the claim's verdict
    ("beats", decisions.BETTER): "holds",
    ("beats", decisions.WORSE): "contradicted",
    ("equivalent", decisions.EQUIVALENT): "holds",
    ("equivalent", decisions.BETTER): "not shown: the cells differ (better)",
    ("equivalent", decisions.WORSE): "not shown: the cells differ (worse)",
}


def sequential_verdict(claim, p, margin) -> str:
    """A claim's verdict text from its `decisions.Progress`. A "beats" claim shown both
    different and equivalent holds (or is contradicted), with equivalence the second fact,
    as in the fixed-n path."""
    if claim.kind == "beats" and p.verdict == decisions.EQUIVALENT and p.also in (
            decisions.BETTER, decisions.WORSE):
        p = dataclasses.replace(p, verdict=p.also, also=decisions.EQUIVALENT)
    verdict = _SEQUENTIAL_VERDICTS.get((claim.kind, p.verdict))
    if verdict is None and p.verdict == decisions.EQUIVALENT:
        verdict = f"not shown: {equivalent_text(margin, claim_outcome(claim))}"
    if verdict is None:
        return (f"undecided after {p.seeds} seeds (the most)" if p.finished else
                f"undecided so far ({p.seeds} seeds; next look at {p.needs})")
    if p.also == decisions.EQUIVALENT:
        verdict += (f"; also {equivalent_text(margin, claim_outcome(claim))} (a difference "
                    "smaller than the margin)")
    elif p.also in (decisions.BETTER, decisions.WORSE):
        verdict += f"; also {p.also} (a difference inside the margin)"
    return verdict


def sequential_claims(frame: pd.DataFrame, record: dict, claims) -> pd.DataFrame:
    """The claims of a sequential run with the verdicts of the design that was run: each
    claim's decision, the look that made it, and its evidence at that look (the t
    statistic against the look's calibrated bound at the claim's step of the closed test,
    and the repeated confidence interval at 1 - alpha / claims, simultaneous over the
    looks and the claims at 1 - alpha)."""
    claims = list(claims)
    design, margins, diffs, res, progress = _replayed(frame, record, claims)
    larger = [max(p.p_difference, p.p_equivalence) if m is not None else p.p_difference
              for p, m in zip(progress, margins, strict=True)]
    required = decisions.step_levels(larger, design.alpha)  # the level each had to reach
    rows = []
    for c, p, level, margin, d in zip(claims, progress, required, margins, diffs,
                                      strict=True):
        k = p.look if p.look is not None else (design.looks.index(p.seeds)
                                               if p.seeds in design.looks else None)
        rows.append({"claim": c.text, "section": c.section,
                     "verdict": sequential_verdict(c, p, margin),
                     "evidence": _look_evidence(d, design, k, margin, p, res, (level, level),
                                                claim_outcome(c)),
                     "look": k, "seeds": p.seeds})
    return pd.DataFrame(rows, columns=["claim", "section", "verdict", "evidence", "look",
                                       "seeds"])


def _look_halfwidths(x: np.ndarray, design: decisions.Design, look: int,
                     margin: float | None, res: float) -> tuple[float, float]:
    """Half-widths of a look's repeated confidence interval (the difference bound at
    alpha / claims times the standard error) and of its equivalence interval (the
    one-sided bound: what TOST compares with the margin; infinite without a margin or
    where nothing is spent)."""
    _, se = decisions.mean_se(decisions.at_resolution(x, res), res)
    half = design.difference_bounds(0)[look] * se
    eq = design.equivalence_bounds(0)[look] * se if margin is not None else math.inf
    return half, eq


def natural(mean: float, low: float, high: float, sign: int) -> tuple[float, float, float]:
    """An oriented mean and interval (positive: better) in the metric's own direction."""
    if sign > 0:
        return mean, low, high
    return -mean, -high, -low


def _look_evidence(d: np.ndarray, design: decisions.Design, look: int | None,
                   margin: float | None, p, res: float, required=(math.nan, math.nan),
                   outcome: Outcome = ACCURACY) -> str:
    if look is None:
        return f"{len(d)} paired seed(s) so far; first look at {design.looks[0]}"
    n = design.looks[look]
    x = d[:n]
    mean, t, _ = decisions.paired_t(x, res)
    half, eq = _look_halfwidths(x, design, look, margin, res)
    level = 1 - design.alpha / design.claims
    mean, low, high = natural(mean, mean - half, mean + half, outcome.sign)
    num = (lambda v: f"{v:+.2f}") if outcome.percent else (lambda v: f"{v:+.4g}")
    text = (f"{outcome.diff(mean)}{outcome.in_words} at look {look + 1} of "
            f"{len(design.looks)} ({n} seeds), "
            f"repeated {level:.1%} CI [{num(low)}, {num(high)}] "
            f"(simultaneous {1 - design.alpha:.0%} over claims and looks); t = {t:.3g} "
            f"against the look's bound {design.difference_bounds(0)[look]:.3g} at alpha/"
            f"{design.claims}")
    if p.p_difference < math.inf:
        text += (f"; the difference test crosses the bounds down to level "
                 f"{p.p_difference:.3g} (the closed test required {required[0]:.3g})")
    if margin is not None:
        text += (f"; equivalence interval [{num(mean - eq)}, {num(mean + eq)}] against "
                 f"{outcome.band(margin)}")
        if p.p_equivalence < math.inf:
            text += (f", TOST crosses down to level {p.p_equivalence:.3g} (required "
                     f"{required[1]:.3g})")
    return text


def sequential_looks(frame: pd.DataFrame, record: dict, claims) -> pd.DataFrame:
    """One row per claim and look it reached: seeds, mean paired difference, the repeated
    confidence interval at that look (alpha / claims), the equivalence interval (what TOST
    compares with the margin; infinite without one), the margin (NaN: none) and whether
    that look decided the claim (the report's figure)."""
    claims = list(claims)
    design, margins, diffs, res, progress = _replayed(frame, record, claims)
    rows = []
    for c, p, margin, d in zip(claims, progress, margins, diffs, strict=True):
        for k, n in enumerate(design.looks):
            if n > len(d) or (p.look is not None and k > p.look):
                break
            mean = float(decisions.at_resolution(d[:n], res).mean())
            half, eq = _look_halfwidths(d[:n], design, k, margin, res)
            sign = claim_outcome(c).sign
            mean, low, high = natural(mean, mean - half, mean + half, sign)
            rows.append({"claim": c.text, "seeds": n, "mean": mean, "low": low,
                         "high": high, "eq_low": mean - eq, "eq_high": mean + eq,
                         "decided": p.look == k,
                         "margin": margin if margin is not None else math.nan,
                         "verdict": p.verdict if p.look == k else "",
                         "unit": claim_outcome(c).unit})
    return pd.DataFrame(rows, columns=["claim", "seeds", "mean", "low", "high", "eq_low",
                                       "eq_high", "decided", "margin", "verdict", "unit"])


@dataclass(frozen=True)
class StudyClaims:
    """A study's claims judged by the rule that fits how it ran (`judge`)."""

    decided: list  # the claims `table` judges: the design's (sequential) or all (fixed n)
    table: pd.DataFrame  # their verdicts and evidence
    trends: pd.DataFrame | None  # a sequential study's trend claims: a fixed-n family apart
    rows: dict  # (`aggregate.pair_key`) -> "'text': verdict", for `effects`
    family: int  # the size of the family `table` is, the level its table rows plan at


def judge(good: pd.DataFrame, claims, margin: float | None, design: dict | None,
          study_outcome: Outcome = ACCURACY) -> StudyClaims:
    """The report's and the dashboard's claims: through the stored design when the study
    ran sequentially (its trend claims, outside the design, tested once at fixed n),
    else every claim as one fixed-n family (`verdicts.check_claims`)."""
    claims = list(claims)
    paired = [c for c in claims if c.kind in ("beats", "equivalent")]
    if design and paired:
        trends = [c for c in claims if c not in paired]
        table = sequential_claims(good, design, paired)
        rest = (verdicts.check_claims(good, trends, margin, study_outcome=study_outcome)
                if trends else None)
        decided = paired
    else:
        table = verdicts.check_claims(good, claims, margin, study_outcome=study_outcome)
        rest, decided = None, claims
    by_text = dict(zip(table["claim"], table["verdict"], strict=True))
    rows = {key: f"{c.text!r}: {by_text[c.text]}"
            for key, c in aggregate.claimed_pairs(decided).items() if c.text in by_text}
    return StudyClaims(decided, table, rest, rows, len(decided))
