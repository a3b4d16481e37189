"""One job whose user network stops at its second epoch until the file named by
$CNNBENCH_TEST_GATE exists: a test sees epoch 1 reported while the job still runs."""

from benchmark import Cell, Section, Study, TrainConfig


def study() -> Study:
    base = TrainConfig(arch="gatenet:gated", epochs=3, train_size=64, batch_size=32,
                       dataset="idx")
    return Study(name="gated", baseline=base, sections=[Section("G", [Cell("gated")])])
