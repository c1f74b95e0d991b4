"""Piggyback's model side: the straight-through estimator, and conversion of ordinary models that
computes what the original computed until masks are learned."""

import copy

import pytest
import torch
from avalanche.models import SimpleCNN
from torch import nn
from torchvision.models import resnet18

from avalanche_hsf.models import piggyback
from avalanche_hsf.models.piggyback import THRESHOLD, BinarizeSTE, MaskedWeight
from tests.helpers import TinyBNNet, digits_mlp


def test_straight_through_estimator_passes_the_gradient_unchanged():
    scores = torch.tensor([0.0, 0.004, 0.006, 1.0], requires_grad=True)
    mask = BinarizeSTE.apply(scores, THRESHOLD)
    assert mask.tolist() == [0.0, 0.0, 1.0, 1.0]
    grad = torch.tensor([1.0, -2.0, 3.0, -4.0])
    mask.backward(grad)
    assert torch.equal(scores.grad, grad)


@pytest.mark.parametrize("build, classifier, shape", [
    (digits_mlp, "classifier", (5, 1, 8, 8)),
    (lambda: SimpleCNN(num_classes=3), "classifier", (5, 3, 16, 16)),  # a Sequential classifier
    (TinyBNNet, "classifier", (5, 1, 8, 8)),
    (lambda: resnet18(weights=None, num_classes=4), "fc", (2, 3, 32, 32)),
])
def test_conversion_keeps_the_outputs_with_all_masks_one(build, classifier, shape):
    torch.manual_seed(0)
    original = build()
    for bn in (m for m in original.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-1, 1)  # eval mode must use these, not batch statistics
    original.eval()
    x = torch.randn(shape)
    expected = original(x)
    net = piggyback(copy.deepcopy(original), classifier).eval()
    assert torch.equal(net(x, 0), expected)  # converted, no task begun
    net.begin_task(0)  # masked from task 0 on (pretrained backbone): every mask starts at 1
    masks = [layer.mask(0) for layer in net.task_layers(MaskedWeight)]
    assert masks and all(m.all() for m in masks)
    assert torch.equal(net(x, 0), expected)
    assert torch.equal(net(x, torch.zeros(len(x), dtype=torch.long)), expected)


def test_conversion_keeps_training_mode_batchnorm_until_the_backbone_is_frozen():
    torch.manual_seed(0)
    original = TinyBNNet().train()
    net = piggyback(copy.deepcopy(original)).train()
    x = torch.randn(6, 1, 8, 8)
    assert torch.equal(net(x, 0), original(x))
    assert torch.equal(net.model.features[1].source.running_mean, original.features[1].running_mean)


def test_inference_from_the_cached_masked_weight_equals_inference_from_the_unpacked_one():
    torch.manual_seed(0)
    net = piggyback(digits_mlp())
    net.begin_task(0, dense=True)
    net.end_task(0)
    net.begin_task(1)
    layers = net.task_layers(MaskedWeight)
    with torch.no_grad():
        for layer in layers:  # about half the weights switched off
            layer.scores["1"].copy_(torch.rand_like(layer.scores["1"]) * 2 * THRESHOLD)
    net.end_task(1)
    x = torch.rand(9, 1, 8, 8)
    net.eval()
    with torch.no_grad():
        first, second = net(x, 1), net(x, 1)  # the second from the cache
        assert all(torch.equal(layer._cached[1], layer.unpacked_weight("1")) for layer in layers)
        assert torch.equal(first, second)
        unpacked = nn.functional.linear(x.flatten(1), layers[0].unpacked_weight("1"), layers[0].bias)
        cached = nn.functional.linear(x.flatten(1), layers[0].task_weight(), layers[0].bias)
        assert torch.equal(cached, unpacked)
        layers[0].weight.mul_(2.0)  # a changed backbone is never served from a stale cache
        assert torch.equal(layers[0].task_weight(), layers[0].unpacked_weight("1"))
