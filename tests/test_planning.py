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


def test_probability_of_improvement_counts_pairs_and_ties():
    assert planning.probability_of_improvement([1, 2, 3], [4, 5, 6])[0] == 1.0
    assert planning.probability_of_improvement([4, 5, 6], [1, 2, 3])[0] == 0.0
    assert planning.probability_of_improvement([1, 2], [1, 2])[0] == 0.5  # ties count half
    # b beats a in 9 of 16 pairs (2.5 > 1, 2; 3.5 > 1, 2, 3; 4.5 > all four; 0 > none)
    p, low, high = planning.probability_of_improvement([1, 2, 3, 4], [2.5, 3.5, 4.5, 0])
    assert p == 9 / 16
    # Hanley-McNeil: Q1 = p/(2-p), Q2 = 2p^2/(1+p), n = m = 4
    q1, q2 = p / (2 - p), 2 * p * p / (1 + p)
    se = math.sqrt((p * (1 - p) + 3 * (q1 - p * p) + 3 * (q2 - p * p)) / 16)
    assert (low, high) == pytest.approx((p - 1.959964 * se, p + 1.959964 * se))
    # Unequal sizes: Q1 (two B seeds above one A seed) weighs n_B - 1, Q2 (one B seed above
    # two A seeds) n_A - 1; 2 A seeds against 5 B seeds, B ahead in 7 of 10 pairs
    a, b = [1.0, 3.0], [0.0, 2.0, 4.0, 5.0, 6.0]
    p, low, high = planning.probability_of_improvement(a, b)
    assert p == 7 / 10
    q1, q2 = p / (2 - p), 2 * p * p / (1 + p)
    se = math.sqrt((p * (1 - p) + (5 - 1) * (q1 - p * p) + (2 - 1) * (q2 - p * p)) / 10)
    assert (low, high) == pytest.approx((p - 1.959964 * se, min(1.0, p + 1.959964 * se)))
    swapped = math.sqrt((p * (1 - p) + (2 - 1) * (q1 - p * p) + (5 - 1) * (q2 - p * p)) / 10)
    assert abs(se - swapped) > 0.01  # the test tells the two weightings apart
    _, low, high = planning.probability_of_improvement([1, 2, 3], [4, 5, 6])
    assert 0.5 < low < 1.0 and high == 1.0  # 3 seeds a side cannot make it certain
    assert math.isnan(planning.probability_of_improvement([1], [2])[1])


def test_seeds_command_names_every_seed():
    assert planning.seeds_command("studies/s.py", 4) == "cnnbench run studies/s.py --seeds 0-3"
