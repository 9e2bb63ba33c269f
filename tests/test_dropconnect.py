"""Tests for DropConnectLinear and DropConnectConv2d.

Statistical checks use a fixed seed. Tolerances are stated as multiples of the standard
error computed from the exact mask variance in ``gaussian_moments``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reglab.errors import ConfigError
from reglab.nn.dropconnect import DropConnectConv2d, DropConnectLinear
from reglab.nn.masks import keep_mask


@pytest.fixture(autouse=True)
def seeded_rng():
    """Seed the global generator for each test and restore the caller's state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def mc_outputs(layer: nn.Module, x: torch.Tensor, samples: int) -> torch.Tensor:
    layer.train()
    with torch.no_grad():
        return torch.stack([layer(x) for _ in range(samples)])


# Structure and state


def test_linear_is_nn_linear_with_same_state_keys():
    layer = DropConnectLinear(5, 3)
    assert isinstance(layer, nn.Linear)
    assert list(layer.state_dict()) == list(nn.Linear(5, 3).state_dict())
    assert list(DropConnectLinear(5, 3, bias=False).state_dict()) == ["weight"]


def test_linear_init_matches_nn_linear():
    torch.manual_seed(4)
    ours = DropConnectLinear(7, 3)
    torch.manual_seed(4)
    theirs = nn.Linear(7, 3)
    assert torch.equal(ours.weight, theirs.weight)
    assert torch.equal(ours.bias, theirs.bias)


def test_linear_loads_nn_linear_state_dict():
    theirs = nn.Linear(4, 2)
    ours = DropConnectLinear(4, 2)
    ours.load_state_dict(theirs.state_dict())
    assert torch.equal(ours.eval()(torch.ones(1, 4)), theirs(torch.ones(1, 4)))


def test_conv_is_nn_conv2d_with_same_state_keys():
    layer = DropConnectConv2d(2, 4, 3)
    assert isinstance(layer, nn.Conv2d)
    assert list(layer.state_dict()) == list(nn.Conv2d(2, 4, 3).state_dict())


def test_weight_unchanged_by_forward():
    layer = DropConnectLinear(20, 10, p=0.5).train()
    before = layer.weight.detach().clone()
    layer(torch.randn(8, 20)).sum().backward()
    assert torch.equal(layer.weight.detach(), before)


def test_optimizer_step_updates_unmasked_weight():
    layer = DropConnectLinear(20, 10, p=0.5).train()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    before = layer.weight.detach().clone()
    layer(torch.randn(8, 20)).sum().backward()
    grad = layer.weight.grad.clone()
    optimizer.step()
    assert torch.allclose(layer.weight.detach(), before - 0.1 * grad, rtol=0, atol=1e-6)
    # Masked entries have zero gradient and keep their value, so no entry became zero.
    assert torch.all(layer.weight != 0)


def test_repr():
    layer = DropConnectLinear(4, 2, p=0.25, inference="gaussian", samples=8, activation=torch.tanh)
    assert repr(layer) == (
        "DropConnectLinear(in_features=4, out_features=2, bias=True, p=0.25, "
        "per_example=False, inference='gaussian', samples=8, activation=tanh)"
    )
    conv = DropConnectConv2d(1, 2, 3, p=0.1)
    assert repr(conv) == (
        "DropConnectConv2d(1, 2, kernel_size=(3, 3), stride=(1, 1), p=0.1, inference='mean')"
    )


# Masks


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_sample_weight_drop_rate(p):
    layer = DropConnectLinear(1000, 1000, p=p)
    weight = layer.sample_weight(torch.Generator().manual_seed(1))
    dropped = (weight == 0).double().mean().item()
    assert abs(dropped - p) <= 4 * math.sqrt(p * (1 - p) / weight.numel())
    is_kept = weight != 0
    assert torch.equal(weight[is_kept], layer.weight[is_kept] / (1 - p))


def test_sample_weight_reproducible():
    layer = DropConnectLinear(30, 20)
    a = layer.sample_weight(torch.Generator().manual_seed(3))
    b = layer.sample_weight(torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_training_forward_uses_sample_weight():
    layer = DropConnectLinear(6, 4, p=0.5).train()
    x = torch.randn(5, 6)
    torch.manual_seed(11)
    weight = layer.sample_weight()
    torch.manual_seed(11)
    out = layer(x)
    assert torch.equal(out, F.linear(x, weight, layer.bias))


def test_gradient_zero_where_masked():
    layer = DropConnectLinear(30, 20, p=0.5).train()
    x = torch.randn(8, 30)
    torch.manual_seed(5)
    weight = layer.sample_weight().detach()
    torch.manual_seed(5)
    layer(x).sum().backward()
    masked = weight == 0
    assert masked.any()
    assert torch.all(layer.weight.grad[masked] == 0)
    # d(sum of outputs)/dW_ji = sum over the batch of x_i / (1 - p) where kept.
    expected = (x.sum(dim=0) / 0.5).expand_as(weight)
    assert torch.allclose(layer.weight.grad[~masked], expected[~masked], rtol=0, atol=1e-5)


def test_bias_never_masked():
    layer = DropConnectLinear(3, 50, p=0.9).train()
    with torch.no_grad():
        layer.bias.fill_(1.0)
    out = layer(torch.zeros(4, 3))
    assert torch.equal(out, torch.ones(4, 50))


def test_batch_shared_mask():
    layer = DropConnectLinear(10, 10, p=0.5).train()
    out = layer(torch.randn(1, 10).expand(6, 10))
    # Rows may round differently in a matrix product; per-row masks would differ by far more.
    assert torch.allclose(out, out[:1].expand_as(out), rtol=0, atol=1e-6)


def test_per_example_masks_differ():
    layer = DropConnectLinear(10, 10, p=0.5, per_example=True).train()
    out = layer(torch.randn(1, 10).expand(6, 10))
    distinct = {tuple(row.tolist()) for row in out}
    assert len(distinct) == 6


def test_per_example_matches_explicit_masks():
    layer = DropConnectLinear(6, 4, p=0.3, per_example=True).train()
    x = torch.randn(5, 2, 6)
    torch.manual_seed(2)
    masks = keep_mask((5, 4, 6), 0.3)
    torch.manual_seed(2)
    out = layer(x)
    weights = torch.where(masks, layer.weight / 0.7, 0.0)
    expected = torch.einsum("nmi,noi->nmo", x, weights) + layer.bias
    assert out.shape == (5, 2, 4)
    assert torch.allclose(out, expected, atol=1e-6)


def test_p_zero_is_plain_linear():
    layer = DropConnectLinear(6, 4, p=0.0, per_example=True).train()
    x = torch.randn(3, 6)
    assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))


# Inference modes


def test_eval_mean_deterministic_plain_weights():
    layer = DropConnectLinear(12, 5, p=0.5).eval()
    x = torch.randn(4, 12)
    assert torch.equal(layer(x), layer(x))
    assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
    assert not layer.stochastic_eval


@pytest.mark.parametrize("per_example", [False, True])
def test_expected_training_output_equals_eval_mean(per_example):
    layer = DropConnectLinear(12, 5, p=0.5, per_example=per_example)
    x = torch.randn(4, 12)
    samples = 4000
    outputs = mc_outputs(layer, x, samples)
    mean, var = layer.gaussian_moments(x)
    se = (var / samples).sqrt()
    assert torch.all((outputs.mean(0) - layer.eval()(x)).abs() <= 5 * se)
    assert torch.allclose(mean, layer(x))


def test_gaussian_moments_match_monte_carlo():
    layer = DropConnectLinear(50, 4, p=0.4)
    x = torch.randn(3, 50)
    samples = 20_000
    outputs = mc_outputs(layer, x, samples).double()
    mean, var = layer.gaussian_moments(x)
    se_mean = (var.double() / samples).sqrt()
    assert torch.all((outputs.mean(0) - mean.double()).abs() <= 5 * se_mean)
    # The sample variance of a near-normal variable has relative standard error
    # sqrt(2 / samples), which is 0.01 here. The bound allows 5 of those.
    assert torch.allclose(outputs.var(0), var.double(), rtol=0.05)


def test_gaussian_moments_conv_match_monte_carlo():
    layer = DropConnectConv2d(2, 3, 3, p=0.3, padding=1)
    x = torch.randn(1, 2, 5, 5)
    samples = 10_000
    outputs = mc_outputs(layer, x, samples).double()
    mean, var = layer.gaussian_moments(x)
    se_mean = (var.double() / samples).sqrt()
    assert torch.all((outputs.mean(0) - mean.double()).abs() <= 5 * se_mean)
    assert torch.allclose(outputs.var(0), var.double(), rtol=0.08)


def test_gaussian_without_activation_equals_mean():
    layer = DropConnectLinear(12, 5, p=0.5, inference="gaussian").eval()
    x = torch.randn(4, 12)
    assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
    assert not layer.stochastic_eval


def test_gaussian_relu_matches_closed_form():
    samples = 20_000
    layer = DropConnectLinear(
        30, 6, p=0.5, inference="gaussian", samples=samples, activation=torch.relu
    ).eval()
    x = torch.randn(2, 30)
    mean, var = (t.double() for t in layer.gaussian_moments(x))
    std = var.sqrt()
    # E[relu(u)] for u ~ Normal(mean, std^2) is mean * Phi(mean / std) + std * phi(mean / std).
    normal = torch.distributions.Normal(0.0, 1.0)
    z = mean / std
    expected = mean * normal.cdf(z) + std * normal.log_prob(z).exp()
    # Var[relu(u)] <= Var[u], so std / sqrt(samples) bounds the standard error.
    assert torch.all((layer(x).double() - expected).abs() <= 5 * std / math.sqrt(samples))
    assert layer.stochastic_eval


def test_eval_mc_close_to_mean_and_random():
    samples = 2000
    layer = DropConnectLinear(12, 5, p=0.5, inference="mc", samples=samples).eval()
    x = torch.randn(4, 12)
    _, var = layer.gaussian_moments(x)
    mean_output = F.linear(x, layer.weight, layer.bias)
    # One batch-shared mask per sample, so each element averages `samples` draws.
    out = layer(x)
    assert torch.all((out - mean_output).abs() <= 5 * (var / samples).sqrt())
    assert not torch.equal(out, layer(x))
    assert layer.stochastic_eval


def test_activation_applied_in_every_mode():
    x = torch.randn(4, 12)
    for inference in ["mean", "mc", "gaussian"]:
        layer = DropConnectLinear(12, 5, inference=inference, activation=torch.relu)
        assert torch.all(layer.train()(x) >= 0)
        assert torch.all(layer.eval()(x) >= 0)


def test_conv_eval_mean_is_plain_conv():
    layer = DropConnectConv2d(2, 3, 3, p=0.5, stride=2, padding=1).eval()
    x = torch.randn(2, 2, 8, 8)
    assert torch.equal(layer(x), F.conv2d(x, layer.weight, layer.bias, stride=2, padding=1))


def test_conv_drop_rate_and_gradient():
    layer = DropConnectConv2d(8, 16, 3, p=0.5).train()
    x = torch.randn(2, 8, 6, 6)
    torch.manual_seed(9)
    weight = layer.sample_weight().detach()
    torch.manual_seed(9)
    out = layer(x)
    assert torch.equal(out, F.conv2d(x, weight, layer.bias))
    out.sum().backward()
    assert torch.all(layer.weight.grad[weight == 0] == 0)
    n = weight.numel()
    assert abs((weight == 0).double().mean().item() - 0.5) <= 4 * math.sqrt(0.25 / n)


def test_conv_expected_output_equals_eval_mean():
    layer = DropConnectConv2d(2, 3, 3, p=0.5)
    x = torch.randn(1, 2, 5, 5)
    samples = 4000
    outputs = mc_outputs(layer, x, samples)
    _, var = layer.gaussian_moments(x)
    assert torch.all((outputs.mean(0) - layer.eval()(x)).abs() <= 5 * (var / samples).sqrt())


# Validation


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"p": 1.0}, "DropConnectLinear: p must be in [0, 1), got 1.0."),
        ({"p": -0.5}, "DropConnectLinear: p must be in [0, 1), got -0.5."),
        (
            {"inference": "sample"},
            "DropConnectLinear: inference must be one of 'mean', 'mc', 'gaussian', "
            "got 'sample'.",
        ),
        ({"samples": 0}, "DropConnectLinear: samples must be an int >= 1, got 0."),
        ({"per_example": "yes"}, "DropConnectLinear: per_example must be a bool, got 'yes'."),
        (
            {"activation": "relu"},
            "DropConnectLinear: activation must be a callable such as torch.relu or None, "
            "got 'relu'.",
        ),
    ],
)
def test_linear_invalid_arguments(kwargs, expected):
    with pytest.raises(ConfigError) as info:
        DropConnectLinear(4, 2, **kwargs)
    assert str(info.value) == expected


def test_conv_per_example_rejected():
    with pytest.raises(ConfigError) as info:
        DropConnectConv2d(1, 2, 3, per_example=True)
    assert str(info.value) == (
        "DropConnectConv2d: per_example must be False, because per-example masks are "
        "implemented only for DropConnectLinear, got True."
    )
