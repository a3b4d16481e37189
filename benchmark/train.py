"""Train stage: the one training loop.

Takes a `TrainConfig` and a dataset already resident on the device as tensors; gives a
`TrainOutcome` (status, per-epoch metrics, parameter count, training seconds). Knows
nothing of studies, databases, processes or the CLI, and prints nothing.

Batches are index slices of a seeded permutation over preloaded tensors (no per-sample
DataLoader path). `torch.manual_seed(config.seed)` governs the initial weights and the
dropout masks; a generator of the job's own, seeded with `config.seed`, draws the batch
order, so a job sees the same batches whether it trains alone or fused with others. The
loss is read back once per epoch, so the loop never waits on the device; a non-finite
epoch loss ends the job as DIVERGED. The test set is evaluated every `eval_every` epochs
and after the last (skipped epochs record NaN test metrics); evaluation never touches
the training RNG, so it does not change the trained weights.

`train_fused` trains several jobs that differ only in seed and training slice as one
vectorised model (torch.func: stacked parameters and BatchNorm buffers, vmap over the
model axis, dropout drawn independently per model, one optimizer whose elementwise state
is per model); each model gets the initial weights and batch order it would get alone.

Weights are channels_last (see `memory_format`): measured on a 2-core CPU, 1.3-1.5x
faster training for the base, BN and SK1 nets and up to 2.5x faster evaluation. Images
have one channel, so their layout is the same either way.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import augment, pieces
from .config import TrainConfig, is_user_piece
from .nets import build_net, channels, param_count
from .plan import fusable, fusion_key
from .records import DeviceData, EpochMetrics, JobStatus

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
EVAL_BATCH = 500  # test samples per forward pass; larger batches fall out of cache on CPU
STEP_SEED_OFFSET = 7_919  # a user step's generator: seed + this (augmentation has its own)
VAL_SEED_OFFSET = 104_729  # the validation draw: seed + this, whatever the cell


@dataclass(frozen=True)
class TrainOutcome:
    status: JobStatus
    epochs: tuple[EpochMetrics, ...]
    param_count: int
    train_seconds: float
    error: str | None = None


def to_device(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
              test_y: np.ndarray, device: str | torch.device, mean=MNIST_MEAN,
              std=MNIST_STD) -> DeviceData:
    """uint8 images, (N, H, W) or (N, C, H, W), -> float tensors (N, C, H, W) normalised by
    the dataset's `mean` and `std` (of pixels in [0, 1]; one each, or a tuple of one per
    channel; MNIST's published values by default) on `device`."""
    def images(a: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.array(a, dtype=np.float32)).to(device)
        if x.ndim == 3:
            x = x.unsqueeze(1)
        if isinstance(mean, tuple):
            shape = (1, len(mean), 1, 1)
            x = x.div_(255.0).sub_(torch.tensor(mean, dtype=torch.float32, device=device)
                                   .reshape(shape))
            x = x.div_(torch.tensor(std, dtype=torch.float32, device=device).reshape(shape))
        else:
            x = x.div_(255.0).sub_(mean).div_(std)
        return x.contiguous(memory_format=torch.channels_last)

    def labels(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=np.int64)).to(device)

    classes = int(max(np.max(train_y), np.max(test_y))) + 1
    return DeviceData(images(train_x), labels(train_y), images(test_x), labels(test_y), classes)


@dataclass(frozen=True)
class Pieces:
    """A job's loss, step, schedule, optimizer and metrics: the built-in ones, or its own
    "module:function" pieces, imported once per job (see `pieces`)."""

    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    step: Callable | None = None  # (net, x, y, optimizer, config, generator) -> loss
    schedule: Callable | None = None  # (step, total_steps, config) -> lr factor
    optimizer: Callable | None = None  # (params, config) -> Optimizer
    metrics: tuple[tuple[str, Callable], ...] = ()  # (spec, (net, data, config) -> dict)

    @classmethod
    def of(cls, config: TrainConfig, dirs: Sequence[str] = ()) -> Pieces:
        def own(field):
            return pieces.load(config, field, dirs)

        loss = F.nll_loss
        if is_user_piece(config.loss):
            user_loss = own("loss")

            def loss(output, targets):
                value = user_loss(output, targets, config)
                pieces.scalar_loss(config.loss, value)
                return value.reshape(())

        return cls(loss,
                   own("step") if is_user_piece(config.step) else None,
                   own("schedule") if is_user_piece(config.schedule) else None,
                   own("optimizer") if is_user_piece(config.optimizer) else None,
                   tuple((m, own(f"metrics[{i}]")) for i, m in enumerate(config.metrics)))


def optimizer_for(config: TrainConfig, params, own: Pieces | None = None
                  ) -> torch.optim.Optimizer:
    """The config's optimizer at its peak learning rate (every built-in one elementwise, so
    fused training keeps per-model state). Other settings are torch's defaults."""
    if own is not None and own.optimizer is not None:
        optimizer = own.optimizer(params, config)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise pieces.PieceError(f"optimizer {config.optimizer!r} returned "
                                    f"{type(optimizer).__name__}, not a torch.optim.Optimizer")
        return optimizer
    kind, lr, wd = config.optimizer, config.lr, config.weight_decay
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=wd)
    adaptive = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
                "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop}
    return adaptive[kind](params, lr=lr, weight_decay=wd)


def lr_factor(config: TrainConfig, step: int, steps_per_epoch: int,
              schedule: Callable | None = None) -> float:
    """Multiplier of `config.lr` for training step `step` (0-based over the whole run):
    linear warm-up over `warmup_epochs`, then the schedule over the remaining steps (your
    own `schedule(step, total_steps, config)` counts them from 0)."""
    warm = config.warmup_epochs * steps_per_epoch
    if step < warm:
        return (step + 1) / warm
    if schedule is not None:
        factor = schedule(step - warm, config.epochs * steps_per_epoch - warm, config)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not (
                math.isfinite(factor) and factor >= 0):
            raise pieces.PieceError(f"schedule {config.schedule!r} returned {factor!r} for "
                                    f"step {step - warm}; expected a finite number >= 0")
        return float(factor)
    if config.schedule == "cosine":
        total = config.epochs * steps_per_epoch
        return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
    if config.schedule == "step":
        epoch = step // steps_per_epoch + 1  # 1-based
        return 0.1 ** sum(epoch > m for m in (round(config.epochs * 0.5),
                                              round(config.epochs * 0.75)))
    return 1.0


def _scheduled(config: TrainConfig) -> bool:
    return config.schedule != "constant" or config.warmup_epochs > 0


def _set_lr(optimizer: torch.optim.Optimizer, config: TrainConfig, step: int,
            steps_per_epoch: int, schedule: Callable | None = None) -> None:
    lr = config.lr * lr_factor(config, step, steps_per_epoch, schedule)
    for group in optimizer.param_groups:
        group["lr"] = lr


def autocast(config: TrainConfig, device: torch.device):
    if config.precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate(net: torch.nn.Module, data: DeviceData, config: TrainConfig,
             device: torch.device) -> tuple[float, float]:
    """Mean test NLL and test accuracy (percent) over the full test set."""
    net.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    with torch.inference_mode(), autocast(config, device):
        for i in range(0, len(data.test_y), EVAL_BATCH):
            out = net(data.test_x[i:i + EVAL_BATCH]).float()
            target = data.test_y[i:i + EVAL_BATCH]
            loss_sum += F.nll_loss(out, target, reduction="sum")
            correct += (out.argmax(dim=1) == target).sum()
    n = len(data.test_y)
    return loss_sum.item() / n, 100.0 * correct.item() / n


def _slice(config: TrainConfig, n_total: int) -> tuple[int, int]:
    """[start, stop) of the job's training slice in a training set of `n_total` samples."""
    start = config.train_offset
    stop = n_total if config.train_size is None else start + config.train_size
    if stop > n_total or start >= n_total:
        raise ValueError(f"training slice [{start}, {stop}) is outside the "
                         f"{n_total}-sample training set")
    return start, stop


def memory_format(config: TrainConfig) -> torch.memory_format:
    """channels_last, except for bf16 nets whose first conv has under 8 channels (SK0.2):
    there the contiguous layout trained 12-15% faster on the 2-core CPU (and channels_last
    25-65% faster for the wider and the base nets, in fp32 and bf16 alike)."""
    if config.precision == "bf16" and channels(config.width)[0] < 8:
        return torch.contiguous_format
    return torch.channels_last


def seeded_net(config: TrainConfig, device: torch.device, data: DeviceData,
          import_dirs: tuple[str, ...] = ()) -> tuple[torch.nn.Module, torch.Generator]:
    """A freshly initialised net and the generator of its batch order, both from the seed."""
    torch.manual_seed(config.seed)
    net = build_net(config, data.input_shape, data.num_classes, import_dirs)
    net = net.to(device, memory_format=memory_format(config))
    order = torch.Generator(device=device)
    order.manual_seed(config.seed)
    return net, order


def _due(epoch: int, config: TrainConfig, eval_every: int) -> bool:
    return epoch % eval_every == 0 or epoch == config.epochs


def _rng_state(device: torch.device) -> dict:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _save(path: Path, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
          order_gen: torch.Generator, epochs: list[EpochMetrics], train_seconds: float,
          gens: dict[str, torch.Generator]) -> None:
    """Everything the next epoch depends on, written atomically (temp file, then rename)."""
    state = {"net": net.state_dict(), "optimizer": optimizer.state_dict(),
             "order_rng": order_gen.get_state(), "rng": _rng_state(order_gen.device),
             "epochs": [asdict(e) for e in epochs], "train_seconds": train_seconds}
    state.update({f"{name}_rng": gen.get_state() for name, gen in gens.items()})
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _resume(path: Path, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
            order_gen: torch.Generator, gens: dict[str, torch.Generator],
            ) -> tuple[list[EpochMetrics], float]:
    state = torch.load(path, map_location=order_gen.device, weights_only=True)
    net.load_state_dict(state["net"])
    optimizer.load_state_dict(state["optimizer"])
    order_gen.set_state(state["order_rng"].cpu())
    for name, gen in gens.items():
        gen.set_state(state[f"{name}_rng"].cpu())
    torch.set_rng_state(state["rng"]["cpu"].cpu())
    if "cuda" in state["rng"]:
        torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), order_gen.device)
    return [EpochMetrics(**e) for e in state["epochs"]], state["train_seconds"]


OnEpoch = Callable[[int, EpochMetrics], None]  # (model index in the call, its epoch)


def split_validation(config: TrainConfig, n: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(training, validation) positions within a training slice of `n` samples: `val_size`
    of them held out by a draw seeded with the job's seed alone (not its cell), so the
    cells of a replicate that share a training slice and `val_size` validate on the same
    samples; cells of other slices hold out other samples (None without a split)."""
    if config.val_size == 0:
        return None
    if config.val_size >= n:
        raise ValueError(f"val_size {config.val_size} leaves no training samples of the {n} "
                         "in the job's training slice")
    draw = torch.randperm(n, generator=torch.Generator().manual_seed(
        config.seed + VAL_SEED_OFFSET))
    return draw[config.val_size:].sort().values, draw[:config.val_size].sort().values


def train(config: TrainConfig, data: DeviceData, eval_every: int = 1,
          checkpoint: Path | None = None, import_dirs: tuple[str, ...] = (),
          on_epoch: OnEpoch | None = None) -> TrainOutcome:
    """Train one network as `config` says, evaluating it every `eval_every` epochs.

    With `checkpoint`, the state after each epoch is saved there and a run that finds
    the file resumes after its last epoch, with the same result as an unbroken run; the
    file is removed when the job ends. `import_dirs`: where a "module:function" net's
    and pieces' modules are imported from (the study file's folder). `on_epoch(0,
    metrics)` hears of each finished epoch (live progress; it changes nothing in the
    training).
    """
    device = data.train_x.device
    start, stop = _slice(config, len(data.train_y))
    train_x, train_y = data.train_x[start:stop], data.train_y[start:stop]
    val = None
    split = split_validation(config, stop - start)
    if split is not None:
        kept, held = (p.to(device) for p in split)
        val = DeviceData(train_x[kept], train_y[kept], train_x[held], train_y[held],
                         data.num_classes)
        train_x, train_y = val.train_x, val.train_y

    own = Pieces.of(config, import_dirs)
    net, order_gen = seeded_net(config, device, data, import_dirs)
    gens = {}
    aug_gen = augment.generator(config.augment, config.seed, device)
    if aug_gen is not None:
        gens["augment"] = aug_gen
    if own.step is not None:
        gens["step"] = torch.Generator(device=device).manual_seed(
            config.seed + STEP_SEED_OFFSET)
    optimizer = optimizer_for(config, net.parameters(), own)
    epochs: list[EpochMetrics] = []
    train_seconds = 0.0
    if checkpoint is not None and checkpoint.exists():
        epochs, train_seconds = _resume(checkpoint, net, optimizer, order_gen, gens)
    outcome = _epochs(config, data, net, optimizer, order_gen, train_x, train_y, epochs,
                      train_seconds, eval_every, checkpoint, on_epoch or _quiet, gens, own,
                      val)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return outcome


def train_step(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
               optimizer: torch.optim.Optimizer, config: TrainConfig, own: Pieces,
               generator: torch.Generator | None) -> torch.Tensor:
    """One training step on a batch: your own `step` (forward, backward, optimizer step),
    or the job's loss, backward and the optimizer's step; the batch's mean loss."""
    if own.step is not None:
        with autocast(config, x.device):
            loss = own.step(net, x, y, optimizer, config, generator)
        pieces.scalar_loss(config.step, loss, "step")
        return loss.reshape(()).float()
    with autocast(config, x.device):
        loss = own.loss(net(x).float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def measure(net: torch.nn.Module, data: DeviceData, config: TrainConfig, own: Pieces,
            val: DeviceData | None) -> dict[str, float]:
    """The job's own metrics on the test set, and with a validation split the validation
    loss and accuracy and each metric on it (as val_<name>)."""
    device = data.test_x.device
    values: dict[str, float] = {}
    for spec, function in own.metrics:
        for split, prefix in ((data, ""), (val, "val_")):
            if split is None:
                continue
            net.eval()
            with torch.no_grad():
                got = pieces.metric_values(spec, function(net, split, config))
            values.update({prefix + name: value for name, value in got.items()})
    if val is not None:  # last: no metric's name overwrites the built-in ones
        values["val_loss"], values["val_accuracy"] = evaluate(net, val, config, device)
    return values


def _epochs(config: TrainConfig, data: DeviceData, net: torch.nn.Module,
            optimizer: torch.optim.Optimizer, order_gen: torch.Generator,
            train_x: torch.Tensor, train_y: torch.Tensor, epochs: list[EpochMetrics],
            train_seconds: float, eval_every: int, checkpoint: Path | None,
            on_epoch: OnEpoch, gens: dict[str, torch.Generator], own: Pieces,
            val: DeviceData | None) -> TrainOutcome:
    """The training loop, from the epoch after `epochs` to the last."""
    device, n = train_x.device, len(train_y)
    steps = math.ceil(n / config.batch_size)
    scheduled = _scheduled(config) or own.schedule is not None
    aug_gen = gens.get("augment")
    for epoch in range(len(epochs) + 1, config.epochs + 1):
        # --- train one epoch
        net.train()
        synchronize(device)
        t0 = time.perf_counter()
        order = torch.randperm(n, device=device, generator=order_gen)
        loss_sum = torch.zeros((), device=device)
        for step, i in enumerate(range(0, n, config.batch_size)):
            if scheduled:  # the rate follows the step count, so a resumed job needs no state
                _set_lr(optimizer, config, (epoch - 1) * steps + step, steps, own.schedule)
            idx = order[i:i + config.batch_size]
            x = train_x[idx] if aug_gen is None else augment.apply(train_x[idx],
                                                                    config.augment, aug_gen)
            loss = train_step(net, x, train_y[idx], optimizer, config, own, gens.get("step"))
            loss_sum += loss.detach() * len(idx)
        train_loss = loss_sum.item() / n  # the one host sync of the epoch
        seconds = time.perf_counter() - t0
        train_seconds += seconds

        # --- stop on divergence, else evaluate on the full test set when due
        if not math.isfinite(train_loss):
            epochs.append(EpochMetrics(epoch, train_loss, math.nan, math.nan, seconds))
            return TrainOutcome(JobStatus.DIVERGED, tuple(epochs), param_count(net),
                                train_seconds, f"non-finite training loss in epoch {epoch}")
        due = _due(epoch, config, eval_every)
        test_loss, test_acc = (evaluate(net, data, config, device) if due
                               else (math.nan, math.nan))
        extra = measure(net, data, config, own, val) if due else {}
        epochs.append(EpochMetrics(epoch, train_loss, test_loss, test_acc, seconds, extra))
        if checkpoint is not None and epoch < config.epochs:
            _save(checkpoint, net, optimizer, order_gen, epochs, train_seconds, gens)
        on_epoch(0, epochs[-1])  # after the checkpoint: it may stop the job here (Retiring)

    return TrainOutcome(JobStatus.COMPLETE, tuple(epochs), param_count(net), train_seconds)


# --------------------------------------------------------------------------- fused


def _quiet(index: int, metrics: EpochMetrics) -> None:
    pass


def train_fused(configs: Sequence[TrainConfig], data: DeviceData, eval_every: int = 1,
                import_dirs: tuple[str, ...] = (),
                on_epoch: OnEpoch | None = None) -> list[TrainOutcome]:
    """Train `configs` (equal `fusion_key`) as one vmap-ed model; one outcome per config.

    Each model starts from the weights `train` would give it and sees the same batches;
    its dropout masks are its own but not the ones a separate run would draw. A model
    whose loss turns non-finite is DIVERGED at that epoch and no longer reported; the
    others train on (their gradients are independent). Training seconds are the group's
    time divided by the number of models (each job's share of the device).
    """
    from torch.func import functional_call, stack_module_state, vmap

    if len({fusion_key(c) for c in configs}) != 1:
        raise ValueError("train_fused needs configs that differ only in seed and train_offset")
    if not all(map(fusable, configs)):
        raise ValueError("train_fused trains the built-in pieces without a validation split "
                         "(see plan.fusable)")
    config, k = configs[0], len(configs)
    device = data.train_x.device
    spans = [_slice(c, len(data.train_y)) for c in configs]
    n = spans[0][1] - spans[0][0]
    offsets = torch.tensor([s for s, _ in spans], device=device)[:, None]

    inits = [seeded_net(c, device, data, import_dirs) for c in configs]
    nets, gens = [net for net, _ in inits], [g for _, g in inits]
    aug_gens = [augment.generator(c.augment, c.seed, device) for c in configs]
    params, buffers = stack_module_state(nets)  # leaves of shape (k, ...)
    skeleton = copy.deepcopy(nets[0]).to("meta")
    optimizer = optimizer_for(config, params.values())  # elementwise, so per-model state

    def loss_one(p, b, x, y):
        return F.nll_loss(functional_call(skeleton, (p, b), (x,)).float(), y)

    def eval_one(p, b, x, y):
        out = functional_call(skeleton, (p, b), (x,)).float()
        return F.nll_loss(out, y, reduction="sum"), (out.argmax(dim=1) == y).sum()

    batched_loss = vmap(loss_one, randomness="different")
    batched_eval = vmap(eval_one, in_dims=(0, 0, None, None))
    history: list[list[EpochMetrics]] = [[] for _ in configs]
    alive = [True] * k
    errors: list[str | None] = [None] * k
    train_seconds = 0.0
    steps, scheduled = math.ceil(n / config.batch_size), _scheduled(config)

    for epoch in range(1, config.epochs + 1):
        skeleton.train()
        synchronize(device)
        t0 = time.perf_counter()
        order = torch.stack([torch.randperm(n, device=device, generator=g) for g in gens])
        order += offsets
        loss_sum = torch.zeros(k, device=device)
        for step, i in enumerate(range(0, n, config.batch_size)):
            if scheduled:
                _set_lr(optimizer, config, (epoch - 1) * steps + step, steps)
            idx = order[:, i:i + config.batch_size]  # (k, b) indices into the full set
            x = data.train_x[idx]
            if aug_gens[0] is not None:  # each model's own stream, as it would train alone
                x = torch.stack([augment.apply(x[j], config.augment, aug_gens[j])
                                 for j in range(k)])
            with autocast(config, device):
                losses = batched_loss(params, buffers, x, data.train_y[idx])
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            loss_sum += losses.detach() * idx.shape[1]
        train_loss = (loss_sum / n).tolist()
        seconds = (time.perf_counter() - t0) / k
        train_seconds += seconds

        test = [(math.nan, math.nan)] * k
        if _due(epoch, config, eval_every):
            skeleton.eval()
            sums = torch.zeros(k, device=device)
            correct = torch.zeros(k, device=device, dtype=torch.int64)
            with torch.inference_mode(), autocast(config, device):
                for i in range(0, len(data.test_y), EVAL_BATCH):
                    s, c = batched_eval(params, buffers, data.test_x[i:i + EVAL_BATCH],
                                        data.test_y[i:i + EVAL_BATCH])
                    sums += s
                    correct += c
            m = len(data.test_y)
            test = [(s / m, 100.0 * c / m)
                    for s, c in zip(sums.tolist(), correct.tolist(), strict=True)]
        for j in range(k):
            if not alive[j]:
                continue
            if not math.isfinite(train_loss[j]):
                history[j].append(EpochMetrics(epoch, train_loss[j], math.nan, math.nan, seconds))
                alive[j], errors[j] = False, f"non-finite training loss in epoch {epoch}"
                continue
            history[j].append(EpochMetrics(epoch, train_loss[j], *test[j], seconds))
            (on_epoch or _quiet)(j, history[j][-1])

    count = param_count(nets[0])
    return [TrainOutcome(JobStatus.COMPLETE if alive[j] else JobStatus.DIVERGED,
                         tuple(history[j]), count, train_seconds, errors[j])
            for j in range(k)]
