"""Your own training pieces on the homework's base net, Fashion-MNIST, 3 paired seeds.

Three questions cnnbench has no built-in answer to, each asked with code of our own in
studies/tricks.py (next to this file) and a declared factor where there is a knob:

- S: does label smoothing (a loss of our own, `label_smoothing` a factor) change accuracy
  and calibration? The user loss at smoothing 0 is the built-in NLL as a function (up to
  float rounding, which five epochs amplify to about 0.1 pp), under its own key (its
  module's source is part of it).
- O: Lion (an optimizer of our own) against SGD with momentum 0.5 and Adam, each at a
  usual rate for it (Lion's is ~10x below Adam's).
- M: mixup as a whole training step of our own (`mixup_alpha` a factor).

Every job also records expected calibration error (ECE, a metric of our own, lower is
better); claims decide on accuracy or on ECE. Sizes fit in about ten minutes on 2 CPU
cores: the first 10k training samples, 5 epochs, fp32.
"""

from benchmark import Cell, Claim, Section, Study, TrainConfig

BASE = TrainConfig(arch="base", optimizer="sgd", lr=0.01, momentum=0.5, batch_size=64,
                   epochs=5, train_size=10_000, dataset="fashion-mnist",
                   metrics=("tricks:ece",))


def study() -> Study:
    return Study(
        name="own_pieces",
        description="label smoothing (own loss), Lion (own optimizer), mixup (own step), "
                    "with ECE as an own metric; base net, Fashion-MNIST 10k, 5 epochs, "
                    "seeds 0-2",
        baseline=BASE,
        seeds=range(3),
        factors={"label_smoothing": 0.0, "mixup_alpha": 0.2},
        sections=[
            Section("S", [Cell("nll"),
                          Cell("smoothed 0", loss="tricks:smoothed"),
                          Cell("smoothed 0.1", loss="tricks:smoothed", label_smoothing=0.1),
                          Cell("smoothed 0.2", loss="tricks:smoothed", label_smoothing=0.2)],
                    title="Label smoothing, a loss of our own"),
            Section("O", [Cell("SGD"), Cell("Adam", optimizer="adam", lr=1e-3),
                          Cell("Lion", optimizer="tricks:lion", lr=1e-4)],
                    title="Lion, an optimizer of our own, against SGD and Adam"),
            Section("M", [Cell("standard"), Cell("mixup", step="tricks:mixup")],
                    title="Mixup (alpha 0.2), a training step of our own"),
            Section("C", [Cell("nll"),
                          Cell("smoothed 0.1", loss="tricks:smoothed", label_smoothing=0.1),
                          Cell("mixup", step="tricks:mixup")],
                    metric="ece", higher_is_better=False,
                    title="Calibration error of the same jobs (decided on ECE)"),
        ],
        claims=[
            Claim.beats("label smoothing 0.1 raises test accuracy", "S", "smoothed 0.1",
                        "nll"),
            Claim.beats("label smoothing 0.1 lowers calibration error", "S", "smoothed 0.1",
                        "nll", metric="ece", higher_is_better=False),
            Claim.beats("Lion beats SGD", "O", "Lion", "SGD"),
            Claim.beats("mixup lowers calibration error", "M", "mixup", "standard",
                        metric="ece", higher_is_better=False),
        ],
    )
