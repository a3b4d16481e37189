"""A study for --until-decided on the suite's synthetic data in ./idx: one large true
effect (a working learning rate against one that learns nothing) and one pair of cells
that are the same job (every paired difference exactly 0: equivalent)."""

from benchmark import Cell, Claim, Section, Study, TrainConfig


def study() -> Study:
    base = TrainConfig(arch="sk", width=0.2, batch_norm=True, epochs=1, batch_size=32,
                       lr=0.05, train_size=128, dataset="idx")
    return Study(
        name="sequential",
        baseline=base,
        seeds=[0, 1, 2],
        sections=[
            Section("A", [Cell("good"), Cell("stuck", lr=1e-6)], title="learning rate"),
            Section("B", [Cell("x"), Cell("same job", width=0.2)], title="one job twice"),
            Section("C", [Cell("wide", width=0.5)], title="no claim: the first seeds only"),
        ],
        claims=[Claim.beats("a working rate beats one that learns nothing", "A", "good",
                            "stuck"),
                Claim.equivalent("one job is equivalent to itself", "B", "same job", "x",
                                 1.0)],
    )
