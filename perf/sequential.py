"""Simulation of cnnbench's verdicts: the error rates they promise, measured.

    python perf/sequential.py [--studies N] [--sequences N] [--seed S] [--out FILE]
                              [--policy FILE] [--resolution 0]      (or: nox -s sequential)

Every figure comes from the package's own functions (`benchmark.decisions.replay`, the
rule `--until-decided` runs, and `decisions.closed_test`, the fixed-n tables' and claims'
family), on simulated ablation studies: CLAIMS cells against one shared baseline cell,
paired by seed, so the baseline's noise enters every claim (correlated claims, as in a
real section). A cell's accuracy at a seed is 97% + its true effect + noise, rounded to
one of 10,000 test images (the data's resolution); each cell's noise sd is drawn per
study, log-uniform, so that the paired differences' sds span 0.1-1.5 pp, and the noise
is normal, Student t with 3 degrees of freedom (heavy tails) or uniform (light tails),
scaled to that sd.

For each spending function the package offers (the shipped default first) it prints:

- one claim alone at its Bonferroni level alpha / CLAIMS, over `--sequences` (default
  10^6) null sequences: the rate of a false "better"/"worse", and of a false
  "equivalent" with the true difference at +margin and at -margin;
- family-wise, over `--studies` studies of CLAIMS claims, each noise: a false
  better/worse with every difference 0, a false equivalent with every difference at
  +/-margin, and the share of studies whose repeated confidence intervals cover every
  claim's true difference at every look;
- the first look: how often an effect of 10 and 20 paired standard deviations is decided
  there;
- seeds: average seeds per claim against the fixed-n plan at 80% power for a mixed study
  (three null claims, effects of 1.5-4 sd), the design's maximum chosen as the least
  that gives the weakest claims 80% power.

Then the fixed-n closed test (the tables and claims of a study run with a fixed number
of seeds), and the coverage of the paired P(better) interval at 3, 5 and 10 seeds.
Each rate comes with its Clopper-Pearson 95% Monte Carlo interval, and the upper end is
checked against its target.

`--resolution 0` simulates a continuous outcome instead (a loss, a training time, a metric
of your own: what `metric=` decides on, with no rounding and no floor on the sd); the t
statistics do not depend on the unit, so its figures hold for any such metric's scale;
with `--policy` they go to the file's "continuous" record, beside the accuracy figures.

A harness outside the package (as perf/throughput.py): numpy and scipy only, and the
package's public `decisions` and `planning` functions.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from scipy.special import stdtr

from benchmark import decisions, planning

CLAIMS = 8
ALPHA = 0.05
MARGIN = 0.3  # pp
FIRST, BATCH, MOST = 3, 2, 21
SD_RANGE = (0.1, 1.5)  # pp, of a paired difference
RESOLUTION = 0.01  # pp: one of 10,000 test images
FIXED_SEEDS = 5  # seeds of the simulated fixed-n studies
NOISES = ("normal", "t3", "uniform")
TARGETED = ("normal", "t3")  # the noises the targets are checked on; uniform (light tails,
#                              where the t test's small-sample tails are too thin) is shown
#                              as a sensitivity, not held to the target


def interval(hits: int, trials: int) -> tuple[float, float]:
    return planning.clopper_pearson(hits, trials)


def rate(hits: int, trials: int) -> list:
    return [hits / trials, list(interval(hits, trials))]


def studies_data(rng: np.random.Generator, studies: int, effects: np.ndarray, seeds: int,
                 noise: str = "normal", sd: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(studies, claims, seeds) paired differences cell_j - baseline, each cell's
    accuracy rounded to the resolution, and the (studies, claims) sd of each difference."""
    claims = len(effects)
    if sd is None:  # a cell's noise, so that a difference's sd spans SD_RANGE
        low, high = (math.log(s / math.sqrt(2)) for s in SD_RANGE)
        cell_sd = np.exp(rng.uniform(low, high, (studies, claims + 1)))
    else:
        cell_sd = np.full((studies, claims + 1), sd / math.sqrt(2))
    shape = (studies, claims + 1, seeds)
    # t(3) (heavy tails) and uniform (light tails), each scaled to unit variance
    if noise == "t3":
        z = rng.standard_t(3, shape) / math.sqrt(3)
    elif noise == "uniform":
        z = rng.uniform(-math.sqrt(3), math.sqrt(3), shape)
    else:
        z = rng.standard_normal(shape)
    acc = 97.0 + np.concatenate([np.zeros(1), effects])[None, :, None] + z * cell_sd[:, :, None]
    acc = decisions.at_resolution(acc, RESOLUTION)  # whole test images, or continuous
    diff_sd = np.sqrt(cell_sd[:, 1:] ** 2 + cell_sd[:, :1] ** 2)
    return acc[:, 1:, :] - acc[:, :1, :], diff_sd


def looks(most: int = MOST) -> tuple[int, ...]:
    return decisions.sequence_looks(FIRST, BATCH, most)


def design(spending: str, most: int = MOST, claims: int = CLAIMS, alpha: float = ALPHA,
           margin: float | None = MARGIN) -> decisions.Design:
    return decisions.Design(looks(most), alpha, margin, claims, spending)


def single_claim(rng, spending: str, sequences: int, chunk: int = 250_000) -> dict:
    """One claim at its Bonferroni level alpha / CLAIMS, over `sequences` sequences each:
    false better/worse with a true difference of 0 (sd 0.5 pp; the t statistics' law does
    not depend on it), and false equivalent at +margin and at -margin, the worst of four
    noise levels (sd = margin x 1, 1/2, 1/3, 1/6, a quarter of the sequences each: with
    little noise a claim at the margin is shown different before it can look equivalent,
    with much it is never shown either)."""
    level = ALPHA / CLAIMS
    one = design(spending, claims=1, alpha=level)
    null, done = 0, 0
    while done < sequences:
        m = min(chunk, sequences - done)
        d, _ = studies_data(rng, m, np.zeros(1), MOST, sd=0.5)
        null += int(np.isin(decisions.replay(one, d, resolution=RESOLUTION).verdict,
                            (1, 2)).sum())
        done += m
    out = {"level": level, "sequences": sequences, "null": rate(null, sequences)}
    for name, effect in (("+margin", MARGIN), ("-margin", -MARGIN)):
        worst = None
        for share in (1, 2, 3, 6):
            m = sequences // 4
            d, _ = studies_data(rng, m, np.array([effect]), MOST, sd=MARGIN / share)
            r = rate(int((decisions.replay(one, d, resolution=RESOLUTION).verdict == 3).sum()),
                     m)
            if worst is None or r[0] > worst[0]:
                worst = r + [f"sd = margin / {share}"]
        out[name] = worst
    return out


def coverage(d: np.ndarray, effects: np.ndarray, r: decisions.Replay,
             des: decisions.Design) -> np.ndarray:
    """Per study: every claim's repeated interval (the difference bound at alpha / claims)
    covers its true difference at every look it reached."""
    ok = np.ones(d.shape[0], dtype=bool)
    for k, n in enumerate(des.looks):
        reached = r.seeds >= n
        if not reached.any():
            break
        x = d[..., :n]
        sd = np.maximum(x.std(axis=-1, ddof=1), RESOLUTION)
        half = des.difference_bounds(0)[k] * sd / math.sqrt(n)
        miss = reached & (np.abs(x.mean(axis=-1) - effects[None, :]) > half)
        ok &= ~miss.any(axis=1)
    return ok


def familywise(rng, spending: str, studies: int) -> dict:
    des = design(spending)
    out = {}
    for noise in NOISES:
        zero = np.zeros(CLAIMS)
        d, _ = studies_data(rng, studies, zero, MOST, noise)
        r = decisions.replay(des, d, resolution=RESOLUTION)
        null = int(np.isin(r.verdict, (1, 2)).any(axis=1).sum())
        covered = int(coverage(d, zero, r, des).sum())
        seeds_null = float(r.seeds.mean())
        at = 0
        for sign in (1, -1):
            effects = np.full(CLAIMS, sign * MARGIN)
            dm, _ = studies_data(rng, studies // 2, effects, MOST, noise)
            at += int((decisions.replay(des, dm, resolution=RESOLUTION).verdict == 3)
                      .any(axis=1).sum())
        out[noise] = {"null": rate(null, studies), "margin": rate(at, 2 * (studies // 2)),
                      "coverage": rate(covered, studies), "mean_seeds_null": seeds_null}
    return out


def first_look(rng, spending: str, sd_units=(10.0, 20.0), studies: int = 20_000) -> dict:
    """How often one claim of CLAIMS with an effect of `sd_units` paired sds (the others
    null) is decided at the first look, with the default most seeds (20)."""
    des = design(spending, most=20)
    out = {}
    for units in sd_units:
        effects = np.zeros(CLAIMS)
        effects[0] = units * 0.5
        d, _ = studies_data(rng, studies, effects, 20, sd=0.5)
        r = decisions.replay(des, d, resolution=RESOLUTION)
        out[f"{units:g} sd"] = float((r.look[:, 0] == 0).mean())
    return out


MIXED = ((0.0, 0.0, 0.0, 1.5, 2.0, 3.0, 4.0, -2.0), 0.25)  # effects in sds, the sd in pp


def savings(rng, spending: str, studies: int, power: float = 0.8) -> dict:
    """Seeds per claim of the mixed study against the fixed-n plan for `power` on its
    smallest effect at the claims' Bonferroni level (what `cnnbench power` plans: one seed
    count for every cell), with the least maximum at which the weakest claims reach
    `power` (right "better"/"worse")."""
    units, sd = MIXED
    effects = np.array(units) * sd
    smallest = float(np.min(np.abs(effects[effects != 0])))
    fixed = planning.seeds_needed(smallest, sd, power, ALPHA / CLAIMS)
    weakest = np.abs(effects) == smallest
    for most in range(fixed, 3 * fixed + 1):
        des = decisions.Design(decisions.sequence_looks(FIRST, BATCH, most), ALPHA, MARGIN,
                               CLAIMS, spending)
        d, _ = studies_data(rng, studies, effects, most, sd=sd)
        r = decisions.replay(des, d, resolution=RESOLUTION)
        right = np.where(effects > 0, r.verdict == 1, np.where(effects < 0, r.verdict == 2,
                                                                r.verdict == 3))
        reached = float(right[:, weakest].mean())
        if reached >= power:
            break
    wrong = np.where(effects > 0, r.verdict == 2, np.where(effects < 0, r.verdict == 1,
                                                            np.isin(r.verdict, (1, 2))))
    easy = np.abs(effects) >= 3 * sd
    real = effects != 0
    fixed_easy = planning.seeds_needed(3 * sd, sd, power, ALPHA / CLAIMS)
    return {"fixed_seeds": fixed, "max_seeds": most, "power": reached,
            "mean_seeds": float(r.seeds.mean()), "ratio": float(r.seeds.mean()) / fixed,
            "easy_mean_seeds": float(r.seeds[:, easy].mean()), "easy_fixed": fixed_easy,
            "real_ratio": float(r.seeds[:, real].mean()) / fixed,
            "null_equivalent": float(right[:, effects == 0].mean()),
            "wrong_claims": float(wrong.any(axis=1).mean())}


def fixed_n(rng, studies: int, seeds: int = FIXED_SEEDS, claims: int = CLAIMS) -> dict:
    """The closed test on studies of `claims` comparisons at `seeds` seeds (paired t and
    TOST at the margin), normal, t(3) and uniform noise: family-wise false better/worse with every
    difference 0, false equivalent with every difference at +/-margin. Returns the worse
    noise's figures."""
    worst = {"null": [0.0, [0.0, 0.0]], "margin": [0.0, [0.0, 0.0]]}
    light = {}
    for noise in NOISES:
        for name, effect in (("null", 0.0), ("margin", MARGIN)):
            signs = np.where(rng.random(claims) < 0.5, -1.0, 1.0)
            d, _ = studies_data(rng, studies, effect * signs, seeds, noise)
            d = decisions.at_resolution(d, RESOLUTION)
            n = seeds
            mean = d.mean(axis=-1)
            se = np.maximum(d.std(axis=-1, ddof=1), RESOLUTION) / math.sqrt(n)
            p = 2 * stdtr(n - 1, -np.abs(mean / se))
            p_eq = np.maximum(stdtr(n - 1, -(mean + MARGIN) / se),
                              stdtr(n - 1, (mean - MARGIN) / se))
            rej_d, rej_e = decisions.closed_test(p, p_eq, ALPHA)
            wrong = (rej_d if name == "null" else rej_e).any(axis=1)
            r = rate(int(wrong.sum()), studies)
            if noise not in TARGETED:
                light[name] = r
            elif r[1][1] > worst[name][1][1]:
                worst[name] = r
    return {"studies": studies, "claims": claims, "seeds": seeds, **worst, "uniform": light}


def improvement_coverage(rng, reps: int = 20_000) -> dict:
    """Coverage of the paired P(better) interval: differences drawn with P(D > 0) = theta
    (and a share of exact ties), at 3, 5 and 10 seeds; the least coverage over theta."""
    out = {}
    for n in (3, 5, 10):
        least = (1.0, None)
        for theta in (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95):
            for ties in (0.0, 0.2):
                u = rng.random((reps, n))
                d = np.where(u < ties, 0.0, np.where(rng.random((reps, n)) < theta, 1.0, -1.0))
                target = theta * (1 - ties) + ties / 2
                hits = 0
                for row in d:
                    _, low, high = planning.probability_of_improvement(row)
                    hits += low <= target <= high
                if hits / reps < least[0]:
                    least = (hits / reps, rate(hits, reps))
        out[str(n)] = least[1]
    return out


def simulate(studies: int, sequences: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    results = {"claims": CLAIMS, "alpha": ALPHA, "margin": MARGIN, "looks": list(looks()),
               "studies": studies, "sequential": {}}
    for spending in decisions.SPENDING:
        t0 = time.monotonic()
        results["sequential"][spending] = {
            "claims": CLAIMS, "looks": list(looks()),
            "single": single_claim(rng, spending, sequences),
            "familywise": familywise(rng, spending, studies),
            "first_look": first_look(rng, spending),
            "savings": savings(rng, spending, max(2000, studies // 5)),
            "seconds": time.monotonic() - t0}
        _print_spending(spending, results["sequential"][spending])
    results["fixed_n"] = fixed_n(rng, studies)
    results["improvement_coverage"] = improvement_coverage(rng, max(2000, studies // 5))
    _print_rest(results)
    return results


def _r(x: list) -> str:
    return f"{x[0]:.4f} [{x[1][0]:.4f}, {x[1][1]:.4f}]"


def _check(x: list, target: float, above: bool = False) -> str:
    ok = x[1][0] >= target if above else x[1][1] <= target
    return "ok" if ok else "OVER TARGET" if not above else "UNDER TARGET"


def _print_spending(spending: str, r: dict) -> None:
    s, level = r["single"], r["single"]["level"]
    print(f"\n{spending} (looks {r['looks'][0]}, {r['looks'][1]}, ..., {r['looks'][-1]}; "
          f"{r['seconds']:.0f} s)")
    print(f"  one claim at alpha/{CLAIMS} = {level:.5f}, {s['sequences']:,} sequences: false "
          f"better/worse {_r(s['null'])} {_check(s['null'], level)}; false equivalent at "
          f"+margin {_r(s['+margin'])} {_check(s['+margin'], level)} ({s['+margin'][2]}), at "
          f"-margin {_r(s['-margin'])} {_check(s['-margin'], level)} ({s['-margin'][2]}); "
          "the worst of four noise levels")
    for noise, f in r["familywise"].items():
        targeted = noise in TARGETED
        check = (lambda x, t, above=False: _check(x, t, above)) if targeted else (  # noqa: E731
            lambda x, t, above=False: "(sensitivity)")
        print(f"  {CLAIMS} claims, {noise} noise: family-wise false better/worse "
              f"{_r(f['null'])} {check(f['null'], ALPHA)}; false equivalent at ±margin "
              f"{_r(f['margin'])} {check(f['margin'], ALPHA)}; repeated CIs cover "
              f"{_r(f['coverage'])} {check(f['coverage'], 1 - ALPHA, True)}")
    fl = r["first_look"]
    print("  decided at the first look (3 seeds): " + ", ".join(
        f"{k} {v:.0%}" for k, v in fl.items()))
    sv = r["savings"]
    print(f"  mixed study: fixed-n plan {sv['fixed_seeds']} seeds a claim; sequential up to "
          f"{sv['max_seeds']}: power {sv['power']:.3f}, {sv['mean_seeds']:.2f} seeds a claim "
          f"({sv['ratio']:.0%} of fixed-n; the five non-null claims {sv['real_ratio']:.0%}); "
          f"claims of 3-4 sd {sv['easy_mean_seeds']:.2f} seeds "
          f"(fixed-n for 3 sd: {sv['easy_fixed']}); null claims equivalent "
          f"{sv['null_equivalent']:.0%}; studies with a wrong-sign or false claim "
          f"{sv['wrong_claims']:.4f}", flush=True)


def _print_rest(results: dict) -> None:
    f = results["fixed_n"]
    print(f"\nfixed n ({f['studies']:,} studies of {f['claims']} comparisons at {f['seeds']} "
          f"seeds, closed test, the worst noise): family-wise false "
          f"better/worse {_r(f['null'])} {_check(f['null'], ALPHA)}; false equivalent at "
          f"the margin {_r(f['margin'])} {_check(f['margin'], ALPHA)}; uniform noise "
          f"(sensitivity): {_r(f['uniform']['null'])} and {_r(f['uniform']['margin'])}")
    cov = results["improvement_coverage"]
    print("P(better on a seed), least coverage of its 95% interval over theta and ties: "
          + ", ".join(f"{n} seeds {_r(c)}" for n, c in cov.items()))


def policy_record(results: dict) -> dict:
    """The figures `benchmark.policy` quotes in every report."""
    seq = {}
    for spending, r in results["sequential"].items():
        def worst(key, r=r):
            return max((f[key] for noise, f in r["familywise"].items() if noise in TARGETED),
                       key=lambda x: x[1][1])

        seq[spending] = {"claims": r["claims"], "looks": r["looks"], "null": worst("null"),
                         "margin": worst("margin"),
                         "coverage": min((f["coverage"] for noise, f in r["familywise"].items()
                                          if noise in TARGETED), key=lambda x: x[1][0]),
                         "uniform": r["familywise"]["uniform"],
                         "single": {"level": r["single"]["level"],
                                    "sequences": r["single"]["sequences"],
                                    "null": r["single"]["null"]}}
    return {"fixed_n": results["fixed_n"], "sequential": seq}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=20_000)
    parser.add_argument("--sequences", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/sequential.json")
    parser.add_argument("--policy", default=None,
                        help="also write the figures the reports quote to this file "
                             "(benchmark/error_rates.json)")
    parser.add_argument("--resolution", type=float, default=RESOLUTION,
                        help="the data's step in pp (default: one of 10,000 test images); "
                             "0: a continuous outcome, as a loss, a time or a metric of "
                             "your own are decided (no rounding, no floor on the sd)")
    args = parser.parse_args(argv)
    continuous = args.resolution != RESOLUTION
    if continuous and args.resolution != 0:
        parser.error("--resolution is the accuracy's step (the default) or 0 (a continuous "
                     "outcome)")
    globals()["RESOLUTION"] = args.resolution  # read by every simulation below
    print(f"{args.studies:,} simulated studies of {CLAIMS} claims, alpha {ALPHA}, margin "
          f"±{MARGIN} pp, paired sd {SD_RANGE[0]}-{SD_RANGE[1]} pp, resolution {RESOLUTION} pp")
    results = simulate(args.studies, args.sequences, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nfigures written to {out}")
    if args.policy:  # a continuous outcome's figures go beside the accuracy's
        path = Path(args.policy)
        # a continuous outcome's figures go into the accuracy's file, which must exist
        kept = json.loads(path.read_text()) if continuous or path.exists() else {}
        record = policy_record(results)
        if continuous:
            record = {**kept, "continuous": record}
        elif "continuous" in kept:
            record["continuous"] = kept["continuous"]
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(f"the reports' figures written to {args.policy}"
              + (" (as a continuous outcome's)" if continuous else ""))
    return results


if __name__ == "__main__":
    main()
