"""The study language: cells, axes, sections, exclusions, claims and the study itself.

What a study file writes (`Cell`, `vary`, `grid`, `zipped`, `product`, `Exclude`, `Section`,
`Claim`, `Study`), each checked where it is written. Built on `config` alone; `plan` expands
a `Study` into jobs.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import (
    CONFIG_FIELDS,
    SpecError,
    TrainConfig,
    check_applies,
    check_factors,
    check_fields,
    coerce,
    coerce_factor,
)
from .outcome import ACCURACY, Outcome, check_margin, outcome_of

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _origin() -> tuple[str, int] | None:
    """(file, line) of the nearest caller outside cnnbench: the study file's line that
    wrote a cell, for the checks the Study makes later (a name that may be a factor)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(_PACKAGE):
            return filename, frame.f_lineno
        frame = frame.f_back
    return None


def _fields_only(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The built-in fields of `overrides`; other names are factors, checked by the Study."""
    return {k: v for k, v in overrides.items() if k in CONFIG_FIELDS}

# The longest name of each kind, in characters: the database's columns hold no more, on
# every backend (SQLite would take more, PostgreSQL refuses it mid-run).
NAME_LIMITS = {"study": 200, "section": 200, "cell": 500}


def check_name(kind: str, name: str) -> None:
    limit = NAME_LIMITS[kind]
    if len(name) > limit:
        raise SpecError(f"{kind} name {name[:40]!r}... is {len(name)} characters long; at "
                        f"most {limit}: give the {kind} a shorter name (a Section's title "
                        "and a Study's description take any length)")


class Cell:
    """One point of a section: overrides of the section's baseline (built-in fields and
    the study's declared factors), a label, a published value."""

    label: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    published: float | None = None  # published test accuracy, percent

    def __init__(self, label: str, *, published: float | None = None,
                 _context: str | None = None, **overrides: Any):
        # A name that is no field may be a factor: the Study checks it against its
        # declarations, naming this line. Fields are checked here, at the cell's line.
        object.__setattr__(self, "origin", _origin())
        object.__setattr__(self, "context", _context or f"cell {label!r}")
        if "factors" in overrides:
            check_fields(overrides, self.context)
        for name, value in _fields_only(overrides).items():  # types, choices, finiteness
            try:
                coerce(name, value)
            except SpecError as exc:
                raise SpecError(f"cell {label!r}: {exc}") from None
        check_applies(overrides, f"cell {label!r}: ")
        if published is not None and (not isinstance(published, (int, float))
                                      or not math.isfinite(published)):
            raise SpecError(f"cell {label!r}: published must be a finite number (percent), "
                            f"got {published!r}")
        check_name("cell", str(label))
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
    values = _axis_values(name, values)
    if labels is not None and len(labels) != len(values):
        raise SpecError(f"vary({name!r}): {len(labels)} labels for {len(values)} values")
    return [
        Cell(labels[i] if labels else _label({name: v}), _context="vary()",
             published=_published_for(published, v, i, len(values)), **{name: v})
        for i, v in enumerate(values)
    ]


def grid(*, published: Mapping[tuple, float] | None = None, **axes: Sequence[Any]) -> list[Cell]:
    """Full factorial over the axes, in declaration order (last axis varies fastest).

    `published` maps a tuple of values, one per axis in order, to a published value.
    """
    names = list(axes)
    if not names:
        raise SpecError("grid() needs at least one axis")
    value_lists = [_axis_values(n, axes[n]) for n in names]
    cells = []
    for combo in itertools.product(*value_lists):
        overrides = dict(zip(names, combo, strict=True))
        pub = (published or {}).get(combo if len(combo) > 1 else combo[0])
        cells.append(Cell(_label(overrides), published=pub, _context="grid()", **overrides))
    return cells


def zipped(*, published: Sequence[float] | None = None, **axes: Sequence[Any]) -> list[Cell]:
    """Paired axes: the i-th cell takes the i-th value of every axis (all axes equally long)."""
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
                          _context="zipped()", **overrides))
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
        object.__setattr__(self, "origin", _origin())  # its factors are checked by the Study
        if "factors" in self.where:
            check_fields(self.where, "Exclude(where=...)")
        if not self.reason:
            raise SpecError("Exclude needs a reason")

    def matches(self, config: TrainConfig) -> bool:
        return all(getattr(config, k) == coerce(k, v) if k in CONFIG_FIELDS
                   else config.factors.get(k) == v for k, v in self.where.items())


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
    metric: str | None = None  # what its comparisons decide on; None: the study's
    higher_is_better: bool | None = None  # for a metric of your own
    unit: str | None = None  # of a difference of your metric, for the reports
    outcome: Outcome | None = field(default=None, init=False)  # from the three above

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SpecError("every Section needs a non-empty name")
        object.__setattr__(self, "outcome", outcome_of(
            self.metric, self.higher_is_better, self.unit, f"section {self.name!r}"))
        check_name("section", self.name)
        object.__setattr__(self, "origin", _origin())  # its factors are checked by the Study
        if "factors" in self.fixed:
            check_fields(self.fixed, f"section {self.name!r} fixed")
        check_applies(self.fixed, f"section {self.name!r} fixed: ")
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


@dataclass(frozen=True)
class Claim:
    """A statement the report checks against the results.

    `Claim.beats(text, section, cell, baseline)`: `cell` does better than `baseline` in
    `section`. `Claim.increasing(text, section)`: the outcome rises along the section's
    cells in their declared order. `Claim.equivalent(text, section, cell, baseline,
    margin_pp)`: the two cells differ by less than the margin either way (an equivalence
    test, not the absence of a difference). Each decides on its section's outcome (the
    study's: final test accuracy unless it says otherwise), or on its own `metric=` (with
    `higher_is_better=` for a metric of yours); a margin is in that metric's unit
    (percentage points for an accuracy).
    """

    text: str
    section: str
    kind: str  # "beats" | "increasing" | "equivalent"
    cell: str | None = None
    baseline: str | None = None
    margin: float | None = None  # for "equivalent", in the outcome's unit
    outcome: Outcome | None = None  # None: the section's (the Study fills it in)
    margin_in_pp: bool = field(default=False, compare=False)  # given as margin_pp=

    @classmethod
    def beats(cls, text: str, section: str, cell: str, baseline: str, *,
              metric: str | None = None, higher_is_better: bool | None = None,
              unit: str | None = None) -> Claim:
        return cls(text, section, "beats", cell, baseline, None,
                   outcome_of(metric, higher_is_better, unit, f"claim {text!r}"))

    @classmethod
    def increasing(cls, text: str, section: str, *, metric: str | None = None,
                   higher_is_better: bool | None = None, unit: str | None = None) -> Claim:
        return cls(text, section, "increasing", outcome=outcome_of(
            metric, higher_is_better, unit, f"claim {text!r}"))

    @classmethod
    def equivalent(cls, text: str, section: str, cell: str, baseline: str,
                   margin_pp: float | None = None, *, margin: float | None = None,
                   metric: str | None = None, higher_is_better: bool | None = None,
                   unit: str | None = None) -> Claim:
        where = f"claim {text!r}"
        if (margin_pp is None) == (margin is None):
            raise SpecError(f"{where}: give the equivalence margin once, as margin_pp= (an "
                            "accuracy's percentage points) or margin= (the metric's unit)")
        outcome = outcome_of(metric, higher_is_better, unit, where)
        # margin_pp is an accuracy's percentage points; margin= is in the unit of the
        # claim's outcome (checked again against it by the Study, where it is known)
        band = (check_margin(margin_pp, where, ACCURACY) if margin is None else
                check_margin(margin, where, outcome or Outcome("the claim's metric", True, "")))
        return cls(text, section, "equivalent", cell, baseline, band, outcome,
                   margin_in_pp=margin is None)

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
    factors: Mapping[str, Any] = field(default_factory=dict)  # your own factors: name ->
    #                                 default (bool, int, float or str); cells set them by name
    metric: str = "test_accuracy"  # what the study decides on: any recorded number
    higher_is_better: bool | None = None  # for a metric of your own (built-ins know)
    unit: str | None = None  # of a difference of your metric, for the reports
    margin: float | None = None  # margin_pp by another name, in the metric's unit
    outcome: Outcome = field(default=ACCURACY, init=False)  # from the three above

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SpecError("Study needs a non-empty name")
        check_name("study", self.name)
        where = f"study {self.name!r}"
        object.__setattr__(self, "outcome", outcome_of(self.metric, self.higher_is_better,
                                                       self.unit, where))
        if self.margin is not None:
            if self.margin_pp is not None:
                raise SpecError(f"{where}: give the margin once, as margin= or margin_pp=")
            object.__setattr__(self, "margin_pp", self.margin)
            object.__setattr__(self, "margin", None)
        elif self.margin_pp is not None:
            _check_margin_unit(True, self.outcome, where)
        object.__setattr__(self, "factors", check_factors(self.factors,
                                                          f"study {self.name!r}"))
        if self.margin_pp is not None:
            object.__setattr__(self, "margin_pp", check_margin(self.margin_pp, where,
                                                               self.outcome))
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
        if len(self.baseline.factors):
            raise SpecError(f"study {self.name!r}: the baseline sets factors "
                            f"{dict(self.baseline.factors)}; declare each factor with its "
                            "default in Study(factors={...}) and set other values in cells")
        for section in sections:
            _check_section_factors(section, self.factors)
        object.__setattr__(self, "sections", tuple(sections))
        object.__setattr__(self, "seeds", _check_seeds(self.seeds, f"study {self.name!r}"))
        claims = []
        for claim in self.claims:
            if not isinstance(claim, Claim):
                raise SpecError(f"claims must be Claim objects, got {type(claim).__name__}")
            claim.check(sections)
            outcome = claim.outcome or self.section_outcome(claim.section)
            if claim.margin is not None:
                _check_margin_unit(claim.margin_in_pp, outcome, f"claim {claim.text!r}")
                check_margin(claim.margin, f"claim {claim.text!r}", outcome)
            claims.append(dataclasses.replace(claim, outcome=outcome))
        object.__setattr__(self, "claims", tuple(claims))
        texts = [c.text for c in self.claims]
        same = sorted({t for t in texts if texts.count(t) > 1})
        if same:  # a claim is reported, stored and decided by its text
            raise SpecError(f"study {self.name!r} has claims with the same text: {same}; "
                            "give each claim its own words")

    def section_outcome(self, name: str) -> Outcome:
        """What a section's comparisons decide on: its own metric, else the study's."""
        section = next((s for s in self.sections if s.name == name), None)
        return section.outcome if section is not None and section.outcome else self.outcome

    @property
    def outcomes(self) -> dict[str, Outcome]:
        """Section name -> its outcome (`section_outcome`)."""
        return {s.name: self.section_outcome(s.name) for s in self.sections}

    def with_seeds(self, seeds: Sequence[int]) -> Study:
        """The same study with other replicate seeds (sections with their own seeds keep them)."""
        return dataclasses.replace(self, seeds=tuple(seeds))


def _check_margin_unit(in_pp: bool, outcome: Outcome, where: str) -> None:
    """margin_pp is percentage points of an accuracy: refused on another outcome."""
    if in_pp and not outcome.percent:
        raise SpecError(f"{where}: margin_pp is percentage points of an accuracy, and this "
                        f"decides on {outcome.label}: give the margin as margin= in that "
                        "metric's unit")


def _check_factors_in(values: Mapping[str, Any], where: str, factors: Mapping[str, Any],
                      origin: tuple[str, int] | None) -> None:
    """Every name of `values` a field or a declared factor of the right type (SpecError
    naming `origin`, the line that wrote them)."""
    check_fields(values, where, factors, origin)
    for name, value in values.items():
        if name in factors:
            try:
                coerce_factor(name, value, factors[name])
            except SpecError as exc:
                raise SpecError(f"{where}: {exc}", origin) from None


def _check_section_factors(section: Section, factors: Mapping[str, Any]) -> None:
    _check_factors_in(section.fixed, f"section {section.name!r} fixed", factors,
                      section.origin)
    for cell in section.cells:
        _check_factors_in(cell.overrides, cell.context, factors, cell.origin)
    for exclude in section.exclude:
        _check_factors_in(exclude.where, "Exclude(where=...)", factors, exclude.origin)


def factor_values(overrides: Mapping[str, Any], factors: Mapping[str, Any]) -> dict[str, Any]:
    """The declared factors `overrides` sets, each as its factor's type."""
    return {k: coerce_factor(k, v, factors[k]) for k, v in overrides.items() if k in factors}
