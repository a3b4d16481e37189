"""User networks for the tests (arch="mynets:FUNCTION" in a study next to this file)."""

from torch import nn


def small_cnn(config, input_shape, num_classes):
    channels, height, width = input_shape
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * (height // 2) * (width // 2), num_classes))


def wrong_classes(config, input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[1] * input_shape[2], num_classes + 1))


def not_a_module(config, input_shape, num_classes):
    return "a net"


def breaks_in_forward(config, input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(5, num_classes))  # wrong input size
