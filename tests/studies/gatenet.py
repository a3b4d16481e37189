"""The network of gated.py: a linear model that, after its first evaluation (epoch 1 is
over), waits in training for the file named by $CNNBENCH_TEST_GATE before it goes on,
and after its second for $CNNBENCH_TEST_GATE2 when that is set (two minutes at most
each)."""

import os
import time

from torch import nn

GATES = ("CNNBENCH_TEST_GATE", "CNNBENCH_TEST_GATE2")


class Gated(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.evaluating, self.evaluations = inner, False, 0

    def forward(self, x):
        if not self.training:
            self.evaluating = True
        elif self.evaluating:  # the first training batch after an evaluation
            self.evaluating = False
            self.evaluations += 1
            name = GATES[self.evaluations - 1] if self.evaluations <= len(GATES) else ""
            gate, deadline = os.environ.get(name, ""), time.monotonic() + 120
            while gate and not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.05)
        return self.inner(x)


def gated(config, input_shape, num_classes):
    channels, height, width = input_shape
    return Gated(nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, num_classes)))
