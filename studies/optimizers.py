"""Optimizers and learning-rate schedules on the homework's base net (MNIST).

Question 1: does plain SGD need a larger learning rate than the adaptive methods (AdaGrad,
RMSprop, Adam, AdamW), and how sensitive is each to its learning rate? Section L sweeps
each optimizer over three learning rates, a factor ~3 apart, around its usual default.
Question 2: do schedules help? Section S trains SGD with momentum 0.9 and Adam at one
learning rate each under a constant rate, cosine decay, and a linear warm-up over the
first epoch followed by cosine decay.

Sizes, chosen to fit in about 20 minutes on 2 CPU cores (bf16 autocast, as accurate as
fp32 here; on a CPU without native bf16, set precision="fp32"): the first 10k training
samples, 5 epochs (short budgets are where optimizers differ most), batch 64, 3 paired
seeds. AdamW uses weight decay 0.05 (with 0 it would be Adam); the others none.
"""

from benchmark import Cell, Claim, Section, Study, TrainConfig

BASE = TrainConfig(arch="base", optimizer="sgd", lr=0.01, momentum=0.5, batch_size=64,
                   epochs=5, train_size=10_000, precision="bf16")

# optimizer -> (label, settings, learning rates), rates around each method's usual default
SWEEPS = [
    ("SGD", dict(optimizer="sgd", momentum=0.0), [0.01, 0.03, 0.1]),
    ("SGD+mom0.9", dict(optimizer="sgd", momentum=0.9), [0.003, 0.01, 0.03]),
    ("AdaGrad", dict(optimizer="adagrad"), [0.003, 0.01, 0.03]),
    ("RMSprop", dict(optimizer="rmsprop"), [1e-4, 3e-4, 1e-3]),
    ("Adam", dict(optimizer="adam"), [1e-4, 3e-4, 1e-3]),
    ("AdamW", dict(optimizer="adamw", weight_decay=0.05), [1e-4, 3e-4, 1e-3]),
]
SCHEDULES = [("constant", dict(schedule="constant")), ("cosine", dict(schedule="cosine")),
             ("warmup+cosine", dict(schedule="cosine", warmup_epochs=1))]
SCHEDULED = [("SGD+mom0.9", dict(optimizer="sgd", momentum=0.9, lr=0.01)),
             ("Adam", dict(optimizer="adam", lr=1e-3))]


def study() -> Study:
    rates = Section("L", [Cell(f"{name} lr={lr:g}", lr=lr, **settings)
                          for name, settings, lrs in SWEEPS for lr in lrs],
                    title="Optimizer x learning rate (constant rate)")
    schedules = Section("S", [Cell(f"{name} {sched}", **settings, **how)
                              for name, settings in SCHEDULED for sched, how in SCHEDULES],
                        title="Schedules: constant, cosine, 1 epoch of warm-up then cosine")
    return Study(
        name="optimizers",
        description="6 optimizers x 3 learning rates, and 3 schedules for SGD+momentum and "
                    "Adam; base net, MNIST 10k, 5 epochs, bf16, seeds 0-2",
        baseline=BASE,
        seeds=range(3),
        sections=[rates, schedules],
        claims=[
            Claim.beats("SGD needs a larger rate: lr 0.1 beats 0.01", "L", "SGD lr=0.1",
                        "SGD lr=0.01"),
            Claim.beats("Adam at its default 1e-3 beats 1e-4", "L", "Adam lr=0.001",
                        "Adam lr=0.0001"),
            Claim.beats("Adam (1e-3) beats plain SGD at the homework's 0.01", "L",
                        "Adam lr=0.001", "SGD lr=0.01"),
            Claim.beats("cosine decay helps SGD+momentum", "S", "SGD+mom0.9 cosine",
                        "SGD+mom0.9 constant"),
            Claim.beats("cosine decay helps Adam", "S", "Adam cosine", "Adam constant"),
            Claim.beats("warm-up helps Adam beyond cosine", "S", "Adam warmup+cosine",
                        "Adam cosine"),
        ],
    )
