"""Any metric as the outcome: a study, a section or a claim decides on a recorded number
in its own unit, better following its direction."""

import numpy as np
import pandas as pd
import pytest

from benchmark import Cell, Claim, Section, SpecError, Study, TrainConfig
from benchmark.aggregate import cell_table, effects
from benchmark.outcome import ACCURACY, Outcome, outcome_of
from benchmark.sequential_verdicts import sequence_diffs
from benchmark.verdicts import check_claims

ECE = Outcome("ece", higher_is_better=False, unit="")


def _frame(ece_shift: float, seeds: int = 6, noise: float = 0.002) -> pd.DataFrame:
    """Two cells of section A; cell 'smooth' has its ECE shifted by `ece_shift` and its
    accuracy 0.5 pp lower (a trade-off: better calibrated, less accurate)."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(seeds):
        base = 0.05 + rng.normal(0, 0.01)
        for position, cell in enumerate(("plain", "smooth")):
            shift = ece_shift if cell == "smooth" else 0.0
            rows.append({"section": "A", "cell": cell, "position": position, "seed": seed,
                         "published": np.nan, "ece": base + shift + rng.normal(0, noise),
                         "test_accuracy": 98.0 - 0.5 * position + 0.01 * seed,
                         "test_loss": 0.05, "train_seconds": 1.0, "param_count": 100})
    return pd.DataFrame(rows)


def test_lower_is_better_makes_a_lower_value_better():
    frame = _frame(-0.02)
    eff = effects(frame, outcomes={"A": ECE})
    row = eff.iloc[0]
    assert row["metric"] == "ece" and row["diff"] < 0  # the natural difference, cell - base
    assert row["verdict"] == "better"
    assert row["p_improve"] > 0.9  # P(better on a seed) follows the direction
    # on accuracy the same cells are worse
    assert effects(frame).iloc[0]["verdict"] == "worse"
    table = cell_table(frame, {"A": ECE})
    assert list(table["metric"]) == ["ece", "ece"]
    assert table["mean"].iloc[1] < table["mean"].iloc[0]
    assert table["noise_floor"].isna().all()  # no test-set floor outside accuracies


def test_claims_decide_on_their_own_metric_with_its_direction_and_unit():
    frame = _frame(-0.02)
    claims = [Claim("smoothing calibrates", "A", "beats", "smooth", "plain", outcome=ECE),
              Claim("smoothing costs accuracy", "A", "beats", "smooth", "plain",
                    outcome=ACCURACY),
              Claim("ECE within 0.1", "A", "equivalent", "smooth", "plain", 0.1, outcome=ECE)]
    table = check_claims(frame, claims).set_index("claim")
    assert table.at["smoothing calibrates", "verdict"] == "holds"
    assert table.at["smoothing costs accuracy", "verdict"] == "contradicted"
    assert table.at["ECE within 0.1", "verdict"].startswith("holds")
    evidence = table.at["smoothing calibrates", "evidence"]
    assert "in ece (lower is better)" in evidence and " pp" not in evidence
    assert "against ±0.1," in table.at["ECE within 0.1", "evidence"]


def test_the_sequential_differences_are_oriented_so_better_is_positive():
    frame = _frame(-0.02)
    record = {"seeds": list(range(6))}
    claim = Claim("c", "A", "beats", "smooth", "plain", outcome=ECE)
    assert (sequence_diffs(frame, record, claim) > 0).all()
    accuracy = Claim("c", "A", "beats", "smooth", "plain", outcome=ACCURACY)
    assert (sequence_diffs(frame, record, accuracy) < 0).all()


def test_a_study_a_section_and_a_claim_name_their_outcome():
    base = TrainConfig(epochs=1)
    study = Study("s", base, [Section("A", [Cell("a"), Cell("b", lr=0.1)]),
                              Section("B", [Cell("a"), Cell("c", lr=0.2)], metric="test_loss")],
                  metric="ece", higher_is_better=False, margin=0.01,
                  claims=[Claim.beats("b beats a", "A", "b", "a"),
                          Claim.beats("c loses less", "B", "c", "a"),
                          Claim.equivalent("same accuracy", "A", "b", "a", margin_pp=0.5,
                                           metric="test_accuracy")])
    assert study.outcome == ECE and study.margin_pp == 0.01
    assert study.section_outcome("B") == Outcome("test_loss", False, "nats")
    assert [c.outcome.metric for c in study.claims] == ["ece", "test_loss", "test_accuracy"]
    assert outcome_of("test_accuracy") == ACCURACY


@pytest.mark.parametrize("make,message", [
    (lambda: Study("s", TrainConfig(), [Section("A", [Cell("a")])], metric="ece"),
     "metric 'ece' is your own: say which way is better with higher_is_better"),
    (lambda: Claim.beats("t", "A", "b", "a", metric="test_loss", higher_is_better=True),
     "metric 'test_loss' is built in and lower is better"),
    (lambda: Study("s", TrainConfig(), [Section("A", [Cell("a")])], margin_pp=100),
     "margin_pp must be a positive number of percentage points below 100"),
    (lambda: Claim.equivalent("t", "A", "b", "a", margin=-1.0, metric="ece",
                              higher_is_better=False),
     "the margin must be a positive finite number in the unit of ece"),
    (lambda: Claim.equivalent("t", "A", "b", "a"), "give the equivalence margin once"),
    (lambda: Study("s", TrainConfig(), [Section("A", [Cell("a"), Cell("b", lr=0.1)],
                                                metric="test_loss")],
                   claims=[Claim.equivalent("t", "A", "b", "a", 0.5)]),
     "margin_pp is percentage points of an accuracy, and this decides on test_loss"),
    (lambda: Study("s", TrainConfig(), [Section("A", [Cell("a")])], metric="test_loss",
                   margin_pp=0.1), "give the margin as margin= in that metric's unit"),
    (lambda: Section("A", [Cell("a")], higher_is_better=True),
     "higher_is_better and unit go with metric="),
])
def test_bad_outcomes_are_refused(make, message):
    with pytest.raises(SpecError, match=message):
        make()


def test_a_margin_in_another_metrics_unit_is_allowed_beyond_100():
    study = Study("s", TrainConfig(), [Section("A", [Cell("a")])], metric="train_seconds",
                  margin=250.0)
    assert study.margin_pp == 250.0


def test_a_run_decides_a_claim_on_a_user_metric_and_the_report_says_so(workdir, cli):
    (workdir / "calibrated.py").write_text(
        "from benchmark import Cell, Claim, Section, Study, TrainConfig\n\n\n"
        "def study():\n"
        "    base = TrainConfig(arch='sk', width=0.2, batch_norm=True, epochs=2, "
        "batch_size=32, lr=0.05, train_size=256, dataset='idx', "
        "metrics=('mypieces:ece',))\n"
        "    return Study(name='calibrated', baseline=base, seeds=[0, 1, 2],\n"
        "                 factors={'ls': 0.0}, metric='ece', higher_is_better=False,\n"
        "                 sections=[Section('A', [Cell('nll'), Cell('smoothed', ls=0.3,\n"
        "                                         loss='mypieces:smoothed')])],\n"
        "                 claims=[Claim.beats('smoothing calibrates', 'A', 'smoothed', "
        "'nll')])\n")
    result = cli("run", "calibrated.py", "--db", "r.sqlite")
    assert result.exit_code == 0, result.output
    report = cli("report", "calibrated", "--db", "r.sqlite", "--format", "md")
    assert report.exit_code == 0, report.output
    text = (workdir / "reports" / "calibrated" / "report.md").read_text()
    assert "Decided on ece (lower is better)" in text
    assert "| diff ece |" in text and "P(cell better on a seed; lower is better)" in text
    claim = next(line for line in text.splitlines() if "smoothing calibrates" in line)
    assert "in ece (lower is better)" in claim
    method = next(line for line in text.splitlines() if line.startswith("Other metrics."))
    assert "deciding on ece (lower is better) compare" in method
    assert "seeds, for a continuous outcome, no rounding, in any unit" in text  # error_rates
    from benchmark import load_results

    jobs, _ = load_results(workdir / "r.sqlite", "calibrated")
    assert jobs["ece"].notna().all() and list(jobs["ls"].unique()) == [0.0, 0.3]


def test_a_claim_on_another_metric_does_not_take_over_the_sections_row():
    from benchmark.aggregate import claimed_pairs

    frame = _frame(-0.02)
    on_ece = Claim("calibrates", "A", "beats", "smooth", "plain", outcome=ECE)
    on_accuracy = Claim("more accurate", "A", "beats", "smooth", "plain", outcome=ACCURACY)
    rows = {key: f"{c.text!r}" for key, c in claimed_pairs([on_accuracy, on_ece]).items()}
    assert len(rows) == 2  # one comparison per metric
    accuracy_row = effects(frame, claim_verdicts=rows, claims_family=2).iloc[0]
    assert accuracy_row["verdict"] == "claim: 'more accurate'"
    ece_row = effects(frame, claim_verdicts=rows, claims_family=2, outcomes={"A": ECE}).iloc[0]
    assert ece_row["verdict"] == "claim: 'calibrates'"
    only_ece = {k: v for k, v in rows.items() if k[2] == "ece"}
    assert effects(frame, claim_verdicts=only_ece).iloc[0]["verdict"] == "worse"  # its own


def test_one_seed_of_a_validation_accuracy_has_the_noise_of_its_split():
    from benchmark.aggregate import binomial_se

    frame = _frame(0.0, seeds=1).assign(val_accuracy=[90.0, 91.0], val_size=[500, 500])
    val = Outcome("val_accuracy", True, "pp")
    row = effects(frame, outcomes={"A": val}).iloc[0]
    assert row["noise"] == pytest.approx(np.hypot(binomial_se(90.0, 500),
                                                  binomial_se(91.0, 500)))
    assert cell_table(frame, {"A": val})["noise_floor"].iloc[0] == pytest.approx(
        binomial_se(90.0, 500))


def test_until_decided_on_a_lower_is_better_metric_holds_the_right_way(workdir, cli):
    (workdir / "loss_claim.py").write_text(
        "from benchmark import Cell, Claim, Section, Study, TrainConfig\n\n\n"
        "def study():\n"
        "    base = TrainConfig(arch='sk', width=0.2, batch_norm=True, epochs=1, "
        "batch_size=32, lr=0.05, train_size=128, dataset='idx')\n"
        "    return Study(name='loss_claim', baseline=base, seeds=[0, 1, 2],\n"
        "                 sections=[Section('A', [Cell('good'), Cell('stuck', lr=1e-6)])],\n"
        "                 claims=[Claim.beats('a working rate has the lower test loss', 'A',\n"
        "                                     'good', 'stuck', metric='test_loss')])\n")
    result = cli("run", "loss_claim.py", "--db", "r.sqlite", "--until-decided",
                 "--max-seeds", "5", "--batch", "2")
    assert result.exit_code == 0, result.output
    assert "a working rate has the lower test loss: better at 3 seeds" in result.output
    report = cli("report", "loss_claim", "--db", "r.sqlite", "--format", "md")
    assert report.exit_code == 0, report.output
    text = (workdir / "reports" / "loss_claim" / "report.md").read_text()
    row = next(x for x in text.splitlines() if x.startswith("| a working rate has"))
    assert "| holds |" in row and " nats in test_loss (lower is better) at look 1" in row
    mean = float(row.split(" nats in test_loss")[0].rsplit("| ", 1)[1])
    assert mean < 0  # the natural difference: good's loss minus stuck's
