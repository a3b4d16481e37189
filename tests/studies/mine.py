"""A study with its own network (mynets.py next to it) beside a built-in one."""

from benchmark import Cell, Section, Study, TrainConfig


def study() -> Study:
    base = TrainConfig(arch="mynets:small_cnn", epochs=2, batch_size=32, lr=0.05,
                       train_size=256, dataset="idx")
    return Study(name="mine", baseline=base, seeds=[0, 1],
                 sections=[Section("A", [Cell("mine"), Cell("sk", arch="sk", width=0.2)])])
