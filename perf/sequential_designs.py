"""Which group-sequential design saves the most seeds? A search over spending functions
and looks, by the simulation of perf/sequential.py.

    python perf/sequential_designs.py [--studies N]     (or: nox -s sequential -- --designs)

For every claim at 1 and 1.5 standard deviations of its paired difference (sd 0.5 pp),
8 claims at family-wise alpha 0.05, at 80% and 90% power: the fixed-n plan's seeds, the
smallest maximum at which each design reaches that power, and its average seeds as a
share of the fixed plan. Designs: the shipped O'Brien-Fleming and Pocock types, and two
families the package does not ship, Kim-DeMets' power family alpha t^rho and
Hwang-Shih-DeCani's alpha (1 - e^(-gamma t)) / (1 - e^(-gamma)), each with looks at 3
seeds then every 1 or 2 seeds. The extra families go through `decisions.boundaries` by
extending `decisions.spending` for the run of this script only.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import sequential as sim  # noqa: E402

from benchmark import decisions, planning  # noqa: E402

SHIPPED = decisions.spending
DESIGNS = ("obrien-fleming", "pocock", "rho:1", "rho:1.5", "rho:2", "rho:3", "hsd:-2",
           "hsd:1")


def spending(kind: str, fraction, alpha: float):
    t = np.asarray(fraction, dtype=float)
    family, _, value = kind.partition(":")
    if family == "rho":
        return alpha * t ** float(value)
    if family == "hsd":
        g = float(value)
        return alpha * (1 - np.exp(-g * t)) / (1 - math.exp(-g))
    return SHIPPED(kind, fraction, alpha)


def search(rng, studies: int, kind: str, batch: int, effect_sd: float, power: float,
           sd: float = 0.5) -> dict:
    effects = np.full(sim.CLAIMS, effect_sd * sd)
    fixed = planning.seeds_needed(effect_sd * sd, sd, power, sim.ALPHA / sim.CLAIMS)
    for most in range(max(fixed - 2, sim.FIRST + 1), 3 * fixed):
        design = decisions.Design(decisions.sequence_looks(sim.FIRST, batch, most),
                                  sim.ALPHA, sim.MARGIN, sim.CLAIMS, kind)
        out = sim.run_design(sim.paired_differences(rng, studies, effects, most, sd), design)
        reached = float((out.verdicts == decisions.BETTER).mean())
        if reached >= power:
            break
    return {"fixed": fixed, "max": most, "power": reached,
            "ratio": float(out.seeds.mean()) / fixed}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    decisions.spending = spending
    try:
        for power in (0.8, 0.9):
            floor = sim.wald_floor(sim.ALPHA / sim.CLAIMS / 2, power)
            print(f"\n{power:.0%} power (Wald's floor for any sequential test: {floor:.0%})")
            print("| design | looks every | 1 sd: max seeds, share of fixed | "
                  "1.5 sd: max seeds, share of fixed |")
            print("|---|---|---|---|")
            rng = np.random.default_rng(args.seed)
            for kind in DESIGNS:
                for batch in (1, 2):
                    cells = []
                    for effect in (1.0, 1.5):
                        r = search(rng, args.studies, kind, batch, effect, power)
                        cells.append(f"{r['max']} of fixed {r['fixed']}, {r['ratio']:.0%}")
                    print(f"| {kind} | {batch} | {' | '.join(cells)} |", flush=True)
    finally:
        decisions.spending = SHIPPED


if __name__ == "__main__":
    main()
