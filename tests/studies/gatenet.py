"""The network of gated.py: a linear model that, once it has been evaluated (epoch 1 is
over), waits in training for the gate file before it goes on (at most two minutes)."""

import os
import time

from torch import nn


class Gated(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.evaluated, self.deadline = inner, False, None

    def forward(self, x):
        if not self.training:
            self.evaluated = True
        elif self.evaluated:
            gate = os.environ.get("CNNBENCH_TEST_GATE", "")
            self.deadline = self.deadline or time.monotonic() + 120  # two minutes in all
            while gate and not os.path.exists(gate) and time.monotonic() < self.deadline:
                time.sleep(0.05)
        return self.inner(x)


def gated(config, input_shape, num_classes):
    channels, height, width = input_shape
    return Gated(nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, num_classes)))
