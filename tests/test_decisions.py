"""Equivalence, the closed test, t-calibrated group-sequential bounds and the sequential
rule, on hand-made data with known answers and small runs of the simulation harness."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import stdtrit

from benchmark import aggregate, decisions


def test_one_look_is_the_fixed_t_test_at_the_aimed_level():
    """With one look the calibrated bound is the t quantile at alpha lowered by four Monte
    Carlo standard errors (1.8% of 0.05 with 10^6 paths)."""
    aim = 0.05 * (1 - 4 / math.sqrt(0.05 * decisions.PATHS))
    got = decisions.t_bounds((5,), (0.05,), "pocock", True)[0, 0]
    assert got == pytest.approx(float(stdtrit(4, 1 - aim / 2)), rel=5e-3)
    one_sided = decisions.t_bounds((5,), (0.05,), "pocock", False)[0, 0]
    assert one_sided == pytest.approx(float(stdtrit(4, 1 - aim)), rel=5e-3)


@pytest.mark.parametrize("kind,expected", [
    # Jennison & Turnbull (2000), Lan-DeMets spending, two-sided alpha 0.05, 5 equal looks;
    # t statistics at 120-600 seeds are almost normal, and the simulated bounds sit a little
    # above the normal ones (t tails and the aimed-under level)
    ("obrien-fleming", [math.inf, 3.357, 2.680, 2.290, 2.031]),
    ("pocock", [2.438, 2.427, 2.410, 2.397, 2.386]),
])
def test_with_many_seeds_the_bounds_approach_the_published_normal_ones(kind, expected):
    got = decisions.t_bounds((120, 240, 360, 480, 600), (0.05,), kind, True)[0]
    for g, e in zip(got, expected, strict=True):
        assert (g == e == math.inf) or (e <= g <= e * 1.03), (got, expected)


def test_bounds_fall_as_the_level_rises_and_spending_ends_at_alpha():
    bounds = decisions.t_bounds((3, 5, 7), (0.01, 0.025, 0.05), "front-loaded", True)
    assert (np.diff(bounds, axis=0) <= 0).all()
    for kind in decisions.SPENDING:
        assert float(decisions.spending(kind, np.array([0.3, 1.0]), 0.05)[-1]) == \
            pytest.approx(0.05)
    assert decisions.spending("front-loaded", np.array([0.3, 0.6, 1.0]), 0.05)[0] == \
        pytest.approx(0.4 * 0.05)


def test_tost_on_known_data():
    d = np.array([0.1, -0.1, 0.2, 0.0, -0.2])  # mean 0, sd 0.158, se 0.0707
    mean, p, _ = decisions.ttost_paired(d, 0.3)
    # each one-sided t = 0.3 / 0.0707 = 4.243 on 4 df: p = 0.00662
    assert mean == pytest.approx(0.0, abs=1e-12) and p == pytest.approx(0.00662, abs=1e-4)
    _, p_narrow, _ = decisions.ttost_paired(d, 0.05)
    assert p_narrow > 0.2  # a band narrower than the noise cannot be shown
    # no spread and no resolution: no test at all, never p = 0
    assert math.isnan(decisions.ttost_paired(np.zeros(4), 0.3)[1])
    assert math.isnan(decisions.paired_t(np.full(4, 0.5))[2])
    # at the data's resolution the same job twice is shown equivalent, with a p-value
    _, p_same, _ = decisions.ttost_paired(np.zeros(4), 0.3, resolution=0.01)
    assert 0 < p_same < 1e-4


def test_the_closed_test_is_holm_without_margins():
    rng = np.random.default_rng(0)
    for _ in range(300):
        k = int(rng.integers(1, 9))
        p = rng.uniform(0, 0.1, k) ** rng.uniform(0.5, 3)
        rejected, second = decisions.closed_test(p, None, 0.05)
        assert not second.any()
        assert list(rejected) == [h <= 0.05 for h in aggregate.holm(list(p))], p


def test_the_closed_test_with_margins_by_hand():
    """Three comparisons, each with 'no difference' and 'not equivalent' (p-values below).
    a = (0.01, 0.9), b = (0.02, 0.004), c = (0.6, 0.7). For a's 0.01 the worst intersection
    that can be true holds b's 'no difference' (0.02) and one of c's: three hypotheses all
    above 0.05 / 3 -> a must reach 0.0167: rejected. b's 0.02 faces {a's 0.9, c's 0.7}:
    0.0167 -> not rejected; its 0.004 is. c: nothing (its level is 0.0167 too). Without
    c, a faces only b, whose larger p-value 0.02 is under 0.025: a is tested at 0.05, b at
    0.025 -> b gets both."""
    first, second = [0.01, 0.02, 0.6], [0.9, 0.004, 0.7]
    diff, equiv = decisions.closed_test(first, second, 0.05)
    assert list(diff) == [True, False, False] and list(equiv) == [False, True, False]
    diff, equiv = decisions.closed_test(first[:2], second[:2], 0.05)
    assert list(diff) == [True, True] and list(equiv) == [False, True]
    levels = decisions.step_levels([0.9, 0.02, 0.7], 0.05)
    assert list(levels) == pytest.approx([0.05 / 3] * 3)


def test_a_design_decides_each_look():
    design = decisions.Design(looks=(3, 5, 7), alpha=0.05, margin=0.3, claims=1)
    assert len(design.difference_bounds()) == 3
    assert design.decide([5.0, 5.1, 4.9], 0) == decisions.BETTER
    assert design.decide([-5.0, -5.1, -4.9], 0) == decisions.WORSE
    assert design.decide([0.0, 0.0, 0.0], 0, resolution=0.01) == decisions.EQUIVALENT
    assert design.decide([0.01, -0.02, 0.0], 0, resolution=0.01) == decisions.EQUIVALENT
    assert design.decide([0.4, -0.3, 0.1], 0) == decisions.UNDECIDED
    many = decisions.Design(looks=decisions.sequence_looks(3, 2, 20), alpha=0.05, margin=0.3,
                            claims=5)
    # every seed exactly one image better, with float noise in the last bits: no spread
    # beyond the resolution decides nothing (it was t ~ 1e12, "better" at the first look)
    one_image = [100 * 9801 / 10000 - 100 * 9800 / 10000, 0.01, 98.02 - 98.01]
    assert len(set(one_image)) > 1
    no_margin = decisions.Design(many.looks, 0.05, None, 5)
    assert no_margin.decide(one_image, 0, resolution=0.01) == decisions.UNDECIDED
    # with a margin, one image each time is (rightly) inside +/-0.3 pp, never "better"
    assert many.decide(one_image, 0, resolution=0.01) == decisions.EQUIVALENT
    # 29 images on each of 3 seeds: the spread is taken as one image, t = 50, p 4e-4
    assert many.decide([0.29] * 3, 0, resolution=0.01) == decisions.BETTER
    with pytest.raises(ValueError, match="look 1 is at 5 seeds"):
        design.decide([1.0, 2.0], 1)
    for bad in ({"looks": (1, 3)}, {"looks": (3, 3)}, {"margin": 0.0}, {"margin": math.nan},
                {"alpha": 1.5}, {"spending": "haybittle"}):
        with pytest.raises(ValueError):
            decisions.Design(**{"looks": (3, 5), **bad})


def test_a_clear_effect_is_decided_at_the_first_look():
    """SGD lr 0.05 against lr 0.0005 (71, 65, 70% against 14, 11, 13%: 57, 54, 57 pp): in a
    study of five claims it is decided at 3 seeds; an effect of 10 paired standard
    deviations is decided there in most studies (it never was under O'Brien-Fleming)."""
    design = decisions.Design(decisions.sequence_looks(3, 2, 11), 0.05, 0.3, 5)
    diffs = [np.array([57.0, 54.0, 57.0])] + [np.array([0.1, -0.3, 0.2])] * 4
    first = decisions.progress(design, diffs, 0.01)[0]
    assert (first.verdict, first.seeds) == (decisions.BETTER, 3)
    rng = np.random.default_rng(2)
    d = rng.standard_normal((4000, 5, 11))
    d[:, 0] += 10
    decided = (decisions.replay(design, d).look[:, 0] == 0).mean()
    assert decided > 0.6, decided
    late = decisions.Design(design.looks, 0.05, 0.3, 5, "obrien-fleming")
    assert (decisions.replay(late, d).look[:, 0] == 0).mean() == 0.0


def test_a_stalled_study_waits_for_its_missing_seeds():
    """The rule is a function of the first n results: with 6 of a claim's seeds stored
    (a run killed during the look at 7), the next look is at 7, and the verdict reached
    with all of them is the one an unbroken run reaches."""
    design = decisions.Design((3, 5, 7, 9), 0.05, None, 2)
    rng = np.random.default_rng(3)
    d = [0.8 + rng.standard_normal(9) * 0.5, rng.standard_normal(9)]
    stopped = decisions.progress(design, [d[0][:6], d[1][:6]])
    assert [(p.verdict, p.seeds, p.needs) for p in stopped] == [("undecided", 5, 7)] * 2
    assert decisions.progress(design, d) == decisions.progress(design, [x[:9] for x in d])
    assert decisions.progress(design, [d[0][:2], d[1]])[0].needs == 3


def _simulation():
    folder = str(Path(__file__).parent.parent / "perf")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import sequential

    return sequential


def test_the_shipped_rule_keeps_its_error_rates_and_a_broken_one_does_not():
    """The simulation harness's own code on fewer studies: family-wise false better/worse
    under the null and false equivalence at the margin stay under alpha with a Monte Carlo
    allowance (3 standard errors); a rule with the old normal-theory levels applied to t
    statistics and no spending (the fixed-n t bound at alpha / claims at every look)
    exceeds it."""
    sim = _simulation()
    studies, alpha = 1500, sim.ALPHA
    allowance = alpha + 3 * math.sqrt(alpha * (1 - alpha) / studies)
    rng = np.random.default_rng(1)
    rates = sim.familywise(rng, decisions.DEFAULT_SPENDING, studies)
    for noise, r in rates.items():
        assert r["null"][0] <= allowance and r["margin"][0] <= allowance, (noise, r)
        assert r["coverage"][0] >= 1 - allowance, (noise, r)
    design = sim.design(decisions.DEFAULT_SPENDING)
    fixed = [float(stdtrit(n - 1, 1 - alpha / sim.CLAIMS / 2)) for n in design.looks]
    broken = decisions.Design(design.looks, alpha, sim.MARGIN, sim.CLAIMS, bounds={
        "difference": [fixed] * sim.CLAIMS, "equivalence": design.bounds_record()["equivalence"]})
    d, _ = sim.studies_data(rng, studies, np.zeros(sim.CLAIMS), design.looks[-1])
    false = np.isin(decisions.replay(broken, d, resolution=sim.RESOLUTION).verdict, (1, 2))
    assert false.any(axis=1).mean() > allowance


def test_one_claim_keeps_its_level_through_every_look():
    sim = _simulation()
    rng = np.random.default_rng(4)
    r = sim.single_claim(rng, decisions.DEFAULT_SPENDING, 60_000, chunk=60_000)
    level = r["level"]
    for key, n in (("null", 60_000), ("+margin", 15_000), ("-margin", 15_000)):
        assert r[key][0] <= level + 3 * math.sqrt(level / n), (key, r)
