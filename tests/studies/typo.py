from benchmark import Cell, Section, Study, TrainConfig


def study() -> Study:
    return Study(name="typo", baseline=TrainConfig(arhc="sk"),
                 sections=[Section("A", [Cell("x")])])
