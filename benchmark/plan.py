"""Plan stage: expand a `Study` into `JobSpec`s, count them, and order them for running.

Takes a Study; gives JobSpecs in a deterministic order (sections, then cells, then
seeds, as declared). A job is identified by the content hash of its resolved config,
so a cell reached from two sections is one job listed twice. No torch here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from .config import (
    CONFIG_FIELDS,
    Factors,
    SpecError,
    TrainConfig,
    is_user_arch,
    normalised,
    user_pieces,
)
from .records import JobSpec
from .study import Study, factor_values


def expand(study: Study) -> list[JobSpec]:
    """Every (section, cell, replicate) of the study, with its resolved configuration."""
    specs = []
    base = study.baseline.to_dict()
    del base["factors"]  # the study's declarations and the cell's values (none in a baseline)
    for section in study.sections:
        seeds = section.seeds if section.seeds is not None else study.seeds
        for position, cell in enumerate(section.cells):
            merged = {**section.fixed, **cell.overrides}
            overrides = {k: v for k, v in merged.items() if k in CONFIG_FIELDS}
            factors = Factors(factor_values(merged, study.factors), study.factors)
            # A cell that sets its own seed is one replicate; otherwise one job per seed.
            cell_seeds = [overrides["seed"]] if "seed" in overrides else list(seeds)
            for seed in cell_seeds:
                where = f"section {section.name!r}, cell {cell.label!r}"
                try:  # a setting the cell's choices leave unused takes its default
                    values, reset = normalised({**base, **overrides, "seed": seed},
                                               cell.overrides, "")
                    config = TrainConfig(**values, factors=factors)
                except SpecError as exc:
                    raise SpecError(f"{where}: {exc}") from None
                reason = next((e.reason for e in section.exclude if e.matches(config)), None)
                specs.append(JobSpec(section.name, cell.label, position, seed, config,
                                     cell.published, reason, tuple(sorted(reset.items()))))
    return specs


def with_stored_seeds(specs: Iterable[JobSpec],
                      stored: dict[tuple[str, str], dict[int, str]]) -> list[JobSpec]:
    """The study file's cell runs plus every other seed stored for the same cell.

    A study never loses seeds: a run with fewer seeds than an earlier one keeps the
    earlier seeds in the study. `stored` maps (section, cell) to {seed: job key} as the
    database has them; a stored seed joins only if the cell, given that seed, still
    resolves to the stored job (a redefined cell drops its old seeds).
    """
    specs = list(specs)
    have = {(s.section, s.cell, s.config.seed) for s in specs}
    first: dict[tuple[str, str], JobSpec] = {}
    for s in specs:
        first.setdefault((s.section, s.cell), s)
    extra = []
    for (section, cell), seeds in stored.items():
        spec = first.get((section, cell))
        for seed, key in sorted(seeds.items()):
            if spec is None or (section, cell, seed) in have:
                continue
            config = replace(spec.config, seed=seed)
            # (a directory dataset's job stored before content keys has its path key; one
            # stored before unused settings were normalised, its earlier key)
            earlier = config.unnormalised_key(dict(spec.unused)) if spec.unused else None
            if key in (config.key(), config.path_key(), earlier):
                extra.append(replace(spec, config=config, replicate=seed))
    if not extra:
        return specs
    sections = list(dict.fromkeys(s.section for s in specs))
    return sorted(specs + extra,
                  key=lambda s: (sections.index(s.section), s.position, s.config.seed))


def unique_jobs(specs: Iterable[JobSpec]) -> dict[str, TrainConfig]:
    """Job key -> config for the jobs that must run (a job skipped everywhere it appears is out)."""
    needed: dict[str, TrainConfig] = {}
    for spec in specs:
        if spec.skip_reason is None:
            needed.setdefault(spec.key, spec.config)
    return needed


def feature_size(arch: str, side: int) -> int:
    """Side of the last pooled feature map of a built-in net for an image side (28 -> 4
    for base, 5 for sk); below MIN_SIZE it is < 1."""
    if arch == "base":
        return ((side - 4) // 2 - 4) // 2
    return ((side - 4) // 2 - 2) // 2


# smallest image side whose last pooled map is not empty: 16 for base, 12 for sk
MIN_SIZE = {arch: next(n for n in range(1, 100) if feature_size(arch, n) >= 1)
            for arch in ("base", "sk")}


def size_problem(arch: str, image_hw: tuple[int, int]) -> str | None:
    """Why a built-in net cannot take images of this size (None: it can)."""
    if is_user_arch(arch) or min(feature_size(arch, side) for side in image_hw) >= 1:
        return None
    return (f"{image_hw[0]}x{image_hw[1]} images are too small for the {arch!r} net (it "
            f"needs at least {MIN_SIZE[arch]}x{MIN_SIZE[arch]}): use larger images or your "
            "own network (arch='module:function')")


def _conv_macs(cin: int, cout: int, k: int, out_hw: int) -> int:
    return cin * cout * k * k * out_hw * out_hw


def forward_macs(config: TrainConfig) -> int:
    """Multiply-accumulates of one forward pass for one sample (a cost model, no torch)."""
    if is_user_arch(config.arch):  # unknown without torch: costed as the base net
        config = replace(config, arch="base", width=1.0)
    c1, c2 = max(1, round(20 * config.width)), max(1, round(50 * config.width))
    if config.arch == "base":
        convs = _conv_macs(1, c1, 5, 24) + _conv_macs(c1, c2, 5, 8)
        flat = 4 * 4 * c2
    else:
        convs = _conv_macs(1, c1, 3, 26) + _conv_macs(c1, c1, 3, 24) + _conv_macs(c1, c2, 3, 10)
        flat = 5 * 5 * c2
    return convs + flat * config.hidden + config.hidden * 10


# Per-sample cost beyond the MACs (framework dispatch, memory-bound layers), in MACs, and
# the weight of a test pass relative to that; fitted (least squares on log seconds) to the
# wall times of 78 fp32 jobs of studies/mnist_ablation*.py on a 2-core CPU: 26% RMS error,
# against 61% for the earlier FLOPs-only model, which ran SK2 before the 60k SK0.2 jobs.
SAMPLE_OVERHEAD_MACS = 4_000_000
EVAL_WEIGHT = 0.5
TEST_SAMPLES = 10_000  # MNIST's test set, evaluated after every epoch


def job_cost(config: TrainConfig, train_samples: int) -> float:
    """Relative cost of a job: per epoch, its training samples x (forward + backward MACs +
    overhead) and a pass over the test set. Used to order jobs longest first and weigh
    the progress ETA; `estimate` calibrates real seconds where those are wanted."""
    macs = forward_macs(config)
    train = train_samples * (3 * macs + SAMPLE_OVERHEAD_MACS)
    test = TEST_SAMPLES * EVAL_WEIGHT * (macs + SAMPLE_OVERHEAD_MACS / 3)
    return config.epochs * (train + test)


def train_samples(config: TrainConfig, train_len: dict[str, int]) -> int:
    """Training samples of a job; `train_len` maps a dataset to its training-set size."""
    available = train_len[config.dataset] - config.train_offset
    return available if config.train_size is None else min(config.train_size, available)


def estimated_costs(jobs: dict[str, TrainConfig], train_len: dict[str, int]) -> dict[str, float]:
    """Job key -> relative cost; `train_len` maps a dataset to its number of training samples."""
    return {k: job_cost(c, train_samples(c, train_len)) for k, c in jobs.items()}


def longest_first(costs: dict[str, float]) -> list[str]:
    """Job keys by decreasing estimated cost, so a grid does not end on a long tail."""
    return sorted(costs, key=lambda k: (-costs[k], k))


def fusable(config: TrainConfig) -> bool:
    """Fused training (`train.train_fused`) trains the built-in loss, step, optimizer and
    schedule, without metrics of your own or a validation split; other jobs train alone."""
    return not user_pieces(config) and config.val_size == 0


def fusion_key(config: TrainConfig) -> TrainConfig:
    """Jobs with equal fusion keys can train as one vectorised model (`train.train_fused`):
    they differ only in seed and in where their equally long training slice starts.
    (A slice running to the end of the training set has a length that depends on its
    start, so such a job fuses only with jobs of the same start.)"""
    if config.train_size is None:
        return replace(config, seed=0)
    return replace(config, seed=0, train_offset=0)
