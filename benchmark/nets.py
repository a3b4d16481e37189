"""Nets: the reference CNN family of the homework (DESIGN.md section 6), quirks included,
and the user networks of `arch="module:function"` (see `usernets`).

Takes a `TrainConfig`, the input shape and the class count of the dataset; gives an
`nn.Module` that maps (N, C, H, W) images (MNIST: 1x28x28) to (N, classes)
log-probabilities (a user network: (N, *input_shape) to (N, num_classes), its logits or
log-probabilities turned into log-probabilities by a final log_softmax, which leaves
log-probabilities as they are).

- base: conv1 1->20 5x5, pool, conv2 20->50 5x5, pool, fc1 800->500, act, fc2 500->10
  (on 28x28 inputs; fc1's input and fc2's output follow the data's size and classes).
  As published there is no activation after the convolutions.
- batch_norm: BatchNorm2d after each conv (before pooling), BatchNorm1d after fc1.
- dropout "logits": Dropout after fc2, as in the published run; "fc1": after fc1's act.
- sk: conv 1->20 3x3, [BN], act, conv 20->20 3x3, [BN], act, pool, conv 20->50 3x3, [BN],
  pool, fc1 1250->500, [BN], act, fc2. The published SK always has BN; here it follows
  `batch_norm` so the study states it.
- width k: the conv channels are round(20k) and round(50k).
"""

from __future__ import annotations

from torch import nn

from . import usernets
from .config import TrainConfig, is_user_arch
from .plan import feature_size, size_problem

ACTIVATIONS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "elu": nn.ELU,
}


def channels(width: float) -> tuple[int, int]:
    return max(1, round(20 * width)), max(1, round(50 * width))


def _bn2d(config: TrainConfig, n: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(n)] if config.batch_norm else []


def _features(config: TrainConfig, input_shape: tuple[int, ...]) -> tuple[list[nn.Module], int]:
    """Convolutional layers and the flattened feature count they produce."""
    c1, c2 = channels(config.width)
    act = ACTIVATIONS[config.activation]
    c0, height, width = input_shape
    flat = c2 * feature_size(config.arch, height) * feature_size(config.arch, width)
    problem = size_problem(config.arch, (height, width))
    if problem:
        raise ValueError(problem)
    if config.arch == "base":
        layers = [
            nn.Conv2d(c0, c1, 5), *_bn2d(config, c1), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), *_bn2d(config, c2), nn.MaxPool2d(2),
        ]
        return layers, flat
    layers = [
        nn.Conv2d(c0, c1, 3), *_bn2d(config, c1), act(),
        nn.Conv2d(c1, c1, 3), *_bn2d(config, c1), act(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3), *_bn2d(config, c2),
        nn.MaxPool2d(2),
    ]
    return layers, flat


def build_net(config: TrainConfig, input_shape: tuple[int, ...] = (1, 28, 28),
              num_classes: int = 10, import_dirs: tuple[str, ...] = ()) -> nn.Module:
    """The network a config describes, freshly initialised from torch's global RNG."""
    if is_user_arch(config.arch):
        return user_net(config, tuple(input_shape), num_classes, import_dirs)
    features, flat = _features(config, tuple(input_shape))
    act = ACTIVATIONS[config.activation]
    head: list[nn.Module] = [nn.Flatten(), nn.Linear(flat, config.hidden)]
    if config.batch_norm:
        head.append(nn.BatchNorm1d(config.hidden))
    head.append(act())
    if config.dropout == "fc1":
        head.append(nn.Dropout(config.dropout_p))
    head.append(nn.Linear(config.hidden, num_classes))
    if config.dropout == "logits":
        head.append(nn.Dropout(config.dropout_p))
    head.append(nn.LogSoftmax(dim=1))
    return nn.Sequential(*features, *head)


def user_net(config: TrainConfig, input_shape: tuple[int, ...], num_classes: int,
             import_dirs: tuple[str, ...] = ()) -> nn.Module:
    """`function(config, input_shape, num_classes)` of a "module:function" arch, checked:
    an nn.Module whose output for a batch of 2 has shape (2, num_classes)."""
    function = usernets.load(config.arch, import_dirs, config.arch_hash or None)
    net = function(config, input_shape, num_classes)
    if not isinstance(net, nn.Module):
        raise usernets.UserNetError(
            f"arch {config.arch!r} returned {type(net).__name__}, not a torch.nn.Module")
    return nn.Sequential(net, nn.LogSoftmax(dim=1))


def check_user_net(config: TrainConfig, input_shape: tuple[int, ...], num_classes: int,
                   import_dirs: tuple[str, ...] = ()) -> int:
    """Build the net and run a batch of 2 through it; its parameter count, or UserNetError."""
    import torch

    net = user_net(config, input_shape, num_classes, import_dirs).eval()
    try:
        with torch.no_grad():
            out = net(torch.zeros(2, *input_shape))
    except Exception as exc:
        raise usernets.UserNetError(
            f"arch {config.arch!r}: a batch of shape {(2, *input_shape)} raised "
            f"{type(exc).__name__}: {exc}") from None
    if tuple(out.shape) != (2, num_classes):
        raise usernets.UserNetError(
            f"arch {config.arch!r}: output of shape {tuple(out.shape)} for a batch of "
            f"{(2, *input_shape)}; expected (2, {num_classes}): one logit per class")
    return param_count(net)


def param_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
