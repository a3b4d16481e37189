"""Integration on the real MNIST files, where they are cached (skipped elsewhere)."""

import os
from pathlib import Path

import pytest
from conftest import load_perf

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
    perf = load_perf()

    monkeypatch.setenv("CNNBENCH_DATA", str(_real_mnist()))
    classic = perf.classic("SK0.2", steps=5, warmup=2)
    ours = perf.trainer("SK0.2", steps=5, precision="bf16", workers=1)
    assert classic["samples_per_s"] > 0 and classic["threads"] >= 1
    assert ours["workers"] == 1 and ours["samples_per_s"] > 0


@pytest.mark.slow
@pytest.mark.skipif(_real_mnist() is None, reason="real MNIST is not cached here")
def test_study_estimate_calibrates_both_loops_for_every_job(monkeypatch, tmp_path):
    perf = load_perf()

    monkeypatch.setenv("CNNBENCH_DATA", str(_real_mnist()))
    study = tmp_path / "two.py"
    study.write_text(
        "from benchmark import Cell, Section, Study, TrainConfig\n"
        "def study():\n"
        "    base = TrainConfig(train_size=640, epochs=2)\n"
        "    return Study(name='two', baseline=base, sections=[Section('A', [\n"
        "        Cell('base'), Cell('adam', optimizer='adam', lr=1e-3),\n"
        "        Cell('sk', arch='sk', width=0.2, batch_norm=True, epochs=3)])])\n")
    est = perf.study_estimate(str(study), workers=1, steps=3)
    assert est["study"] == "two" and est["jobs"] == 3 and est["networks"] == 3
    # Every classic job pays a fresh process; cnnbench's estimate has no such term.
    assert est["classic_estimate_s"] > 3 * est["classic_startup_s"] > 0
    assert est["cnnbench_estimate_s"] > 0 and est["cnnbench_workers"] == 1
    assert est["ratio"] == est["classic_estimate_s"] / est["cnnbench_estimate_s"]


def _real_fashion() -> Path | None:
    home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    candidate = home / "cnnbench" / "fashion-mnist"
    return None if data.verify(candidate, "fashion-mnist") else candidate


@pytest.mark.slow
@pytest.mark.skipif(_real_fashion() is None, reason="Fashion-MNIST is not cached here")
def test_a_study_on_fashion_mnist_runs_with_the_data_own_normalisation(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from benchmark.cli import main
    from benchmark.store import ResultStore

    monkeypatch.setenv("CNNBENCH_DATA", str(_real_fashion().parent))
    arrays = data.load_arrays(str(data.resolve("fashion-mnist", fetch=False)))
    assert arrays.train_x.shape == (60_000, 28, 28) and arrays.test_x.shape == (10_000, 28, 28)
    # its own normalisation, not MNIST's
    assert round(arrays.mean, 4) == 0.2860 and round(arrays.std, 4) == 0.3530
    (tmp_path / "fm.py").write_text(
        "from benchmark import Cell, Section, Study, TrainConfig\n"
        "def study():\n"
        "    base = TrainConfig(arch='sk', width=0.2, batch_norm=True, train_size=2000,\n"
        "                       epochs=1, dataset='fashion-mnist')\n"
        "    return Study(name='fm', baseline=base, sections=[Section('A', [Cell('sk')])])\n")
    result = CliRunner().invoke(main, ["run", "fm.py", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    rows = ResultStore("sqlite:///results/cnnbench.sqlite").results_frame("fm")
    assert list(rows["dataset"]) == ["fashion-mnist"] and list(rows["status"]) == ["COMPLETE"]
    assert 60.0 < rows["test_accuracy"].iloc[0] < 95.0  # learns clothes, from 2000 images
