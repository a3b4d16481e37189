from benchmark import Cell, Section, Study, TrainConfig

STUDY = Study(name="x", baseline=TrainConfig(), sections=[Section("A", [Cell("x")])])
