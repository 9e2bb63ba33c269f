"""Tests for keep masks, reglab's Dropout, its functional form and check_eval_deterministic.

Statistical tests use a fixed seed and 10^6 elements. Each tolerance is four standard
errors of the estimate under the null hypothesis, stated next to the check.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reglab.errors import ConfigError
from reglab.nn import functional as RF
from reglab.nn.checks import (
    NondeterministicEvalError,
    check_eval_deterministic,
    is_stochastic_layer,
)
from reglab.nn.dropconnect import DropConnectLinear
from reglab.nn.dropout import Dropout
from reglab.nn.masks import fill_keep_mask, keep_mask, keep_threshold

N = 1_000_000
# A p whose keep probability 1 - p is a multiple of 2^-16 but not of 2^-8: 16-bit lanes.
P16 = 0.5 + 2**-12
# 0.5 uses 8-bit lanes, P16 16-bit lanes, and 0.1 and 0.9 32-bit lanes.
PS = [0.0, 0.1, 0.5, 0.9]


@pytest.fixture(autouse=True)
def seeded_rng():
    """Seed the global generator for each test and restore the caller's state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# keep_mask


@pytest.mark.parametrize("p", PS + [P16, 1.0])
def test_keep_mask_rate(p):
    mask = keep_mask((N,), p, generator=generator())
    keep = 1.0 - p
    se = math.sqrt(keep * (1 - keep) / N)
    assert mask.dtype == torch.bool
    assert abs(mask.float().mean().item() - keep) <= 4 * se + 1e-12


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, P16])
def test_keep_mask_adjacent_correlation(p):
    mask = keep_mask((N,), p, generator=generator()).double()
    r = torch.corrcoef(torch.stack([mask[:-1], mask[1:]]))[0, 1].item()
    # The standard error of a sample correlation near 0 is 1 / sqrt(n).
    assert abs(r) <= 4 / math.sqrt(N)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, P16])
def test_keep_mask_pair_joint_rate(p):
    mask = keep_mask((N // 2, 2), p, generator=generator())
    both = (mask[:, 0] & mask[:, 1]).double().mean().item()
    q = (1 - p) ** 2
    assert abs(both - q) <= 4 * math.sqrt(q * (1 - q) / (N // 2))


@pytest.mark.parametrize(
    ("p", "dtype", "threshold"),
    [
        (0.5, torch.int8, 0),
        (0.25, torch.int8, 192 - 128),
        (P16, torch.int16, 2047 * 16 - 2**15),
        (0.3, torch.int32, round(0.7 * 2**32) - 2**31),
    ],
)
def test_keep_threshold_narrowest_exact_lane(p, dtype, threshold):
    assert keep_threshold(p) == (dtype, threshold)


@pytest.mark.parametrize(("p", "lanes_per_word"), [(0.5, 8), (P16, 4), (0.3, 2)])
def test_keep_mask_lanes_of_one_word_uncorrelated(p, lanes_per_word):
    # Row i contains the lanes of the i-th 64-bit draw. No two positions may be correlated.
    mask = keep_mask((N // lanes_per_word, lanes_per_word), p, generator=generator()).double()
    correlations = torch.corrcoef(mask.T)
    off_diagonal = correlations[~torch.eye(lanes_per_word, dtype=torch.bool)]
    assert off_diagonal.abs().max().item() <= 4 / math.sqrt(N // lanes_per_word)


def test_keep_mask_tiny_p_keeps_all_without_drawing():
    g = generator()
    state = g.get_state()
    # 1 - p rounds to 1 at 32 bits, so every element is kept and nothing is drawn.
    assert bool(keep_mask((1000,), 2**-40, generator=g).all())
    assert torch.equal(g.get_state(), state)


@pytest.mark.parametrize("p", [0.5, P16, 0.3])
def test_keep_mask_float_matches_bool(p):
    as_bool = keep_mask((300, 7), p, generator=generator(3))
    as_float = keep_mask((300, 7), p, dtype=torch.float32, generator=generator(3))
    assert torch.equal(as_float, as_bool.float())


def test_keep_mask_two_calls_independent():
    g = generator()
    first = keep_mask((N,), 0.5, generator=g)
    second = keep_mask((N,), 0.5, generator=g)
    both = (first & second).double().mean().item()
    assert abs(both - 0.25) <= 4 * math.sqrt(0.25 * 0.75 / N)


def test_keep_mask_reproducible_from_seed():
    a = keep_mask((128, 784), 0.3, generator=generator(7))
    b = keep_mask((128, 784), 0.3, generator=generator(7))
    c = keep_mask((128, 784), 0.3, generator=generator(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("p", [0.0, 0.5, P16, 0.3, 1.0])
def test_fill_keep_mask_matches_keep_mask(p):
    masks = torch.full((3, 40, 9), 7.0)
    g = generator(5)
    for row in masks:
        fill_keep_mask(row, p, g)
    g = generator(5)
    expected = torch.stack([keep_mask((40, 9), p, dtype=torch.float32, generator=g) for _ in range(3)])
    assert torch.equal(masks, expected)


def test_keep_mask_float_dtype():
    mask = keep_mask((100,), 0.5, dtype=torch.float64, generator=generator())
    assert mask.dtype == torch.float64
    assert set(mask.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("p", [-0.1, 1.1])
def test_keep_mask_invalid_p(p):
    with pytest.raises(ConfigError, match=r"^keep_mask: p must be in \[0, 1\], got"):
        keep_mask((3,), p)


# Dropout, inverted and classic


@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("mode", ["inverted", "classic"])
def test_training_mean(p, mode):
    layer = Dropout(p, mode=mode).train()
    out = layer(torch.ones(N))
    scale = 1 / (1 - p) if mode == "inverted" else 1.0
    expected = (1 - p) * scale
    # Each element is `scale` with probability 1 - p and 0 otherwise.
    se = scale * math.sqrt(p * (1 - p) / N)
    assert abs(out.mean().item() - expected) <= 4 * se + 1e-6


@pytest.mark.parametrize("p", PS + [0.75, P16])
def test_inverted_kept_values_exact(p):
    x = torch.randn(10_000) + 3.0
    out = Dropout(p).train()(x)
    is_kept = out != 0
    assert torch.equal(out[is_kept], x[is_kept] / (1 - p))
    if p == 0.0:
        assert torch.equal(out, x)


@pytest.mark.parametrize("p", PS)
def test_classic_kept_values_unscaled(p):
    x = torch.randn(10_000) + 3.0
    out = Dropout(p, mode="classic").train()(x)
    is_kept = out != 0
    assert torch.equal(out[is_kept], x[is_kept])


@pytest.mark.parametrize("p", PS + [1.0])
def test_inverted_eval_identity(p):
    x = torch.randn(100, 10)
    assert torch.equal(Dropout(p).eval()(x), x)


@pytest.mark.parametrize("p", PS + [1.0])
def test_classic_eval_scales(p):
    x = torch.randn(100, 10)
    out = Dropout(p, mode="classic").eval()(x)
    assert torch.equal(out, x * (1 - p))


@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("mode", ["inverted", "classic"])
def test_gradient_only_through_kept(p, mode):
    x = (torch.rand(10_000) + 0.5).requires_grad_()
    out = Dropout(p, mode=mode).train()(x)
    out.sum().backward()
    is_kept = out.detach() != 0
    scale = 1 / (1 - p) if mode == "inverted" else 1.0
    assert torch.all(x.grad[~is_kept] == 0)
    assert torch.allclose(x.grad[is_kept], torch.full_like(x.grad[is_kept], scale))


@pytest.mark.parametrize("mode", ["inverted", "classic"])
def test_p_one_zeros_without_nan(mode):
    x = torch.randn(1000).requires_grad_()
    out = Dropout(1.0, mode=mode).train()(x)
    out.sum().backward()
    assert torch.equal(out, torch.zeros_like(out))
    assert torch.isfinite(x.grad).all()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_classic_eval_p_one_zeros():
    out = Dropout(1.0, mode="classic").eval()(torch.randn(50))
    assert torch.equal(out, torch.zeros(50))


@pytest.mark.parametrize("mode", ["inverted", "classic"])
def test_inplace_matches_out_of_place(mode):
    x = torch.randn(1000)
    torch.manual_seed(3)
    expected = Dropout(0.3, mode=mode)(x)
    torch.manual_seed(3)
    y = x.clone()
    out = Dropout(0.3, mode=mode, inplace=True)(y)
    assert out is y
    assert torch.equal(out, expected)


def test_inverted_matches_torch_statistically():
    x = torch.ones(N)
    ours = Dropout(0.3).train()(x)
    theirs = nn.Dropout(0.3).train()(x)
    assert set(ours.unique().tolist()) == set(theirs.unique().tolist())
    se = math.sqrt(0.3 * 0.7 / N) / 0.7
    assert abs(ours.mean().item() - theirs.mean().item()) <= 4 * math.sqrt(2) * se


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (-0.1, "Dropout: p must be in [0, 1], got -0.1."),
        (1.1, "Dropout: p must be in [0, 1], got 1.1."),
        (float("nan"), "Dropout: p must be a finite number, got nan."),
        ("0.5", "Dropout: p must be a finite number, got '0.5'."),
    ],
)
def test_invalid_p_message(p, expected):
    with pytest.raises(ConfigError) as info:
        Dropout(p)
    assert str(info.value) == expected


def test_invalid_mode_message():
    with pytest.raises(ConfigError) as info:
        Dropout(0.5, mode="scaled")
    assert str(info.value) == (
        "Dropout: mode must be one of 'inverted', 'classic', got 'scaled'."
    )


def test_invalid_inplace_message():
    with pytest.raises(ConfigError, match=r"^Dropout: inplace must be a bool, got 1\.$"):
        Dropout(0.5, inplace=1)


def test_state_dict_empty():
    assert Dropout(0.5).state_dict() == {}
    assert list(Dropout(0.5).parameters()) == []


def test_repr():
    assert repr(Dropout(0.2, mode="classic")) == "Dropout(p=0.2, mode='classic', inplace=False)"


def test_eval_mode_follows_model():
    model = nn.Sequential(nn.Linear(4, 4), Dropout(0.5))
    x = torch.randn(8, 4)
    model.eval()
    assert torch.equal(model(x), model[0](x))


# functional dropout


def test_functional_requires_training():
    with pytest.raises(TypeError, match="training"):
        RF.dropout(torch.ones(3), 0.5)  # type: ignore[call-arg]


def test_functional_training_must_be_bool():
    with pytest.raises(ConfigError) as info:
        RF.dropout(torch.ones(3), 0.5, 0.5)
    assert str(info.value) == (
        "dropout: training must be a bool (inside a module pass training=self.training), "
        "got 0.5."
    )


def test_functional_generator_reproducible():
    x = torch.ones(1000)
    a = RF.dropout(x, 0.4, True, generator=generator(1))
    b = RF.dropout(x, 0.4, True, generator=generator(1))
    assert torch.equal(a, b)


def test_functional_invalid_p():
    with pytest.raises(ConfigError, match=r"^dropout: p must be in \[0, 1\], got 2\.0\.$"):
        RF.dropout(torch.ones(3), 2.0, True)


def test_functional_invalid_mode():
    with pytest.raises(ConfigError, match=r"^dropout: mode must be one of"):
        RF.dropout(torch.ones(3), 0.5, True, mode="Inverted")


# check_eval_deterministic


class LeakyDropout(nn.Module):
    """Calls F.dropout without training=self.training, so it stays on in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)
        self.drop = nn.Dropout(0.2)

    def forward(self, x):
        return self.drop(F.dropout(self.linear(x), 0.5))


class CorrectDropout(LeakyDropout):
    def forward(self, x):
        return self.drop(F.dropout(self.linear(x), 0.5, training=self.training))


def test_check_raises_for_leaky_dropout():
    model = nn.Sequential(nn.Linear(8, 8), LeakyDropout())
    with pytest.raises(NondeterministicEvalError) as info:
        check_eval_deterministic(model, torch.ones(4, 8))
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert "The randomness enters in the forward of '1' (LeakyDropout)" in message
    assert "training=self.training" in message
    assert "'1.drop' (Dropout)" in message


def test_check_passes_for_correct_dropout():
    model = nn.Sequential(nn.Linear(8, 8), CorrectDropout(), Dropout(0.5))
    check_eval_deterministic(model, torch.ones(4, 8))


def test_check_restores_modes_and_rng():
    model = nn.Sequential(nn.Linear(8, 8), CorrectDropout(), nn.BatchNorm1d(8))
    model.train()
    model[2].eval()
    before = [m.training for m in model.modules()]
    state = torch.get_rng_state()
    check_eval_deterministic(model, torch.ones(4, 8))
    assert [m.training for m in model.modules()] == before
    assert torch.equal(torch.get_rng_state(), state)


def test_check_restores_modes_on_error():
    model = nn.Sequential(nn.Linear(8, 8), LeakyDropout()).train()
    with pytest.raises(NondeterministicEvalError):
        check_eval_deterministic(model, torch.ones(4, 8))
    assert all(m.training for m in model.modules())


def test_check_exempts_stochastic_eval_modules():
    model = nn.Sequential(DropConnectLinear(8, 8, inference="mc", samples=4), nn.ReLU())
    assert model[0].stochastic_eval
    check_eval_deterministic(model, torch.ones(4, 8))


def test_check_still_catches_leak_next_to_exempt():
    model = nn.Sequential(DropConnectLinear(8, 8, inference="mc", samples=4), LeakyDropout())
    with pytest.raises(NondeterministicEvalError) as info:
        check_eval_deterministic(model, torch.ones(4, 8))
    assert "Exempt because stochastic_eval is True: '0' (DropConnectLinear)." in str(info.value)


def test_check_tuple_input_unpacked():
    class Add(nn.Module):
        def forward(self, a, b):
            return a + b

    check_eval_deterministic(Add(), (torch.ones(2), torch.ones(2)))


def test_is_stochastic_layer():
    assert is_stochastic_layer(nn.Dropout2d())
    assert is_stochastic_layer(nn.AlphaDropout())
    assert is_stochastic_layer(Dropout())
    assert is_stochastic_layer(DropConnectLinear(2, 2))
    assert not is_stochastic_layer(nn.BatchNorm1d(2))
    assert not is_stochastic_layer(nn.Linear(2, 2))
