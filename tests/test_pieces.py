"""Your own training pieces (loss, optimizer, schedule, step, metrics as "module:function")
and the validation split: each changes training as it says, is part of the job's identity
by its module's source, and is checked before anything is written."""

import dataclasses
import math
import sqlite3

import pytest
import torch
from conftest import STUDIES, synthetic_digits

from benchmark import JobStatus, TrainConfig
from benchmark.config import Factors
from benchmark.pieces import PieceError, check
from benchmark.train import split_validation, to_device, train

DIRS = (str(STUDIES),)
CFG = TrainConfig(arch="sk", width=0.2, batch_norm=True, epochs=2, batch_size=32, lr=0.05)


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    return to_device(*synthetic_digits(256, 0), *synthetic_digits(200, 1), "cpu")


def _with(**fields) -> TrainConfig:
    return dataclasses.replace(CFG, **fields)


def _losses(outcome) -> list[float]:
    return [e.train_loss for e in outcome.epochs]


def test_a_user_loss_changes_training_and_at_zero_smoothing_is_the_built_in(tiny):
    builtin = train(CFG, tiny)
    plain = train(_with(loss="mypieces:smoothed", factors=Factors({"ls": 0.0})), tiny,
                  import_dirs=DIRS)
    smooth = train(_with(loss="mypieces:smoothed", factors=Factors({"ls": 0.3})), tiny,
                   import_dirs=DIRS)
    assert _losses(plain) == pytest.approx(_losses(builtin), rel=1e-5)
    assert smooth.status == JobStatus.COMPLETE
    assert _losses(smooth)[-1] > _losses(builtin)[-1] + 0.1  # smoothing keeps the loss up


def test_a_user_optimizer_and_schedule_are_the_ones_that_train(tiny):
    sign = train(_with(optimizer="mypieces:sign_sgd", lr=0.001), tiny, import_dirs=DIRS)
    assert sign.status == JobStatus.COMPLETE
    assert _losses(sign) != pytest.approx(_losses(train(_with(lr=0.001), tiny)))
    # a schedule that is 0 everywhere leaves the net as it was initialised
    frozen = train(_with(schedule="mypieces:frozen", epochs=1), tiny, import_dirs=DIRS)
    untrained = train(_with(lr=1e-12, epochs=1), tiny)
    assert frozen.epochs[-1].test_loss == pytest.approx(untrained.epochs[-1].test_loss)
    # and momentum is the user optimizer's to read: not refused as unused
    assert _with(optimizer="mypieces:sign_sgd", momentum=0.9).momentum == 0.9


def test_a_user_step_is_repeatable_and_resumes_to_the_same_result(tiny, tmp_path):
    config = _with(step="mypieces:mixup", epochs=3)
    once, again = train(config, tiny, import_dirs=DIRS), train(config, tiny, import_dirs=DIRS)
    assert _losses(once) == _losses(again)
    assert _losses(once) != pytest.approx(_losses(train(_with(epochs=3), tiny)))
    checkpoint = tmp_path / "job.pt"

    class Stop(Exception):
        pass

    def stop_after_one(index, metrics):
        if metrics.epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        train(config, tiny, checkpoint=checkpoint, import_dirs=DIRS, on_epoch=stop_after_one)
    assert checkpoint.exists()
    resumed = train(config, tiny, checkpoint=checkpoint, import_dirs=DIRS)
    assert _losses(resumed) == _losses(once)  # the step's generator was saved with it


def test_metrics_and_the_validation_split_are_measured_when_the_test_set_is(tiny):
    out = train(_with(metrics=("mypieces:ece",), val_size=64, epochs=3), tiny,
                eval_every=2, import_dirs=DIRS)
    first, second, last = (e.metrics for e in out.epochs)
    assert first == {}  # epoch 1 is not evaluated with eval_every=2
    assert set(second) == set(last) == {"ece", "confidence", "val_loss", "val_accuracy",
                                        "val_ece", "val_confidence"}
    assert 0 <= last["ece"] <= 1 and 0 <= last["val_accuracy"] <= 100
    # the validation samples are held out of training: fewer samples, other batches
    assert _losses(out) != pytest.approx(_losses(train(_with(epochs=3), tiny)))


def test_the_validation_draw_depends_on_the_seed_alone():
    a = split_validation(_with(val_size=10, seed=3, lr=0.1), 100)
    b = split_validation(_with(val_size=10, seed=3, batch_norm=True), 100)
    c = split_validation(_with(val_size=10, seed=4), 100)
    assert torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])
    assert len(a[1]) == 10 and len(a[0]) == 90 and not set(a[0].tolist()) & set(a[1].tolist())
    assert split_validation(CFG, 100) is None
    with pytest.raises(ValueError, match="val_size 100 leaves no training samples"):
        split_validation(_with(val_size=100), 100)


def test_the_built_in_pieces_keep_every_key():
    assert TrainConfig().key() == "cc498e6c0ac5fc15"  # as pinned in test_spec
    assert _with(loss="nll", step="standard", metrics=(), val_size=0).key() == CFG.key()
    for fields in ({"loss": "mypieces:smoothed"}, {"step": "mypieces:mixup"},
                   {"metrics": ("mypieces:ece",)}, {"val_size": 10},
                   {"optimizer": "mypieces:sign_sgd"}, {"schedule": "mypieces:frozen"}):
        assert _with(**fields).key() != CFG.key(), fields


@pytest.mark.parametrize("fields,message", [
    ({"loss": "mypieces:vector_loss"}, r"loss 'mypieces:vector_loss' returned \(4,\); expected "
                                       "a scalar tensor"),
    ({"loss": "mypieces:raising_loss"}, r"loss 'mypieces:raising_loss' raised RuntimeError "
                                        r"\(.*mypieces.py, line 7[0-9]\): my loss is broken"),
    ({"optimizer": "mypieces:not_an_optimizer"}, "returned str, not a torch.optim.Optimizer"),
    ({"metrics": ("mypieces:list_metric",)}, "returned list, expected a dict"),
    ({"metrics": ("mypieces:text_metric",)}, "returned ece='low' \\(str\\); each value must be "
                                             "a number"),
    ({"metrics": ("mypieces:shadowing_metric",)}, "returned 'test_accuracy', the name of a "
                                                  "built-in"),
    ({"loss": "mypieces:nothing"}, "module 'mypieces' .* has no function 'nothing'"),
    ({"metrics": ("mypieces:accuracy_metric",)}, "so 'accuracy' and 'loss' are taken too"),
    ({"metrics": ("mypieces:lr_metric",)}, "returned 'lr', the name of a built-in measurement, "
                                          "a field"),
    ({"loss": "mypieces:two_argument_loss"}, r"raised TypeError \(.*mypieces.py, line 1[0-9]{2}"
                                             r"\): two_argument_loss\(\) takes 2"),
    ({"step": "nomodule:step"}, "step 'nomodule:step': no module 'nomodule'"),
])
def test_a_wrong_piece_is_refused_by_the_check(fields, message):
    with pytest.raises(PieceError, match=message):
        check(_with(**fields), (1, 28, 28), 10, DIRS)


def test_pieces_must_be_module_function():
    from benchmark import SpecError

    with pytest.raises(SpecError, match="field 'loss' got 'smoothed'.*valid choices: nll, or "
                                        "your own \"module:function\""):
        _with(loss="smoothed")
    with pytest.raises(SpecError, match="field 'metrics' must be a tuple of your own metrics"):
        _with(metrics=("ece",))


def test_a_piece_that_fails_inside_the_job_fails_only_that_job(workdir, cli):
    (workdir / "late.py").write_text(
        "from benchmark import Cell, Section, Study, TrainConfig\n\n\n"
        "def study():\n"
        "    base = TrainConfig(arch='sk', width=0.2, epochs=1, batch_size=32, "
        "train_size=64, dataset='idx')\n"
        "    return Study(name='late', baseline=base, sections=[Section('A', [\n"
        "        Cell('ok'), Cell('bad', loss='mypieces:late_raising_loss')])])\n")
    result = cli("run", "late.py", "--db", "r.sqlite")
    assert result.exit_code == 1, result.output  # a failed job: the run says so
    con = sqlite3.connect(workdir / "r.sqlite")
    rows = dict(con.execute("select j.loss, r.status from runs r join jobs j using (job_id)"))
    assert rows == {"nll": "COMPLETE", "mypieces:late_raising_loss": "FAILED"}
    error = con.execute("select error from runs where status = 'FAILED'").fetchone()[0]
    assert "my loss fails on a real batch" in error


def test_editing_a_piece_module_reruns_exactly_its_jobs(workdir, cli):
    (workdir / "own.py").write_text(
        "from benchmark import Cell, Section, Study, TrainConfig\n\n\n"
        "def study():\n"
        "    base = TrainConfig(arch='sk', width=0.2, epochs=1, batch_size=32, "
        "train_size=64, dataset='idx')\n"
        "    return Study(name='own', baseline=base, factors={'ls': 0.1}, sections=[\n"
        "        Section('A', [Cell('nll'), Cell('smoothed', loss='mypieces:smoothed'),\n"
        "                      Cell('ece', metrics=('mypieces:ece',))])])\n")
    first = cli("run", "own.py", "--db", "r.sqlite")
    assert first.exit_code == 0, first.output
    assert "3 distinct jobs (3 new)" in first.output
    from benchmark import load_results

    jobs, epochs = load_results(workdir / "r.sqlite", "own")
    assert list(jobs["ls"]) == [0.1, 0.1, 0.1]  # the factor, one column
    assert jobs["ece"].notna().tolist() == [False, False, True]  # the metric, one column
    assert epochs["ece"].notna().sum() == 1  # and per epoch
    assert list(jobs["loss"]) == ["nll", "mypieces:smoothed", "nll"]
    module = workdir / "mypieces.py"
    module.write_text(module.read_text() + "\n# edited\n")
    again = cli("run", "own.py", "--db", "r.sqlite")
    assert again.exit_code == 0, again.output
    assert "3 distinct jobs (2 new)" in again.output  # the nll job is kept
    assert "training 2 job(s)" in again.output


def test_fused_runs_train_jobs_with_own_pieces_alone(workdir, cli):
    (workdir / "fused.py").write_text(
        "from benchmark import Cell, Section, Study, TrainConfig\n\n\n"
        "def study():\n"
        "    base = TrainConfig(arch='sk', width=0.2, epochs=1, batch_size=32, "
        "train_size=64, dataset='idx')\n"
        "    return Study(name='fused', baseline=base, seeds=[0, 1], sections=[\n"
        "        Section('A', [Cell('nll'), Cell('val', val_size=16)])])\n")
    result = cli("run", "fused.py", "--db", "r.sqlite", "--fuse", "2")
    assert result.exit_code == 0, result.output
    assert "2 job(s) with training pieces of their own or a validation split train " \
           "unfused" in result.output
    assert "training 4 job(s) in 3 fused group(s)" in result.output
    con = sqlite3.connect(workdir / "r.sqlite")
    names = {n for (n,) in con.execute("select distinct name from metrics")}
    assert names == {"val_loss", "val_accuracy"}
    assert not math.isnan(con.execute("select min(value) from metrics").fetchone()[0])


def test_a_user_loss_turning_non_finite_is_diverged_as_the_built_in(tiny):
    out = train(_with(loss="mypieces:exploding_loss", epochs=3), tiny, import_dirs=DIRS)
    assert out.status == JobStatus.DIVERGED and "non-finite" in out.error
    assert len(out.epochs) == 1
