"""Verdicts stage: a study's claims judged on its results, and seed planning (pure
pandas/numpy/scipy, no torch).

Built on `aggregate`'s comparisons and closed test; gives:

- `check_claims`: the study's claims as one family, by the closed test (fixed n), each on
  its own outcome (`outcome.Outcome`), with its verdict and the evidence behind it;
  `sequential_verdicts` holds the same family through the design of `--until-decided`;
- `page_trend`: Page's test of a monotone trend along a section's cells, for
  `Claim.increasing`;
- `power_table`: seed planning for every comparison and claim at the level its verdict
  uses (`policy`).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from . import decisions, planning
from .aggregate import (
    Outcomes,
    beyond_noise,
    claimed_pairs,
    compare,
    detectable_text,
    direction,
    effects,
    equivalent_text,
    family_test,
    margin_for,
    mean_ci,
    outcome_in,
    pair_key,
    paired,
    plan_row,
    resolution,
    seeds_text,
    values_of,
)
from .outcome import ACCURACY, Outcome
from .policy import ALPHA, POWER


def claim_outcome(claim) -> Outcome:
    return claim.outcome or ACCURACY


def claim_tests(frame: pd.DataFrame, claim, margin: float | None = None,
                res: float | None = None, study_outcome: Outcome = ACCURACY) -> dict:
    """One claim's tests on the results, on the claim's outcome: its comparison
    (`compare`) or trend (`page_trend`), the p-values that enter the claims' family (`p`,
    `p_equiv`), before any correction. The study's `margin` applies to a "beats" claim on
    `study_outcome`."""
    outcome = claim_outcome(claim)
    section = frame[frame["section"] == claim.section]
    section = section[~np.isnan(values_of(section, outcome))]
    res = resolution(frame, outcome) if res is None else res
    if claim.kind == "increasing":
        return {"kind": claim.kind, **page_trend(section, outcome), "p_equiv": math.nan}
    a, b = section[section["cell"] == claim.baseline], section[section["cell"] == claim.cell]
    if not len(a) or not len(b):
        return {"kind": claim.kind, "missing": True, "p": math.nan, "p_equiv": math.nan}
    band = (claim.margin if claim.kind == "equivalent"
            else margin_for(margin, outcome, study_outcome))
    r = compare(a, b, band, res, outcome)
    d = paired(a, b, outcome)
    r["band"] = band
    if len(d) >= 2 and band is not None:
        r["paired_diffs"] = decisions.at_resolution(d, res)
        r["res"] = res
    return {"kind": claim.kind, **r}


CLAIM_COLUMNS = ["claim", "section", "verdict", "evidence"]  # what the reports show


def check_claims(frame: pd.DataFrame, claims, margin: float | None = None,
                 alpha: float = ALPHA, study_outcome: Outcome = ACCURACY) -> pd.DataFrame:
    """The study's claims (study.Claim) as one family: each claim's tests (`claim_tests`),
    the closed test over all of them at `alpha`, and each claim's verdict with the evidence
    behind it (`decided`: a hypothesis of it was rejected). `margin`: the study's smallest
    effect of interest, against which a "beats" claim can also be shown not to matter
    (equivalent within it)."""
    claims = list(claims)
    tests = [claim_tests(frame, c, margin, None, study_outcome) for c in claims]
    family_test(tests, alpha)
    rows = []
    for claim, t in zip(claims, tests, strict=True):
        if claim.kind != "increasing" and not t.get("missing"):
            t.update(plan_row(t, len(claims), alpha=alpha, effect=t.get("band")))
        verdict, evidence = _claim_verdict(claim, t)
        rows.append({"claim": claim.text, "section": claim.section, "verdict": verdict,
                     "evidence": evidence,
                     "decided": bool(t.get("reject_diff") or t.get("reject_equiv"))})
    return pd.DataFrame(rows, columns=[*CLAIM_COLUMNS, "decided"])


def _claim_verdict(claim, t: dict) -> tuple[str, str]:
    outcome = claim_outcome(claim)
    if t.get("missing"):
        return "no data", f"needs results for {claim.cell!r} and {claim.baseline!r}"
    if claim.kind == "increasing":
        if math.isnan(t["p"]):
            return "no data", t["evidence"]
        evidence = f"{t['evidence']}; family level {t['step_level']:.3g}"
        if t["reject_diff"]:  # a trend shown, not that every step rises
            return ("holds (a rising trend overall; not every step need rise)"
                    if t["statistic"] > 0 else
                    "contradicted (a falling trend overall)"), evidence
        return "not shown", evidence
    d = outcome.diff(t["diff"]) if "diff" in t else ""
    if math.isnan(t["p"]) and t["method"].startswith("1 seed"):
        lean = "consistent with" if outcome.better(t["diff"]) else "against"
        within = ("" if not outcome.percent or beyond_noise(t)
                  else ", within test-set noise")
        return (f"1 seed: {lean} the claim{within}",
                f"{d}; {t['method']}; seed noise untested")
    evidence = _claim_evidence(t, outcome)
    band = t.get("band")
    if claim.kind == "equivalent":
        if math.isnan(t["p_equiv"]):
            return "undecided: needs 2+ paired seeds with spread", evidence
        if t["reject_equiv"]:
            return ("holds" + (f"; also {direction(t['diff'], outcome)} by {d}"
                               if t["reject_diff"] else "")), evidence
        if t["reject_diff"]:
            return (f"not shown: the cells differ ({direction(t['diff'], outcome)}, "
                    f"{d})"), evidence
        needed = planning.tost_seeds_needed(0.0, t["sd_diff"], band, POWER, t["level"])
        return (f"undecided ({seeds_text(needed)} seeds to show {outcome.band(band)} if there "
                "is no difference)"), evidence
    if t["reject_diff"]:
        verdict = "holds" if outcome.better(t["diff"]) else "contradicted"
        if t["reject_equiv"]:
            verdict += (f", by {d}: also {equivalent_text(band, outcome)}, a difference "
                        "smaller than the study's margin")
        return verdict, evidence
    if t["reject_equiv"]:
        return f"not shown: {equivalent_text(band, outcome)}", evidence
    if math.isnan(t["p"]):
        return f"not shown: no test ({t['method']}, no spread)", evidence
    if band is not None and t["power"] == t["power"]:
        return (f"not shown: undecided (power {t['power']:.2f} for {outcome.band(band)}; "
                f"{seeds_text(t['seeds_needed'])} seeds for 80%)"), evidence
    if t.get("detectable", math.nan) == t.get("detectable", math.nan):
        return (f"not shown: no detectable difference ({t['n_paired']} paired seeds "
                f"detect {detectable_text(t['detectable'], outcome)} with 80% power)"), evidence
    return "not shown: no detectable difference", evidence


def _claim_evidence(t: dict, outcome: Outcome = ACCURACY) -> str:
    def num(x: float) -> str:
        return f"{x:+.2f}" if outcome.percent else f"{x:+.4g}"

    ci = ("" if math.isnan(t["ci_low"]) else
          f", 95% CI [{num(t['ci_low'])}, {num(t['ci_high'])}]")
    text = f"{outcome.diff(t['diff'])}{outcome.in_words}{ci}, {_p(t['p'])} ({t['method']})"
    if t.get("band") is not None and t.get("paired_diffs") is not None:
        level = 1 - 2 * t["step_level"]  # what TOST at the family's level compares
        low, high = mean_ci(t["paired_diffs"], level, t["res"])[1:]
        text += (f"; {level:.1%} CI [{num(low)}, {num(high)}] against "
                 f"{outcome.band(t['band'])}, TOST {_p(t['p_equiv'])}")
    text += f"; family level {t['step_level']:.3g}"
    if t.get("p_improve") == t.get("p_improve"):
        text += (f"; P(better on a seed) = {t['p_improve']:.2f} [{t['p_improve_low']:.2f}, "
                 f"{t['p_improve_high']:.2f}]")
    return text


def _p(p: float) -> str:
    """'p = 0.0123', 'p < 0.001' or 'p n/a'."""
    return "p n/a" if p != p else ("p < 0.001" if p < 0.001 else f"p = {p:.3g}")


def page_trend(section: pd.DataFrame, outcome: Outcome = ACCURACY) -> dict:
    """Page's test of a monotone trend of accuracy along a section's cells (their declared
    order), with seeds as blocks: within each seed that has every cell, the cells are
    ranked, and L = sum over blocks and positions of position x rank. Its p-value (two
    sided) is exact, from the permutation distribution of the ranks within each seed,
    for up to 8 cells; beyond, from 100,000 seeded random permutations ((hits + 1) /
    (draws + 1), a valid p-value). With one seed, it is Spearman's test with its exact
    p-value (five cells in order: 2/120). `statistic` > 0 for an increase."""
    positions = sorted(section["position"].unique())
    k = len(positions)
    if k < 3:
        return {"p": math.nan, "statistic": 0.0, "evidence": "needs results for at least 3 cells"}
    if outcome.metric not in section:
        return {"p": math.nan, "statistic": 0.0,
                "evidence": f"no job of the section records {outcome.metric!r}"}
    table = section.pivot_table(index="seed", columns="position", values=outcome.metric,
                                aggfunc="first").dropna()
    if not len(table):
        return {"p": math.nan, "statistic": 0.0,
                "evidence": "needs a seed with a result in every cell"}
    ranks = table.rank(axis=1).to_numpy(float)  # average ranks for ties
    weights = np.arange(1, k + 1, dtype=float)
    observed = float((ranks * weights).sum())
    blocks = len(ranks)
    center = blocks * k * (k + 1) ** 2 / 4
    p, how = _page_p(ranks, weights, observed - center)
    means = section.groupby("position")[outcome.metric].mean().sort_index()
    steps = int((means.diff().dropna() > 0).sum())
    rho = 12 * (observed - center) / (blocks * k * (k * k - 1))  # mean Spearman rho
    evidence = (f"Page's L = {observed:g} over {blocks} seed(s) of {k} cells (mean Spearman "
                f"rho {rho:+.2f}), {how} {_p(p)} (two-sided); mean rises in {steps} of "
                f"{len(means) - 1} steps")
    return {"p": p, "statistic": observed - center, "evidence": evidence, "method": "Page"}


@lru_cache(maxsize=8)
def _permutations(k: int) -> np.ndarray:
    import itertools

    return np.array(list(itertools.permutations(range(k))))


def _page_p(ranks: np.ndarray, weights: np.ndarray, deviation: float) -> tuple[float, str]:
    """Two-sided permutation p-value of Page's L: P(|L - E L| >= |observed - E L|)."""
    k = ranks.shape[1]
    if k <= 8:  # exact: the blocks' distributions of 2L convolved (average ranks are halves)
        perms = _permutations(k)
        center2 = round(2 * len(ranks) * k * (k + 1) ** 2 / 4)
        dist, low = np.ones(1), 0
        for row in ranks:
            values = np.rint(2 * (row[perms] @ weights)).astype(np.int64)
            block = np.bincount(values - values.min()) / len(perms)
            dist, low = np.convolve(dist, block), low + int(values.min())
        support = np.arange(len(dist)) + low
        hits = dist[np.abs(support - center2) >= abs(2 * deviation) - 1e-6].sum()
        return float(min(1.0, hits)), "exact permutation"
    rng = np.random.default_rng(0)
    draws = 100_000
    center = len(ranks) * k * (k + 1) ** 2 / 4
    sums = np.zeros(draws)
    for row in ranks:
        perms = rng.permuted(np.broadcast_to(row, (draws, k)), axis=1)
        sums += perms @ weights
    hits = int((np.abs(sums - center) >= abs(deviation) - 1e-9).sum())
    return (hits + 1) / (draws + 1), "Monte Carlo permutation"


def power_table(frame: pd.DataFrame, claims=(), effect: float | None = None,
                power: float = POWER, alpha: float = ALPHA,
                margin: float | None = None, outcomes: Outcomes = None,
                study_outcome: Outcome = ACCURACY) -> pd.DataFrame:
    """Seed planning for every comparison of `effects` (cell vs section baseline) and every
    "beats" and "equivalent" claim, at the level its verdict uses (`policy.planning_alpha`:
    alpha / the size of its family) with the seeds its paired test used: for the effect
    planned for (`effect`, else the margin: the study's, or an equivalence claim's own)
    the power those seeds have and the seeds a fixed-n design needs; without either, the
    smallest effect those seeds detect with `power`. With a margin, also the seeds TOST
    needs to show "within +/- margin" with `power` if there is no difference
    (`seeds_equivalent`), and whether the verdict already decides the comparison. `effect`
    and the margin are in the unit of `study_outcome`: a comparison on another metric
    plans for its own smallest detectable difference."""
    claims = list(claims)
    claimed = claimed_pairs(claims)
    claim_table = (check_claims(frame, claims, margin, alpha, study_outcome) if claims
                   else None)
    verdicts = ({pair_key(c.section, c.cell, c.baseline, claim_outcome(c).metric): v
                 for c, v in zip(claims, claim_table["verdict"], strict=True)
                 if c.kind != "increasing"} if claim_table is not None else {})
    eff = effects(frame, margin, verdicts, len(claims), alpha, outcomes, study_outcome)
    rows = []
    for _, r in eff.iterrows():
        key = pair_key(r["section"], r["cell"], r["baseline"], r["metric"])
        if key in claimed:
            continue  # planned as the claim below
        family = int((eff["family"] == r["family"]).sum())
        outcome = outcome_in(outcomes, r["section"])
        rows.append(_plan(r.to_dict(), "", margin_for(margin, outcome, study_outcome), family,
                          margin_for(effect, outcome, study_outcome), power, alpha,
                          decided=bool(r["reject_diff"] or r["reject_equiv"])))
    for c, decided in zip(claims, claim_table["decided"] if claim_table is not None else [],
                          strict=False):
        if c.kind not in ("beats", "equivalent"):
            continue
        sub = frame[frame["section"] == c.section]
        a, b = sub[sub["cell"] == c.baseline], sub[sub["cell"] == c.cell]
        if not len(a) or not len(b):
            continue
        outcome = claim_outcome(c)
        band = (c.margin if c.kind == "equivalent"
                else margin_for(margin, outcome, study_outcome))
        r = {**compare(a, b, band, resolution(frame, outcome), outcome), "section": c.section,
             "cell": c.cell, "baseline": c.baseline, "n": min(len(a), len(b)),
             "metric": outcome.metric}
        rows.append(_plan(r, c.text, band, len(claims),
                          margin_for(effect, outcome, study_outcome), power, alpha,
                          bool(decided)))
    columns = ["section", "cell", "baseline", "claim", "metric", "n", "n_paired", "diff",
               "sd_diff", "p", "margin", "p_equiv", "decided", "level", "effect", "power",
               "seeds_needed", "detectable", "seeds_equivalent"]
    return pd.DataFrame(rows, columns=columns)


def _plan(r: dict, claim: str, band, family: int, effect, power, alpha, decided) -> dict:
    planned = plan_row(r, family, power, alpha, effect if effect is not None else band)
    equivalent = (planning.tost_seeds_needed(0.0, r["sd_diff"], band, power, planned["level"])
                  if band is not None and r.get("sd_diff", math.nan) == r.get("sd_diff")
                  and "sd_diff" in r else None)
    return {"section": r["section"], "cell": r["cell"], "baseline": r["baseline"],
            "claim": claim, "metric": r.get("metric", "test_accuracy"), "n": r["n"],
            "n_paired": r.get("n_paired", 0), "diff": r["diff"],
            "sd_diff": r.get("sd_diff", math.nan), "p": r["p"], "margin": band,
            "p_equiv": r.get("p_equiv", math.nan), "decided": decided, **planned,
            "seeds_equivalent": equivalent}
