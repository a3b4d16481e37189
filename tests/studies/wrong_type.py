from benchmark import Cell, Section, Study, TrainConfig


def study() -> Study:
    return Study(name="wrong_type", baseline=TrainConfig(epochs="20"),
                 sections=[Section("A", [Cell("x")])])
