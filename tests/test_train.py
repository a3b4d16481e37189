import math

import pytest
import torch
from conftest import synthetic_digits

from benchmark import JobStatus, TrainConfig
from benchmark.train import to_device, train, train_fused


@pytest.fixture(scope="module")
def tiny():
    tx, ty = synthetic_digits(256, 0)
    vx, vy = synthetic_digits(200, 1)
    torch.set_num_threads(1)
    return to_device(tx, ty, vx, vy, "cpu")


CFG = TrainConfig(arch="sk", width=0.2, batch_norm=True, epochs=2, batch_size=32, lr=0.05)


def test_trains_and_reports_every_epoch(tiny):
    out = train(CFG, tiny)
    assert out.status == JobStatus.COMPLETE
    assert [e.epoch for e in out.epochs] == [1, 2]
    assert out.epochs[-1].test_accuracy > 50  # chance is 10% on the synthetic digits
    assert out.epochs[1].train_loss < out.epochs[0].train_loss
    assert out.train_seconds == pytest.approx(sum(e.seconds for e in out.epochs))


def test_same_seed_same_result_other_seed_differs(tiny):
    a, b = train(CFG, tiny), train(CFG, tiny)
    c = train(TrainConfig(**{**CFG.to_dict(), "seed": 1}), tiny)
    assert [e.test_loss for e in a.epochs] == [e.test_loss for e in b.epochs]
    assert a.epochs[-1].test_loss != c.epochs[-1].test_loss


def test_training_slice_is_respected(tiny):
    small = train(TrainConfig(**{**CFG.to_dict(), "train_size": 32, "train_offset": 200}), tiny)
    assert small.status == JobStatus.COMPLETE
    # A training set whose samples 96..191 repeat 0..95, and 192..255 differ: a slice
    # trains on exactly its own samples, wherever they lie.
    tx, ty = synthetic_digits(256, 0)
    tx[96:192], ty[96:192] = tx[:96], ty[:96]
    data = to_device(tx, ty, *synthetic_digits(200, 1), "cpu")
    at = lambda offset: train(TrainConfig(**{**CFG.to_dict(), "train_size": 64,  # noqa: E731
                                             "train_offset": offset}), data)
    first, repeat, other = at(0), at(96), at(192)
    assert [e.test_loss for e in repeat.epochs] == [e.test_loss for e in first.epochs]
    assert [e.train_loss for e in other.epochs] != [e.train_loss for e in first.epochs]
    with pytest.raises(ValueError, match="outside the 256-sample training set"):
        train(TrainConfig(**{**CFG.to_dict(), "train_size": 100, "train_offset": 200}), tiny)


def test_non_finite_loss_is_diverged_not_a_crash(tiny):
    out = train(TrainConfig(arch="base", lr=1e12, momentum=0.9, epochs=3), tiny)
    assert out.status == JobStatus.DIVERGED
    assert "non-finite" in out.error
    assert len(out.epochs) == 1 and not math.isfinite(out.epochs[0].train_loss)


def test_adam_and_bf16_and_other_activations_run(tiny):
    for cfg in [TrainConfig(optimizer="adam", lr=1e-3, epochs=1),
                TrainConfig(arch="sk", precision="bf16", epochs=1, activation="gelu",
                            dropout="fc1")]:
        out = train(cfg, tiny)
        assert out.status == JobStatus.COMPLETE and math.isfinite(out.epochs[0].test_loss)


def test_eval_every_skips_test_epochs_without_changing_training(tiny):
    cfg = TrainConfig(**{**CFG.to_dict(), "epochs": 3})
    every, sparse = train(cfg, tiny), train(cfg, tiny, eval_every=2)
    assert [e.train_loss for e in every.epochs] == [e.train_loss for e in sparse.epochs]
    assert [math.isnan(e.test_accuracy) for e in sparse.epochs] == [True, False, False]
    assert sparse.epochs[-1].test_loss == every.epochs[-1].test_loss  # last always evaluated


FUSABLE = [  # (config fields, seeds and slice starts of the fused models)
    ({"arch": "base", "width": 0.3}, [(0, 0), (1, 96), (7, 32)]),
    ({"arch": "sk", "width": 0.2, "batch_norm": True}, [(0, 0), (3, 128), (4, 64)]),
    ({"arch": "base", "width": 0.3, "batch_norm": True, "optimizer": "adam", "lr": 1e-3},
     [(2, 0), (5, 0)]),
    ({"arch": "base", "width": 0.3, "optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.05,
      "schedule": "cosine", "warmup_epochs": 1}, [(0, 0), (1, 64)]),
    ({"arch": "sk", "width": 0.2, "optimizer": "rmsprop", "lr": 1e-3, "schedule": "step"},
     [(0, 0), (2, 32)]),
    ({"arch": "base", "width": 0.3, "optimizer": "adagrad", "lr": 0.02, "warmup_epochs": 2},
     [(3, 0), (4, 96)]),
]


@pytest.mark.parametrize("fields,members", FUSABLE, ids=[
    "base-sgd", "sk-bn", "bn-adam", "adamw-cosine-warmup", "rmsprop-step", "adagrad-warmup"])
def test_fused_training_equals_separate_runs(tiny, fields, members):
    configs = [TrainConfig(**{"lr": 0.05, **fields}, epochs=3, batch_size=32, train_size=128,
                           train_offset=o, seed=s) for s, o in members]
    # Tolerances: the fused step sums in another order (a grouped convolution), and
    # training amplifies float differences; a wrong seed, slice or buffer is off by far more.
    separate = [train(c, tiny) for c in configs]
    fused = train_fused(configs, tiny)
    for one, many in zip(separate, fused, strict=True):
        assert many.status == JobStatus.COMPLETE and many.param_count == one.param_count
        assert [e.train_loss for e in many.epochs] == pytest.approx(
            [e.train_loss for e in one.epochs], rel=1e-3, abs=1e-3)
        assert many.epochs[-1].test_loss == pytest.approx(one.epochs[-1].test_loss,
                                                          rel=5e-3, abs=2e-3)
        assert abs(many.epochs[-1].test_accuracy - one.epochs[-1].test_accuracy) <= 1.0
    # the models really are different models: their seeds and slices show in the losses
    assert len({round(o.epochs[0].train_loss, 6) for o in fused}) == len(configs)


def test_fused_models_draw_their_own_dropout_masks(tiny):
    # Same seed and slice: only dropout randomness can tell the two models apart.
    cfg = TrainConfig(arch="base", width=0.3, dropout="fc1", epochs=1, batch_size=32,
                      train_size=128)
    a, b = train_fused([cfg, cfg], tiny)
    assert a.epochs[0].train_loss != b.epochs[0].train_loss


def test_fused_rejects_jobs_that_differ_in_more_than_seed_and_slice(tiny):
    with pytest.raises(ValueError, match="differ only in seed and train_offset"):
        train_fused([CFG, TrainConfig(**{**CFG.to_dict(), "lr": 0.1})], tiny)


def test_one_diverging_model_does_not_stop_the_others(tiny):
    ok = TrainConfig(arch="base", width=0.3, lr=0.05, epochs=2, batch_size=32, train_size=128)
    bad = TrainConfig(**{**ok.to_dict(), "seed": 1})
    # a NaN image in the second model's slice only: its loss turns non-finite
    x = tiny.train_x.clone()
    x[128:256] = float("nan")
    poisoned = type(tiny)(x, tiny.train_y, tiny.test_x, tiny.test_y)
    bad = TrainConfig(**{**bad.to_dict(), "train_offset": 128})
    good, diverged = train_fused([ok, bad], poisoned)
    assert good.status == JobStatus.COMPLETE and len(good.epochs) == 2
    assert math.isfinite(good.epochs[-1].test_loss)
    assert diverged.status == JobStatus.DIVERGED and "non-finite" in diverged.error


@pytest.mark.parametrize("fields", [{"dropout": "fc1"},  # RNG in play
                                    {"schedule": "cosine", "warmup_epochs": 1}],  # the rate
                         ids=["dropout", "cosine-warmup"])
def test_a_job_resumes_from_its_checkpoint_with_the_same_result(tiny, tmp_path, monkeypatch,
                                                                fields):
    from benchmark import train as train_module

    cfg = TrainConfig(**{**CFG.to_dict(), "epochs": 3, **fields})
    unbroken = train(cfg, tiny)
    checkpoint = tmp_path / "job.pt"
    real_evaluate, calls = train_module.evaluate, []

    def dies_in_epoch_2(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process is stopped mid-job
        return real_evaluate(*args)

    monkeypatch.setattr(train_module, "evaluate", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tiny, checkpoint=checkpoint)
    assert checkpoint.exists()
    saved = torch.load(checkpoint, weights_only=True)["epochs"]
    assert len(saved) == 1  # epoch 1 finished before the stop

    evaluated = []

    def counting(*args):
        evaluated.append(1)
        return real_evaluate(*args)

    monkeypatch.setattr(train_module, "evaluate", counting)
    resumed = train(cfg, tiny, checkpoint=checkpoint)
    assert len(evaluated) == 2  # trained (and evaluated) only epochs 2 and 3
    assert resumed.epochs[0].seconds == saved[0]["seconds"]  # epoch 1 came from the file
    assert [e.train_loss for e in resumed.epochs] == [e.train_loss for e in unbroken.epochs]
    assert resumed.epochs[-1].test_loss == unbroken.epochs[-1].test_loss
    assert not checkpoint.exists()  # removed once the job is done


def test_learning_rate_schedules_by_hand():
    from benchmark.train import lr_factor

    def factors(steps=4, **fields):
        c = TrainConfig(epochs=4, **fields)
        return [round(lr_factor(c, t, steps), 6) for t in range(4 * steps)]

    assert factors() == [1.0] * 16
    assert factors(schedule="step") == [1.0] * 8 + [0.1] * 4 + [0.01] * 4  # after 2 and 3
    warm = factors(warmup_epochs=2)
    assert warm[:8] == [round(i / 8, 6) for i in range(1, 9)] and warm[8:] == [1.0] * 8
    cos = factors(schedule="cosine", warmup_epochs=1)
    assert cos[:4] == [0.25, 0.5, 0.75, 1.0]
    assert cos[4] == 1.0 and cos[4 + 6] == 0.5  # halfway through the 12 cosine steps
    assert cos[-1] == round(0.5 * (1 + math.cos(math.pi * 11 / 12)), 6)
    assert all(a > b for a, b in zip(cos[4:-1], cos[5:], strict=True))  # falling after warm-up


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "adagrad", "rmsprop"])
def test_every_optimizer_trains_and_the_schedule_changes_the_result(tiny, optimizer):
    lr = 0.05 if optimizer == "sgd" else 2e-3
    base = dict(arch="sk", width=0.2, epochs=2, batch_size=32, train_size=128, lr=lr,
                optimizer=optimizer)
    constant = train(TrainConfig(**base), tiny)
    cosine = train(TrainConfig(**base, schedule="cosine", warmup_epochs=1), tiny)
    assert constant.status == cosine.status == JobStatus.COMPLETE
    assert constant.epochs[0].train_loss != cosine.epochs[0].train_loss  # warm-up applied
    assert constant.epochs[-1].train_loss < constant.epochs[0].train_loss  # it learns


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw", "adagrad", "rmsprop"])
def test_every_optimizer_gets_its_learning_rate_and_weight_decay(kind):
    from benchmark.train import optimizer_for

    classes = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
               "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop}
    extra = {"momentum": 0.9} if kind == "sgd" else {}
    config = TrainConfig(optimizer=kind, lr=0.003, weight_decay=0.02, **extra)
    optimizer = optimizer_for(config, [torch.nn.Parameter(torch.zeros(3))])
    assert type(optimizer) is classes[kind]
    group = optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (0.003, 0.02)
    if kind == "sgd":
        assert group["momentum"] == 0.9
