"""Your own training pieces: `optimizer`, `schedule`, `loss`, `step` and `metrics` of a
`TrainConfig` as "module:function", resolved like a network (`usernets`: the study file's
folder first, then the installed packages) and hashed by their modules' source into the
job's key (`pieces_hash`): edit a module and exactly the jobs that use it run again.

The contracts (each function also gets the job's `config`, its factors included):

    optimizer(params, config) -> torch.optim.Optimizer        # at the peak rate config.lr
    schedule(step, total_steps, config) -> float              # lr factor, after any warm-up
    loss(output, targets, config) -> scalar tensor            # output: the net's
    #     log-probabilities (a softmax of them is the predicted distribution)
    step(net, x, y, optimizer, config, generator) -> tensor   # one whole training step:
    #     forward, backward, optimizer.step(); returns the batch's mean loss. `generator`
    #     is the job's own, seeded by its seed, so a rerun and a resumed run are identical
    metric(net, data, config) -> {name: float}               # with the test set, whenever
    #     it is evaluated (net in eval mode, no gradients); data.test_x, data.test_y

`check` calls every piece once on a batch of the study's dataset shape before anything is
written: a missing module or function, a piece that raises, or a return value of the wrong
kind is a `PieceError` naming the piece and its module's line. Locating and hashing import
no torch.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import usernets
from .config import CONFIG_FIELDS, METRIC_NAME_LIMIT, RESERVED_NAMES, TrainConfig, user_pieces

# Names the built-in measurements take (a metric of yours cannot): beside the result
# columns, the validation split's.
BUILT_IN_METRICS = ("test_accuracy", "test_loss", "train_loss", "train_seconds",
                    "param_count", "val_accuracy", "val_loss")


class PieceError(usernets.UserNetError):
    """A "module:function" piece that cannot be found, loaded or used."""


def _what(field: str) -> str:
    return field.split("[")[0]


def module_hashes(config: TrainConfig, dirs: Sequence[str]) -> dict[str, str]:
    """"module:function" -> the SHA-256 of its module's source, for the job's own pieces
    (a PieceError naming the piece when its module cannot be found)."""
    try:
        return {spec: usernets.source_hash(spec, dirs, _what(field))
                for field, spec in user_pieces(config).items()}
    except usernets.UserNetError as exc:
        raise PieceError(str(exc)) from None


def source_hash(config: TrainConfig, dirs: Sequence[str] = (),
                hashes: Mapping[str, str] | None = None) -> str:
    """SHA-256 over the job's own pieces and their modules' source ("" when it has none);
    `hashes`: the module hashes already found (`module_hashes`)."""
    own = user_pieces(config)
    if not own:
        return ""
    hashes = module_hashes(config, dirs) if hashes is None else hashes
    digest = hashlib.sha256()
    for field, spec in sorted(own.items()):
        digest.update(f"{field}={spec}:{hashes[spec]};".encode())
    return digest.hexdigest()


def load(config: TrainConfig, field: str, dirs: Sequence[str] = ()) -> Callable:
    """The function of the job's piece `field` ("loss", "metrics[0]", ...), imported; a
    module whose source changed since the study was loaded is refused."""
    spec = user_pieces(config)[field]
    if config.pieces_hash and source_hash(config, dirs) != config.pieces_hash:
        raise PieceError(f"{_what(field)} {spec!r}: {usernets.module_file(spec, dirs)} changed "
                         "since the study was loaded; run the study again to train the new "
                         "version")
    try:
        usernets.module_file(spec, dirs, _what(field))  # where to put it, when it is missing
        return usernets.load(spec, dirs, what=_what(field))
    except usernets.UserNetError as exc:
        raise PieceError(str(exc)) from None


def _raised(field: str, spec: str, exc: BaseException, dirs: Sequence[str],
            function: Callable | None = None) -> PieceError:
    """The piece's error, at the line of its module that raised (or, where the call
    itself failed, a wrong signature, the function's own line)."""
    try:
        module = usernets.module_file(spec, dirs)
        line = usernets.line_in(module, exc)
        if line is None and getattr(function, "__code__", None) is not None:
            line = function.__code__.co_firstlineno
        where = f" ({module}, line {line})" if line else f" ({module})"
    except usernets.UserNetError:
        where = ""
    return PieceError(f"{_what(field)} {spec!r} raised {type(exc).__name__}{where}: {exc}")


def metric_values(spec: str, values: Any) -> dict[str, float]:
    """A metric's return value checked: a dict of names (identifiers, no built-in's) to
    finite-or-NaN numbers."""
    if not isinstance(values, Mapping):
        raise PieceError(f"metric {spec!r} returned {type(values).__name__}, expected a dict "
                         "of name -> number, e.g. {\"ece\": 0.03}")
    out = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name.isidentifier() or len(name) > METRIC_NAME_LIMIT:
            raise PieceError(f"metric {spec!r} returned the name {name!r}: a metric's name is "
                             f"an identifier of at most {METRIC_NAME_LIMIT} characters")
        if (name in BUILT_IN_METRICS or name in RESERVED_NAMES or name in CONFIG_FIELDS
                or name.startswith("val_") or f"val_{name}" in BUILT_IN_METRICS):
            raise PieceError(f"metric {spec!r} returned {name!r}, the name of a built-in "
                             "measurement, a field or a column of the results (and val_ is "
                             "the validation split's prefix, so 'accuracy' and 'loss' are "
                             "taken too): give your metric another name")
        if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
            value = value.item()  # a 0-d tensor or numpy number
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PieceError(f"metric {spec!r} returned {name}={value!r} "
                             f"({type(value).__name__}); each value must be a number")
        out[name] = float(value)
    return out


def recorded(config: TrainConfig, own_metrics: Sequence[str] = ()) -> set[str]:
    """The names of the numbers a job of `config` records: the built-in ones (the
    validation split's with `val_size`), and `own_metrics`, the names its metrics return
    (with their val_ twins)."""
    names = {"test_accuracy", "test_loss", "train_loss", "train_seconds", "param_count",
             *own_metrics}
    if config.val_size:
        names |= {"val_loss", "val_accuracy", *(f"val_{m}" for m in own_metrics)}
    return names


def check(config: TrainConfig, input_shape: tuple[int, ...], classes: int,
          dirs: Sequence[str]) -> list[str]:
    """Call each of the job's own pieces once, on a batch of 4 of zeros of the dataset's
    shape through the job's net (a PieceError on anything wrong); the names its metrics
    return. Imports torch."""
    import torch

    from . import nets
    from .records import DeviceData

    own = user_pieces(config)
    if not own:
        return []
    torch.manual_seed(0)
    net = nets.build_net(config, input_shape, classes, tuple(dirs))
    x = torch.zeros(4, *input_shape)
    y = torch.arange(4) % classes
    fns = {field: load(config, field, dirs) for field in own}

    def call(field, *args):
        try:
            return fns[field](*args)
        except Exception as exc:
            raise _raised(field, own[field], exc, dirs, fns[field]) from None

    params = list(net.parameters())
    if "optimizer" in own:
        optimizer = call("optimizer", params, config)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise PieceError(f"optimizer {own['optimizer']!r} returned "
                             f"{type(optimizer).__name__}, not a torch.optim.Optimizer")
    else:
        optimizer = torch.optim.SGD(params, lr=config.lr)
    if "schedule" in own:
        factor = call("schedule", 0, 10, config)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not (
                math.isfinite(factor) and factor >= 0):
            raise PieceError(f"schedule {own['schedule']!r} returned {factor!r} for step 0 of "
                             "10; expected a finite number >= 0 (the factor of config.lr)")
    if "loss" in own:
        loss = call("loss", net(x).float(), y, config)
        scalar_loss(own["loss"], loss)
    if "step" in own:
        gen = torch.Generator().manual_seed(0)
        loss = call("step", net, x, y, optimizer, config, gen)
        scalar_loss(own["step"], loss, "step")
    data = DeviceData(x, y, x, y, classes)
    names: list[str] = []
    for field in own:
        if field.startswith("metrics["):
            net.eval()
            with torch.no_grad():
                values = call(field, net, data, config)
            for name in metric_values(own[field], values):
                if name in names:
                    raise PieceError(f"metric {own[field]!r} returns {name!r}, which another "
                                     "of the job's metrics returns too: give each its own "
                                     "name")
                if name in config.factors:
                    raise PieceError(f"metric {own[field]!r} returns {name!r}, the name of a "
                                     "factor of the study: give one of them another name")
                names.append(name)
    return names


def scalar_loss(spec: str, loss: Any, what: str = "loss") -> None:
    """A loss (or a step's return) must be a scalar tensor; a non-finite one is a
    divergence, not a wrong return (DIVERGED in the job, as for the built-in loss)."""
    import torch

    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise PieceError(f"{what} {spec!r} returned {shape}; expected a scalar tensor (the "
                         "batch's mean loss)")
