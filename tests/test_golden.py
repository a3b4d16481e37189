"""Golden test of the training-behaviour version (`provenance.TRAINING_VERSION`).

Fixed tiny jobs on the suite's synthetic data, CPU, fp32, one thread, must reproduce the
per-epoch losses and accuracies stored in tests/golden/training.json for the current
version. When they do not, a change altered training results: bump TRAINING_VERSION (so
stored results become STALE instead of mixing with new ones) and regenerate the file:

    python tests/test_golden.py

The tolerance (relative 1e-4) absorbs what different CPUs' kernels do to float sums
(AVX2 against AVX-512 order additions differently); a change of behaviour (weights,
batch order, a layer, a learning-rate rule) moves these numbers by far more.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden" / "training.json"
RTOL = 1e-4

JOBS = {  # name -> TrainConfig fields (dataset: the synthetic IDX directory)
    "base-sgd": dict(arch="base", width=0.5, epochs=2, batch_size=32, train_size=128),
    "sk-bn-dropout-fc1": dict(arch="sk", width=0.5, batch_norm=True, dropout="fc1",
                              epochs=2, batch_size=32, train_size=128, train_offset=64, seed=3),
    "base-adam-sigmoid-logits": dict(arch="base", width=0.3, optimizer="adam", lr=1e-3,
                                     activation="sigmoid", dropout="logits", epochs=2,
                                     batch_size=32, train_size=96, seed=1),
    "sk-adamw-cosine-warmup": dict(arch="sk", width=0.3, optimizer="adamw", lr=2e-3,
                                   weight_decay=0.05, schedule="cosine", warmup_epochs=1,
                                   epochs=2, batch_size=32, train_size=128, seed=2),
    "base-rmsprop-step": dict(arch="base", width=0.3, optimizer="rmsprop", lr=1e-3,
                              schedule="step", epochs=2, batch_size=32, train_size=96, seed=4),
}


def measure() -> dict[str, list[list[float]]]:
    """Per-epoch (train loss, test loss, test accuracy) of each golden job."""
    import torch
    from conftest import make_idx_dir

    from benchmark import TrainConfig, data, train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            arrays = data.load_arrays(make_idx_dir(Path(tmp) / "idx", 320, 200))
        resident = train.to_device(arrays.train_x, arrays.train_y, arrays.test_x,
                                   arrays.test_y, "cpu")
        return {name: [[e.train_loss, e.test_loss, e.test_accuracy]
                       for e in train.train(TrainConfig(**fields), resident).epochs]
                for name, fields in JOBS.items()}
    finally:
        torch.set_num_threads(threads)


def test_training_reproduces_the_golden_results_of_its_version():
    from benchmark.provenance import TRAINING_VERSION

    golden = json.loads(GOLDEN.read_text())
    how = ("bump TRAINING_VERSION in benchmark/provenance.py, then regenerate with "
           "`python tests/test_golden.py`")
    assert golden["version"] == TRAINING_VERSION, (
        f"{GOLDEN} holds results of training version {golden['version']}, the code says "
        f"{TRAINING_VERSION}: regenerate it with `python tests/test_golden.py`")
    got = measure()
    assert sorted(got) == sorted(golden["jobs"])
    for name, epochs in golden["jobs"].items():
        assert len(got[name]) == len(epochs), name
        for epoch, (want, have) in enumerate(zip(epochs, got[name], strict=True), 1):
            for metric, w, h in zip(("train loss", "test loss", "test accuracy"), want, have,
                                    strict=True):
                assert math.isclose(h, w, rel_tol=RTOL), (
                    f"{name}, epoch {epoch}: {metric} {h!r}, golden {w!r}. Training results "
                    f"changed under the same version {TRAINING_VERSION}: {how}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from benchmark.provenance import TRAINING_VERSION

    GOLDEN.write_text(json.dumps({"version": TRAINING_VERSION, "jobs": measure()}, indent=1)
                      + "\n")
    print(f"wrote {GOLDEN} for training version {TRAINING_VERSION}")
