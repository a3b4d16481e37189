"""Two good jobs and one whose dataset is truncated past its header: it fails in the worker."""

from benchmark import Cell, Section, Study, TrainConfig


def study() -> Study:
    base = TrainConfig(arch="sk", width=0.2, epochs=1, train_size=128, dataset="idx")
    return Study(
        name="failing",
        baseline=base,
        sections=[Section("A", [Cell("good"), Cell("good-bn", batch_norm=True),
                                Cell("broken", dataset="broken")])],
    )
