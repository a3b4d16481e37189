"""Eight jobs of about a second each, for interrupting a run part-way."""

from benchmark import Section, Study, TrainConfig, vary


def study() -> Study:
    base = TrainConfig(arch="base", epochs=3, train_size=320, dataset="idx")
    return Study(name="slow", baseline=base,
                 sections=[Section("S", vary("seed", list(range(8))))])
