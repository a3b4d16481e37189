"""Throughput benchmark: cnnbench's trainer against the classic PyTorch MNIST loop.

    python -m benchmark.perf [--steps N] [--out results/perf.json]   (or: nox -s perf)

In one run, for the base, BN and SK0.2 nets, measures training samples/s of
  (a) the classic loop: torchvision MNIST dataset, ToTensor + Normalize transforms,
      a shuffling DataLoader, one process with torch's default threads (the reference,
      kept here on purpose);
  (b) cnnbench's trainer in fp32, one single-thread worker per core;
  (c) cnnbench's trainer with bf16 autocast, one single-thread worker per core;
and prints each with its ratio to (a). Warm-up is excluded: (a) times the steps after
the first `warmup`, (b) and (c) time their second epoch. Workers of (b)/(c) run side by
side and their throughputs add up ("aggregate"). Then the wall time of a 500-sample job
inside a running grid (persistent workers) against a worker's cold first job, and the
quick study from scratch with one worker against the default. Figures go to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from joblib import Parallel, delayed

from . import data
from .spec import TrainConfig

NETS = {
    "base": {"arch": "base"},
    "BN": {"arch": "base", "batch_norm": True},
    "SK0.2": {"arch": "sk", "width": 0.2, "batch_norm": True},
}


def classic(net: str, steps: int, warmup: int = 20) -> dict:
    """(a) The torchvision DataLoader loop of the PyTorch MNIST example, timed per step."""
    t0 = time.perf_counter()
    import torch
    import torch.nn.functional as F
    from torchvision import datasets, transforms

    from .nets import build_net

    with tempfile.TemporaryDirectory() as root:  # torchvision's layout: ROOT/MNIST/raw
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for name in data.MNIST_SHA256:
            (raw / name).symlink_to(data.cache_dir() / name)
        dataset = datasets.MNIST(root, train=True, download=False, transform=transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]))
        loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True)
        torch.manual_seed(0)
        model = build_net(TrainConfig(**NETS[net]))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
        model.train()
        batches = iter(loader)
        startup = time.perf_counter() - t0
        for step in range(warmup + steps):
            if step == warmup:
                t1 = time.perf_counter()
            x, y = next(batches)
            optimizer.zero_grad()
            F.nll_loss(model(x), y).backward()
            optimizer.step()
        seconds = time.perf_counter() - t1
    return {"samples_per_s": steps * 64 / seconds, "startup_s": startup,
            "threads": torch.get_num_threads()}


def _trainer_worker(net: str, samples: int, precision: str, data_dir: str) -> float:
    """One single-thread worker: samples/s of the trainer's second (warm) epoch."""
    import torch

    from .train import to_device, train

    torch.set_num_threads(1)
    a = data.load_arrays(data_dir)
    device_data = to_device(a.train_x, a.train_y, a.test_x, a.test_y, "cpu")
    config = TrainConfig(**NETS[net], train_size=samples, epochs=2, precision=precision)
    return samples / train(config, device_data).epochs[1].seconds


def trainer(net: str, steps: int, precision: str, workers: int) -> dict:
    """(b)/(c) cnnbench's trainer, `workers` single-thread processes side by side."""
    data_dir = str(data.resolve(data.MNIST, fetch=False))
    rates = Parallel(n_jobs=workers)(
        delayed(_trainer_worker)(net, steps * 64, precision, data_dir) for _ in range(workers))
    return {"samples_per_s": sum(rates), "per_worker": rates, "workers": workers}


def _small_job(task, slot_dir: str, devices: tuple[str, ...]) -> tuple[int, float]:
    from .execute import run_group

    (result,) = run_group((task,), slot_dir, devices, 1)
    return os.getpid(), result.wall_seconds


def grid_small_jobs(workers: int, jobs: int = 12) -> dict:
    """Wall time of 500-sample, 1-epoch jobs (with their 10k-sample evaluation) inside a
    running grid of persistent workers, against each worker's first job of the grid (which
    pays for importing torch and loading MNIST unless joblib reuses a worker that did)."""
    from .execute import Task

    data_dir = str(data.resolve(data.MNIST, fetch=False))
    slot_dir = tempfile.mkdtemp(prefix="cnnbench-perf-")
    configs = [TrainConfig(arch="sk", width=0.2, batch_norm=True, train_size=500, epochs=1,
                           train_offset=500 * i, seed=i) for i in range(jobs)]
    t0 = time.perf_counter()
    got = Parallel(n_jobs=workers, batch_size=1)(
        delayed(_small_job)(Task(c.key(), c, data_dir), slot_dir, ("cpu",) * workers)
        for c in configs)
    total = time.perf_counter() - t0
    seen: set[int] = set()
    cold, warm = [], []
    for pid, wall in got:
        (warm if pid in seen else cold).append(wall)
        seen.add(pid)
    warm.sort()
    return {"jobs": jobs, "workers": workers, "grid_wall_s": total,
            "cold_job_s": max(cold), "warm_job_median_s": warm[len(warm) // 2] if warm else None}


def quick_study(jobs: int | None) -> float | None:
    """Wall seconds of `cnnbench run studies/mnist_quick.py` into a fresh database."""
    study = Path("studies/mnist_quick.py")
    if not study.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "benchmark", "run", str(study), "--db", f"{tmp}/q.sqlite"]
        t0 = time.perf_counter()
        subprocess.run(cmd + (["--jobs", str(jobs)] if jobs else []), check=True,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps of batch 64")
    parser.add_argument("--out", default="results/perf.json")
    parser.add_argument("--no-quick-study", action="store_true",
                        help="skip timing studies/mnist_quick.py with 1 worker and the default")
    args = parser.parse_args(argv)
    data.resolve(data.MNIST, fetch=True, log=print)
    workers = os.cpu_count() or 1
    results: dict = {"steps": args.steps, "batch": 64, "cores": workers,
                     "machine": platform.machine(), "nets": {}}
    print(f"{'net':<7}{'variant':<34}{'samples/s':>11}{'x classic':>11}")
    for net in NETS:
        rows = {
            "classic DataLoader loop": classic(net, args.steps),
            f"cnnbench fp32, {workers} workers": trainer(net, args.steps, "fp32", workers),
            f"cnnbench bf16, {workers} workers": trainer(net, args.steps, "bf16", workers),
        }
        reference = rows["classic DataLoader loop"]["samples_per_s"]
        for variant, row in rows.items():
            row["ratio"] = row["samples_per_s"] / reference
            print(f"{net:<7}{variant:<34}{row['samples_per_s']:>11.0f}{row['ratio']:>10.2f}x")
        results["nets"][net] = rows
    grid = grid_small_jobs(workers)
    results["small_jobs"] = grid
    print(f"\n500-sample 1-epoch job in a running grid of {workers} workers: "
          f"{grid['warm_job_median_s']:.2f} s (median); a worker's first job of the grid "
          f"{grid['cold_job_s']:.2f} s")
    if not args.no_quick_study:
        one, default = quick_study(1), quick_study(None)
        if one is not None:
            results["quick_study"] = {"one_worker_s": one, "default_s": default,
                                      "default_workers": workers}
            print(f"studies/mnist_quick.py from scratch: 1 worker {one:.0f} s, "
                  f"{workers} workers (default) {default:.0f} s ({one / default:.2f}x)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"figures written to {out}")
    return results


if __name__ == "__main__":
    main()
