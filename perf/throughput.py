"""Throughput benchmark: cnnbench's trainer against the classic PyTorch MNIST loop.

    python perf/throughput.py [--steps N] [--sections ...] [--study FILE] [--out FILE]
    (or: nox -s perf)

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
quick study from scratch with one worker against the default; one job end to end (the
classic loop's process against `cnnbench run`'s, `single_job`); and, for the full ablation
(fp32 and bf16), the estimated wall time of all its jobs with the classic loop against
cnnbench, both calibrated in this run (`study_estimate`). `--sections` picks parts. Figures
go to a JSON file, with the CPU's model and what torch says it can do natively (bf16's
speed depends on it), and each figure printed says which machine it comes from.

A benchmark harness outside the package (as asv keeps its benchmarks): it uses the
package's public API only.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from joblib import Parallel, delayed

from benchmark import TrainConfig, data, estimate, hardware, plan, runner
from benchmark.execute import Task, run_group
from benchmark.nets import build_net
from benchmark.studyfile import load_study
from benchmark.train import optimizer_for, to_device, train

NETS = {
    "base": {"arch": "base"},
    "BN": {"arch": "base", "batch_norm": True},
    "SK0.2": {"arch": "sk", "width": 0.2, "batch_norm": True},
}


@contextmanager
def _classic_datasets() -> Iterator[tuple]:
    """torchvision's MNIST training and test sets with the example's transforms, read from
    cnnbench's verified cache."""
    from torchvision import datasets, transforms

    with tempfile.TemporaryDirectory() as root:  # torchvision's layout: ROOT/MNIST/raw
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for name in data.MNIST_SHA256:
            (raw / name).symlink_to(data.cache_dir() / name)
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
        yield (datasets.MNIST(root, train=True, download=False, transform=tf),
               datasets.MNIST(root, train=False, download=False, transform=tf))


def _classic_step_seconds(config: TrainConfig, train_set, steps: int, warmup: int) -> float:
    """Seconds per training step of the example's loop: shuffling DataLoader, fp32, eager."""
    import torch
    import torch.nn.functional as F


    loader = torch.utils.data.DataLoader(train_set, batch_size=config.batch_size, shuffle=True)
    torch.manual_seed(config.seed)
    model = build_net(config)
    optimizer = optimizer_for(config, model.parameters())
    model.train()
    batches = iter(loader)
    for step in range(warmup + steps):
        if step == warmup:
            t1 = time.perf_counter()
        x, y = next(batches)
        optimizer.zero_grad()
        F.nll_loss(model(x), y).backward()
        optimizer.step()
    return (time.perf_counter() - t1) / steps


def classic(net: str, steps: int, warmup: int = 20) -> dict:
    """(a) The torchvision DataLoader loop of the PyTorch MNIST example, timed per step."""
    t0 = time.perf_counter()
    import torch

    with _classic_datasets() as (train_set, _):
        startup = time.perf_counter() - t0
        step_s = _classic_step_seconds(TrainConfig(**NETS[net]), train_set, steps, warmup)
    return {"samples_per_s": 64 / step_s, "startup_s": startup,
            "threads": torch.get_num_threads()}


def _trainer_worker(net: str, samples: int, precision: str, data_dir: str) -> float:
    """One single-thread worker: samples/s of the trainer's second (warm) epoch."""
    import torch


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


def _small_job(task) -> tuple[int, float]:
    (result,) = run_group((task,), "cpu", None, 1)
    return os.getpid(), result.wall_seconds


def grid_small_jobs(workers: int, jobs: int = 12) -> dict:
    """Wall time of 500-sample, 1-epoch jobs (with their 10k-sample evaluation) inside a
    running grid of persistent workers, against each worker's first job of the grid (which
    pays for importing torch and loading MNIST unless joblib reuses a worker that did)."""

    data_dir = str(data.resolve(data.MNIST, fetch=False))
    configs = [TrainConfig(arch="sk", width=0.2, batch_norm=True, train_size=500, epochs=1,
                           train_offset=500 * i, seed=i) for i in range(jobs)]
    t0 = time.perf_counter()
    got = Parallel(n_jobs=workers, batch_size=1)(
        delayed(_small_job)(Task(c.key(), c, data_dir))
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


def _classic_eval_seconds_per_sample(config: TrainConfig, test_set, batches: int = 2) -> float:
    """The example's test pass: DataLoader of 1000, eval mode, no_grad; seconds per sample."""
    import torch


    model = build_net(config).eval()
    loader = iter(torch.utils.data.DataLoader(test_set, batch_size=1000))
    with torch.no_grad():
        model(next(loader)[0])  # warm-up
        t0 = time.perf_counter()
        for _ in range(batches):
            model(next(loader)[0])
    return (time.perf_counter() - t0) / (batches * 1000)


@functools.cache
def _classic_startup_seconds() -> float:
    """A fresh process importing torch and torchvision and opening the MNIST datasets: what
    the classic loop pays once per job. Measured once per benchmark run."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "from throughput import _classic_datasets\n"
            "with _classic_datasets(): pass")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def study_estimate(path: str, workers: int, steps: int = 50,
                   classic_rates: dict | None = None) -> dict:
    """Estimated wall time of a study's jobs (all of them, done or not) with the classic loop
    and with cnnbench, calibrated side by side in this run.

    Classic: one job at a time in its own process with torch's default threads, as the
    PyTorch example runs; each network shape's step and test-pass times are measured with
    the example's DataLoader loop (fp32, whatever the study's precision), plus the measured
    process start-up per job. cnnbench: `cnnbench run --dry-run`'s estimator on `workers`
    single-thread CPU slots, longest job first. `classic_rates` (shape -> Rate) is filled
    and reused, so studies sharing networks share their classic calibration.
    """
    loaded = load_study(path)
    jobs = plan.unique_jobs(loaded.specs)
    if {c.dataset for c in jobs.values()} != {data.MNIST}:
        raise ValueError(f"{path}: the classic loop reads torchvision's MNIST only")
    _, sizes = runner.datasets(loaded.specs, fetch=False)
    samples = {k: plan.train_samples(c, sizes) for k, c in jobs.items()}

    t0 = time.perf_counter()
    classic_shape = {k: replace(estimate.shape_of(c), precision="fp32") for k, c in jobs.items()}
    rates = {} if classic_rates is None else classic_rates
    with _classic_datasets() as (train_set, test_set):
        for shape in sorted(set(classic_shape.values()) - set(rates), key=repr):
            rates[shape] = estimate.Rate(
                _classic_step_seconds(shape, train_set, steps, warmup=5),
                _classic_eval_seconds_per_sample(shape, test_set))
    startup = _classic_startup_seconds()
    classic_s = sum(estimate.job_seconds(c, samples[k], rates[classic_shape[k]]) + startup
                    for k, c in jobs.items())
    classic_calibration = time.perf_counter() - t0

    order = plan.longest_first(plan.estimated_costs(jobs, sizes))
    ours = estimate.estimate(jobs, order, samples, ("cpu",) * workers, threads=1)
    return {"study": loaded.study.name, "jobs": len(jobs),
            "networks": len(set(classic_shape.values())),
            "classic_estimate_s": classic_s, "classic_startup_s": startup,
            "classic_calibration_s": classic_calibration,
            "cnnbench_estimate_s": ours.wall_seconds, "cnnbench_workers": workers,
            "cnnbench_calibration_s": ours.calibration_seconds,
            "ratio": classic_s / ours.wall_seconds}


SINGLE_JOB = {"arch": "base", "train_size": 10_000, "epochs": 3}  # fp32, batch 64, SGD

_CLASSIC_JOB = """
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, {perf!r})
import torch
import torch.nn.functional as F
from throughput import _classic_datasets
from benchmark import TrainConfig
from benchmark.nets import build_net
from benchmark.train import optimizer_for

config = TrainConfig(**{job!r})
torch.manual_seed(config.seed)
with _classic_datasets() as (train_set, test_set):
    subset = torch.utils.data.Subset(train_set, range(config.train_size))
    loader = torch.utils.data.DataLoader(subset, batch_size=config.batch_size, shuffle=True)
    tests = torch.utils.data.DataLoader(test_set, batch_size=1000)
    model = build_net(config)
    optimizer = optimizer_for(config, model.parameters())
    for epoch in range(config.epochs):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            F.nll_loss(model(x), y).backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in tests:
                correct += (model(x).argmax(1) == y).sum().item()
print(f"{{100 * correct / len(test_set):.2f}}")
"""


def _single_job_study(directory: Path) -> Path:
    study = directory / "single_job.py"
    study.write_text(
        "from benchmark import Cell, Section, Study, TrainConfig\n\n"
        "def study():\n"
        f"    return Study(name='single_job', baseline=TrainConfig(**{SINGLE_JOB!r}),\n"
        "                 sections=[Section('A', [Cell('base')])])\n")
    return study


def _wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def single_job(repeats: int = 3) -> dict:
    """One job of the base net (10k samples, 3 epochs, fp32, tested after each epoch), end
    to end as a user waits for it, whole process: the PyTorch example's loop in a fresh
    process with torch's default threads, against `cnnbench run` of a one-job study into a
    fresh database (command start, database, worker start, data, training, results).
    Alternated `repeats` times; medians."""
    classic_s, ours_s = [], []
    code = _CLASSIC_JOB.format(perf=str(Path(__file__).parent), job=SINGLE_JOB)
    with tempfile.TemporaryDirectory() as tmp:
        study = _single_job_study(Path(tmp))
        for i in range(repeats):
            classic_s.append(_wall([sys.executable, "-c", code]))
            ours_s.append(_wall([sys.executable, "-m", "benchmark", "run", str(study),
                                 "--db", f"{tmp}/single{i}.sqlite"]))
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return {"job": SINGLE_JOB, "classic_s": classic_s, "cnnbench_s": ours_s,
            "classic_median_s": median(classic_s), "cnnbench_median_s": median(ours_s),
            "ratio": median(classic_s) / median(ours_s)}


SECTIONS = ("throughput", "augment", "single-job", "small-jobs", "quick-study",
            "study-estimates")
ESTIMATED_STUDIES = ("studies/mnist_ablation.py", "studies/mnist_ablation_bf16.py")


def augment_overhead(samples: int = 3200, repeats: int = 5) -> dict:
    """Training time of an epoch with each `augment` kind against none, for the base and
    SK0.2 nets on MNIST, one thread (as a worker has): the median over `repeats` of each
    kind's second epoch, the kinds alternated so that the machine's drift hits all alike."""
    import statistics

    import torch

    torch.set_num_threads(1)
    a = data.load_arrays(str(data.resolve(data.MNIST, fetch=True)))
    d = to_device(a.train_x[:samples], a.train_y[:samples], a.test_x[:200], a.test_y[:200],
                  "cpu", a.mean, a.std)
    out = {}
    for net in ("base", "SK0.2"):
        kinds = {"none": [], "flip": [], "crop": [], "flip+crop": []}
        for _ in range(repeats):
            for kind, seconds in kinds.items():
                config = TrainConfig(**NETS[net], epochs=2, augment=kind)
                seconds.append(train(config, d).epochs[1].seconds)
        none = statistics.median(kinds["none"])
        out[net] = {kind: {"epoch_s": statistics.median(s),
                           "overhead": statistics.median(s) / none - 1}
                    for kind, s in kinds.items()}
    return out


def _sections(text: str) -> list[str]:
    chosen = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in chosen if t not in SECTIONS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown section(s) {', '.join(unknown) or '(none given)'}; choose from "
            + ", ".join(SECTIONS))
    return chosen


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps of batch 64")
    parser.add_argument("--out", default="results/perf.json")
    parser.add_argument("--sections", type=_sections, default=list(SECTIONS),
                        help="comma-separated, from: " + ", ".join(SECTIONS) + " (default: all)")
    parser.add_argument("--study", action="append", default=None,
                        help="study file for the study-estimates section (repeatable; default: "
                             + " and ".join(ESTIMATED_STUDIES) + ")")
    args = parser.parse_args(argv)
    data.resolve(data.MNIST, fetch=True, log=print)
    workers = os.cpu_count() or 1
    machine = hardware.cpu_capability()
    print(f"machine: {machine['model']}, {workers} cores, torch CPU capability "
          f"{machine['isa']}, native bf16: "
          + (("AMX" if machine["amx"] else "AVX512_BF16") if machine["bf16_native"] else "no"))
    results: dict = {"cpu": machine, "steps": args.steps, "batch": 64, "cores": workers,
                     "machine": platform.machine(), "nets": {}}
    if "throughput" in args.sections:
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
    if "augment" in args.sections:
        over = augment_overhead()
        results["augment"] = over
        print(f"\naugmentation, epoch of 3,200 MNIST samples, 1 thread, on {machine['model']} "
              "(median of 5, kinds alternated):")
        for net, kinds in over.items():
            print(f"  {net:<6}" + "  ".join(f"{k} {v['epoch_s']:.2f} s ({v['overhead']:+.1%})"
                                          for k, v in kinds.items()))
    if "single-job" in args.sections:
        one = single_job()
        results["single_job"] = one
        print(f"\none job, end to end ({one['job']}, fp32) on {machine['model']}, {workers} "
              f"cores: classic DataLoader loop {one['classic_median_s']:.1f} s, cnnbench run "
              f"{one['cnnbench_median_s']:.1f} s ({one['ratio']:.2f}x; medians of "
              f"{len(one['classic_s'])}, alternated)")
    if "small-jobs" in args.sections:
        grid = grid_small_jobs(workers)
        results["small_jobs"] = grid
        print(f"\n500-sample 1-epoch job in a running grid of {workers} workers: "
              f"{grid['warm_job_median_s']:.2f} s (median); a worker's first job of the grid "
              f"{grid['cold_job_s']:.2f} s")
    if "quick-study" in args.sections:
        one, default = quick_study(1), quick_study(None)
        if one is not None:
            results["quick_study"] = {"one_worker_s": one, "default_s": default,
                                      "default_workers": workers}
            print(f"studies/mnist_quick.py from scratch: 1 worker {one:.0f} s, "
                  f"{workers} workers (default) {default:.0f} s ({one / default:.2f}x)")
    if "study-estimates" in args.sections:
        results["study_estimates"], classic_rates = [], {}
        for path in args.study or [p for p in ESTIMATED_STUDIES if Path(p).exists()]:
            est = study_estimate(path, workers, classic_rates=classic_rates)
            results["study_estimates"].append(est)
            print(f"{path}, all {est['jobs']} jobs, estimated: classic loop one job at a time "
                  f"{_fmt_seconds(est['classic_estimate_s'])}, cnnbench with {workers} workers "
                  f"{_fmt_seconds(est['cnnbench_estimate_s'])} "
                  f"({est['ratio']:.2f}x; {est['networks']} networks calibrated each way, "
                  f"classic start-up {est['classic_startup_s']:.1f} s per job)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"figures written to {out}")
    return results


if __name__ == "__main__":  # python perf/throughput.py
    main()
