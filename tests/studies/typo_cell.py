from benchmark import Cell, Section, Study, TrainConfig


def study() -> Study:
    return Study(name="typo_cell", baseline=TrainConfig(),
                 sections=[Section("A", [Cell("x", batchnorm=True)])])
