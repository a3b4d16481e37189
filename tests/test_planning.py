"""Seed planning and the probability of improvement on hand-made data with known answers."""

import math

import pytest

from benchmark import planning


@pytest.mark.parametrize("dz,n,power", [(1.0, 10, 0.8031), (0.5, 34, 0.8078)])
def test_paired_power_matches_the_noncentral_t_tables(dz, n, power):
    # G*Power, "t tests - means: difference between two dependent means", two-tailed,
    # alpha 0.05: dz 1.0 -> n 10 at power 0.8031; dz 0.5 -> n 34 at 0.8078.
    assert planning.paired_power(dz, 1.0, n) == pytest.approx(power, abs=5e-4)
    assert planning.paired_power(2 * dz, 2.0, n) == pytest.approx(power, abs=5e-4)  # scale-free


def test_power_far_in_the_tails_is_a_number():
    # nc = 15 on 2 df: scipy.special.nctdtr returns NaN for the wrong-sign tail there
    assert planning.paired_power(0.05, 0.05 / 15 * 3 ** 0.5, 3) == pytest.approx(0.99998, abs=1e-5)
    assert planning.paired_power(5.0, 0.001, 2) == pytest.approx(1.0)


def test_seeds_needed_is_the_smallest_n_reaching_the_power():
    assert planning.seeds_needed(1.0, 1.0) == 10
    assert planning.seeds_needed(0.5, 1.0) == 34
    assert planning.seeds_needed(-0.5, 1.0) == 34  # a loss is as detectable as a gain
    assert planning.seeds_needed(1.0, 1.0, power=0.9) == 13
    assert planning.paired_power(1.0, 1.0, 12) < 0.9 <= planning.paired_power(1.0, 1.0, 13)
    assert planning.seeds_needed(20.0, 1.0) == 2  # a huge effect: two seeds already do
    assert planning.paired_power(20.0, 1.0, 2) >= 0.8
    assert planning.seeds_needed(5.0, 1.0) == 3
    assert planning.paired_power(5.0, 1.0, 2) < 0.8 <= planning.paired_power(5.0, 1.0, 3)
    assert planning.seeds_needed(0.0, 1.0) is None
    assert planning.seeds_needed(0.001, 1.0) is None  # beyond MAX_SEEDS


def test_probability_of_improvement_counts_matched_seeds_and_ties():
    """P(better on a seed) over matched seeds: the share of positive paired differences,
    ties counting half, with Clopper-Pearson ends (wins alone below, wins and ties above,
    each at 97.5%)."""
    assert planning.probability_of_improvement([1.0, 2.0, 0.5])[0] == 1.0
    assert planning.probability_of_improvement([-1.0, -2.0])[0] == 0.0
    assert planning.probability_of_improvement([0.0, 0.0])[0] == 0.5
    p, low, high = planning.probability_of_improvement([0.3, -0.1, 0.0, 0.2, 0.4])
    assert p == (3 + 0.5) / 5
    # Clopper-Pearson: 3 of 5 at 2.5% below (0.1466), 4 of 5 at 97.5% above (0.9949)
    assert (low, high) == pytest.approx((0.146632, 0.994949), abs=1e-5)
    _, low, high = planning.probability_of_improvement([0.2, 0.1, 0.3])
    assert low == pytest.approx(0.292402, abs=1e-5) and high == 1.0  # 3 of 3: not certain
    # a difference within half the resolution is a tie
    assert planning.probability_of_improvement([0.004, 0.02], resolution=0.01)[0] == 0.75
    assert math.isnan(planning.probability_of_improvement([2.0])[1])


def test_seeds_command_names_every_seed():
    assert planning.seeds_command("studies/s.py", 4) == "cnnbench run studies/s.py --seeds 0-3"
