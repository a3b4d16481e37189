"""Tiny study on the test suite's synthetic IDX data in ./idx: 5 jobs, 6 cells."""

from benchmark import Cell, Section, Study, TrainConfig, vary


def study() -> Study:
    base = TrainConfig(arch="sk", width=0.2, batch_norm=True, epochs=2, batch_size=32,
                       lr=0.05, train_size=256, dataset="idx")
    return Study(
        name="tiny",
        baseline=base,
        seeds=[0, 1],
        sections=[
            Section("A", [Cell("BN", published=90.0), Cell("noBN", batch_norm=False)],
                    title="batch norm"),
            Section("B", vary("width", [0.2]), title="shares its job with A/BN"),
        ],
    )
