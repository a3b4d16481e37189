"""Four jobs of several seconds each, for killing a worker or the runner mid-job."""

from benchmark import Section, Study, TrainConfig, vary


def study() -> Study:
    base = TrainConfig(arch="base", width=0.5, epochs=120, train_size=320, dataset="idx")
    return Study(name="longer", baseline=base,
                 sections=[Section("L", vary("seed", [0, 1, 2, 3]))])
