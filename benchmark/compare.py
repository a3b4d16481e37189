"""Comparison stage: two sets of results, cell by cell and claim by claim.

Takes two `Side`s (a study in a result store under a training-code version: two studies,
one study under two code versions, or one study in two databases); gives the parts of a
comparison report, rendered like a study report (markdown and one HTML file):

Every comparison is on the outcome A's study decides on in that section (final test
accuracy unless it names another metric).

- cells: each (section, cell) present on both sides, with each side's mean and
  95% CI and the difference B - A (paired by seed where two or more seeds match, Welch's
  test otherwise) with its CI, p-value and P(B better than A on a seed);
- effects: each cell's effect against its section's baseline on A and on B, and whether
  the two effects differ (Welch's test on the per-seed effects): does a conclusion
  transfer?
- claims: each claim's verdict on A and on B, and whether they agree.

Reads the databases only; never imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from . import aggregate, decisions, state, verdicts
from .outcome import ACCURACY, Outcome
from .report import Part, acc_text, improve_text, p_text
from .store import ResultStore


@dataclass(frozen=True)
class Side:
    store: ResultStore
    study: str
    code_version: str
    label: str  # how the report names this side ("A: mnist_transfer")

    def frame(self) -> pd.DataFrame:
        frame = self.store.results_frame(self.study, code_version=self.code_version)
        return state.usable(frame, self.code_version) if len(frame) else frame

    def claims(self) -> list:
        info = self.store.study_info(self.study)
        return list(info["claims"]) if info else []

    def margin(self) -> float | None:
        info = self.store.study_info(self.study)
        return info.get("margin_pp") if info else None

    def outcome(self) -> Outcome:
        info = self.store.study_info(self.study)
        return info["outcome"] if info else ACCURACY

    def outcomes(self) -> dict[str, Outcome]:
        """Section name -> what the section decides on."""
        info = self.store.study_info(self.study)
        return {sec["name"]: sec["outcome"] for sec in info["sections"]} if info else {}


def _num(x: float, outcome: Outcome) -> str:
    return f"{x:+.2f}" if outcome.percent else f"{x:+.4g}"


def _ci(low: float, high: float, outcome: Outcome = ACCURACY) -> str:
    return "" if math.isnan(low) else f"[{_num(low, outcome)}, {_num(high, outcome)}]"


def cell_rows(a: pd.DataFrame, b: pd.DataFrame, outcomes=None) -> list[list[str]]:
    """One row per (section, cell) on both sides, in A's order."""
    cells_a, cells_b = aggregate.cell_table(a, outcomes), aggregate.cell_table(b, outcomes)
    merged = cells_a.merge(cells_b, on=["section", "cell"], suffixes=("_a", "_b"))
    rows = []
    for _, r in merged.iterrows():
        outcome = aggregate.outcome_in(outcomes, r["section"])
        sa = a[(a["section"] == r["section"]) & (a["cell"] == r["cell"])]
        sb = b[(b["section"] == r["section"]) & (b["cell"] == r["cell"])]
        c = aggregate.compare(sa, sb, outcome=outcome)
        rows.append([r["section"], r["cell"], _side_acc(r, "_a", outcome),
                     _side_acc(r, "_b", outcome), _num(c["diff"], outcome),
                     _ci(c["ci_low"], c["ci_high"], outcome), p_text(c["p"]),
                     c["method"], improve_text(c)])
    return rows


def _side_acc(r: pd.Series, suffix: str, outcome: Outcome = ACCURACY) -> str:
    side = pd.Series({k: r[k + suffix] for k in ("n", "mean", "ci_low", "ci_high",
                                                 "noise_floor")})
    return f"{acc_text(side, outcome)} (n={int(side['n'])})"


def _seed_effects(frame: pd.DataFrame, section: str, cell: str, baseline: str,
                  metric: str = "test_accuracy") -> pd.Series:
    """Per-seed effect cell - baseline (seeds present in both)."""
    sub = frame[frame["section"] == section]
    if metric not in sub:
        return pd.Series(dtype=float)
    base = sub[sub["cell"] == baseline].set_index("seed")[metric]
    other = sub[sub["cell"] == cell].set_index("seed")[metric]
    return (other - base).dropna()


def effect_rows(a: pd.DataFrame, b: pd.DataFrame, margin: float | None = None,
                outcomes=None, study_outcome: Outcome = ACCURACY) -> list[list[str]]:
    """Each cell's effect against its section baseline, on A and on B, and whether the
    effects differ beyond seed noise; with a `margin` (in the unit of `study_outcome`, for
    the sections deciding on it), whether they are shown to be within it of each other (the
    effect transfers: Welch TOST). The rows form one family (`decisions.closed_test`, as
    every verdict of `policy`): "differs" and "transfers" are family-wise at alpha.
    """
    ea = aggregate.effects(a, margin, outcomes=outcomes, study_outcome=study_outcome)
    eb = aggregate.effects(b, margin, outcomes=outcomes, study_outcome=study_outcome)
    merged = ea.merge(eb, on=["section", "cell", "baseline"], suffixes=("_a", "_b"))
    tests = []
    for _, r in merged.iterrows():
        outcome = aggregate.outcome_in(outcomes, r["section"])
        band = aggregate.margin_for(margin, outcome, study_outcome)
        da = _seed_effects(a, r["section"], r["cell"], r["baseline"],
                           outcome.metric).to_numpy(float)
        db = _seed_effects(b, r["section"], r["cell"], r["baseline"],
                           outcome.metric).to_numpy(float)
        if len(da) >= 2 and len(db) >= 2:
            diff, low, high, p = aggregate.welch(da, db)
            same = decisions.ttost_welch(da, db, band)[1] if band is not None else math.nan
            tests.append({"diff": diff, "low": low, "high": high, "p": p, "p_equiv": same})
        else:
            tests.append(None)
    testable = [t for t in tests if t is not None]
    if testable:
        rej_diff, rej_eq = decisions.closed_test([t["p"] for t in testable],
                                                 [t["p_equiv"] for t in testable],
                                                 aggregate.ALPHA)
        for t, d, e in zip(testable, rej_diff, rej_eq, strict=True):
            t["differs"], t["transfers"] = bool(d), bool(e)
    rows = []
    for (_, r), t in zip(merged.iterrows(), tests, strict=True):
        outcome = aggregate.outcome_in(outcomes, r["section"])
        band = aggregate.margin_for(margin, outcome, study_outcome)
        if t is not None:
            state = (f"the effect transfers: within {outcome.band(band)}" if t["transfers"]
                     else "differs" if t["differs"] else
                     "undecided" if band is not None else "no detectable difference")
            change = (f"{_num(t['diff'], outcome)} {_ci(t['low'], t['high'], outcome)}",
                      p_text(t["p"]), state)
        else:
            change = ("", "", "needs 2+ paired seeds on each side")
        rows.append([r["section"], f"{r['cell']} vs {r['baseline']}",
                     f"{_num(r['diff_a'], outcome)} "
                     f"{_ci(r['ci_low_a'], r['ci_high_a'], outcome)}",
                     r["verdict_a"],
                     f"{_num(r['diff_b'], outcome)} "
                     f"{_ci(r['ci_low_b'], r['ci_high_b'], outcome)}",
                     r["verdict_b"], *change])
    return rows


def _verdict_kind(verdict: str) -> str:
    """A verdict's gist: holds / contradicted / not shown / undecided / 1 seed / no data."""
    for kind in ("holds", "contradicted", "not shown", "undecided", "1 seed", "no data"):
        if verdict.startswith(kind):
            return kind
    return verdict


def _judged(frame: pd.DataFrame, own, every, margin: float | None,
            study_outcome: Outcome = ACCURACY) -> pd.DataFrame:
    """Claim verdicts on one side: its own claims as its family (the verdicts its report
    gives), the other side's claims as a second family, so they take none of its alpha."""
    own_texts = {c.text for c in own}
    mine = [c for c in every if c.text in own_texts]
    theirs = [c for c in every if c.text not in own_texts]
    tables = [verdicts.check_claims(frame, group, margin, study_outcome=study_outcome)
              for group in (mine, theirs) if group]
    if not tables:
        return verdicts.check_claims(frame, [], margin).set_index("claim")
    return pd.concat(tables).set_index("claim")


def claim_rows(a: pd.DataFrame, b: pd.DataFrame, claims_a, claims_b,
               margin: float | None = None, study_outcome: Outcome = ACCURACY
               ) -> list[list[str]]:
    """Each claim either side states (by its text), judged on both sides' results."""
    claims = {c.text: c for c in [*claims_b, *claims_a]}  # A's wording where both have one
    verdicts_a = _judged(a, claims_a, claims.values(), margin, study_outcome)
    verdicts_b = _judged(b, claims_b, claims.values(), margin, study_outcome)
    rows = []
    for text in claims:
        va, vb = verdicts_a.at[text, "verdict"], verdicts_b.at[text, "verdict"]
        agree = "yes" if _verdict_kind(va) == _verdict_kind(vb) else "no"
        rows.append([text, va, verdicts_a.at[text, "evidence"], vb,
                     verdicts_b.at[text, "evidence"], agree])
    return rows


def build(side_a: Side, side_b: Side) -> tuple[str, list[Part]]:
    """The comparison's title and parts."""
    a, b = side_a.frame(), side_b.frame()
    title = f"cnnbench compare: {side_a.label} vs {side_b.label}"
    parts = [Part("p", f"A = {side_a.label} ({len(a)} current results, code "
                       f"{side_a.code_version}, {side_a.store.url_redacted}); B = "
                       f"{side_b.label} ({len(b)} current results, code "
                       f"{side_b.code_version}, {side_b.store.url_redacted}).")]
    if not len(a) or not len(b):
        return title, parts + [Part("p", "One side has no current results: nothing to "
                                         "compare.")]
    margin = side_a.margin() if side_a.margin() is not None else side_b.margin()
    outcome, outcomes = side_a.outcome(), side_a.outcomes()
    claims = claim_rows(a, b, side_a.claims(), side_b.claims(), margin, outcome)
    if claims:
        agree = sum(r[-1] == "yes" for r in claims)
        parts += [Part("h2", "Claims"),
                  Part("p", f"{agree} of {len(claims)} claims reach the same verdict on A "
                            "and B."),
                  Part("table", "", ["claim", "verdict on A", "evidence on A", "verdict on B",
                                     "evidence on B", "agree"], claims)]
    effects = effect_rows(a, b, margin, outcomes, outcome)
    if effects:
        within = (f" With the margin of {outcome.band(margin)}, an effect transfers when the two "
                  "effects are shown to be within it of each other (two one-sided Welch "
                  "tests)." if margin is not None else "")
        parts += [Part("h2", "Effects against each section's baseline"),
                  Part("p", "Does a conclusion transfer? Each cell's effect (pp, or its "
                            "metric's unit) against its section's first cell on A and on B, "
                            "and B's effect minus A's (Welch's t on the per-seed effects); "
                            "the rows are one family, "
                            f"family-wise at alpha {aggregate.ALPHA} (closed test)." + within),
                  Part("table", "", ["section", "comparison", "effect on A [95% CI]",
                                     "verdict on A", "effect on B [95% CI]", "verdict on B",
                                     "B - A [95% CI]", "p", "effects"], effects)]
    cells = cell_rows(a, b, outcomes)
    accuracy_only = set(outcomes.values()) <= {ACCURACY}
    on = ("Test accuracy (%) of each cell on both sides; B - A in pp" if accuracy_only else
          "Each cell's outcome on both sides (its section's metric, as A decides on it: "
          + ", ".join(f"{name}: {o.label}" for name, o in outcomes.items()) + "); B - A in "
          "its unit")
    parts += [Part("h2", "Cells"),
              Part("p", f"{on}, paired by seed where two or more seeds match."),
              Part("table", "", ["section", "cell", "A", "B",
                                 "B - A pp" if accuracy_only else "B - A",
                                 "95% CI", "p", "method",
                                 "P(B > A) [95% CI]" if accuracy_only else
                                 "P(B better on a seed) [95% CI]"], cells)]
    only = _unmatched(a, b)
    if only:
        parts += [Part("h2", "Cells on one side only"), Part("p", only)]
    return title, parts


def _unmatched(a: pd.DataFrame, b: pd.DataFrame) -> str:
    ka = set(zip(a["section"], a["cell"], strict=True))
    kb = set(zip(b["section"], b["cell"], strict=True))
    text = []
    for name, keys in (("only on A", ka - kb), ("only on B", kb - ka)):
        if keys:
            text.append(f"{name}: " + ", ".join(f"{s}/{c}" for s, c in sorted(keys)))
    return "; ".join(text)
