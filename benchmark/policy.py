"""Error-control policy: which comparisons form a family, how each family is corrected,
and what each verdict guarantees (pure Python; no torch, no pandas).

Stated once, here, and used by the tables and claims (`aggregate`), `compare`, `power`
and `--until-decided` (`decisions`); `method_paragraphs` is the report's method section,
and the README quotes it. The error rates it quotes are measured, not assumed:
`error_rates.json` beside this file is written by `nox -s sequential -- --policy
benchmark/error_rates.json` (`perf/sequential.py --policy ...`), with Monte Carlo intervals.
"""

from __future__ import annotations

import json
from pathlib import Path

ALPHA = 0.05  # family-wise rate of a false verdict in each family
POWER = 0.8  # the power planning aims at
MEASURED = Path(__file__).with_name("error_rates.json")


def planning_alpha(alpha: float, family: int) -> float:
    """The level a comparison in a family of `family` comparisons is planned at: the
    closed test's first step, alpha / family (Bonferroni), the least it may be tested at;
    a plan at alpha would promise power the verdict does not have."""
    return alpha / max(family, 1)


def claim_margins(claims, study_margin: float | None, study_outcome=None
                  ) -> list[float | None]:
    """The margin each claim's equivalence hypothesis is tested at: an equivalence
    claim's own, else the study's where the claim decides on the study's outcome (the
    margin is in its unit; None: no equivalence hypothesis)."""
    def other(c) -> bool:
        return (study_outcome is not None and getattr(c, "outcome", None) is not None
                and c.outcome != study_outcome)

    return [c.margin if c.kind == "equivalent" else (None if other(c) else study_margin)
            for c in claims]


def measured() -> dict | None:
    """The simulated error rates (`perf/sequential.py`), or None when not written."""
    try:
        return json.loads(MEASURED.read_text())
    except (OSError, ValueError):
        return None


def _interval(rate: float, bounds) -> str:
    return f"{rate:.4f} (95% Monte Carlo interval {bounds[0]:.4f}-{bounds[1]:.4f})"


def measured_sentences(spending: str | None = None) -> list[str]:
    """The measured figures as sentences: the fixed-n closed test's family-wise rates and,
    for a sequential design with `spending`, its rates; [] when nothing (or a file of
    another shape) was measured."""
    try:
        return _sentences(measured(), spending)
    except (KeyError, TypeError, IndexError):
        return []


def _sentences(m: dict | None, spending: str | None, continuous: bool = False) -> list[str]:
    if not m:
        return []
    out = []
    fixed = m.get("fixed_n")
    if fixed:
        how = ("for a continuous outcome, no rounding, in any unit" if continuous else
               "paired sd 0.1-1.5 pp")
        out.append(
            f"Measured by simulation ({fixed['studies']:,} studies of {fixed['claims']} "
            f"comparisons at {fixed['seeds']} seeds, {how}, a shared baseline, "
            f"normal and t(3) noise): the closed test's family-wise rate of a false better or "
            f"worse with every difference 0 is {_interval(*fixed['null'])} at most over those "
            f"noises, and of a false equivalent with every difference at the margin "
            f"{_interval(*fixed['margin'])}; the target is {ALPHA}. With light-tailed "
            f"(uniform) noise, where the t test's small-sample tails are too thin, the first is "
            f"{_interval(*fixed['uniform']['null'])}.")
    seq = (m.get("sequential") or {}).get(spending) if spending else None
    if seq:
        out.append(
            f"{'For a continuous outcome, the' if continuous else 'For the'} {spending} "
            f"design ({seq['claims']} claims, looks at "
            f"{seq['looks'][0]}-{seq['looks'][-1]} seeds): family-wise false better/worse "
            f"with every difference 0 {_interval(*seq['null'])}, false equivalent at the "
            f"margin {_interval(*seq['margin'])}, and one claim alone at its level "
            f"{seq['single']['level']:.4g}: {_interval(*seq['single']['null'])} over "
            f"{seq['single']['sequences']:,} sequences. The repeated intervals covered every "
            f"claim's true difference at every look in {_interval(*seq['coverage'])} of "
            f"studies (target {1 - ALPHA:.2f}). With light-tailed (uniform) noise, the "
            f"family-wise false better/worse is {_interval(*seq['uniform']['null'])}: the "
            "guarantee assumes per-seed differences about as heavy-tailed as normal ones or "
            "heavier.")
    return out


def continuous_sentences(spending: str | None = None) -> list[str]:
    """The measured figures of a continuous outcome (`perf/sequential.py --resolution 0`,
    the file's "continuous" record) as sentences; [] when not measured."""
    try:
        return _sentences((measured() or {}).get("continuous"), spending, continuous=True)
    except (KeyError, TypeError, IndexError):
        return []


def other_metrics_paragraph(labels: list[str], spending: str | None = None) -> list[str]:
    """What the method section says of sections and claims deciding on another metric
    (`labels`: 'ece (lower is better)', ...); [] without any."""
    if not labels:
        return []
    return [
        f"Other metrics. Sections and claims deciding on {', '.join(labels)} compare each "
        "seed's value of that metric the same way: the per-seed difference cell minus "
        "baseline in the metric's own unit, tested by the same paired t tests, closed test "
        "and sequential bounds (the t statistics do not depend on the unit), with 'better' "
        "following the metric's direction (P(better on a seed) counts the seeds better in "
        "that direction). Such a number is continuous: it is not rounded, its spread has "
        "no floor, and one seed a side has no noise estimate at all.",
        *continuous_sentences(spending)]


def method_paragraphs(design: dict | None = None, margin: float | None = None,
                      other_metrics: list[str] | None = None) -> list[str]:
    """The report's method section: what was tested, how, and what each verdict means;
    `other_metrics`: the labels of the outcomes other than test accuracy it decides on."""
    text = [
        "Unit and tests. The unit of replication is the seed: every cell of a section runs "
        "with the same seeds, and a comparison is the per-seed difference cell minus "
        "baseline in test accuracy (percentage points). Accuracies count whole test "
        "images, so differences are rounded to one image and a spread below one image is "
        "taken as one image (the standard deviation is floored there): seeds that agree "
        "exactly are never 'p = 0'. A difference is tested by the two-sided paired t "
        "test; equivalence within a margin m by two one-sided t tests (TOST: |difference| "
        "< m). Comparisons with fewer than two matching seeds fall back to Welch's t (no "
        "spread floor, no equivalence test); one seed a side has no test (the test set's "
        "binomial standard error is shown instead). A trend claim ('increasing') is Page's "
        "test with seeds as blocks, its p-value exact from the permutations of the ranks "
        "within each seed for up to 8 cells (beyond, from 100,000 random permutations); "
        "'holds' means the accuracy rises with the cells' order overall, not at every step.",
        "Families. The study's claims form one family (in a sequential run, its trend claims "
        "form a second, tested once at fixed n); each section's comparisons against its "
        "first cell that no claim makes form one family per section; a table row that a "
        "claim makes shows the claim's verdict. Within a family, each comparison carries "
        "two null hypotheses, 'no difference' and, with a margin, 'not equivalent', of "
        "which at most one is true; a comparison without a test (one seed a side) "
        "cannot be rejected and takes no share of alpha. The closed test over the "
        "intersections that can be "
        "true together, each tested by Bonferroni, keeps the probability of rejecting any "
        f"true 'no difference' or 'not equivalent' in the family at or under alpha = "
        f"{ALPHA} whatever the dependence between comparisons, given tests that are valid "
        "one by one (the t tests assume roughly normal per-seed differences; the "
        "simulations below add heavy-tailed and uniform noise). Without margins it is "
        "Holm's step-down; with margins a comparison frees its share of alpha for the "
        "others only once both its hypotheses are rejected. A wrong sign (better where the "
        "truth is worse) is not a true null rejected: each two-sided test keeps it under "
        "alpha / 2 alone, and the simulations count it. Error control is per family: a "
        "study with k families can hold up to k x alpha in all.",
        "Verdicts. 'better' or 'worse' (a claim 'holds' or is 'contradicted'): the mean "
        "difference is shown to differ from 0 with that sign. 'equivalent within ±m pp': "
        "the difference is shown to lie inside ±m. Both can hold at once (a difference "
        "smaller than the margin), and both are then stated. 'not shown', 'no detectable "
        "difference' and 'undecided' claim nothing; beside them stands what the seeds "
        "could have seen: the power for the smallest effect of interest (the margin), or "
        "without one the smallest difference the paired seeds detect with 80% power, each "
        "at the family's first-step level alpha / (family size), never the 'observed "
        "power' (a transform of p). P(better on a seed) is the share of matched seeds on "
        "which the cell beats the baseline, ties (within half an image) counting one half, "
        "with a Clopper-Pearson interval (at least 95% coverage whatever the ties). Each "
        "claim's equivalence interval is shown at the level its family required of it.",
    ]
    if design:
        looks = ", ".join(map(str, design["looks"]))
        text.append(
            f"Sequential claims (cnnbench run --until-decided). The claims got the study's "
            f"first {design['first']} seeds, then {design['batch']} more at a time while "
            f"undecided, up to {design['max_seeds']} (looks at {looks}). Each claim's t "
            "statistics at its looks are compared with bounds calibrated for t statistics "
            "themselves: their joint null law does not depend on the noise scale, so the "
            "bounds are found by simulating 10^6 null paths, with alpha spent by the "
            f"'{design['spending']}' function and aimed four Monte Carlo standard errors "
            "under it. Bounds are calibrated at every level of the ladder alpha / claims, "
            "..., alpha; at each look the closed test above runs on each claim's "
            "sequential p-value (the least level whose bound it crosses at that look), and a "
            "claim stops getting seeds once one of its hypotheses is rejected, keeping that "
            "p-value (Maurer and Bretz 2013). The first look's t statistic has few degrees "
            "of freedom, so its share of alpha leans on the normality of the per-seed "
            "differences more than later looks do. The repeated intervals are at "
            f"1 - alpha / claims, simultaneous over claims and looks at 1 - alpha. The "
            "section tables of a sequential study are fixed-n tests on seed counts the "
            "claims' stopping chose: they carry no sequential guarantee.")
    text += measured_sentences(design["spending"] if design else None)
    text += other_metrics_paragraph(other_metrics or [],
                                    design["spending"] if design else None)
    return text
