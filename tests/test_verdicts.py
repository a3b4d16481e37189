"""The verdicts' guarantees, one test per defect the statistics audit found (issue 27,
items 3-11); each goes red with the behaviour it replaced."""

import math

import numpy as np
import pytest
from scipy import integrate, stats
from test_aggregate import _frame  # the hand-made results frames

from benchmark import Claim, aggregate, planning, sequential_verdicts, verdicts


def _acc(correct: int) -> float:
    return 100 * correct / 10_000  # how the trainer records an accuracy


def _pair(base, cell, section="S", names=("base", "x")):
    """A section of two cells with the given per-seed accuracies."""
    return ([(section, 0, names[0], s, a) for s, a in enumerate(base)]
            + [(section, 1, names[1], s, a) for s, a in enumerate(cell)])


def test_3_seeds_exactly_one_image_apart_are_not_p_zero():
    """Each seed one image better (differences unequal in the last bits): the old guard
    compared floats for equality, found a spread of 1e-15 and said "better, p = 0"."""
    base = [_acc(9801), _acc(9733), _acc(9912)]
    cell = [_acc(9802), _acc(9734), _acc(9913)]
    d = np.subtract(cell, base)
    assert d.std() > 0  # the float differences do differ
    row = aggregate.effects(_frame(_pair(base[:2], cell[:2]))).iloc[0]
    assert row["p"] > 0.2 and row["verdict"].startswith(aggregate.SAME)
    assert row["ci_low"] < row["ci_high"]
    row3 = aggregate.effects(_frame(_pair(base, cell))).iloc[0]
    assert row3["p"] > 0.05 and row3["verdict"] != aggregate.BETTER


def test_4_a_non_significant_comparison_is_not_judged_by_observed_power():
    """The old verdict computed power at the observed difference, so every p >= 0.05 read
    "underpowered". Now: without a margin, the smallest difference the seeds detect (the
    same for any observed difference with the same spread); with one, power at the margin."""
    noise = [0.3, -0.2, 0.1, -0.3, 0.1]
    base = [97.0 + 0.1 * s for s in range(5)]
    small = _frame(_pair(base, [b + 0.05 + e for b, e in zip(base, noise, strict=True)]))
    large = _frame(_pair(base, [b + 0.15 + e for b, e in zip(base, noise, strict=True)]))
    rows = [aggregate.effects(f).iloc[0] for f in (small, large)]
    assert all(r["p"] > 0.05 for r in rows)
    assert rows[0]["detectable"] == pytest.approx(rows[1]["detectable"])
    assert all("underpowered" not in r["verdict"] for r in rows)
    with_margin = [aggregate.effects(f, margin=0.3).iloc[0] for f in (small, large)]
    assert with_margin[0]["power"] == pytest.approx(with_margin[1]["power"])
    sd = with_margin[0]["sd_diff"]
    assert with_margin[0]["power"] == pytest.approx(planning.paired_power(0.3, sd, 5, 0.05))


def test_5_power_counts_the_paired_seeds_the_test_used():
    """A baseline with 3 seeds and a cell with 10: the paired test uses 3 seeds, and so
    must its power (the old code used the cell's 10: 0.74 where it is far lower)."""
    base = [97.0 + 0.1 * s for s in range(3)]
    cell = [97.4 + 0.1 * s + 0.2 * (s % 2) for s in range(10)]
    frame = _frame([("S", 0, "base", s, a) for s, a in enumerate(base)]
                   + [("S", 1, "x", s, a) for s, a in enumerate(cell)])
    row = verdicts.power_table(frame, effect=0.15).iloc[0]
    assert row["n_paired"] == 3
    assert row["power"] == pytest.approx(planning.paired_power(0.15, row["sd_diff"], 3, 0.05))
    assert row["power"] < planning.paired_power(0.15, row["sd_diff"], 10, 0.05) - 0.2


def test_6_planning_uses_the_level_the_verdict_uses():
    """Four comparisons in a section: the verdicts are family-wise, so a plan at alpha
    0.05 promises power the verdict does not have; plans are at 0.05 / 4."""
    base = [97.0 + 0.1 * s for s in range(4)]
    rows = _pair(base, [b + 0.3 + 0.1 * (s % 2) for s, b in enumerate(base)])
    for k, shift in enumerate((0.2, -0.1, 0.05), start=2):
        rows += [("S", k, f"c{k}", s, b + shift + 0.1 * ((s + k) % 3)) for s, b in enumerate(base)]
    table = verdicts.power_table(_frame(rows), effect=0.2)
    assert np.allclose(table["level"], 0.05 / 4)
    r = table.iloc[0]
    assert r["seeds_needed"] == planning.seeds_needed(0.2, r["sd_diff"], 0.8, 0.05 / 4)
    assert r["seeds_needed"] > planning.seeds_needed(0.2, r["sd_diff"], 0.8, 0.05)


def test_7_a_claim_and_its_table_row_never_disagree():
    """A claim on a section comparison: the row carries the claim's verdict, and the
    claim is tested in the claims' family, not at a raw p < 0.05 while the table applies
    the section's correction."""
    base = [97.0 + 0.1 * s for s in range(5)]
    rows = _pair(base, [b + x for b, x in zip(base, [0.5, 0.2, 0.6, 0.1, 0.4], strict=True)],
                 names=("base", "BN"))
    for k in range(2, 9):  # seven more cells with nothing there: a family of 8
        rows += [("S", k, f"c{k}", s, b + 0.1 * ((s * k) % 3 - 1)) for s, b in enumerate(base)]
    frame = _frame(rows)
    claims = [Claim.beats("BN beats base", "S", "BN", "base")]
    table = verdicts.check_claims(frame, claims)
    verdict = table["verdict"].iloc[0]
    assert verdict == "holds"  # p = 0.018: one claim, its family's level is 0.05
    key = aggregate.pair_key("S", "BN", "base", "test_accuracy")
    eff = aggregate.effects(frame, None, {key: verdict})
    row = eff.set_index("cell").loc["BN"]
    assert row["verdict"] == f"{aggregate.CLAIMED}: holds" and row["family"] == "claims"
    # the seven others form the section's family; without the claim BN's row would be
    # one of eight and read "not family-wise"
    assert (eff["family"] == "section S").sum() == 7
    alone = aggregate.effects(frame).set_index("cell").loc["BN"]
    assert alone["verdict"].startswith(aggregate.HOLM_ONLY)


def test_8_p_better_is_paired_over_matched_seeds():
    """B beats A on every seed by a little while the seeds themselves move both a lot:
    the pooled (unpaired) share was 0.76 [0.45, 1.00] beside a paired p of 0.0006."""
    seed_effect = [0.0, 1.5, -1.2, 0.8, -0.6]
    base = [97.0 + e for e in seed_effect]
    cell = [97.3 + e + 0.02 * (s % 2) for s, e in enumerate(seed_effect)]
    row = aggregate.effects(_frame(_pair(base, cell))).iloc[0]
    assert row["p"] < 0.001
    assert row["p_improve"] == 1.0
    assert row["p_improve_low"] == pytest.approx(0.025 ** (1 / 5), abs=1e-6)  # 5 of 5


def test_9_both_facts_are_stated_when_both_hold():
    """+0.2 pp with little spread inside a ±0.3 pp margin: equivalent and better."""
    base = [97.0 + 0.1 * s for s in range(6)]
    cell = [b + 0.2 + 0.01 * (s % 2) for s, b in enumerate(base)]
    row = aggregate.effects(_frame(_pair(base, cell)), margin=0.3).iloc[0]
    assert row["reject_equiv"] and row["reject_diff"]
    assert row["verdict"] == ("equivalent within ±0.3 pp; also better by +0.20 pp (a "
                              "difference smaller than the margin)")
    claim = Claim.equivalent("x matches base", "S", "x", "base", 0.3)
    verdict = verdicts.check_claims(_frame(_pair(base, cell)), [claim])["verdict"].iloc[0]
    assert verdict == "holds; also better by +0.20 pp"


def test_10_power_is_a_number_everywhere_in_the_planning_range():
    """scipy's noncentral t gives NaN at points of the grid (dz 3, alpha 0.01, 6 seeds
    among them), which moved seeds_needed one seed high."""
    nan = 0
    for dz in np.linspace(0.05, 12, 40):
        for alpha in (0.05, 0.0125, 0.01, 0.005, 0.001):
            powers = planning._paired_powers(dz, 1.0, planning.GRID, alpha)
            nan += int(np.isnan(powers).sum())
    assert nan == 0
    # the power there from its definition, integrated by scipy's quad: P(|T| > c) with
    # T = (Z + nc) / sqrt(V / 5), V chi-square on 5 df
    crit, nc = stats.t.ppf(1 - 0.01 / 2, 5), 3 * math.sqrt(6)
    exact = integrate.quad(lambda v: (stats.norm.sf(crit * math.sqrt(v / 5) - nc)
                                      + stats.norm.cdf(-crit * math.sqrt(v / 5) - nc))
                           * stats.chi2.pdf(v, 5), 0, np.inf)[0]
    assert planning.paired_power(3.0, 1.0, 6, 0.01) == pytest.approx(exact, abs=1e-6)
    assert planning.seeds_needed(3.0, 1.0, 0.8, 0.01) == 5
    rng = np.random.default_rng(0)
    df, nc, x = rng.integers(1, 500, 300), rng.uniform(0, 30, 300), rng.uniform(-3, 35, 300)
    ref = stats.nct.cdf(x, df, nc)
    ok = np.isfinite(ref)
    assert np.abs(planning.nct_cdf(x, df, nc)[ok] - ref[ok]).max() < 1e-5


def test_11_a_perfect_trend_gets_its_exact_permutation_p_value():
    """Ranks that agree perfectly were p = 0 ("p < 0.001"); one seed of 5 cells in order
    is 2/120 two-sided, and 3 cells in order (1 time in 6 by chance) shows nothing."""
    five = _frame([("F", p, f"k{p}", 0, 97.0 + 0.3 * p) for p in range(5)])
    claim = Claim.increasing("wider is better", "F")
    out = verdicts.check_claims(five, [claim]).iloc[0]
    assert out["verdict"].startswith("holds (a rising trend") and "p = 0.0167" in out["evidence"]
    assert "mean Spearman rho +1.00" in out["evidence"]
    three = _frame([("F", p, f"k{p}", 0, 97.0 + 0.3 * p) for p in range(3)])
    assert verdicts.check_claims(three, [claim])["verdict"].iloc[0] == "not shown"
    # seeds are blocks: 3 seeds of 3 cells in order, 2 x 6^-3 = 0.0093
    blocks = _frame([("F", p, f"k{p}", s, 97.0 + 0.3 * p + 0.5 * s) for p in range(3)
                     for s in range(3)])
    assert verdicts.page_trend(blocks)["p"] == pytest.approx(2 / 216)
    down = _frame([("F", p, f"k{p}", 0, 97.0 - 0.3 * p) for p in range(5)])
    assert verdicts.check_claims(down, [claim])["verdict"].iloc[0].startswith("contradicted")


def test_a_claim_on_unpaired_seeds_is_judged_by_welch_without_a_crash():
    """Two seeds a side but at most one shared (a failed job on each side): Welch's test,
    no paired P(better), no plan, and a verdict (it used to raise a KeyError that took the
    whole report down)."""
    rows = [("S", 0, "base", 0, 97.0), ("S", 0, "base", 1, 97.2),
            ("S", 1, "x", 1, 97.9), ("S", 1, "x", 2, 98.1)]
    out = verdicts.check_claims(_frame(rows), [Claim.beats("x beats base", "S", "x", "base")],
                                 margin=0.3).iloc[0]
    assert "Welch t, 2 vs 2 seeds (unpaired)" in out["evidence"]
    assert out["verdict"].startswith(("holds", "not shown"))


def test_a_claim_short_of_seeds_does_not_hold_up_the_others():
    """One claim's look lacks a seed (a failed job): it waits there; the others are still
    decided, and a beats claim shown both different and equivalent holds (equivalence the
    second fact), as at fixed n."""
    from benchmark import decisions

    design = decisions.Design((3, 5, 7), 0.05, 0.3, 2)
    big = np.array([5.0, 5.1, 4.9, 5.05, 5.0, 4.95, 5.1])
    short = np.array([0.1, -0.2])
    first, second = decisions.progress(design, [big, short], 0.01)
    assert (first.verdict, first.seeds) == (decisions.BETTER, 3)
    assert (second.verdict, second.needs) == (decisions.UNDECIDED, 3)
    inside = [0.15, 0.16, 0.14, 0.15, 0.15]
    p = decisions.progress(decisions.Design((3, 5), 0.05, 0.3, 1), [inside], 0.01)[0]
    assert p.verdict == decisions.EQUIVALENT and p.also == decisions.BETTER
    claim = Claim.beats("x beats base", "S", "x", "base")
    verdict = sequential_verdicts.sequential_verdict(claim, p, 0.3)
    assert verdict.startswith("holds; also equivalent")


def test_compare_judges_each_side_s_claims_in_its_own_family():
    """B's extra claim, with no data on A, takes none of A's alpha: A's claim keeps the
    verdict A's own report gives it."""
    from benchmark import compare

    base = [97.0 + 0.1 * s for s in range(5)]
    rows = _pair(base, [b + x for b, x in zip(base, [0.5, 0.2, 0.6, 0.1, 0.4], strict=True)],
                 names=("base", "BN"))
    a = _frame(rows)
    mine = [Claim.beats("BN beats base", "S", "BN", "base")]
    theirs = mine + [Claim.beats("more", "S", "BN", "nothing here"),
                     Claim.beats("again", "S", "base", "BN")]
    own = verdicts.check_claims(a, mine)["verdict"].iloc[0]
    assert own == "holds"  # p = 0.018, a family of one
    table = compare.claim_rows(a, a, mine, theirs)
    assert [r[1] for r in table if r[0] == "BN beats base"] == [own]


def test_claims_without_a_test_take_no_share_of_the_family_alpha():
    """One-seed claims cannot be rejected: the quick study's width sweep (5 cells in
    order, exact p 2/120) beside seven one-seed claims is tested at 0.05, not 0.05 / 8."""
    rows = [("F", p, f"k{p}", 0, 97.0 + 0.3 * p) for p in range(5)]
    claims = [Claim.increasing("wider is better", "F")]
    for k in range(7):
        rows += [(f"S{k}", 0, "a", 0, 97.0), (f"S{k}", 1, "b", 0, 97.5)]
        claims.append(Claim.beats(f"b beats a in S{k}", f"S{k}", "b", "a"))
    out = verdicts.check_claims(_frame(rows), claims).set_index("claim")
    assert out.at["wider is better", "verdict"].startswith("holds")
    assert "family level 0.05" in out.at["wider is better", "evidence"]
    assert out.at["b beats a in S0", "verdict"].startswith("1 seed")
