"""Four jobs (seeds 0-3) of several seconds each, for killing a worker or the runner
mid-job, and for runners sharing a grid."""

from benchmark import Cell, Section, Study, TrainConfig


def study() -> Study:
    base = TrainConfig(arch="base", width=0.5, epochs=60, train_size=320, dataset="idx")
    return Study(name="longer", baseline=base, seeds=[0, 1, 2, 3],
                 sections=[Section("L", [Cell("one")])])
