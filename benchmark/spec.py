"""Value objects and validation: the vocabulary every stage shares.

Takes nothing from other stages. Gives `TrainConfig` (one training run, fully
resolved), the study-building blocks (`Cell`, `Section`, `Study` and the axis
helpers `vary`, `grid`, `zipped`, `product`), and the records that flow between
stages (`JobSpec`, `JobResult`, `EpochMetrics`, `JobStatus`). No torch here.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class SpecError(ValueError):
    """A study or configuration the user wrote is invalid; the message says how to fix it."""


class JobStatus(str, enum.Enum):
    """Life cycle of a job row: PENDING -> RUNNING -> COMPLETE | FAILED | DIVERGED, or SKIPPED.

    STALE is what a COMPLETE or DIVERGED job shows as when its result came from another
    training-code version (`provenance.code_version`): it runs again on the next `run`.
    The database stores the result's own status and code version; STALE is derived.
    """

    PENDING = "PENDING"  # in the grid, not yet run (or returned after an interrupted run)
    RUNNING = "RUNNING"  # claimed by a runner holding a lease
    COMPLETE = "COMPLETE"  # trained and evaluated
    FAILED = "FAILED"  # raised; the traceback is stored with the run
    DIVERGED = "DIVERGED"  # the training loss became non-finite
    SKIPPED = "SKIPPED"  # excluded by the study, with a reason
    STALE = "STALE"  # done under other training code: shown, never mixed in, run again

    def __str__(self) -> str:
        return self.value


# Results that count as "done" for resume: a diverged run is a result, not an error.
DONE_STATUSES = (JobStatus.COMPLETE, JobStatus.DIVERGED)

CHOICES: dict[str, tuple[str, ...]] = {
    "dropout": ("none", "logits", "fc1"),
    "activation": ("relu", "sigmoid", "tanh", "gelu", "elu"),
    "optimizer": ("sgd", "adam", "adamw", "adagrad", "rmsprop"),
    "schedule": ("constant", "step", "cosine"),
    "precision": ("fp32", "bf16"),
    "augment": ("none", "flip", "crop", "flip+crop"),
}


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
    arch_hash: str = ""  # SHA-256 of a "module:function" net's module source; set by the loader
    data_hash: str = ""  # content hash of a path or function dataset; set by the loader.
    #                      With it, the key holds the content instead of the path or name

    def __new__(cls, **kwargs: Any) -> TrainConfig:
        check_fields(kwargs, "TrainConfig")
        return super().__new__(cls)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = _coerce(f.name, getattr(self, f.name))
            object.__setattr__(self, f.name, value)
        _check_ranges(self)
        _check_applies(self.to_dict(), "")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """Content hash of the resolved configuration: the job's identity.

        Fields added after results were first stored are left out while at their
        default, so every job stored before they existed keeps its key. A directory
        dataset is identified by its content (`data_hash`), not where it lies."""
        return key_of(self.to_dict())

    def unnormalised_key(self, unused: Mapping[str, Any]) -> str:
        """The key this job had before settings its other settings leave unused were put
        back to their defaults (`normalised`): with those `unused` values in place."""
        return key_of({**self.to_dict(), **unused})

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
        if (name in values and decider in values and values[decider] not in uses
                and values[name] != CONFIG_FIELDS[name].default):
            return name, decider
    return None


def _check_applies(values: Mapping[str, Any], where: str) -> None:
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
            _check_applies({"arch": values.get("arch"), decider: values[decider],
                            name: own[name]}, where)
        reset[name], values[name] = values[name], CONFIG_FIELDS[name].default
    return values, reset


# Fields added to TrainConfig after databases held results, with their defaults.
LATER_FIELDS: dict[str, Any] = {"schedule": "constant", "warmup_epochs": 0, "arch_hash": "",
                                "data_hash": "", "augment": "none"}
BUILT_IN_ARCHS = ("base", "sk")
USER_ARCH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")  # module.path:function


def is_user_arch(arch: str) -> bool:
    return arch not in BUILT_IN_ARCHS
CONFIG_FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}
_FIELD_TYPES: dict[str, str] = {name: str(f.type) for name, f in CONFIG_FIELDS.items()}


def check_fields(overrides: Mapping[str, Any], where: str) -> None:
    """Reject unknown configuration fields, suggesting the closest valid name."""
    for name in overrides:
        if name not in CONFIG_FIELDS:
            close = difflib.get_close_matches(str(name), CONFIG_FIELDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SpecError(
                f"unknown field {name!r} in {where}{hint} "
                f"Valid fields: {', '.join(CONFIG_FIELDS)}."
            )


def _coerce(name: str, value: Any) -> Any:
    """Check one field's type and canonicalize numbers (width=1 and width=1.0 are one job)."""
    kind = _FIELD_TYPES[name]
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
    if name == "arch" and value not in BUILT_IN_ARCHS and not USER_ARCH.match(value):
        close = difflib.get_close_matches(value, BUILT_IN_ARCHS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(f"field 'arch' got {value!r}{hint}; valid: {', '.join(BUILT_IN_ARCHS)}, "
                        "or your own network as 'module:function'")
    choices = CHOICES.get(name)
    if choices and value not in choices:
        close = difflib.get_close_matches(value, choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(f"field {name!r} got {value!r}{hint}; valid choices: {', '.join(choices)}")
    return value


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


@dataclass(frozen=True)
class Cell:
    """One point of a section: overrides of the section's baseline, a label, a published value."""

    label: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    published: float | None = None  # published test accuracy, percent

    def __init__(self, label: str, *, published: float | None = None, **overrides: Any):
        check_fields(overrides, f"cell {label!r}")
        for name, value in overrides.items():  # types, choices, finiteness: at the cell's line
            try:
                _coerce(name, value)
            except SpecError as exc:
                raise SpecError(f"cell {label!r}: {exc}") from None
        _check_applies(overrides, f"cell {label!r}: ")
        if published is not None and (not isinstance(published, (int, float))
                                      or not math.isfinite(published)):
            raise SpecError(f"cell {label!r}: published must be a finite number (percent), "
                            f"got {published!r}")
        object.__setattr__(self, "label", str(label))
        object.__setattr__(self, "overrides", dict(overrides))
        object.__setattr__(self, "published", None if published is None else float(published))


def _axis_values(name: str, values: Any) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise SpecError(f"axis {name!r} must be a list of values, got {values!r}")
    values = list(values)
    if not values:
        raise SpecError(f"axis {name!r} is empty: give at least one value")
    return values


def _label(overrides: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "baseline"


def _published_for(published: Any, key: Any, position: int, count: int) -> float | None:
    if published is None:
        return None
    if isinstance(published, Mapping):
        return published.get(key)
    published = list(published)
    if len(published) != count:
        raise SpecError(f"published has {len(published)} values for {count} cells")
    return published[position]


def vary(name: str, values: Sequence[Any], *, labels: Sequence[str] | None = None,
         published: Sequence[float] | Mapping[Any, float] | None = None) -> list[Cell]:
    """One axis: a cell per value. `published` is a list aligned with values or a dict by value."""
    check_fields({name: None}, "vary()")
    values = _axis_values(name, values)
    if labels is not None and len(labels) != len(values):
        raise SpecError(f"vary({name!r}): {len(labels)} labels for {len(values)} values")
    return [
        Cell(labels[i] if labels else _label({name: v}),
             published=_published_for(published, v, i, len(values)), **{name: v})
        for i, v in enumerate(values)
    ]


def grid(*, published: Mapping[tuple, float] | None = None, **axes: Sequence[Any]) -> list[Cell]:
    """Full factorial over the axes, in declaration order (last axis varies fastest).

    `published` maps a tuple of values, one per axis in order, to a published value.
    """
    check_fields(axes, "grid()")
    names = list(axes)
    if not names:
        raise SpecError("grid() needs at least one axis")
    value_lists = [_axis_values(n, axes[n]) for n in names]
    cells = []
    for combo in itertools.product(*value_lists):
        overrides = dict(zip(names, combo, strict=True))
        pub = (published or {}).get(combo if len(combo) > 1 else combo[0])
        cells.append(Cell(_label(overrides), published=pub, **overrides))
    return cells


def zipped(*, published: Sequence[float] | None = None, **axes: Sequence[Any]) -> list[Cell]:
    """Paired axes: the i-th cell takes the i-th value of every axis (all axes equally long)."""
    check_fields(axes, "zipped()")
    if not axes:
        raise SpecError("zipped() needs at least one axis")
    value_lists = {n: _axis_values(n, v) for n, v in axes.items()}
    lengths = {n: len(v) for n, v in value_lists.items()}
    if len(set(lengths.values())) != 1:
        raise SpecError(f"zipped() axes must have equal lengths, got {lengths}")
    count = next(iter(lengths.values()))
    cells = []
    for i in range(count):
        overrides = {n: v[i] for n, v in value_lists.items()}
        cells.append(Cell(_label(overrides), published=_published_for(published, None, i, count),
                          **overrides))
    return cells


def product(*cell_lists: Sequence[Cell]) -> list[Cell]:
    """Cross product of cell lists: overrides merge, labels join; a published value survives
    only when exactly one factor carries one."""
    cells = []
    for combo in itertools.product(*cell_lists):
        overrides: dict[str, Any] = {}
        for c in combo:
            overrides.update(c.overrides)
        pubs = [c.published for c in combo if c.published is not None]
        cells.append(Cell(" / ".join(c.label for c in combo),
                          published=pubs[0] if len(pubs) == 1 else None, **overrides))
    return cells


@dataclass(frozen=True)
class Exclude:
    """Cells of a section whose overrides match `where` are stored as SKIPPED with `reason`."""

    where: Mapping[str, Any]
    reason: str

    def __post_init__(self) -> None:
        check_fields(self.where, "Exclude(where=...)")
        if not self.reason:
            raise SpecError("Exclude needs a reason")

    def matches(self, config: TrainConfig) -> bool:
        return all(getattr(config, k) == _coerce(k, v) for k, v in self.where.items())


@dataclass(frozen=True)
class Section:
    """Cells that vary one factor (or a few) from the study baseline plus `fixed` overrides."""

    name: str
    cells: Sequence[Cell]
    title: str = ""
    fixed: Mapping[str, Any] = field(default_factory=dict)  # overrides shared by all cells
    seeds: Sequence[int] | None = None  # replicate seeds; None = the study's seeds
    exclude: Sequence[Exclude] = ()
    note: str = ""  # interpretation choices, shown in listings and reports

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SpecError("every Section needs a non-empty name")
        check_fields(self.fixed, f"section {self.name!r} fixed")
        _check_applies(self.fixed, f"section {self.name!r} fixed: ")
        cells = list(self.cells)
        if not cells:
            raise SpecError(f"section {self.name!r} has no cells: an axis or cell list is empty")
        for c in cells:
            if not isinstance(c, Cell):
                raise SpecError(
                    f"section {self.name!r}: cells must be Cell objects (use vary/grid/zipped), "
                    f"got {type(c).__name__}"
                )
        labels = [c.label for c in cells]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise SpecError(f"section {self.name!r} has duplicate cell labels: {dupes}")
        object.__setattr__(self, "cells", tuple(cells))
        if self.seeds is not None:
            object.__setattr__(self, "seeds", _check_seeds(self.seeds, f"section {self.name!r}"))
        object.__setattr__(self, "exclude", tuple(self.exclude))


def _check_seeds(seeds: Any, where: str) -> tuple[int, ...]:
    seeds = tuple(_axis_values(f"{where} seeds", seeds))
    for s in seeds:
        if not isinstance(s, int) or isinstance(s, bool) or s < 0:
            raise SpecError(f"{where}: seeds must be non-negative integers, got {s!r}")
    if len(set(seeds)) != len(seeds):
        raise SpecError(f"{where}: seeds repeat: {list(seeds)}")
    return seeds


def check_margin(margin: Any, where: str) -> float:
    """A smallest effect of interest: a positive number of percentage points below 100."""
    if (isinstance(margin, bool) or not isinstance(margin, (int, float))
            or not math.isfinite(margin) or margin <= 0 or margin >= 100):
        raise SpecError(f"{where}: margin_pp must be a positive number of percentage points "
                        f"below 100 (the smallest difference in accuracy that matters), got "
                        f"{margin!r}")
    return float(margin)


@dataclass(frozen=True)
class Claim:
    """A statement the report checks against the results.

    `Claim.beats(text, section, cell, baseline)`: `cell` has higher test accuracy than
    `baseline` in `section`. `Claim.increasing(text, section)`: accuracy rises along the
    section's cells in their declared order. `Claim.equivalent(text, section, cell,
    baseline, margin_pp)`: the two cells' accuracies differ by less than `margin_pp`
    percentage points either way (an equivalence test, not the absence of a difference).
    """

    text: str
    section: str
    kind: str  # "beats" | "increasing" | "equivalent"
    cell: str | None = None
    baseline: str | None = None
    margin: float | None = None  # pp, for "equivalent"

    @classmethod
    def beats(cls, text: str, section: str, cell: str, baseline: str) -> Claim:
        return cls(text, section, "beats", cell, baseline)

    @classmethod
    def increasing(cls, text: str, section: str) -> Claim:
        return cls(text, section, "increasing")

    @classmethod
    def equivalent(cls, text: str, section: str, cell: str, baseline: str,
                   margin_pp: float) -> Claim:
        return cls(text, section, "equivalent", cell, baseline,
                   check_margin(margin_pp, f"claim {text!r}"))

    def check(self, sections: Sequence[Section]) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise SpecError(f"a claim's text must be a non-empty string, got {self.text!r}")
        if self.cell is not None and self.cell == self.baseline:
            raise SpecError(f"claim {self.text!r} compares cell {self.cell!r} with itself: "
                            "name two different cells")
        found = {s.name: s for s in sections}
        if self.section not in found:
            raise SpecError(f"claim {self.text!r}: no section {self.section!r}; "
                            f"sections: {', '.join(found)}")
        labels = [c.label for c in found[self.section].cells]
        for label in (self.cell, self.baseline):
            if label is not None and label not in labels:
                lower = {x.lower(): x for x in labels}
                close = difflib.get_close_matches(label.lower(), lower, n=1)
                hint = f" (did you mean {lower[close[0]]!r}?)" if close else ""
                raise SpecError(f"claim {self.text!r}: section {self.section!r} has no cell "
                                f"{label!r}{hint}; cells: {', '.join(labels)}")


@dataclass(frozen=True)
class Study:
    """A baseline configuration and the sections that vary it.

    Replicates: every cell runs once per seed in `seeds` (unless the cell sets `seed`
    itself), and the seeds are shared by all cells so comparisons pair by seed.
    """

    name: str
    baseline: TrainConfig
    sections: Sequence[Section]
    seeds: Sequence[int] = (0,)
    description: str = ""
    claims: Sequence[Claim] = ()  # checked by the report
    margin_pp: float | None = None  # smallest effect of interest, pp: every comparison is
    #                                 better, worse, equivalent within +/- it, or undecided

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SpecError("Study needs a non-empty name")
        if self.margin_pp is not None:
            object.__setattr__(self, "margin_pp", check_margin(self.margin_pp,
                                                               f"study {self.name!r}"))
        if not isinstance(self.baseline, TrainConfig):
            raise SpecError(
                f"Study baseline must be a TrainConfig, got {type(self.baseline).__name__}"
            )
        sections = list(self.sections)
        if not sections:
            raise SpecError(f"study {self.name!r} has no sections")
        names = [s.name for s in sections]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(f"study {self.name!r} has duplicate section names: {dupes}")
        object.__setattr__(self, "sections", tuple(sections))
        object.__setattr__(self, "seeds", _check_seeds(self.seeds, f"study {self.name!r}"))
        object.__setattr__(self, "claims", tuple(self.claims))
        for claim in self.claims:
            if not isinstance(claim, Claim):
                raise SpecError(f"claims must be Claim objects, got {type(claim).__name__}")
            claim.check(sections)
        texts = [c.text for c in self.claims]
        same = sorted({t for t in texts if texts.count(t) > 1})
        if same:  # a claim is reported, stored and decided by its text
            raise SpecError(f"study {self.name!r} has claims with the same text: {same}; "
                            "give each claim its own words")

    def with_seeds(self, seeds: Sequence[int]) -> Study:
        """The same study with other replicate seeds (sections with their own seeds keep them)."""
        return dataclasses.replace(self, seeds=tuple(seeds))


# --------------------------------------------------------------------------- job records


@dataclass(frozen=True)
class JobSpec:
    """One (section, cell, replicate) of an expanded study and the config it resolves to."""

    section: str
    cell: str
    position: int  # cell index within its section, for stable ordering
    replicate: int  # the replicate's seed (a cell runs once per seed)
    config: TrainConfig
    published: float | None = None
    skip_reason: str | None = None
    unused: tuple[tuple[str, Any], ...] = ()  # inherited values `normalised` reset

    @property
    def key(self) -> str:
        return self.config.key()

    @property
    def earlier_key(self) -> str | None:
        """The key cnnbench gave this job before unused settings were normalised out of
        job keys (schema < 5), where that differs: stored jobs under it are adopted."""
        return self.config.unnormalised_key(dict(self.unused)) if self.unused else None


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float  # mean NLL over the epoch's training batches
    test_loss: float  # mean NLL over the full test set
    test_accuracy: float  # percent
    seconds: float  # training time of the epoch, evaluation excluded


@dataclass(frozen=True)
class JobResult:
    """What a worker returns for one job; only the parent process writes it to the store."""

    key: str
    status: JobStatus
    error: str | None = None
    epochs: tuple[EpochMetrics, ...] = ()
    param_count: int | None = None
    train_seconds: float | None = None  # sum of epoch training times
    wall_seconds: float | None = None  # whole job: data to device, build, train, evaluate
    started_at: float | None = None  # unix time
    finished_at: float | None = None
    device: str | None = None
    host: str | None = None
    slurm_job_id: str | None = None  # SLURM_JOB_ID of the worker's Slurm job, if any
    code_version: str | None = None
    versions: Mapping[str, str] = field(default_factory=dict)  # python, torch, cuda, ...

    @property
    def final(self) -> EpochMetrics | None:
        return self.epochs[-1] if self.epochs else None
