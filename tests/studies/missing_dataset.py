from benchmark import Cell, Section, Study, TrainConfig


def study() -> Study:
    return Study(name="missing_dataset", baseline=TrainConfig(dataset="no/such/dir"),
                 sections=[Section("A", [Cell("x")])])
