"""Small modern CNNs adapted to 28x28 grey images, as cnnbench user networks.

Each function has the user-network contract, `function(config, input_shape, num_classes)
-> torch.nn.Module` returning logits, and reads two fields of the job's config:
`batch_norm` (BatchNorm after every conv, or none) and `activation` (default ReLU).
Studies name them as arch="modern_nets:vgg" and so on (see studies/modern_cnns.py). The
module's source is part of every job's identity: edit a net and its jobs run again.

Sizes are chosen for 2 CPU cores: each net costs 1-3x the homework's base net per sample
(about 2.3 M multiply-adds forward) with 40-220k parameters (base: 431k).
"""

from __future__ import annotations

from torch import nn

from benchmark.nets import ACTIVATIONS


def _conv(config, cin: int, cout: int, k: int = 3, stride: int = 1) -> list[nn.Module]:
    """conv (same padding) -> [BN] -> activation; no conv bias where BN follows."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2,
                                         bias=not config.batch_norm)]
    if config.batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    return [*layers, ACTIVATIONS[config.activation]()]


def vgg(config, input_shape, num_classes):
    """VGG-style: two 3x3 convs per stage, 16 then 32 channels, 2x2 max pools, then a
    small fully connected head (28 -> 14 -> 7)."""
    c, h, w = input_shape
    return nn.Sequential(
        *_conv(config, c, 16), *_conv(config, 16, 16), nn.MaxPool2d(2),
        *_conv(config, 16, 32), *_conv(config, 32, 32), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (h // 4) * (w // 4), 128),
        ACTIVATIONS[config.activation](), nn.Linear(128, num_classes))


def nin(config, input_shape, num_classes):
    """Network in Network: each block a spatial conv followed by two 1x1 convs (the
    'micro MLP'), no fully connected layer: the last block has one map per class,
    averaged over the image (global average pooling)."""
    c = input_shape[0]
    return nn.Sequential(
        *_conv(config, c, 32, 5), *_conv(config, 32, 32, 1), *_conv(config, 32, 32, 1),
        nn.MaxPool2d(2),
        *_conv(config, 32, 48, 3), *_conv(config, 48, 48, 1), *_conv(config, 48, 48, 1),
        nn.MaxPool2d(2),
        *_conv(config, 48, 64, 3), *_conv(config, 64, 64, 1),
        nn.Conv2d(64, num_classes, 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten())


class Residual(nn.Module):
    """A basic residual block: two 3x3 convs plus the input (1x1 projection when the
    shape changes); the activation after the sum."""

    def __init__(self, config, cin: int, cout: int, stride: int = 1):
        super().__init__()
        bn = config.batch_norm
        self.body = nn.Sequential(
            *_conv(config, cin, cout, 3, stride),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=not bn),
            *([nn.BatchNorm2d(cout)] if bn else []))
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=not bn), *([nn.BatchNorm2d(cout)] if bn else []))
        self.act = ACTIVATIONS[config.activation]()

    def forward(self, x):
        return self.act(self.body(x) + self.skip(x))


def resnet(config, input_shape, num_classes):
    """A small ResNet: a 3x3 stem and a max pool (28 -> 14), two residual blocks of 16
    channels, two of 32 at stride 2 (14 -> 7), global average pooling, one linear layer."""
    c = input_shape[0]
    return nn.Sequential(
        *_conv(config, c, 16), nn.MaxPool2d(2),
        Residual(config, 16, 16), Residual(config, 16, 16),
        Residual(config, 16, 32, 2), Residual(config, 32, 32),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes))
