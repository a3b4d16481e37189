"""Statistics on hand-made frames with answers worked out by hand."""

import math

import pandas as pd
import pytest

from benchmark import aggregate, planning, state, verdicts


def _frame(rows):
    """rows: (section, position, cell, seed, accuracy)."""
    return pd.DataFrame([
        {"section": s, "position": p, "cell": c, "seed": seed, "test_accuracy": acc,
         "test_loss": 0.1, "train_seconds": 1.0, "param_count": 10, "published": math.nan,
         "status": "COMPLETE", "code_version": "v"}
        for s, p, c, seed, acc in rows])


def test_mean_ci_uses_student_t():
    mean, low, high = aggregate.mean_ci([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.302653; sd = 1; half width = 4.302653 / sqrt(3) = 2.484138
    assert mean == 2.0
    assert (low, high) == pytest.approx((2 - 2.484138, 2 + 2.484138), abs=1e-6)
    assert math.isnan(aggregate.mean_ci([5.0])[1])


def test_holm_adjusts_in_step_down_order():
    # sorted: 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone: 0.03, 0.06, 0.06
    assert aggregate.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert aggregate.holm([0.5, math.nan])[0] == 0.5


def test_paired_difference_when_seeds_match():
    # accuracies of 10,000 images (the resolution the statistics infer: 0.01 pp)
    frame = _frame([("C", 0, "base", s, a)
                    for s, a in zip([0, 1, 2], [97.01, 98.01, 96.01], strict=True)]
                   + [("C", 1, "BN", s, a)
                      for s, a in zip([0, 1, 2], [98.01, 99.01, 98.01], strict=True)])
    assert aggregate.resolution(frame) == pytest.approx(0.01)
    eff = aggregate.effects(frame).iloc[0]
    # differences 1, 1, 2: mean 4/3, sd 0.57735, se 1/3, t = 4 on 2 df -> p = 0.0572
    assert eff["diff"] == pytest.approx(4 / 3)
    assert eff["p"] == pytest.approx(0.05719, abs=1e-4)
    assert (eff["ci_low"], eff["ci_high"]) == pytest.approx((4 / 3 - 4.302653 / 3,
                                                             4 / 3 + 4.302653 / 3), abs=1e-5)
    assert eff["method"] == "paired t, 3 seeds"
    # no margin: not a power at the observed difference, but the smallest difference these
    # 3 paired seeds detect with 80% power at the section's level (one comparison: 0.05)
    detectable = planning.detectable_effect(0.57735, 3, 0.8, 0.05)
    assert planning.paired_power(detectable, 0.57735, 3, 0.05) == pytest.approx(0.8, abs=1e-6)
    assert eff["detectable"] == pytest.approx(detectable, rel=1e-4) and math.isnan(eff["power"])
    assert eff["verdict"] == (f"{aggregate.SAME} (+1.33 pp; 3 paired seeds detect "
                              f"±{detectable:.2f} pp with 80% power)")


def test_welch_when_seeds_differ():
    frame = _frame([("K", 0, "SGD", 0, 97), ("K", 0, "SGD", 1, 98),
                    ("K", 1, "Adam", 5, 99), ("K", 1, "Adam", 6, 100)])
    eff = aggregate.effects(frame).iloc[0]
    # se = sqrt(0.5/2 + 0.5/2) = 0.7071, t = 2.828 on 2 Welch df -> p = 0.1056
    assert eff["diff"] == pytest.approx(2.0)
    assert eff["p"] == pytest.approx(0.1056, abs=1e-3)
    assert eff["method"].startswith("Welch")


def test_clear_effect_is_called_better_or_worse_family_wise():
    base = [("G", 0, "small", s, 90 + 0.1 * s) for s in range(5)]
    big = [("G", 1, "big", s, 99 + 0.1 * s + 0.05 * (s % 2)) for s in range(5)]
    worse = [("G", 2, "worse", s, 80 - 0.1 * s) for s in range(5)]
    eff = aggregate.effects(_frame(base + big + worse)).set_index("cell")
    assert eff.loc["big", "verdict"] == aggregate.BETTER
    assert eff.loc["worse", "verdict"] == aggregate.WORSE
    assert (eff["p"] <= eff["step_level"]).all() and (eff["step_level"] <= 0.05).all()


def test_one_seed_reports_the_binomial_noise_floor_instead_of_a_test():
    # SE of 97.3% on 10,000 images = 100 * sqrt(.973 * .027 / 10000) = 0.16208 pp
    assert aggregate.binomial_se(97.3) == pytest.approx(0.16208, abs=1e-5)
    frame = _frame([("C", 0, "base", 0, 97.3), ("C", 1, "BN", 0, 98.2),
                    ("C", 2, "tiny", 0, 97.4)])
    cells = aggregate.cell_table(frame)
    assert cells["n"].tolist() == [1, 1, 1]
    assert cells["noise_floor"].iloc[0] == pytest.approx(0.16208, abs=1e-5)
    assert cells["ci_low"].isna().all()
    eff = aggregate.effects(frame).set_index("cell")
    assert eff["p"].isna().all()
    assert eff.loc["BN", "verdict"] == aggregate.UNTESTED_BEYOND  # 0.9 pp > 2 x 0.21
    assert eff.loc["tiny", "verdict"] == aggregate.UNTESTED_WITHIN


def test_published_gap_and_stale_rows_excluded():
    frame = _frame([("B", 0, "base", 0, 97.0)])
    frame["published"] = 97.3
    stale = frame.assign(code_version="old", test_accuracy=50.0)
    usable = state.usable(pd.concat([frame, stale], ignore_index=True), "v")
    cells = aggregate.cell_table(usable)
    assert len(usable) == 1 and cells["gap"].iloc[0] == pytest.approx(-0.3)


def test_claims_get_verdicts_with_evidence():
    from benchmark import Claim

    rows = [("G", p, f"n{p}", s, 90 + 2 * p + 0.1 * s) for p in range(4) for s in range(3)]
    rows += [("C", 0, "base", s, 97 + 0.1 * s) for s in range(3)]
    rows += [("C", 1, "BN", s, 97 + 0.1 * s + (0.01 if s else 0.02)) for s in range(3)]
    claims = [Claim.increasing("rises", "G"), Claim.beats("BN beats base", "C", "BN", "base"),
              Claim.beats("nothing there", "C", "BN", "missing")]
    out = verdicts.check_claims(_frame(rows), claims).set_index("claim")
    assert out.loc["rises", "verdict"].startswith("holds (a rising trend overall")
    assert "rises in 3 of 3 steps" in out.loc["rises", "evidence"]
    # +0.013 pp with a spread of 0.006, floored at one image (0.01 pp): t = 2.3 on 2 df, not
    # shown, with what 3 paired seeds detect at the claims' first-step level 0.05 / 3
    detectable = planning.detectable_effect(0.01, 3, 0.8, 0.05 / 3)
    assert out.loc["BN beats base", "verdict"] == (
        f"not shown: no detectable difference (3 paired seeds detect ±{detectable:.2f} pp "
        "with 80% power)")
    assert out.loc["nothing there", "verdict"] == "no data"


def test_no_comparison_without_the_section_baseline():
    frame = _frame([("F", 1, "k1", 0, 98.6), ("F", 2, "k2", 0, 98.8)])  # k0.5 (position 0) missing
    assert aggregate.effects(frame).empty


def test_a_difference_significant_alone_but_not_family_wise_says_so():
    seeds = range(5)
    base = [("S", 0, "base", s, 97.0 + 0.2 * (s % 3)) for s in seeds]
    shift = [0.5, 0.2, 0.6, 0.1, 0.4]  # mean 0.36, sd 0.2074: t = 3.88 on 4 df, p = 0.0178
    x = [("S", 1, "x", s, 97.0 + 0.2 * (s % 3) + shift[s]) for s in seeds]
    noise = [0.3, -0.2, 0.1, -0.3, 0.1]  # mean 0: nothing there
    y = [("S", 2, "y", s, 97.0 + 0.2 * (s % 3) + noise[s]) for s in seeds]
    z = [("S", 3, "z", s, 97.0 + 0.2 * (s % 3) - noise[s]) for s in seeds]
    w = [("S", 4, "w", s, 97.0 + 0.2 * (s % 3) + noise[::-1][s]) for s in seeds]
    q = [("S", 5, "q", s, 97.0 + 0.2 * (s % 3) - noise[::-1][s]) for s in seeds]
    u = [("S", 6, "u", s, 97.0 + 0.2 * (s % 3) + 0.5 * noise[s]) for s in seeds]
    v = [("S", 7, "v", s, 97.0 + 0.2 * (s % 3) - 0.5 * noise[s]) for s in seeds]
    z2 = [("S", 8, "z2", s, 97.0 + 0.2 * (s % 3) + 0.1 * noise[s]) for s in seeds]
    q2 = [("S", 9, "q2", s, 97.0 + 0.2 * (s % 3) - 0.1 * noise[s]) for s in seeds]
    w2 = [("S", 10, "w2", s, 97.0 + 0.2 * (s % 3) + 0.3 * noise[s]) for s in seeds]
    eff = aggregate.effects(_frame(base + x + y + z + w + q + u + v + z2 + q2 + w2))
    row = eff.set_index("cell").loc["x"]
    assert row["p"] == pytest.approx(0.0178, abs=2e-4)
    assert row["step_level"] == pytest.approx(0.05 / 10)  # the smallest of 10 p-values
    assert row["verdict"] == f"{aggregate.HOLM_ONLY} (+0.36 pp)"


def _section(diffs, cell="x", section="D", base=98.0):
    """A baseline and one cell whose paired per-seed differences are `diffs`."""
    return ([(section, 0, "base", s, base + 0.01 * s) for s in range(len(diffs))]
            + [(section, 1, cell, s, base + 0.01 * s + d) for s, d in enumerate(diffs)])


def test_with_a_margin_every_comparison_gets_one_of_four_verdicts():
    near = [0.05, -0.05, 0.02, -0.02, 0.0, 0.03]  # mean +0.005, well inside +/-0.3
    far = [1.0, 1.1, 0.9, 1.05, 0.95, 1.0]
    loose = [0.5, -0.6, 0.7, -0.2, 0.1, 0.4]
    frame = _frame(_section(near, "near", "A") + _section(far, "far", "B")
                   + _section([-d for d in far], "down", "C") + _section(loose, "loose", "D"))
    eff = aggregate.effects(frame, margin=0.3).set_index("cell")
    assert eff.at["near", "verdict"] == "equivalent within ±0.3 pp"
    assert eff.at["far", "verdict"] == aggregate.BETTER
    assert eff.at["down", "verdict"] == aggregate.WORSE
    assert eff.at["loose", "verdict"].startswith("undecided (+0.15 pp; ")
    # TOST on `near`: each one-sided t = (0.3 -/+ 0.005) / se on 5 df
    d = pd.Series(near)
    se = d.std(ddof=1) / math.sqrt(len(d))
    from scipy.special import stdtr
    expected = max(stdtr(5, -(d.mean() + 0.3) / se), stdtr(5, (d.mean() - 0.3) / se))
    assert eff.at["near", "p_equiv"] == pytest.approx(expected)
    # without a margin the old vocabulary stays
    assert aggregate.effects(frame).set_index("cell").at["near", "verdict"].startswith(
        aggregate.SAME)


def test_equivalence_claims_hold_differ_or_stay_undecided():
    from benchmark import Claim

    near = [0.05, -0.05, 0.02, -0.02, 0.0, 0.03]
    far = [1.0, 1.1, 0.9, 1.05, 0.95, 1.0]
    loose = [0.5, -0.6, 0.7, -0.2, 0.1, 0.4]
    frame = _frame(_section(near, "near", "A") + _section(far, "far", "B")
                   + _section(loose, "loose", "D"))
    claims = [Claim.equivalent("near", "A", "near", "base", 0.3),
              Claim.equivalent("far", "B", "far", "base", 0.3),
              Claim.equivalent("loose", "D", "loose", "base", 0.3),
              Claim.beats("near beats", "A", "near", "base")]
    got = verdicts.check_claims(frame, claims, margin=0.3).set_index("claim")["verdict"]
    assert got["near"] == "holds"
    assert got["far"] == "not shown: the cells differ (better, +1.00 pp)"
    assert got["loose"].startswith("undecided (")
    assert got["near beats"].startswith("not shown: equivalent within ±0.3 pp")
    # the same job on both sides: every difference is exactly 0, equivalent (no NaN)
    same = _frame(_section([0.0, 0.0, 0.0], "same", "E"))
    assert verdicts.check_claims(same, [Claim.equivalent("same", "E", "same", "base", 0.3)]
                                  )["verdict"][0] == "holds"
    assert aggregate.effects(same, 0.3)["verdict"][0] == "equivalent within ±0.3 pp"
