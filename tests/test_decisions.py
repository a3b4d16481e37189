"""Equivalence, group-sequential boundaries and the sequential rule's error rates, on
hand-made data with known answers and a small run of the simulation harness."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark import decisions


@pytest.mark.parametrize("kind,fractions,expected", [
    # Jennison & Turnbull (2000), Lan-DeMets spending, two-sided alpha 0.05, equal looks
    ("obrien-fleming", [0.5, 1.0], [2.963, 1.969]),
    ("obrien-fleming", [0.2, 0.4, 0.6, 0.8, 1.0], [4.877, 3.357, 2.680, 2.290, 2.031]),
    ("pocock", [0.2, 0.4, 0.6, 0.8, 1.0], [2.438, 2.427, 2.410, 2.397, 2.386]),
])
def test_boundaries_match_the_published_tables(kind, fractions, expected):
    got = decisions.boundaries(fractions, 0.05, kind)
    assert got == pytest.approx(expected, abs=2e-3)


def test_one_look_is_the_fixed_test_and_spending_ends_at_alpha():
    assert decisions.boundaries([1.0], 0.05) == pytest.approx([1.959964], abs=1e-5)
    assert decisions.boundaries([1.0], 0.05, two_sided=False) == pytest.approx([1.644854],
                                                                               abs=1e-5)
    for kind in decisions.SPENDING:
        assert float(decisions.spending(kind, 1.0, 0.05)) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="must increase"):
        decisions.boundaries([0.5, 0.5, 1.0], 0.05)


def test_tost_on_known_data():
    d = np.array([0.1, -0.1, 0.2, 0.0, -0.2])  # mean 0, sd 0.158, se 0.0707
    mean, p, _ = decisions.ttost_paired(d, 0.3)
    # each one-sided t = 0.3 / 0.0707 = 4.243 on 4 df: p = 0.00662
    assert mean == pytest.approx(0.0, abs=1e-12) and p == pytest.approx(0.00662, abs=1e-4)
    _, p_narrow, _ = decisions.ttost_paired(d, 0.05)
    assert p_narrow > 0.2  # a band narrower than the noise cannot be shown
    # the same job on both sides: every difference exactly 0 is equivalent, not a NaN
    assert decisions.ttost_paired(np.zeros(4), 0.3)[1] == 0.0
    assert decisions.paired_t(np.zeros(4)) == (0.0, 0.0, 1.0)
    assert decisions.ttost_paired(np.full(4, 0.5), 0.3)[1] == 1.0


def test_a_design_decides_each_look():
    design = decisions.Design(looks=(3, 5, 7), alpha=0.05, margin=0.3, claims=1)
    assert len(design.difference_levels) == 3
    assert design.difference_levels[0] < design.difference_levels[-1] < 0.05
    assert design.decide([5.0, 5.1, 4.9], 0) == decisions.BETTER
    assert design.decide([-5.0, -5.1, -4.9], 0) == decisions.WORSE
    assert design.decide([0.0, 0.0, 0.0], 0) == decisions.EQUIVALENT
    assert design.decide([0.01, -0.02, 0.0], 0) == decisions.EQUIVALENT
    assert design.decide([0.4, -0.3, 0.1], 0) == decisions.UNDECIDED
    # no spread decides nothing (a t test without spread has no error rate), but the
    # same job on both sides, every difference exactly 0, is equivalent
    many = decisions.Design(looks=decisions.sequence_looks(3, 2, 20), alpha=0.05, margin=0.3,
                            claims=5)
    assert many.decide([0.01] * 3, 0) == decisions.UNDECIDED
    assert many.decide([0.29] * 3, 0) == decisions.UNDECIDED
    assert many.decide([0.0] * 3, 0) == decisions.EQUIVALENT
    with pytest.raises(ValueError, match="look 1 is at 5 seeds"):
        design.decide([1.0, 2.0], 1)
    for bad in ({"looks": (1, 3)}, {"looks": (3, 3)}, {"margin": 0.0}, {"margin": math.nan},
                {"alpha": 1.5}, {"spending": "haybittle"}):
        with pytest.raises(ValueError):
            decisions.Design(**{"looks": (3, 5), **bad})


def _simulation():
    folder = str(Path(__file__).parent.parent / "perf")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import sequential

    return sequential


def _broken(design, difference=None, equivalence=None):
    """The same design with other per-look levels (a rule broken on purpose)."""
    if difference is not None:
        object.__setattr__(design, "_difference", [difference] * len(design.looks))
    if equivalence is not None:
        object.__setattr__(design, "_equivalence", [equivalence] * len(design.looks))
    return design


def test_the_shipped_rule_keeps_its_error_rates_and_a_broken_one_does_not():
    """The simulation harness's own code on fewer studies: the family-wise false-claim rate
    under the null and the false-equivalence rate at the margin stay under alpha with a
    Monte Carlo allowance (3 standard errors) that a rule testing at its full level at
    every look, without spending, exceeds."""
    sim = _simulation()
    studies, alpha = 1500, sim.ALPHA
    allowance = alpha + 3 * math.sqrt(alpha * (1 - alpha) / studies)
    for kind in decisions.SPENDING:
        rng = np.random.default_rng(1)
        null = sim.null_rates(rng, studies, sim.design_for(kind))
        assert null["familywise_false_claims"] <= allowance, null
        at_margin = sim.margin_rates(rng, studies // 4, sim.design_for(kind))
        assert all(r["false_equivalent"] <= allowance for r in at_margin.values()), at_margin
    rng = np.random.default_rng(1)
    no_spending = _broken(sim.design_for("pocock"), difference=alpha / sim.CLAIMS)
    assert sim.null_rates(rng, studies, no_spending)["familywise_false_claims"] > allowance
    no_spending = _broken(sim.design_for("pocock"), equivalence=alpha)
    rates = sim.margin_rates(rng, studies // 4, no_spending)
    assert any(r["false_equivalent"] > allowance for r in rates.values()), rates


def test_wald_floor_matches_the_sprt_average_sample_by_hand():
    """One side at 0.025 and 80% power: Wald's average sample 2 (0.8 ln 32 + 0.2 ln(0.2 /
    0.975)) = 4.912 against the fixed z test's (1.960 + 0.842)^2 = 7.849, 62.6%; and the
    floor falls as the power rises."""
    sim = _simulation()
    assert sim.wald_floor(0.025, 0.8) == pytest.approx(0.6258, abs=5e-4)
    assert sim.wald_floor(0.025, 0.9) < sim.wald_floor(0.025, 0.8)
