"""Outcomes: the number a study, a section or a claim decides on, its direction and unit.

Any recorded number can be the outcome: the built-in measurements (`BUILT_IN`: test
accuracy and loss, training loss, training seconds, parameter count, and with a
validation split its accuracy and loss) and every metric of your own (`metrics=`, see
`pieces`), which says its direction itself (`higher_is_better=`). Differences are the
cell's value minus the baseline's, in the metric's own unit; "better" follows the
direction. No torch, no pandas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .config import SpecError

# name -> (higher is better, unit of a difference, what it is)
BUILT_IN: dict[str, tuple[bool, str, str]] = {
    "test_accuracy": (True, "pp", "final test accuracy, percent"),
    "val_accuracy": (True, "pp", "final validation accuracy, percent (val_size)"),
    "test_loss": (False, "nats", "final mean test NLL"),
    "val_loss": (False, "nats", "final mean validation NLL (val_size)"),
    "train_loss": (False, "nats", "last epoch's mean training loss"),
    "train_seconds": (False, "s", "training time"),
    "param_count": (False, "parameters", "the network's parameters"),
}


@dataclass(frozen=True)
class Outcome:
    """What is decided on: a metric's name, its direction and the unit of a difference."""

    metric: str = "test_accuracy"
    higher_is_better: bool = True
    unit: str = "pp"

    @property
    def sign(self) -> int:
        """+1 where a higher value is better, -1 where a lower one is."""
        return 1 if self.higher_is_better else -1

    @property
    def percent(self) -> bool:
        """A built-in accuracy in percent: measured in whole images of the test set or
        the validation split (a resolution, a binomial noise floor for one seed). A
        metric of yours in "pp" is formatted as such, and decided as a continuous one."""
        return self.metric in ACCURACIES

    def better(self, diff: float) -> bool:
        return self.sign * diff > 0

    def diff(self, x: float) -> str:
        """A difference in the metric's unit: '+0.42 pp', '-0.0123', '+1.2e+03 s'."""
        return f"{x:+.2f} pp" if self.percent else f"{_number(x, '+')}{self._unit}"

    def band(self, margin: float) -> str:
        return f"±{margin:g} pp" if self.percent else f"±{margin:g}{self._unit}"

    @property
    def _unit(self) -> str:
        return f" {self.unit}" if self.unit else ""

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    @property
    def in_words(self) -> str:
        """What a difference is in, after its number: ' in ece (lower is better)'; nothing
        for test accuracy, the default outcome."""
        return "" if self.metric == "test_accuracy" else f" in {self.metric} ({self.direction})"

    @property
    def label(self) -> str:
        """'test_accuracy (pp, higher is better)'."""
        unit = f"{self.unit}, " if self.unit else ""
        return f"{self.metric} ({unit}{self.direction})"

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "higher_is_better": self.higher_is_better,
                "unit": self.unit}


ACCURACY = Outcome()
ACCURACIES = ("test_accuracy", "val_accuracy")  # in percent of whole images


def _number(x: float, sign: str) -> str:
    if x != x:
        return "nan"
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:{sign}.4g}"
    return f"{x:{sign}.3e}"


def outcome_of(metric: str | None, higher_is_better: bool | None = None,
               unit: str | None = None, where: str = "") -> Outcome | None:
    """The Outcome a study, section or claim names (None: it names none, and takes its
    study's or section's). A built-in metric knows its direction and unit; a metric of
    your own must say `higher_is_better`."""
    if metric is None:
        if higher_is_better is not None or unit is not None:
            raise SpecError(f"{where}: higher_is_better and unit go with metric=...: name the "
                            "metric they describe")
        return None
    if not isinstance(metric, str) or not metric.isidentifier():
        raise SpecError(f"{where}: metric must be the name of a recorded number (e.g. "
                        f"'test_accuracy', or a name your metric returns), got {metric!r}")
    if metric in BUILT_IN:
        higher, own_unit, _ = BUILT_IN[metric]
        if higher_is_better is not None and higher_is_better != higher:
            raise SpecError(f"{where}: metric {metric!r} is built in and "
                            f"{'higher' if higher else 'lower'} is better; leave "
                            "higher_is_better out")
        return Outcome(metric, higher, own_unit if unit is None else str(unit))
    if not isinstance(higher_is_better, bool):
        raise SpecError(f"{where}: metric {metric!r} is your own: say which way is better "
                        f"with higher_is_better=True or False (built-in metrics: "
                        f"{', '.join(BUILT_IN)})")
    return Outcome(metric, higher_is_better, "" if unit is None else str(unit))


def from_dict(values: dict | None) -> Outcome | None:
    """An Outcome as `to_dict` stored it (None: none stored)."""
    if not values:
        return None
    return Outcome(values["metric"], bool(values["higher_is_better"]), values.get("unit", ""))


def check_margin(margin: Any, where: str, outcome: Outcome = ACCURACY) -> float:
    """A smallest effect of interest: a positive number in the outcome's unit (below 100
    for an accuracy's percentage points)."""
    bad = (isinstance(margin, bool) or not isinstance(margin, (int, float))
           or not math.isfinite(margin) or margin <= 0)
    if outcome.percent and not bad and margin >= 100:
        bad = True
    if bad:
        if outcome.percent:
            raise SpecError(f"{where}: margin_pp must be a positive number of percentage "
                            "points below 100 (the smallest difference in accuracy that "
                            f"matters), got {margin!r}")
        raise SpecError(f"{where}: the margin must be a positive finite number in the unit of "
                        f"{outcome.label} (the smallest difference that matters), got "
                        f"{margin!r}")
    return float(margin)
