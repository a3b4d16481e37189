"""Estimate stage: how long the pending jobs of a grid will take on these device slots.

Takes job configs, training-set sizes and device slots; gives per-job seconds and the
grid's wall time. Each distinct network (a config less its seed, slice and epochs) is
calibrated by timing a few training steps and one evaluation batch on synthetic images,
in worker processes side by side on the same slots and threads a run would use (so the
calibration sees the same contention). Job time = epochs x (steps x step time + test set
x evaluation time per sample) + a fixed per-job overhead; the wall time comes from
replaying the run's longest-first schedule on the slots. Used by `cnnbench run --dry-run`.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from joblib import Parallel, delayed

from .config import TrainConfig
from .plan import TEST_SAMPLES

JOB_OVERHEAD_S = 0.5  # per job inside a running grid: build the net, record the result
WARMUP_STEPS = 3
BUDGET_S = 0.6  # timing budget per network after warm-up


@dataclass(frozen=True)
class Rate:
    step_seconds: float  # one training step at the config's batch size
    eval_seconds_per_sample: float


@dataclass(frozen=True)
class Estimate:
    job_seconds: dict[str, float]  # job key -> estimated seconds
    wall_seconds: float
    calibration_seconds: float
    networks: int


def shape_of(config: TrainConfig) -> TrainConfig:
    """The part of a config that decides the speed of a training step."""
    return replace(config, seed=0, train_offset=0, train_size=None, epochs=1)


def calibrate_one(config: TrainConfig, device: str, threads: int,
                  import_dirs: tuple[str, ...] = ()) -> Rate:
    """Time training steps and an evaluation batch of `config`'s net on random images."""
    import torch

    from . import train

    torch.set_num_threads(threads)
    dev = torch.device(device)
    bs = config.batch_size
    x = torch.randn(bs, 1, 28, 28, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (bs,), device=dev)
    net, _ = train.seeded_net(config, dev, train.DeviceData(x, y, x, y), import_dirs)
    own = train.Pieces.of(config, import_dirs)  # your own loss, optimizer and step are timed
    opt = train.optimizer_for(config, net.parameters(), own)
    gen = torch.Generator(device=dev).manual_seed(0)

    def step() -> None:
        train.train_step(net, x, y, opt, config, own, gen)

    net.train()
    for _ in range(WARMUP_STEPS):
        step()
    train.synchronize(dev)
    steps, t0 = 0, time.perf_counter()
    while steps < 5 or time.perf_counter() - t0 < BUDGET_S:
        step()
        steps += 1
        if steps % 5 == 0:
            train.synchronize(dev)
    train.synchronize(dev)
    step_s = (time.perf_counter() - t0) / steps

    test = torch.randn(train.EVAL_BATCH, 1, 28, 28, device=dev)
    data = train.DeviceData(x, y, test.contiguous(memory_format=torch.channels_last),
                            torch.randint(0, 10, (train.EVAL_BATCH,), device=dev))
    train.evaluate(net, data, config, dev)  # warm-up
    t0 = time.perf_counter()
    train.evaluate(net, data, config, dev)
    return Rate(step_s, (time.perf_counter() - t0) / train.EVAL_BATCH)


def job_seconds(config: TrainConfig, train_samples: int, rate: Rate, eval_every: int = 1) -> float:
    evals = len([e for e in range(1, config.epochs + 1)
                 if e % eval_every == 0 or e == config.epochs])
    steps = math.ceil(train_samples / config.batch_size) * config.epochs
    return (steps * rate.step_seconds + evals * TEST_SAMPLES * rate.eval_seconds_per_sample
            + JOB_OVERHEAD_S)


def schedule(durations: Sequence[float], slots: int) -> float:
    """Wall time of running `durations` in this order, each on the first free slot."""
    free = [0.0] * slots
    end = 0.0
    for d in durations:
        start = heapq.heappop(free)
        end = max(end, start + d)
        heapq.heappush(free, start + d)
    return end


def estimate(jobs: dict[str, TrainConfig], order: Sequence[str], samples: dict[str, int],
             slots: Sequence[str], threads: int, eval_every: int = 1,
             import_dirs: tuple[str, ...] = ()) -> Estimate:
    """Calibrate each distinct network on `slots`, then estimate every job and the grid.

    `order` is the run's dispatch order; `samples` maps a job key to its training-set size.
    """
    t0 = time.perf_counter()
    shapes = sorted({shape_of(c) for c in jobs.values()}, key=repr)
    # One calibration per slot at a time, as a run would load them.
    rates = Parallel(n_jobs=min(len(slots), len(shapes)), backend="loky")(
        delayed(calibrate_one)(shape, slots[i % len(slots)], threads, import_dirs)
        for i, shape in enumerate(shapes)
    )
    by_shape = dict(zip(shapes, rates, strict=True))
    seconds = {k: job_seconds(c, samples[k], by_shape[shape_of(c)], eval_every)
               for k, c in jobs.items()}
    wall = schedule([seconds[k] for k in order], len(slots))
    return Estimate(seconds, wall, time.perf_counter() - t0, len(shapes))
