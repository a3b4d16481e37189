"""Integration on the real MNIST files, where they are cached (skipped elsewhere)."""

import os
from pathlib import Path

import pytest

from benchmark import TrainConfig, data

REAL = Path(os.environ.get("CNNBENCH_TEST_MNIST", "")) if os.environ.get(
    "CNNBENCH_TEST_MNIST") else None


def _real_mnist() -> Path | None:
    # The autouse fixture points CNNBENCH_DATA at an empty directory; look where a user's is.
    home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    for candidate in (REAL, home / "cnnbench" / "mnist"):
        if candidate and not data.verify_mnist(candidate):
            return candidate
    return None


@pytest.mark.slow
@pytest.mark.skipif(_real_mnist() is None, reason="real MNIST is not cached here")
def test_sk02_learns_real_mnist_in_one_short_epoch():
    import torch

    from benchmark.train import to_device, train

    torch.set_num_threads(1)
    arrays = data.load_arrays(str(_real_mnist()))
    assert arrays.train_x.shape == (60_000, 28, 28) and arrays.test_x.shape == (10_000, 28, 28)
    device_data = to_device(arrays.train_x, arrays.train_y, arrays.test_x, arrays.test_y, "cpu")
    out = train(TrainConfig(arch="sk", width=0.2, batch_norm=True, epochs=1, train_size=3000),
                device_data)
    assert out.epochs[-1].test_accuracy > 85.0


@pytest.mark.slow
@pytest.mark.skipif(_real_mnist() is None, reason="real MNIST is not cached here")
def test_perf_benchmark_variants_run(monkeypatch):
    from benchmark import perf

    monkeypatch.setenv("CNNBENCH_DATA", str(_real_mnist()))
    classic = perf.classic("SK0.2", steps=5, warmup=2)
    ours = perf.trainer("SK0.2", steps=5, precision="bf16", workers=1)
    assert classic["samples_per_s"] > 0 and classic["threads"] >= 1
    assert ours["workers"] == 1 and ours["samples_per_s"] > 0
