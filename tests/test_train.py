import math

import pytest
import torch
from conftest import synthetic_digits

from benchmark import JobStatus, TrainConfig
from benchmark.train import to_device, train


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
