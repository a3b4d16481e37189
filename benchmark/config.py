"""Configuration: one training run's settings (`TrainConfig`), their vocabulary and checks.

The ground floor of the study stage: takes nothing from other stages, and no torch. Gives
`TrainConfig` (one run, fully resolved, keyed by content), the choices of its fields, the
rules that keep one training one job (`normalised`, fields a setting leaves unused), and
`SpecError`, the error every check of what the user wrote raises.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class SpecError(ValueError):
    """A study or configuration the user wrote is invalid; the message says how to fix it.

    `origin`: (file, line) of what the user wrote, where the check runs later than the line
    that wrote it (a cell's factor is checked against the Study's declarations)."""

    def __init__(self, message: str, origin: tuple[str, int] | None = None):
        super().__init__(message)
        self.origin = origin


FACTOR_TYPES = (bool, int, float, str)


class Factors(dict):
    """A job's declared factors (`Study(factors=...)`): every name -> its value, the
    declared default where the job's cell sets none. Read by your own code as
    `config.factors["name"]`; read-only. Only values off their default are part of the
    job's key (`changed`), so declaring a factor keeps every stored job's key. A dict, so
    it is stored as JSON as it is."""

    def __init__(self, values: Mapping[str, Any] | None = None,
                 defaults: Mapping[str, Any] | None = None):
        defaults = dict(defaults or {})
        super().__init__(sorted({**defaults, **dict(values or {})}.items()))
        self._defaults = defaults

    def __getitem__(self, name: str) -> Any:
        try:
            return super().__getitem__(name)
        except KeyError:
            close = difflib.get_close_matches(str(name), list(self), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise KeyError(f"no factor {name!r}{hint} (declared: "
                           f"{', '.join(self) or 'none'}; declare it in "
                           "Study(factors={...}))") from None

    def _read_only(self, *args: Any, **kwargs: Any):
        raise TypeError("a job's factors are read-only: set a factor in the study's cells")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _read_only
    __ior__ = _read_only

    def __eq__(self, other: object) -> bool:
        """Equal values, and with another Factors the same defaults (which decide the
        key); a plain dict compares by values."""
        if isinstance(other, Factors) and self._defaults != other._defaults:
            return False
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def __repr__(self) -> str:
        return f"Factors({dict(self)!r})"

    def __reduce__(self):
        return Factors, (dict(self), self._defaults)

    @property
    def defaults(self) -> dict[str, Any]:
        return dict(self._defaults)

    def changed(self) -> dict[str, Any]:
        """The values that are part of the key: those off their declared default."""
        return {k: v for k, v in sorted(self.items())
                if k not in self._defaults or v != self._defaults[k]}


CHOICES: dict[str, tuple[str, ...]] = {
    "dropout": ("none", "logits", "fc1"),
    "activation": ("relu", "sigmoid", "tanh", "gelu", "elu"),
    "optimizer": ("sgd", "adam", "adamw", "adagrad", "rmsprop"),
    "schedule": ("constant", "step", "cosine"),
    "precision": ("fp32", "bf16"),
    "augment": ("none", "flip", "crop", "flip+crop"),
    "loss": ("nll",),
    "step": ("standard",),
}
# Fields that take your own code as "module:function" beside their built-in choices (see
# `pieces`), and `metrics`, a tuple of them.
PIECE_FIELDS = ("optimizer", "schedule", "loss", "step")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """One fully resolved training run. Every field is part of the job key."""

    arch: str = "base"  # "base": 5x5 convs 20k->50k; "sk": conv 3x3 x2, then 3x3 (published
    #                     SK); or "module:function", your own network (see nets.user_net)
    width: float = 1.0  # channel multiplier k: convs get round(20k) and round(50k) channels
    batch_norm: bool = False  # BN after each conv (before pooling) and after fc1
    dropout: str = "none"  # "none" | "logits" (after fc2, as published) | "fc1" (after fc1)
    dropout_p: float = 0.5  # drop probability, in [0, 1); with dropout "none" it stays 0.5
    activation: str = "relu"  # relu | sigmoid | tanh | gelu | elu, replaces every ReLU
    hidden: int = 500  # fc1 output features
    optimizer: str = "sgd"  # sgd (lr, momentum) | adam | adamw | adagrad | rmsprop (lr)
    lr: float = 0.01  # peak learning rate
    momentum: float = 0.5  # SGD momentum; the other optimizers take none (see APPLIES)
    weight_decay: float = 0.0  # L2 penalty passed to the optimizer (decoupled for adamw)
    batch_size: int = 64  # training samples per step; the last partial batch is kept
    epochs: int = 20  # passes over the training slice
    train_size: int | None = None  # training samples used; None = from train_offset to the end
    train_offset: int = 0  # index of the first training sample used (a slice of the train set)
    seed: int = 0  # torch.manual_seed: initial weights, batch order, dropout masks
    precision: str = "fp32"  # "fp32" | "bf16" (autocast; may change results, so part of the key)
    dataset: str = "mnist"  # "mnist" | "fashion-mnist" | "cifar10" | "cifar100" (fetched,
    #                         verified); a path: a directory of MNIST-format IDX files (raw or
    #                         .gz) or CIFAR batches, or an .npz file; or "module:function"
    schedule: str = "constant"  # lr per step: constant | step (x0.1 after 1/2 and 3/4 of the
    #                             epochs) | cosine (from lr down to 0 at the last step)
    warmup_epochs: int = 0  # linear warm-up from lr/steps to lr over these epochs, then schedule
    augment: str = "none"  # none | flip (mirror left-right) | crop (shift by up to 1/8 of the
    #                        side, reflected padding) | flip+crop: per batch, on the device
    loss: str = "nll"  # "nll" (of the net's log-probabilities) or your own "module:function"
    step: str = "standard"  # one training step: "standard" (loss, backward, optimizer step)
    #                         or your own "module:function" (mixup, SAM, clipping...)
    metrics: tuple[str, ...] = ()  # your own "module:function" metrics, evaluated with the
    #                                test set (see pieces); optimizer and schedule also take
    #                                your own "module:function"
    val_size: int = 0  # training samples held out (after the slice, drawn by the seed) for
    #                    validation metrics: val_loss, val_accuracy, val_<metric>
    pieces_hash: str = ""  # SHA-256 of the modules of the job's own pieces; set by the loader
    arch_hash: str = ""  # SHA-256 of a "module:function" net's module source; set by the loader
    data_hash: str = ""  # content hash of a path or function dataset; set by the loader.
    #                      With it, the key holds the content instead of the path or name
    factors: Factors = dataclasses.field(default_factory=Factors)  # declared in
    #                      Study(factors=...), set by cells like fields; read by your code

    def __new__(cls, **kwargs: Any) -> TrainConfig:
        check_fields({k: v for k, v in kwargs.items() if k != "factors"}, "TrainConfig")
        return super().__new__(cls)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = coerce(f.name, getattr(self, f.name))
            object.__setattr__(self, f.name, value)
        _check_ranges(self)
        check_applies(self.to_dict(), "")

    def to_dict(self) -> dict[str, Any]:
        """Every field (`factors` the `Factors` itself, with its defaults, so that
        `TrainConfig(**config.to_dict())` is the same job; a plain dict of factors, as
        JSON or a `jobs` row holds them, carries no defaults: every value of it is then
        part of the key)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def identity(self) -> dict[str, Any]:
        """What the key hashes: `to_dict` with only the factors off their default."""
        return {**self.to_dict(), "factors": self.factors.changed()}

    def key(self) -> str:
        """Content hash of the resolved configuration: the job's identity.

        Fields added after results were first stored are left out while at their
        default, and factors while at their declared default, so every job stored before
        they existed keeps its key. A directory dataset is identified by its content
        (`data_hash`), not where it lies."""
        return key_of(self.identity())

    def unnormalised_key(self, unused: Mapping[str, Any]) -> str:
        """The key this job had before settings its other settings leave unused were put
        back to their defaults (`normalised`): with those `unused` values in place."""
        return key_of({**self.identity(), **unused})

    def path_key(self) -> str:
        """The key this job had before directory datasets were keyed by content (schema
        < 4): its directory's path instead of its content hash."""
        return dataclasses.replace(self, data_hash="").key()


def key_of(values: Mapping[str, Any]) -> str:
    """`TrainConfig.key` of a config's fields (see there)."""
    fields = {k: v for k, v in values.items() if k not in LATER_FIELDS or v != LATER_FIELDS[k]}
    if values.get("data_hash"):
        del fields["dataset"]
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# Fields that only some settings use: field -> (the field that decides, the values that
# use it). Where another setting leaves such a field unused, it must keep its default: a
# job that trains the same way as another has the same key.
APPLIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "momentum": ("optimizer", ("sgd",)),
    "dropout_p": ("dropout", ("logits", "fc1")),
}


NET_FIELDS = ("dropout_p",)  # read by the network, not the trainer: a "module:function"
#                              network may use them whatever the built-in nets do


def unused_field(values: Mapping[str, Any]) -> tuple[str, str] | None:
    """(field, decider) of the first field that `values` sets off its default beside a
    value of its decider that does not use it, or None (a decider `values` leaves out is
    decided elsewhere: a cell's dropout_p on a baseline with dropout). A network's own
    fields count only where `values` names a built-in net."""
    for name, (decider, uses) in APPLIES.items():
        if name in NET_FIELDS and (values.get("arch") is None or is_user_arch(values["arch"])):
            continue  # your own network gets every field and may use this one
        if is_user_piece(values.get(decider)):
            continue  # so does your own optimizer
        if (name in values and decider in values and values[decider] not in uses
                and values[name] != CONFIG_FIELDS[name].default):
            return name, decider
    return None


def check_applies(values: Mapping[str, Any], where: str) -> None:
    """Refuse a field set in the same place as a setting that does not use it."""
    found = unused_field(values)
    if found is None:
        return
    name, decider = found
    uses = APPLIES[name][1]
    raise SpecError(
        f"{where}field {name!r} = {values[name]!r} has no effect with {decider} "
        f"{values[decider]!r} ({name} applies to {decider} "
        f"{' or '.join(map(repr, uses))} only): leave {name} out there (it stays at its "
        f"default, {CONFIG_FIELDS[name].default!r}), or use another section or an Exclude for "
        "that combination")


def normalised(values: dict[str, Any], own: Mapping[str, Any],
               where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A resolved job's fields with every field its settings leave unused put back to its
    default, so that identical trainings are one job, and the values so reset; a field
    `own` sets (the cell's own overrides) that its settings leave unused is a SpecError
    naming `where`."""
    values, reset = dict(values), {}
    while (found := unused_field(values)) is not None:
        name, decider = found
        if name in own:
            check_applies({"arch": values.get("arch"), decider: values[decider],
                            name: own[name]}, where)
        reset[name], values[name] = values[name], CONFIG_FIELDS[name].default
    return values, reset


# Fields added to TrainConfig after databases held results, with their defaults.
LATER_FIELDS: dict[str, Any] = {"schedule": "constant", "warmup_epochs": 0, "arch_hash": "",
                                "data_hash": "", "augment": "none", "factors": {},
                                "loss": "nll", "step": "standard", "metrics": (),
                                "val_size": 0, "pieces_hash": ""}
BUILT_IN_ARCHS = ("base", "sk")
ARCH_LIMIT = 32  # characters of an arch or a piece (the database column holds no more)
METRIC_NAME_LIMIT = 64  # characters of a metric's name
USER_ARCH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")  # module.path:function


def is_user_arch(arch: str) -> bool:
    return arch not in BUILT_IN_ARCHS


def is_user_piece(value: Any) -> bool:
    """A "module:function" value of a field that also has built-in choices."""
    return isinstance(value, str) and USER_ARCH.match(value) is not None


def user_pieces(config: TrainConfig) -> dict[str, str]:
    """The job's own pieces: "field" (or "metrics[i]") -> "module:function"."""
    own = {f: getattr(config, f) for f in PIECE_FIELDS if is_user_piece(getattr(config, f))}
    own.update({f"metrics[{i}]": m for i, m in enumerate(config.metrics)})
    return own
CONFIG_FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}
_FIELD_TYPES: dict[str, str] = {name: str(f.type) for name, f in CONFIG_FIELDS.items()}


SETTABLE = tuple(n for n in CONFIG_FIELDS if n != "factors")  # a cell sets a factor by name


def check_fields(overrides: Mapping[str, Any], where: str,
                 factors: Mapping[str, Any] | None = None,
                 origin: tuple[str, int] | None = None) -> None:
    """Reject names that are neither configuration fields nor declared `factors`,
    suggesting the closest valid name."""
    factors = factors or {}
    valid = [*SETTABLE, *factors]
    for name in overrides:
        if name == "factors":
            raise SpecError(f"{where} sets 'factors': set each declared factor by its name "
                            "(label_smoothing=0.1), and declare it with its default in "
                            "Study(factors={...})", origin)
        if name not in CONFIG_FIELDS and name not in factors:
            close = difflib.get_close_matches(str(name), valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            declared = (f" Declared factors: {', '.join(factors)}." if factors else
                        " A factor of your own is declared with its default in "
                        "Study(factors={...}).")
            raise SpecError(
                f"unknown field {name!r} in {where}{hint} "
                f"Valid fields: {', '.join(SETTABLE)}.{declared}", origin
            )


def check_factors(declared: Any, where: str) -> dict[str, Any]:
    """A study's factor declarations: identifiers that are no built-in field, each with
    a default of type bool, int, float or str (the factor's type)."""
    if not isinstance(declared, Mapping):
        raise SpecError(f"{where}: factors must be a dict of name -> default value, got "
                        f"{type(declared).__name__}")
    for name, default in declared.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError(f"{where}: factor name {name!r} must be a Python identifier "
                            "(letters, digits, underscores)")
        if name in CONFIG_FIELDS:
            raise SpecError(f"{where}: factor {name!r} shadows the built-in field {name!r}: "
                            f"set the field itself, or give your factor another name")
        if name in RESERVED_NAMES:
            raise SpecError(f"{where}: factor {name!r} is a column of every result "
                            f"(reserved: {', '.join(RESERVED_NAMES)}): give it another name")
        if name.startswith("val_"):
            raise SpecError(f"{where}: factor {name!r}: val_ is the validation split's prefix "
                            "(val_loss, val_<metric>): give the factor another name")
        if type(default) not in FACTOR_TYPES or (
                isinstance(default, float) and not math.isfinite(default)):
            raise SpecError(f"{where}: factor {name!r} has default {default!r} of type "
                            f"{type(default).__name__}; a factor's default is a bool, int, "
                            "float (finite) or str, and its type is the factor's type")
    return dict(declared)


# Columns the results and epochs frames (`load_results`, `export`) and the metrics table
# have beside the fields: neither a factor nor a metric of yours can take their names.
RESERVED_NAMES = ("study", "section", "cell", "position", "seed", "replicate", "job_key",
                  "status", "published", "skip_reason", "current", "code_version", "error",
                  "run_id", "run_status", "test_accuracy", "test_loss", "train_loss", "epoch",
                  "epochs_done", "param_count", "train_seconds", "wall_seconds", "seconds",
                  "device", "host", "slurm_job_id", "torch_version", "cuda_version",
                  "started_at", "finished_at", "live_epoch_id", "written_at", "attempt",
                  "val_loss", "val_accuracy", "metric", "name", "value")


def coerce_factor(name: str, value: Any, default: Any) -> Any:
    """A factor's value checked against its default's type (an int is a float's value)."""
    kind = type(default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not kind:
        raise SpecError(f"factor {name!r} must be {kind.__name__} (the type of its default, "
                        f"{default!r}), got {type(value).__name__} {value!r}")
    if kind is float and not math.isfinite(value):
        raise SpecError(f"factor {name!r} must be a finite number, got {value!r}")
    return value


def coerce(name: str, value: Any) -> Any:
    """Check one field's type and canonicalize numbers (width=1 and width=1.0 are one job)."""
    kind = _FIELD_TYPES[name]
    if name == "factors":
        if isinstance(value, Factors):
            return value
        if not isinstance(value, Mapping):
            raise SpecError(f"field 'factors' must be a dict, got {type(value).__name__}")
        return Factors(check_factors(value, "field 'factors'"))
    if name == "metrics":
        value = (value,) if isinstance(value, str) else value
        if not isinstance(value, (tuple, list)) or not all(map(is_user_piece, value)):
            raise SpecError(f"field 'metrics' must be a tuple of your own metrics as "
                            f"\"module:function\", got {value!r}")
        for m in value:
            _check_length("metrics", m)
        if len(set(value)) != len(value):
            raise SpecError(f"field 'metrics' names a metric twice: {list(value)}")
        return tuple(value)
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "int | None":
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
        if ok and not math.isfinite(value):
            raise SpecError(f"field {name!r} must be a finite number, got {value!r}")
    else:  # str
        ok = isinstance(value, str)
    if not ok:
        raise SpecError(
            f"field {name!r} must be {kind}, got {type(value).__name__} {value!r}"
        )
    if name == "arch":
        _check_length(name, value)
    if name == "arch" and value not in BUILT_IN_ARCHS and not USER_ARCH.match(value):
        close = difflib.get_close_matches(value, BUILT_IN_ARCHS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(f"field 'arch' got {value!r}{hint}; valid: {', '.join(BUILT_IN_ARCHS)}, "
                        "or your own network as 'module:function'")
    choices = CHOICES.get(name)
    if name in PIECE_FIELDS and is_user_piece(value):
        _check_length(name, value)
        return value
    if choices and value not in choices:
        close = difflib.get_close_matches(value, choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        own = ", or your own \"module:function\"" if name in PIECE_FIELDS else ""
        raise SpecError(f"field {name!r} got {value!r}{hint}; valid choices: "
                        f"{', '.join(choices)}{own}")
    return value


def _check_length(name: str, value: str) -> None:
    """An arch or a piece fits its column (ARCH_LIMIT characters)."""
    if len(value) > ARCH_LIMIT:
        raise SpecError(f"field {name!r} = {value!r} is {len(value)} characters long; at "
                        f"most {ARCH_LIMIT}: shorten the module or function name")


_LIMITS: dict[str, tuple[float, float | None, str]] = {
    # field: (lowest allowed, highest allowed or None, how to say it)
    "width": (1e-9, None, "> 0"),
    "dropout_p": (0.0, 0.999999, "in [0, 1)"),
    "hidden": (1, None, ">= 1"),
    "lr": (1e-12, None, "> 0"),
    "momentum": (0.0, None, ">= 0"),
    "weight_decay": (0.0, None, ">= 0"),
    "batch_size": (1, None, ">= 1"),
    "epochs": (1, None, ">= 1"),
    "train_size": (1, None, ">= 1 (or None for all)"),
    "train_offset": (0, None, ">= 0"),
    "seed": (0, 2**63 - 1, "in [0, 2**63)"),
    "warmup_epochs": (0, None, ">= 0"),
    "val_size": (0, None, ">= 0"),
}


def _check_ranges(config: TrainConfig) -> None:
    for name, (low, high, text) in _LIMITS.items():
        value = getattr(config, name)
        if value is None:
            continue
        if value < low or (high is not None and value > high):
            raise SpecError(f"field {name!r} must be {text}, got {value!r}")
    if config.warmup_epochs > config.epochs:
        raise SpecError(f"field 'warmup_epochs' = {config.warmup_epochs} exceeds epochs = "
                        f"{config.epochs}: warm up within the run")
    if min(round(20 * config.width), round(50 * config.width)) < 1:
        raise SpecError(f"field 'width' = {config.width} leaves a conv layer with no channels")


# --------------------------------------------------------------------------- study blocks
