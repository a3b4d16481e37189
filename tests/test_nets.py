import pytest
import torch
from torch import nn

from benchmark import TrainConfig
from benchmark.nets import build_net, param_count

# Parameter counts worked out by hand from DESIGN.md section 6.
# base: conv1 1*20*25+20, conv2 20*50*25+50, fc1 800*500+500, fc2 500*10+10
BASE = 520 + 25_050 + 400_500 + 5_010
BN_EXTRA = 2 * (20 + 50 + 500)  # BatchNorm weight + bias per channel/feature
# SK1: conv1_1 1*20*9+20, conv1_2 20*20*9+20, conv2 20*50*9+50, fc1 1250*500+500, fc2
SK1 = 200 + 3_620 + 9_050 + 625_500 + 5_010 + 2 * (20 + 20 + 50 + 500)
# SK0.2: 4 and 10 channels
SK02 = 40 + 148 + 370 + 125_500 + 5_010 + 2 * (4 + 4 + 10 + 500)


@pytest.mark.parametrize("config,expected", [
    (TrainConfig(), BASE),
    (TrainConfig(batch_norm=True), BASE + BN_EXTRA),
    (TrainConfig(dropout="logits"), BASE),
    (TrainConfig(arch="sk", batch_norm=True), SK1),
    (TrainConfig(arch="sk", batch_norm=True, width=0.2), SK02),
    (TrainConfig(arch="sk", batch_norm=True, width=0.2, activation="sigmoid"), SK02),
])
def test_parameter_counts_of_published_nets(config, expected):
    assert param_count(build_net(config)) == expected


def _shapes(config):
    shapes = []
    x = torch.zeros(2, 1, 28, 28)
    for layer in build_net(config):
        x = layer(x)
        shapes.append((type(layer).__name__, tuple(x.shape[1:])))
    return shapes


def test_base_layer_shapes_have_no_activation_after_convs():
    assert _shapes(TrainConfig()) == [
        ("Conv2d", (20, 24, 24)), ("MaxPool2d", (20, 12, 12)),
        ("Conv2d", (50, 8, 8)), ("MaxPool2d", (50, 4, 4)),
        ("Flatten", (800,)), ("Linear", (500,)), ("ReLU", (500,)),
        ("Linear", (10,)), ("LogSoftmax", (10,)),
    ]


def test_sk_layer_shapes_with_bn_and_width():
    assert _shapes(TrainConfig(arch="sk", batch_norm=True, width=0.2)) == [
        ("Conv2d", (4, 26, 26)), ("BatchNorm2d", (4, 26, 26)), ("ReLU", (4, 26, 26)),
        ("Conv2d", (4, 24, 24)), ("BatchNorm2d", (4, 24, 24)), ("ReLU", (4, 24, 24)),
        ("MaxPool2d", (4, 12, 12)),
        ("Conv2d", (10, 10, 10)), ("BatchNorm2d", (10, 10, 10)), ("MaxPool2d", (10, 5, 5)),
        ("Flatten", (250,)), ("Linear", (500,)), ("BatchNorm1d", (500,)), ("ReLU", (500,)),
        ("Linear", (10,)), ("LogSoftmax", (10,)),
    ]


def test_dropout_placements():
    names = [type(m).__name__ for m in build_net(TrainConfig(dropout="logits"))]
    assert names[-3:] == ["Linear", "Dropout", "LogSoftmax"]  # published: on the logits
    names = [type(m).__name__ for m in build_net(TrainConfig(dropout="fc1"))]
    assert names[-4:] == ["ReLU", "Dropout", "Linear", "LogSoftmax"]


def test_sigmoid_replaces_every_relu():
    net = build_net(TrainConfig(arch="sk", activation="sigmoid"))
    assert not any(isinstance(m, nn.ReLU) for m in net)
    assert sum(isinstance(m, nn.Sigmoid) for m in net) == 3


def test_output_is_log_probabilities():
    out = build_net(TrainConfig(arch="sk")).eval()(torch.randn(3, 1, 28, 28))
    assert out.shape == (3, 10)
    torch.testing.assert_close(out.exp().sum(dim=1), torch.ones(3))
