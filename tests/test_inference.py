"""Tests for Monte-Carlo dropout and ensemble predictions."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reglab.errors import ConfigError
from reglab.inference import DEFAULT_MC_BATCH_SIZE, MCPrediction, NoisyEstimateWarning, ensemble_predict, mc_predict
from reglab.nn.dropconnect import DropConnectLinear
from reglab.nn.dropout import Dropout


@pytest.fixture(autouse=True)
def seeded_rng():
    """Seed the global generator for each test and restore the caller's state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def make_mlp(dropout: nn.Module | None = None) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(10, 32),
        nn.BatchNorm1d(32),
        nn.ReLU(),
        dropout if dropout is not None else Dropout(0.5),
        nn.Linear(32, 4),
    )


class Wrapped(nn.Module):
    """Hides a Sequential behind a plain Module, so mc_predict runs it whole every pass."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def warmed_up(model: nn.Module) -> nn.Module:
    """Give BatchNorm non-trivial running statistics."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(64, 10) * 2 + 1)
    return model


def modes(model: nn.Module) -> list[bool]:
    return [module.training for module in model.modules()]


def assert_valid(pred: MCPrediction, n: int, classes: int) -> None:
    assert pred.probs.shape == (n, classes)
    assert pred.entropy.shape == (n,)
    assert pred.mutual_information.shape == (n,)
    assert torch.allclose(pred.probs.sum(dim=-1), torch.ones(n), atol=1e-6)
    assert torch.all(pred.probs >= 0)
    assert torch.all(pred.entropy >= 0)
    assert torch.all(pred.entropy <= math.log(classes) + 1e-6)
    assert torch.all(pred.mutual_information >= 0)


def manual_prediction(logits: list[torch.Tensor], mean: str) -> MCPrediction:
    """Reference implementation: stack all passes, then average."""
    log_probs = torch.stack([torch.log_softmax(z, dim=-1) for z in logits])
    probs = log_probs.exp()
    mean_probs = probs.mean(0)
    if mean == "geometric":
        result = torch.softmax(log_probs.mean(0), dim=-1)
    else:
        result = mean_probs
    entropy = -(result * result.log()).sum(-1)
    per_pass_entropy = -(probs * log_probs).sum(-1).mean(0)
    mutual_information = -(mean_probs * mean_probs.log()).sum(-1) - per_pass_entropy
    return MCPrediction(result, entropy, mutual_information)


# Exactness of the normalized geometric mean


@pytest.mark.parametrize("mode", ["inverted", "classic"])
def test_geometric_mean_over_all_masks_is_exact(mode):
    """Over all 2^h masks, the weighted geometric mean equals softmax of the eval logits."""
    torch.manual_seed(1)
    h, classes, p = 6, 3, 0.3
    weight = torch.randn(classes, h, dtype=torch.float64)
    bias = torch.randn(classes, dtype=torch.float64)
    x = torch.randn(h, dtype=torch.float64)
    keep = 1 - p
    scale = 1 / keep if mode == "inverted" else 1.0

    mean_log_probs = torch.zeros(classes, dtype=torch.float64)
    mean_probs = torch.zeros(classes, dtype=torch.float64)
    total_probability = 0.0
    for bits in itertools.product([0.0, 1.0], repeat=h):
        mask = torch.tensor(bits, dtype=torch.float64)
        kept_count = int(sum(bits))
        probability = keep**kept_count * p ** (h - kept_count)
        logits = weight @ (mask * x * scale) + bias
        mean_log_probs += probability * torch.log_softmax(logits, dim=0)
        mean_probs += probability * torch.softmax(logits, dim=0)
        total_probability += probability
    geometric = torch.softmax(mean_log_probs, dim=0)

    layer = Dropout(p, mode=mode).eval()
    eval_logits = weight @ layer(x) + bias
    expected = torch.softmax(eval_logits, dim=0)
    assert math.isclose(total_probability, 1.0, abs_tol=1e-12)
    assert torch.allclose(geometric, expected, rtol=0, atol=1e-6)
    # The arithmetic mean differs, so the test can tell the two means apart.
    assert not torch.allclose(mean_probs, expected, rtol=0, atol=1e-3)


@pytest.mark.parametrize("mode", ["inverted", "classic"])
def test_mc_geometric_converges_to_eval_softmax(mode):
    torch.manual_seed(2)
    p, samples = 0.3, 2000
    model = nn.Sequential(Dropout(p, mode=mode), nn.Linear(6, 3)).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    pred = mc_predict(model, x, samples=samples, mean="geometric", generator=generator)
    expected = torch.softmax(model.eval()(x), dim=-1)

    # The geometric mean of S passes is softmax of the mean sampled logits. A logit
    # sum_i W_ci x_i m_i s, with m_i ~ Bernoulli(1 - p) and scale s, has variance
    # p (1 - p) s^2 sum_i W_ci^2 x_i^2. Softmax changes a probability by at most half
    # the largest change of a logit, so 5 standard errors of the logits, halved, bound
    # the error.
    scale = 1 / (1 - p) if mode == "inverted" else 1.0
    weight = model[1].weight.detach()
    var = p * (1 - p) * scale**2 * (x * x) @ (weight * weight).T
    tolerance = 0.5 * 5 * (var / samples).sqrt().max().item()
    assert torch.allclose(pred.probs, expected, rtol=0, atol=tolerance)


# mc_predict


@pytest.mark.parametrize("mean", ["arithmetic", "geometric"])
def test_mc_predict_valid_distribution(mean):
    model = warmed_up(make_mlp())
    pred = mc_predict(model, torch.randn(16, 10), samples=32, mean=mean)
    assert_valid(pred, 16, 4)
    assert torch.all(pred.mutual_information > 0)


@pytest.mark.parametrize("mean", ["arithmetic", "geometric"])
def test_mc_predict_matches_manual_loop(mean):
    model = warmed_up(make_mlp())
    x = torch.randn(16, 10)
    torch.manual_seed(5)
    pred = mc_predict(model, x, samples=25, mean=mean)

    torch.manual_seed(5)
    model.eval()
    model[3].train()
    with torch.no_grad():
        logits = [model(x) for _ in range(25)]
    expected = manual_prediction(logits, mean)
    for got, want in zip(pred, expected):
        assert torch.allclose(got, want, rtol=0, atol=1e-6)


def test_mc_predict_batchnorm_buffers_unchanged():
    model = warmed_up(make_mlp())
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    model.train()
    mc_predict(model, torch.randn(16, 10) * 5, samples=20)
    for name, buffer in model.named_buffers():
        assert torch.equal(buffer, buffers[name]), name


def test_mc_predict_layer_modes_during_call():
    model = make_mlp(DropConnectLinear(32, 32, inference="gaussian", activation=torch.relu))
    seen = {}

    def remember(module, inputs, output):
        seen[type(module).__name__] = module.training

    for module in model:
        module.register_forward_hook(remember)
    mc_predict(model, torch.randn(4, 10), samples=20)
    assert seen == {
        "Linear": False,
        "BatchNorm1d": False,
        "ReLU": False,
        "DropConnectLinear": True,
    }


def test_mc_predict_restores_modes():
    model = make_mlp()
    model.train()
    model[1].eval()
    before = modes(model)
    mc_predict(model, torch.randn(4, 10), samples=20)
    assert modes(model) == before


def test_mc_predict_restores_modes_on_error():
    model = make_mlp().train()
    with pytest.raises(RuntimeError):
        mc_predict(model, torch.randn(4, 7), samples=20)
    assert all(modes(model))


def test_mc_predict_prefix_equals_whole_model():
    model = warmed_up(make_mlp())
    x = torch.randn(16, 10)
    fast = mc_predict(model, x, samples=20, generator=torch.Generator().manual_seed(3))
    slow = mc_predict(Wrapped(model), x, samples=20, generator=torch.Generator().manual_seed(3))
    for a, b in zip(fast, slow):
        assert torch.equal(a, b)


def test_mc_predict_prefix_runs_once():
    model = make_mlp()
    calls = {"prefix": 0, "rest": 0}
    model[0].register_forward_hook(lambda *args: calls.__setitem__("prefix", calls["prefix"] + 1))
    model[4].register_forward_hook(lambda *args: calls.__setitem__("rest", calls["rest"] + 1))
    mc_predict(model, torch.randn(16, 10), samples=20, batch_size=8)
    assert calls == {"prefix": 2, "rest": 40}


def test_mc_predict_prefix_with_inplace_dropout():
    model = nn.Sequential(nn.Linear(10, 32), nn.Dropout(0.5, inplace=True), nn.Linear(32, 4))
    x = torch.randn(16, 10)
    fast = mc_predict(model, x, samples=20, generator=torch.Generator().manual_seed(3))
    slow = mc_predict(Wrapped(model), x, samples=20, generator=torch.Generator().manual_seed(3))
    for a, b in zip(fast, slow):
        assert torch.equal(a, b)


def test_mc_predict_generator_keeps_global_rng():
    model = make_mlp()
    x = torch.randn(8, 10)
    state = torch.get_rng_state()
    mc_predict(model, x, samples=20, generator=torch.Generator())
    assert torch.equal(torch.get_rng_state(), state)


def test_mc_predict_generator_reproducible():
    model = make_mlp()
    x = torch.randn(8, 10)
    a = mc_predict(model, x, samples=20, generator=torch.Generator().manual_seed(9))
    b = mc_predict(model, x, samples=20, generator=torch.Generator().manual_seed(9))
    c = mc_predict(model, x, samples=20, generator=torch.Generator().manual_seed(10))
    assert torch.equal(a.probs, b.probs)
    assert not torch.equal(a.probs, c.probs)


def test_mc_predict_default_batches_of_2048():
    model = warmed_up(make_mlp())
    x = torch.randn(DEFAULT_MC_BATCH_SIZE + 5, 10)
    default = mc_predict(model, x, samples=20, generator=torch.Generator().manual_seed(2))
    batched = mc_predict(model, x, samples=20, batch_size=2048, generator=torch.Generator().manual_seed(2))
    whole = mc_predict(model, x, samples=20, batch_size=len(x), generator=torch.Generator().manual_seed(2))
    assert DEFAULT_MC_BATCH_SIZE == 2048
    assert torch.equal(default.probs, batched.probs)
    # One batch draws the masks in another order, so its estimate differs.
    assert not torch.equal(default.probs, whole.probs)


def test_mc_predict_batch_size():
    model = warmed_up(make_mlp())
    x = torch.randn(10, 10)
    pred = mc_predict(model, x, samples=20, batch_size=3)
    assert_valid(pred, 10, 4)
    generator = torch.Generator().manual_seed(1)
    whole = mc_predict(model, x, samples=20, batch_size=10, generator=generator)
    default = mc_predict(model, x, samples=20, generator=torch.Generator().manual_seed(1))
    assert torch.equal(whole.probs, default.probs)


def test_mc_predict_dropconnect_model():
    model = nn.Sequential(DropConnectLinear(10, 16, activation=torch.relu), nn.Linear(16, 3))
    pred = mc_predict(model, torch.randn(6, 10), samples=30)
    assert_valid(pred, 6, 3)
    assert torch.all(pred.mutual_information > 0)


def test_mc_predict_samples_below_two_raises():
    with pytest.raises(ConfigError) as info:
        mc_predict(make_mlp(), torch.randn(2, 10), samples=1)
    assert str(info.value) == "mc_predict: samples must be an int >= 2, got 1."


def test_mc_predict_few_samples_warns():
    expected = r"^mc_predict: samples=5 gives a noisy estimate\. Use at least 20 samples\.$"
    with pytest.warns(NoisyEstimateWarning, match=expected) as record:
        mc_predict(make_mlp(), torch.randn(2, 10), samples=5)
    assert record[0].filename == __file__


def test_mc_predict_invalid_mean():
    with pytest.raises(ConfigError) as info:
        mc_predict(make_mlp(), torch.randn(2, 10), mean="harmonic")
    assert str(info.value) == (
        "mc_predict: mean must be one of 'arithmetic', 'geometric', got 'harmonic'."
    )


def test_mc_predict_without_dropout_raises():
    model = nn.Sequential(nn.Linear(10, 3))
    with pytest.raises(ConfigError, match=r"^mc_predict: model must contain a dropout"):
        mc_predict(model, torch.randn(2, 10))


def test_mc_predict_non_2d_output_raises():
    model = nn.Sequential(Dropout(0.5), nn.Linear(10, 3), nn.Unflatten(1, (3, 1)))
    with pytest.raises(ConfigError) as info:
        mc_predict(model, torch.randn(2, 10))
    assert str(info.value) == (
        "mc_predict: the model output must be logits shaped [N, C], got [2, 3, 1]."
    )


# ensemble_predict


@pytest.mark.parametrize("mean", ["arithmetic", "geometric"])
def test_ensemble_matches_manual(mean):
    members = [warmed_up(make_mlp()) for _ in range(4)]
    x = torch.randn(8, 10)
    pred = ensemble_predict(members, x, mean=mean)
    with torch.no_grad():
        logits = [member.eval()(x) for member in members]
    expected = manual_prediction(logits, mean)
    assert_valid(pred, 8, 4)
    for got, want in zip(pred, expected):
        assert torch.allclose(got, want, rtol=0, atol=1e-6)


def test_ensemble_restores_modes_and_buffers():
    members = [warmed_up(make_mlp()) for _ in range(3)]
    members[1].eval()
    before = [modes(m) for m in members]
    buffers = [[b.clone() for b in m.buffers()] for m in members]
    ensemble_predict(nn.ModuleList(members), torch.randn(8, 10))
    assert [modes(m) for m in members] == before
    for member, saved in zip(members, buffers):
        assert all(torch.equal(a, b) for a, b in zip(member.buffers(), saved))


def test_ensemble_deterministic():
    members = [make_mlp() for _ in range(3)]
    x = torch.randn(8, 10)
    assert torch.equal(ensemble_predict(members, x).probs, ensemble_predict(members, x).probs)


def test_ensemble_identical_members_zero_information():
    member = make_mlp()
    pred = ensemble_predict([member, member], torch.randn(8, 10))
    assert torch.all(pred.mutual_information == 0)


def test_ensemble_rejects_single_model():
    with pytest.raises(ConfigError) as info:
        ensemble_predict(make_mlp(), torch.randn(2, 10))
    assert str(info.value) == (
        "ensemble_predict: models must be a list of models, got a single Sequential."
    )


def test_ensemble_rejects_empty():
    with pytest.raises(ConfigError, match=r"^ensemble_predict: models must contain at least one"):
        ensemble_predict([], torch.randn(2, 10))


def test_ensemble_geometric_differs_from_arithmetic():
    members = [nn.Linear(10, 3) for _ in range(3)]
    x = torch.randn(8, 10)
    arithmetic = ensemble_predict(members, x)
    geometric = ensemble_predict(members, x, mean="geometric")
    assert not torch.allclose(arithmetic.probs, geometric.probs)
    assert torch.allclose(
        geometric.probs,
        F.softmax(torch.stack([F.log_softmax(m(x), -1) for m in members]).mean(0), -1),
        atol=1e-6,
    )
