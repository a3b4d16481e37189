"""Simulation of the sequential-seeds rule: its error rates and the seeds it saves.

    python perf/sequential.py [--studies N] [--seed S] [--out FILE]   (or: nox -s sequential)

Simulates many ablation studies of 8 claims, each claim a cell against the study's shared
baseline cell, paired by seed: cell j's accuracy at seed s is mu_j + seed_s + e_js, so
the seed's own effect cancels in a paired difference while the baseline's noise e_0s is
shared by every claim (correlated claims, as in a real section). Per-cell noise is drawn
per simulated study, log-uniformly, so that the paired differences' standard deviations
span 0.1-1.5 percentage points, the range the stored studies show. Each study runs the
shipped design (`benchmark.decisions.Design`): seeds 0-2 first, then 2 more seeds at a
time to the claims still undecided, up to `MAX_SEEDS`, every claim at family-wise alpha
0.05 (Bonferroni over the 8 claims), margin 0.3 pp. It prints, for the O'Brien-Fleming
and Pocock spending functions:

- the family-wise rate of a false "better"/"worse" when every true effect is 0, with its
  Monte Carlo 95% interval (Clopper-Pearson);
- the rate of a false "equivalent" when the true effect sits exactly at +margin and at
  -margin;
- power and the average seeds per claim against the fixed-n plan (`planning.
  seeds_needed`, the seeds `cnnbench power` plans) for the same power at the same
  per-claim level, in `SCENARIOS`: every claim with the same true effect (the case least
  favourable to stopping early), and a mixed study (three null claims, effects of 1.5 to 4
  standard deviations), where the fixed plan runs every claim to the seeds its smallest
  effect needs.

A harness outside the package (as perf/throughput.py): numpy and scipy only, and the
package's public `decisions` and `planning` functions.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import betaincinv, ndtri, stdtr

from benchmark import decisions, planning

CLAIMS = 8
ALPHA = 0.05
MARGIN = 0.3  # pp
FIRST, BATCH, MAX_SEEDS = 3, 2, 41
SD_RANGE = (0.1, 1.5)  # pp, of a paired difference


@dataclass(frozen=True)
class Outcome:
    verdicts: np.ndarray  # (studies, claims) of "better" | "worse" | "equivalent" | "undecided"
    seeds: np.ndarray  # (studies, claims): seeds each claim took


def looks(first: int = FIRST, batch: int = BATCH, most: int = MAX_SEEDS) -> tuple[int, ...]:
    return tuple(range(first, most + 1, batch)) if (most - first) % batch == 0 else (
        *range(first, most, batch), most)


def paired_differences(rng: np.random.Generator, studies: int, effects: np.ndarray,
                       most: int, sd: float | None = None) -> np.ndarray:
    """(studies, claims, seeds) paired differences cell_j - baseline of simulated studies
    with true `effects` (claims,), noise per cell log-uniform (or `sd` for every paired
    difference), the baseline's noise shared by all claims of a study."""
    claims = len(effects)
    if sd is None:  # a cell's noise, so that a difference's sd spans SD_RANGE
        low, high = (math.log(s / math.sqrt(2)) for s in SD_RANGE)
        cell_sd = np.exp(rng.uniform(low, high, (studies, claims + 1)))
    else:
        cell_sd = np.full((studies, claims + 1), sd / math.sqrt(2))
    noise = rng.standard_normal((studies, claims + 1, most)) * cell_sd[:, :, None]
    return effects[None, :, None] + noise[:, 1:, :] - noise[:, :1, :]


def run_design(diffs: np.ndarray, design: decisions.Design) -> Outcome:
    """Each claim's verdict and the seeds it took under `design`, vectorised: the t and
    TOST statistics of the first n seeds at every look, then the first decisive look."""
    n = np.array(design.looks)
    cum, cum2 = np.cumsum(diffs, axis=2), np.cumsum(diffs * diffs, axis=2)
    total, squares = cum[..., n - 1], cum2[..., n - 1]
    mean = total / n
    var = np.maximum((squares - n * mean * mean) / (n - 1), 0.0)
    se = np.sqrt(var / n)
    df = n - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        p_diff = np.where(se > 0, 2 * stdtr(df, -np.abs(mean / se)), (mean == 0) * 1.0)
        if design.margin is not None:
            m = design.margin
            p_low = np.where(se > 0, stdtr(df, -(mean + m) / se), 1.0 * (mean <= -m))
            p_high = np.where(se > 0, stdtr(df, (mean - m) / se), 1.0 * (mean >= m))
            p_equiv = np.maximum(p_low, p_high)
        else:
            p_equiv = np.ones_like(p_diff)
    equivalent = p_equiv <= np.array(design.equivalence_levels)
    different = ~equivalent & (p_diff <= np.array(design.difference_levels))
    decided = equivalent | different
    first = np.where(decided.any(axis=2), decided.argmax(axis=2), len(n) - 1)
    pick = lambda a: np.take_along_axis(a, first[..., None], axis=2)[..., 0]  # noqa: E731
    verdicts = np.full(first.shape, decisions.UNDECIDED, dtype=object)
    verdicts[pick(equivalent)] = decisions.EQUIVALENT
    diff_now, up = pick(different), pick(mean) > 0
    verdicts[diff_now & up] = decisions.BETTER
    verdicts[diff_now & ~up] = decisions.WORSE
    return Outcome(verdicts, n[first])


def design_for(spending: str, most: int = MAX_SEEDS, margin: float | None = MARGIN,
               ) -> decisions.Design:
    return decisions.Design(looks(most=most), ALPHA, margin, CLAIMS, spending)


def clopper_pearson(hits: int, trials: int) -> tuple[float, float]:
    low = 0.0 if hits == 0 else float(betaincinv(hits, trials - hits + 1, 0.025))
    high = 1.0 if hits == trials else float(betaincinv(hits + 1, trials - hits, 0.975))
    return low, high


def null_rates(rng, studies: int, design) -> dict:
    """Every true effect 0: the share of studies with any false "better"/"worse"."""
    out = run_design(paired_differences(rng, studies, np.zeros(CLAIMS), design.looks[-1]),
                     design)
    false = np.isin(out.verdicts, [decisions.BETTER, decisions.WORSE]).any(axis=1)
    hits = int(false.sum())
    return {"familywise_false_claims": hits / studies, "interval": clopper_pearson(hits, studies),
            "studies": studies, "mean_seeds": float(out.seeds.mean()),
            "equivalent": float((out.verdicts == decisions.EQUIVALENT).mean())}


def margin_rates(rng, studies: int, design) -> dict:
    """True effect exactly at +margin, then at -margin: the share of claims called
    "equivalent" (each claim's error; the claims of a study are correlated)."""
    rates = {}
    for sign in (1, -1):
        effects = np.full(CLAIMS, sign * design.margin)
        out = run_design(paired_differences(rng, studies, effects, design.looks[-1]), design)
        hits = int((out.verdicts == decisions.EQUIVALENT).sum())
        rates["+margin" if sign > 0 else "-margin"] = {
            "false_equivalent": hits / out.verdicts.size,
            "interval": clopper_pearson(hits, out.verdicts.size)}
    return rates


SCENARIOS = {  # name -> (true effects in paired standard deviations, that sd in pp)
    "every claim at 1 sd": ((1.0,) * CLAIMS, 0.5),
    "every claim at 1.5 sd": ((1.5,) * CLAIMS, 0.5),
    "a mixed study": ((0.0, 0.0, 0.0, 1.5, 2.0, 3.0, 4.0, -2.0), 0.25),
}


def wald_floor(alpha_side: float, power: float, z_side: float | None = None) -> float:
    """The least average sample any sequential test can have at the alternative, as a share
    of the fixed-n z test's sample, for one side at level `alpha_side` and `power`: Wald's
    approximation to the SPRT's average sample number, which no test with these error
    rates beats there (Wald and Wolfowitz 1948), with known variance and a look after
    every observation. Ablation studies have neither, so this is a floor, not a target."""
    beta = 1 - power
    asn = 2 * (power * math.log(power / alpha_side) + beta * math.log(beta / (1 - alpha_side)))
    fixed = (ndtri(1 - alpha_side) + ndtri(power)) ** 2
    return asn / fixed


def savings(rng, studies: int, spending: str, effects_sd, sd: float,
            power: float = 0.8) -> dict:
    """Seeds per claim against the fixed-n plan for `power` at the per-claim level.

    The fixed plan runs every claim to the seeds its smallest non-zero effect needs (what
    `cnnbench power` plans for the study: one seed count for every cell). The sequential
    design gets the smallest maximum at which the claims with that smallest effect reach
    `power` (correct "better"/"worse"); its average seeds over all claims are compared."""
    effects = np.array(effects_sd, dtype=float) * sd
    smallest = float(np.min(np.abs(effects[effects != 0])))
    fixed = planning.seeds_needed(smallest, sd, power, ALPHA / CLAIMS)
    weakest = np.abs(effects) == smallest
    for most in range(fixed, 3 * fixed + 1, 2):
        design = design_for(spending, most)
        out = run_design(paired_differences(rng, studies, effects, most, sd), design)
        right = np.where(effects > 0, out.verdicts == decisions.BETTER,
                         np.where(effects < 0, out.verdicts == decisions.WORSE,
                                  out.verdicts == decisions.EQUIVALENT))
        reached = float(right[:, weakest].mean())
        if reached >= power:
            break
    wrong_sign = np.where(effects > 0, out.verdicts == decisions.WORSE,
                          np.where(effects < 0, out.verdicts == decisions.BETTER,
                                   np.isin(out.verdicts, [decisions.BETTER, decisions.WORSE])))
    return {"effects_sd": list(effects_sd), "sd": sd, "fixed_seeds": fixed, "max_seeds": most,
            "power": reached, "mean_seeds": float(out.seeds.mean()),
            "ratio": float(out.seeds.mean()) / fixed,
            "null_claims_equivalent": (float(right[:, effects == 0].mean())
                                       if (effects == 0).any() else None),
            "wrong_claims": float(wrong_sign.any(axis=1).mean())}


def simulate(studies: int = 10_000, seed: int = 0, spendings=decisions.SPENDING) -> dict:
    rng = np.random.default_rng(seed)
    results = {"claims": CLAIMS, "alpha": ALPHA, "margin": MARGIN, "looks": looks(),
               "studies": studies, "floor": wald_floor(ALPHA / CLAIMS / 2, 0.8),
               "by_spending": {}}
    for spending in spendings:
        design = design_for(spending)
        results["by_spending"][spending] = {
            "null": null_rates(rng, studies, design),
            "at_margin": margin_rates(rng, studies, design),
            "savings": {name: savings(rng, max(2000, studies // 5), spending, *scenario)
                        for name, scenario in SCENARIOS.items()},
        }
    return results


def _print(results: dict) -> None:
    print(f"{results['studies']} simulated studies of {results['claims']} claims, family-wise "
          f"alpha {results['alpha']} (Bonferroni), margin +/-{results['margin']} pp, looks at "
          f"{', '.join(map(str, results['looks']))} seeds")
    print(f"no sequential test of one claim at this level and 80% power averages under "
          f"{results['floor']:.0%} of the fixed-n sample at its alternative, even with known "
          f"variance and a look after every seed (Wald's SPRT bound)")
    for spending, r in results["by_spending"].items():
        null, margin = r["null"], r["at_margin"]
        low, high = null["interval"]
        print(f"\n{spending}:")
        print(f"  every effect 0: false better/worse in {null['familywise_false_claims']:.4f} of "
              f"studies (95% MC interval {low:.4f}-{high:.4f}); {null['equivalent']:.1%} of "
              f"claims decided equivalent, {null['mean_seeds']:.1f} seeds per claim on average")
        for side, m in margin.items():
            lo, hi = m["interval"]
            print(f"  true effect at {side}: false 'equivalent' {m['false_equivalent']:.4f} "
                  f"(95% MC interval {lo:.4f}-{hi:.4f})")
        for name, s in r["savings"].items():
            null = (f"; null claims equivalent {s['null_claims_equivalent']:.1%}"
                    if s["null_claims_equivalent"] is not None else "")
            print(f"  {name} (sd {s['sd']} pp): fixed-n plan {s['fixed_seeds']} seeds a claim; "
                  f"sequential up to {s['max_seeds']}: power {s['power']:.3f}, "
                  f"{s['mean_seeds']:.1f} seeds a claim on average ({s['ratio']:.0%} of "
                  f"fixed-n){null}; studies with a wrong claim {s['wrong_claims']:.4f}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/sequential.json")
    args = parser.parse_args(argv)
    results = simulate(args.studies, args.seed)
    _print(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nfigures written to {out}")
    return results


if __name__ == "__main__":
    main()
