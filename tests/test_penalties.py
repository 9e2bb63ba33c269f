"""Tests for reglab.penalties.

The penalties are tested in two ways. A registry (``PENALTIES``) lists each penalty class
with sample configurations and invalid arguments, and generic tests run every entry against
a plain reference implementation written here, independent of reglab's selection code.
Specific tests then check hand-computed values, the equivalence of L2 with SGD's
``weight_decay``, the optimizer warnings, the max-norm constraint and the weight report.
Equivalence tests run in float64 so that rounding stays near 1e-15.
"""

from __future__ import annotations

import doctest
import fnmatch
import importlib
import inspect
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

import reglab.penalties as penalties_pkg
from reglab.errors import ConfigError
from reglab.penalties import (
    L1,
    L2,
    ElasticNet,
    LayerWeightStats,
    MaxNorm,
    RegularizationWarning,
    adamw_param_groups,
    check_optimizer,
    from_keras_l2,
    from_sklearn_alpha,
    from_textbook,
    l2_param_groups,
    reset_warning_registry,
    select_parameters,
    sparsity,
    weight_report,
)

@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Run on one thread: the models are tiny, and thread contention on a busy 2-core
    machine made the 200-step training tests over ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------
# Reference implementation and registry
# --------------------------------------------------------------------------------------


def reference_strengths(model: nn.Module, params, strength: float) -> dict[str, float]:
    """Map each selected parameter name to its strength, with plain loops."""
    selected = {}
    for name, param in model.named_parameters():
        if params == "weights":
            if param.dim() >= 2:
                selected[name] = strength
        elif params == "all":
            selected[name] = strength
        elif isinstance(params, dict):
            for pattern, value in params.items():
                if fnmatch.fnmatchcase(name, pattern):
                    selected[name] = value
                    break
        else:
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in params):
                selected[name] = strength
    return selected


def reference_value(model: nn.Module, l1: float, l2: float, params, factor: float) -> float:
    """Compute factor_i · (l1·Σ|w| + l2/2·Σw²) over the selection with math.fsum."""
    params_by_name = dict(model.named_parameters())
    terms = []
    for name, scale in reference_strengths(model, params, factor).items():
        values = params_by_name[name].detach().flatten().tolist()
        terms.append(scale * l1 * math.fsum(abs(v) for v in values))
        terms.append(scale * l2 / 2 * math.fsum(v * v for v in values))
    return math.fsum(terms)


def reference_grads(
    model: nn.Module, l1: float, l2: float, params, factor: float
) -> dict[str, torch.Tensor]:
    """Compute the gradient factor_i · (l1·sign(w) + l2·w) of every parameter, 0 if unselected."""
    strengths = reference_strengths(model, params, factor)
    grads = {}
    for name, param in model.named_parameters():
        scale = strengths.get(name, 0.0)
        grads[name] = scale * (l1 * torch.sign(param.detach()) + l2 * param.detach())
    return grads


@dataclass
class PenaltyInfo:
    """A penalty class, how its arguments map onto the reference, and its test inputs."""

    cls: type
    # Map the constructor kwargs to the reference's (l1, l2, params, factor). The factor is
    # the strength of every selected parameter unless params is a mapping, which replaces it.
    to_reference: Callable[[dict], tuple[float, float, object, float]]
    configs: list[tuple[str, dict]] = field(default_factory=list)
    # (kwargs, exact error message) pairs that the constructor must reject.
    errors: list[tuple[dict, str]] = field(default_factory=list)


PATTERN_MAP = {"3.weight": 0.5, "*.weight": 0.01}
PATTERN_LIST = ["3.*", "0.weight"]

PENALTIES = [
    PenaltyInfo(
        cls=L2,
        to_reference=lambda kw: (0.0, 1.0, kw.get("params", "weights"), kw["strength"]),
        configs=[
            ("default weights", {"strength": 0.1}),
            ("all parameters", {"strength": 0.1, "params": "all"}),
            ("pattern list", {"strength": 0.3, "params": PATTERN_LIST}),
            ("per-layer mapping", {"strength": 0.3, "params": PATTERN_MAP}),
            ("zero strength", {"strength": 0.0}),
        ],
        errors=[
            ({"strength": -0.1}, "L2: strength must be >= 0 (use 0 to switch it off), got -0.1."),
            ({"strength": float("nan")}, "L2: strength must be a finite number, got nan."),
            ({"strength": "0.1"}, "L2: strength must be a finite number, got '0.1'."),
            ({"strength": True}, "L2: strength must be a finite number, got True."),
            (
                {"strength": 0.1, "params": "biases"},
                "L2: params must be 'weights', 'all', a list of name patterns or a mapping "
                "from pattern to strength, got 'biases'.",
            ),
            (
                {"strength": 0.1, "params": {"*.weight"}},
                "L2: params must be 'weights', 'all', a list of name patterns or a mapping "
                "from pattern to strength, got {'*.weight'}.",
            ),
            ({"strength": 0.1, "params": []}, "L2: params must contain at least one name pattern, got []."),
            (
                {"strength": 0.1, "params": ["*.weight", 3]},
                "L2: each pattern in params must be a string, got 3 in ['*.weight', 3].",
            ),
            (
                {"strength": 0.1, "params": {"0.weight": -1.0}},
                "L2: params['0.weight'] must be >= 0 (use 0 to switch it off), got -1.0.",
            ),
        ],
    ),
    PenaltyInfo(
        cls=L1,
        to_reference=lambda kw: (1.0, 0.0, kw.get("params", "weights"), kw["strength"]),
        configs=[
            ("default weights", {"strength": 0.1}),
            ("all parameters", {"strength": 0.1, "params": "all"}),
            ("pattern list", {"strength": 0.3, "params": PATTERN_LIST}),
            ("per-layer mapping", {"strength": 0.3, "params": PATTERN_MAP}),
        ],
        errors=[
            ({"strength": -1}, "L1: strength must be >= 0 (use 0 to switch it off), got -1.0."),
            ({"strength": float("inf")}, "L1: strength must be a finite number, got inf."),
            ({"strength": None}, "L1: strength must be a finite number, got None."),
        ],
    ),
    PenaltyInfo(
        cls=ElasticNet,
        to_reference=lambda kw: (kw["l1"], kw["l2"], kw.get("params", "weights"), 1.0),
        configs=[
            ("both parts", {"l1": 0.1, "l2": 0.2}),
            ("only l2", {"l1": 0.0, "l2": 0.2}),
            ("only l1", {"l1": 0.1, "l2": 0.0}),
            ("all parameters", {"l1": 0.1, "l2": 0.2, "params": "all"}),
            ("per-layer factor", {"l1": 0.1, "l2": 0.2, "params": PATTERN_MAP}),
        ],
        errors=[
            ({"l1": -0.1, "l2": 0.1}, "ElasticNet: l1 must be >= 0 (use 0 to switch it off), got -0.1."),
            ({"l1": 0.1, "l2": -0.2}, "ElasticNet: l2 must be >= 0 (use 0 to switch it off), got -0.2."),
            (
                {"l1": 0.1, "l2": 0.1, "params": 5},
                "ElasticNet: params must be 'weights', 'all', a list of name patterns or a "
                "mapping from pattern to strength, got 5.",
            ),
        ],
    ),
]

CONFIGS = [
    pytest.param(info, kwargs, id=f"{info.cls.__name__}-{desc}")
    for info in PENALTIES
    for desc, kwargs in info.configs
]
ERRORS = [
    pytest.param(info, kwargs, message, id=f"{info.cls.__name__}-{i}")
    for info in PENALTIES
    for i, (kwargs, message) in enumerate(info.errors)
]


def make_model() -> nn.Module:
    """Build a float64 conv-BatchNorm-MLP with seeded random parameters and a few exact zeros.

    Parameter names: 0.weight/0.bias (Conv2d), 1.weight/1.bias (BatchNorm2d), 3.weight/3.bias
    and 5.weight/5.bias (Linear).
    """
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 3, kernel_size=3),
        nn.BatchNorm2d(3),
        nn.Flatten(),
        nn.Linear(12, 4),
        nn.ReLU(),
        nn.Linear(4, 2),
    ).double()
    with torch.no_grad():
        for param in model.parameters():
            param.normal_()
        model[3].weight[0, :3] = 0.0
    return model


# --------------------------------------------------------------------------------------
# Generic tests over the registry
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("info", "kwargs"), CONFIGS)
def test_penalty_value_matches_reference(info, kwargs):
    model = make_model()
    penalty = info.cls(**kwargs)

    value = penalty(model)

    assert value.item() == pytest.approx(reference_value(model, *info.to_reference(kwargs)), rel=1e-12)


@pytest.mark.parametrize(("info", "kwargs"), CONFIGS)
def test_penalty_gradient_matches_reference(info, kwargs):
    model = make_model()
    penalty = info.cls(**kwargs)
    expected = reference_grads(model, *info.to_reference(kwargs))

    value = penalty(model)
    if value.requires_grad:
        value.backward()

    for name, param in model.named_parameters():
        grad = torch.zeros_like(param) if param.grad is None else param.grad
        torch.testing.assert_close(grad, expected[name], rtol=1e-12, atol=0, msg=name)


@pytest.mark.parametrize(("info", "kwargs"), CONFIGS)
def test_penalty_result_is_0dim_like_params(info, kwargs):
    model = make_model()

    value = info.cls(**kwargs)(model)

    assert value.shape == ()
    assert value.dtype == torch.float64
    assert value.device == next(model.parameters()).device


@pytest.mark.parametrize(("info", "kwargs"), CONFIGS)
def test_penalty_repr_round_trips(info, kwargs):
    model = make_model()
    penalty = info.cls(**kwargs)

    rebuilt = eval(repr(penalty), {"L1": L1, "L2": L2, "ElasticNet": ElasticNet})

    assert repr(rebuilt) == repr(penalty)
    assert rebuilt(model).item() == penalty(model).item()


@pytest.mark.parametrize(("info", "kwargs", "message"), ERRORS)
def test_penalty_invalid_arguments_raise(info, kwargs, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        info.cls(**kwargs)


@pytest.mark.parametrize("info", PENALTIES, ids=lambda info: info.cls.__name__)
def test_penalty_unmatched_pattern_lists_names(info):
    kwargs = dict(info.configs[0][1], params=["0.weight", "conv.*"])
    penalty = info.cls(**kwargs)
    model = nn.Sequential(nn.Linear(2, 2))
    name = info.cls.__name__

    expected = (
        f"{name}: params pattern 'conv.*' must match a parameter name "
        "(one of '0.weight', '0.bias'), got no match."
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        penalty(model)


def test_config_error_is_value_error():
    with pytest.raises(ValueError):
        L2(-1.0)


# --------------------------------------------------------------------------------------
# Hand-computed values
# --------------------------------------------------------------------------------------


def hand_linear() -> nn.Linear:
    """Build Linear(3, 2) with weight [[1, -2, 0], [0.5, 3, -1]] and bias [4, -0.5] in float64."""
    layer = nn.Linear(3, 2).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0, 0.0], [0.5, 3.0, -1.0]]))
        layer.bias.copy_(torch.tensor([4.0, -0.5]))
    return layer


def test_l2_hand_computed_value():
    # Σw² = 1 + 4 + 0 + 0.25 + 9 + 1 = 15.25, Σb² = 16.25.
    layer = hand_linear()

    assert L2(0.5)(layer).item() == 0.25 * 15.25
    assert L2(0.5, params="all")(layer).item() == 0.25 * (15.25 + 16.25)
    assert L2(0.5, params=["bias"])(layer).item() == 0.25 * 16.25


def test_l1_hand_computed_value():
    # Σ|w| = 1 + 2 + 0 + 0.5 + 3 + 1 = 7.5, Σ|b| = 4.5.
    layer = hand_linear()

    assert L1(0.5)(layer).item() == 0.5 * 7.5
    assert L1(0.5, params="all")(layer).item() == 0.5 * (7.5 + 4.5)


def test_elastic_net_hand_computed_value():
    layer = hand_linear()

    assert ElasticNet(l1=0.5, l2=0.25)(layer).item() == 0.5 * 7.5 + 0.125 * 15.25


def test_elastic_net_parts_equal_l1_and_l2():
    model = make_model()

    assert ElasticNet(0.0, 0.3)(model).item() == L2(0.3)(model).item()
    assert ElasticNet(0.3, 0.0)(model).item() == L1(0.3)(model).item()


def test_per_layer_mapping_hand_computed():
    model = nn.Sequential(hand_linear(), nn.ReLU(), hand_linear())
    # "0.weight" takes 1.0 although "*.weight" also matches it. "2.weight" takes 0.1.
    penalty = L2(123.0, params={"0.weight": 1.0, "*.weight": 0.1})

    assert penalty(model).item() == pytest.approx(0.5 * 15.25 + 0.05 * 15.25, rel=1e-15)


def test_pattern_list_selects_matching_names():
    model = nn.Sequential(hand_linear(), nn.ReLU(), hand_linear())

    selected = select_parameters(model, ["2.*", "0.weight"], 0.1)

    assert [name for name, _, _ in selected] == ["0.weight", "2.weight", "2.bias"]
    assert all(strength == 0.1 for _, _, strength in selected)


def test_batchnorm_weight_excluded_by_default():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.LayerNorm(4))
    with torch.no_grad():
        for param in model.parameters():
            param.fill_(2.0)

    weights = [name for name, _, _ in select_parameters(model, "weights", 1.0)]
    everything = [name for name, _, _ in select_parameters(model, "all", 1.0)]

    assert weights == ["0.weight"]
    assert everything == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]
    assert L2(1.0)(model).item() == 0.5 * 12 * 4.0
    assert L2(1.0, params="all")(model).item() == 0.5 * (12 + 4 * 5) * 4.0


def test_tied_parameter_penalized_once():
    first = nn.Linear(2, 2, bias=False)
    second = nn.Linear(2, 2, bias=False)
    second.weight = first.weight
    model = nn.Sequential(first, second)
    with torch.no_grad():
        first.weight.fill_(1.0)

    assert [name for name, _, _ in select_parameters(model, "weights", 1.0)] == ["0.weight"]
    assert L2(2.0)(model).item() == 4.0


def test_l2_gradient_is_strength_times_weight():
    model = make_model()

    L2(0.37)(model).backward()

    for name, param in model.named_parameters():
        if param.dim() >= 2:
            assert torch.equal(param.grad, 0.37 * param.detach()), name
        else:
            assert param.grad is None, name


def test_l1_gradient_is_strength_times_sign():
    model = make_model()

    L1(0.37)(model).backward()

    weight = model[3].weight
    assert torch.equal(weight.grad, 0.37 * torch.sign(weight.detach()))
    assert torch.all(weight.grad[0, :3] == 0.0)


def test_zero_strength_returns_zero_on_param_device():
    model = nn.Linear(2, 2).double()

    value = L2(0.0)(model)

    assert value.item() == 0.0
    assert value.dtype == torch.float64
    assert value.shape == ()


def test_model_without_parameters_gives_zero():
    value = L1(0.1)(nn.ReLU())

    assert value.item() == 0.0
    assert value.shape == ()


def test_strength_attribute_and_repr():
    assert L2(0.1).strength == 0.1
    assert repr(L2(0.1)) == "L2(strength=0.1, params='weights')"
    assert repr(L1(0.2, params=["*.weight"])) == "L1(strength=0.2, params=('*.weight',))"
    assert repr(ElasticNet(0.1, 0.2)) == "ElasticNet(l1=0.1, l2=0.2, params='weights')"
    assert ElasticNet(0.1, 0.2).strength == 1.0


def test_unmatched_pattern_message_shortens_long_lists():
    model = nn.Sequential(*[nn.Linear(1, 1) for _ in range(30)])

    with pytest.raises(ConfigError, match=r"'19\.bias' and 20 more\), got no match\.$"):
        select_parameters(model, ["missing"], 1.0)


# --------------------------------------------------------------------------------------
# L2 and SGD weight decay
# --------------------------------------------------------------------------------------


def make_mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(5, 16),
        nn.Tanh(),
        nn.Linear(16, 16),
        nn.Tanh(),
        nn.Linear(16, 3),
    ).double()


def classification_batches(steps: int, batch_size: int = 16):
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(64, 5, generator=generator, dtype=torch.float64)
    targets = torch.randint(0, 3, (64,), generator=generator)
    for step in range(steps):
        start = (step * batch_size) % 64
        yield inputs[start : start + batch_size], targets[start : start + batch_size]


def train_sgd(model, optimizer, penalty=None, steps=200):
    for inputs, targets in classification_batches(steps):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs), targets)
        if penalty is not None:
            loss = loss + penalty(model)
        loss.backward()
        optimizer.step()


def manual_weight_groups(model, strength):
    weights = [param for param in model.parameters() if param.dim() >= 2]
    others = [param for param in model.parameters() if param.dim() < 2]
    return [{"params": weights, "weight_decay": strength}, {"params": others, "weight_decay": 0.0}]


def max_param_difference(first: nn.Module, second: nn.Module) -> float:
    return max((a - b).abs().max().item() for a, b in zip(first.parameters(), second.parameters()))


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("groups", ["manual", "l2_param_groups"])
def test_l2_penalty_equals_sgd_weight_decay(momentum, groups):
    strength = 0.05
    with_penalty = make_mlp(seed=3)
    with_decay = make_mlp(seed=3)
    if groups == "manual":
        param_groups = manual_weight_groups(with_decay, strength)
    else:
        param_groups = l2_param_groups(with_decay, L2(strength))

    train_sgd(with_penalty, torch.optim.SGD(with_penalty.parameters(), lr=0.1, momentum=momentum), L2(strength))
    train_sgd(with_decay, torch.optim.SGD(param_groups, lr=0.1, momentum=momentum))

    assert max_param_difference(with_penalty, with_decay) < 1e-10
    # The decay must have mattered: training without it ends elsewhere.
    without = make_mlp(seed=3)
    train_sgd(without, torch.optim.SGD(without.parameters(), lr=0.1, momentum=momentum))
    assert max_param_difference(with_penalty, without) > 1e-3


def test_per_layer_l2_equals_param_groups():
    penalty = L2(0.0, params={"0.weight": 0.2, "*.weight": 0.01, "4.bias": 0.05})
    with_penalty = make_mlp(seed=4)
    with_decay = make_mlp(seed=4)

    train_sgd(with_penalty, torch.optim.SGD(with_penalty.parameters(), lr=0.1, momentum=0.9), penalty)
    train_sgd(with_decay, torch.optim.SGD(l2_param_groups(with_decay, penalty), lr=0.1, momentum=0.9))

    assert max_param_difference(with_penalty, with_decay) < 1e-10


def blobs(n_per_class: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw two seeded gaussian blobs around (-1, -1) and (1, 1) with labels 0 and 1."""
    generator = torch.Generator().manual_seed(7)
    centers = torch.tensor([[-1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)
    noise = [torch.randn(n_per_class, 2, generator=generator, dtype=torch.float64) for _ in centers]
    inputs = torch.cat([center + 0.5 * offsets for center, offsets in zip(centers, noise)])
    labels = torch.cat([torch.zeros(n_per_class), torch.ones(n_per_class)]).double()
    return inputs, labels


def train_logistic_regression(penalty=None, weight_decay=0.0) -> nn.Linear:
    """Train with zero init, full-batch SGD (lr 0.1) for 30 epochs on the summed cross-entropy."""
    inputs, labels = blobs()
    model = nn.Linear(2, 1).double()
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=weight_decay)
    for _ in range(30):
        optimizer.zero_grad()
        logits = model(inputs).squeeze(1)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="sum")
        if penalty is not None:
            loss = loss + penalty(model)
        loss.backward()
        optimizer.step()
    return model


def test_logistic_regression_l2_equals_weight_decay():
    # The cost λ/2 · (‖w‖² + b²) with λ = 2 penalizes the bias too: params="all".
    with_penalty = train_logistic_regression(penalty=L2(2.0, params="all"))
    with_decay = train_logistic_regression(weight_decay=2.0)

    torch.testing.assert_close(with_penalty.weight, with_decay.weight, rtol=0, atol=1e-6)
    torch.testing.assert_close(with_penalty.bias, with_decay.bias, rtol=0, atol=1e-6)

    inputs, labels = blobs()
    accuracy = ((with_penalty(inputs).squeeze(1) > 0).double() == labels).double().mean().item()
    assert accuracy >= 0.9


def test_logistic_regression_bias_left_out_differs():
    weights_only = train_logistic_regression(penalty=L2(2.0, params="weights"))
    with_decay = train_logistic_regression(weight_decay=2.0)

    assert (weights_only.bias - with_decay.bias).abs().item() > 1e-4


# --------------------------------------------------------------------------------------
# Parameter groups
# --------------------------------------------------------------------------------------


def test_l2_param_groups_structure():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))

    groups = l2_param_groups(model, 0.01)

    assert [group["weight_decay"] for group in groups] == [0.01, 0.0]
    assert groups[0]["params"] == [model[0].weight, model[2].weight]
    assert groups[1]["params"] == [model[0].bias, model[1].weight, model[1].bias, model[2].bias]


def test_l2_param_groups_per_layer_order():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 3), nn.Linear(3, 1))

    groups = l2_param_groups(model, L2(0.0, params={"1.weight": 0.1, "*.weight": 0.01}))

    assert [group["weight_decay"] for group in groups] == [0.01, 0.0, 0.1]
    assert groups[0]["params"] == [model[0].weight, model[2].weight]
    assert groups[2]["params"] == [model[1].weight]


def test_l2_param_groups_every_parameter_once():
    model = make_model()

    groups = l2_param_groups(model, 0.1, params="all")

    assert len(groups) == 1
    assert len(groups[0]["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (L1(0.1),),
            "l2_param_groups: penalty_or_strength must be an L2 penalty or a number, because only "
            "an L2 penalty equals a weight decay, got L1(strength=0.1, params='weights').",
        ),
        (
            (L2(0.1), "all"),
            "l2_param_groups: params must be left out when an L2 penalty is given, because the "
            "penalty's own params apply, got 'all' with L2(strength=0.1, params='weights').",
        ),
        ((-0.1,), "l2_param_groups: penalty_or_strength must be >= 0 (use 0 to switch it off), got -0.1."),
    ],
)
def test_l2_param_groups_invalid_arguments(args, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        l2_param_groups(nn.Linear(2, 2), *args)


def test_adamw_param_groups_decays_weights_only():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2)).double()
    before = [param.detach().clone() for param in model.parameters()]
    optimizer = torch.optim.AdamW(adamw_param_groups(model, 0.5), lr=0.1)

    # With zero gradients Adam's step is 0, so only the decoupled decay moves the weights.
    for param in model.parameters():
        param.grad = torch.zeros_like(param)
    optimizer.step()

    for (name, param), old in zip(model.named_parameters(), before):
        expected = old * (1 - 0.1 * 0.5) if param.dim() >= 2 else old
        torch.testing.assert_close(param.detach(), expected, rtol=1e-15, atol=0, msg=name)


def test_adamw_param_groups_negative_decay_raises():
    message = "adamw_param_groups: weight_decay must be >= 0 (use 0 to switch it off), got -0.01."
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        adamw_param_groups(nn.Linear(2, 2), -0.01)


# --------------------------------------------------------------------------------------
# check_optimizer
# --------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def empty_warning_registry():
    reset_warning_registry()
    yield
    reset_warning_registry()


def issued_warnings(optimizer, penalties=None) -> tuple[list[str], list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        messages = check_optimizer(optimizer, penalties)
    return messages, [w for w in record if issubclass(w.category, RegularizationWarning)]


def test_adam_with_l2_warns():
    model = nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters())

    with pytest.warns(RegularizationWarning) as record:
        check_optimizer(optimizer, L2(1e-4))

    expected = (
        "Adam with L2(strength=0.0001, params='weights'): an adaptive optimizer scales each "
        "parameter's gradient, the L2 penalty's gradient included, by its own step size, so an "
        "L2 penalty is not weight decay and weights with large gradients are decayed less. "
        "Remove the L2 penalty and use torch.optim.AdamW instead, which applies decoupled "
        "weight decay (Loshchilov & Hutter, 2019), for example "
        "torch.optim.AdamW(reglab.penalties.adamw_param_groups(model, weight_decay))."
    )
    assert [str(w.message) for w in record] == [expected]
    assert record[0].filename == __file__


def test_warning_issued_once_per_process():
    model = nn.Linear(2, 2)

    first_messages, first = issued_warnings(torch.optim.Adam(model.parameters()), [L2(1e-4)])
    second_messages, second = issued_warnings(torch.optim.Adam(model.parameters()), [L2(1e-4)])

    assert len(first) == 1
    assert second == []
    assert second_messages == first_messages

    reset_warning_registry()
    _, third = issued_warnings(torch.optim.Adam(model.parameters()), [L2(1e-4)])
    assert len(third) == 1


def test_other_strength_warns_again():
    model = nn.Linear(2, 2)

    _, first = issued_warnings(torch.optim.Adam(model.parameters()), L2(1e-4))
    _, second = issued_warnings(torch.optim.Adam(model.parameters()), L2(1e-3))

    assert len(first) == 1
    assert len(second) == 1


@pytest.mark.parametrize("name", ["Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop"])
def test_adaptive_optimizers_with_l2_warn(name):
    optimizer = getattr(torch.optim, name)(nn.Linear(2, 2).parameters())

    with pytest.warns(RegularizationWarning, match=rf"^{name} with L2\(.*is not weight decay"):
        check_optimizer(optimizer, L2(1e-4))


def test_adamw_with_l2_warns():
    optimizer = torch.optim.AdamW(nn.Linear(2, 2).parameters())

    with pytest.warns(RegularizationWarning, match=r"Remove the L2 penalty and set weight_decay on AdamW"):
        check_optimizer(optimizer, L2(1e-4))


def test_adam_weight_decay_warns():
    optimizer = torch.optim.Adam(nn.Linear(2, 2).parameters(), weight_decay=0.01)

    expected = (
        "Adam(weight_decay=0.01) adds weight_decay·w to the gradient before the adaptive scaling, "
        "so it acts as an L2 penalty and is not weight decay. Set weight_decay=0 on Adam and use "
        "torch.optim.AdamW instead, which applies decoupled weight decay (Loshchilov & Hutter, 2019), "
        "for example torch.optim.AdamW(reglab.penalties.adamw_param_groups(model, weight_decay))."
    )
    with pytest.warns(RegularizationWarning, match=f"^{re.escape(expected)}$"):
        check_optimizer(optimizer)


def test_elastic_net_l2_part_warns():
    optimizer = torch.optim.Adam(nn.Linear(2, 2).parameters())

    _, with_l2 = issued_warnings(optimizer, ElasticNet(0.1, 0.2))
    _, without_l2 = issued_warnings(optimizer, ElasticNet(0.1, 0.0))

    assert len(with_l2) == 1
    assert "ElasticNet(l1=0.1, l2=0.2" in str(with_l2[0].message)
    assert without_l2 == []


@pytest.mark.parametrize(
    ("make_optimizer", "penalties"),
    [
        pytest.param(lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.01), [L2(0.1)], id="SGD with L2"),
        pytest.param(lambda p: torch.optim.AdamW(p, weight_decay=0.01), [], id="AdamW weight_decay"),
        pytest.param(lambda p: torch.optim.Adam(p), [L1(0.1)], id="Adam with L1"),
        pytest.param(lambda p: torch.optim.Adam(p), [L2(0.0)], id="Adam with zero L2"),
        pytest.param(lambda p: torch.optim.Adam(p), [L2(0.1, params={"*": 0.0})], id="Adam with zero mapping"),
        pytest.param(lambda p: torch.optim.Adam(p), None, id="Adam alone"),
    ],
)
def test_fine_combinations_do_not_warn(make_optimizer, penalties):
    messages, record = issued_warnings(make_optimizer(nn.Linear(2, 2).parameters()), penalties)

    assert messages == []
    assert record == []


def test_adam_decoupled_flag_does_not_warn():
    if "decoupled_weight_decay" not in inspect.signature(torch.optim.Adam).parameters:
        pytest.skip("this PyTorch version's Adam has no decoupled_weight_decay flag")
    optimizer = torch.optim.Adam(nn.Linear(2, 2).parameters(), weight_decay=0.01, decoupled_weight_decay=True)

    messages, record = issued_warnings(optimizer)

    assert messages == []
    assert record == []


# --------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------


def test_from_keras_l2_matches_keras_term():
    # Keras's regularizers.L2(l2) adds l2 · Σw².
    layer = hand_linear()
    keras_l2 = 0.01

    assert from_keras_l2(keras_l2) == 0.02
    assert L2(from_keras_l2(keras_l2))(layer).item() == pytest.approx(keras_l2 * 15.25, rel=1e-15)


def test_from_sklearn_alpha_matches_sklearn_term():
    # scikit-learn's MLP adds alpha / (2 · n_batch) · Σw² to the mean batch loss.
    layer = hand_linear()
    alpha, batch_size = 1e-4, 200

    assert from_sklearn_alpha(alpha, batch_size) == alpha / batch_size
    expected = alpha / (2 * batch_size) * 15.25
    assert L2(from_sklearn_alpha(alpha, batch_size))(layer).item() == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(("half", "factor"), [(True, 0.5), (False, 1.0)])
def test_from_textbook_matches_cost_function(half, factor):
    # The textbook term is factor · λ/n · Σw² with factor 1/2 when half=True.
    layer = hand_linear()
    lam, n = 5.0, 50_000

    strength = from_textbook(lam, n, half=half)

    assert strength == (lam / n if half else 2 * lam / n)
    assert L2(strength)(layer).item() == pytest.approx(factor * lam / n * 15.25, rel=1e-15)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: from_keras_l2(-1.0), "from_keras_l2: l2 must be >= 0 (use 0 to switch it off), got -1.0."),
        (lambda: from_sklearn_alpha(1e-4, 0), "from_sklearn_alpha: batch_size must be an int >= 1, got 0."),
        (lambda: from_sklearn_alpha(1e-4, 2.5), "from_sklearn_alpha: batch_size must be an int >= 1, got 2.5."),
        (lambda: from_textbook(-5.0, 10), "from_textbook: lam must be >= 0 (use 0 to switch it off), got -5.0."),
        (lambda: from_textbook(5.0, 0), "from_textbook: n must be an int >= 1, got 0."),
        (lambda: from_textbook(5.0, 10, half="yes"), "from_textbook: half must be True or False, got 'yes'."),
    ],
)
def test_conversion_invalid_arguments(call, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        call()


# --------------------------------------------------------------------------------------
# MaxNorm
# --------------------------------------------------------------------------------------


def linear_with_rows(rows: list[list[float]]) -> nn.Linear:
    layer = nn.Linear(len(rows[0]), len(rows)).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(rows, dtype=torch.float64))
        layer.bias.fill_(10.0)
    return layer


def test_max_norm_rescales_long_rows_only():
    layer = linear_with_rows([[3.0, 4.0, 0.0], [0.1, -0.2, 0.3], [-6.0, 0.0, 8.0], [0.6, 0.8, 0.0]])
    before = layer.weight.detach().clone()

    MaxNorm(2.0)(layer)

    norms = torch.linalg.vector_norm(layer.weight, dim=1)
    assert torch.all(norms <= 2.0 + 1e-6)
    torch.testing.assert_close(norms[[0, 2]], torch.tensor([2.0, 2.0], dtype=torch.float64), rtol=1e-15, atol=0)
    # Rows inside the ball stay bit-for-bit, rescaled rows keep their direction.
    assert torch.equal(layer.weight[[1, 3]], before[[1, 3]])
    torch.testing.assert_close(layer.weight[0], before[0] * (2.0 / 5.0), rtol=1e-15, atol=0)
    torch.testing.assert_close(layer.weight[2], before[2] * (2.0 / 10.0), rtol=1e-15, atol=0)
    assert torch.equal(layer.bias, torch.full((4,), 10.0, dtype=torch.float64))


def test_max_norm_conv_filters():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, kernel_size=3)
    with torch.no_grad():
        conv.weight.mul_(10.0)
        conv.weight[4].mul_(0.001)
    before = conv.weight.detach().clone()

    MaxNorm(1.5)(conv)

    norms = torch.linalg.vector_norm(conv.weight, dim=(1, 2, 3))
    before_norms = torch.linalg.vector_norm(before, dim=(1, 2, 3))
    assert torch.all(norms <= 1.5 + 1e-6)
    assert before_norms[4] < 1.5
    assert torch.equal(conv.weight[4], before[4])
    cosine = nn.functional.cosine_similarity(conv.weight.flatten(1), before.flatten(1), dim=1)
    torch.testing.assert_close(cosine, torch.ones(5), rtol=0, atol=1e-6)


def test_max_norm_explicit_dim_constrains_columns():
    layer = linear_with_rows([[3.0, 0.1], [4.0, 0.1]])

    MaxNorm(1.0, dim=0)(layer)

    torch.testing.assert_close(
        layer.weight, torch.tensor([[0.6, 0.1], [0.8, 0.1]], dtype=torch.float64), rtol=1e-15, atol=0
    )


def test_max_norm_all_clips_bias_elements():
    layer = linear_with_rows([[0.1, 0.1], [0.1, 0.1], [0.1, 0.1]])
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([10.0, -10.0, 0.5]))

    MaxNorm(3.0, params="all")(layer)

    assert torch.equal(layer.bias, torch.tensor([3.0, -3.0, 0.5], dtype=torch.float64))


def test_max_norm_per_layer_values():
    model = nn.Sequential(linear_with_rows([[3.0, 4.0]]), linear_with_rows([[3.0, 4.0]]))

    MaxNorm(100.0, params={"0.weight": 1.0, "*.weight": 2.5})(model)

    torch.testing.assert_close(model[0].weight, torch.tensor([[0.6, 0.8]], dtype=torch.float64))
    torch.testing.assert_close(model[1].weight, torch.tensor([[1.5, 2.0]], dtype=torch.float64))


def test_max_norm_keeps_norms_bounded_in_training():
    model = make_mlp(seed=5)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    max_norm = MaxNorm(0.5)

    for inputs, targets in classification_batches(20):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
        max_norm(model)

    for name, param in model.named_parameters():
        if param.dim() >= 2:
            assert torch.all(torch.linalg.vector_norm(param, dim=1) <= 0.5 + 1e-6), name
            assert param.grad_fn is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_value": 0}, "MaxNorm: max_value must be > 0, got 0.0."),
        ({"max_value": -1.0}, "MaxNorm: max_value must be > 0, got -1.0."),
        ({"max_value": float("nan")}, "MaxNorm: max_value must be a finite number, got nan."),
        (
            {"max_value": 1.0, "dim": "1"},
            "MaxNorm: dim must be None, an int or a non-empty tuple of ints, got '1'.",
        ),
        (
            {"max_value": 1.0, "dim": ()},
            "MaxNorm: dim must be None, an int or a non-empty tuple of ints, got ().",
        ),
        ({"max_value": 1.0, "params": {"*.weight": 0.0}}, "MaxNorm: params['*.weight'] must be > 0, got 0.0."),
    ],
)
def test_max_norm_invalid_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        MaxNorm(**kwargs)


def test_max_norm_dim_out_of_range_raises():
    message = "MaxNorm: dim must be a valid dimension for parameter 'weight' of shape (2, 3), got 2."

    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        MaxNorm(1.0, dim=2)(nn.Linear(3, 2))


def test_max_norm_repr():
    assert repr(MaxNorm(3.0)) == "MaxNorm(max_value=3.0, dim=None, params='weights')"


# --------------------------------------------------------------------------------------
# Weight report and sparsity
# --------------------------------------------------------------------------------------


def test_weight_report_hand_computed():
    model = nn.Sequential(
        linear_with_rows([[3.0, 5e-4], [0.0, -4.0]]),
        nn.BatchNorm1d(2),
        linear_with_rows([[1e-5, 2.0]]),
    )

    report = weight_report(model, threshold=1e-3)

    assert report == [
        LayerWeightStats(
            name="0.weight",
            shape=(2, 2),
            n_params=4,
            l2_norm=pytest.approx(math.sqrt(25.0 + 2.5e-7), rel=1e-15),
            l1_norm=pytest.approx(7.0005, rel=1e-15),
            max_abs=4.0,
            sparsity=0.5,
        ),
        LayerWeightStats(
            name="2.weight",
            shape=(1, 2),
            n_params=2,
            l2_norm=pytest.approx(math.sqrt(4.0 + 1e-10), rel=1e-15),
            l1_norm=pytest.approx(2.00001, rel=1e-15),
            max_abs=2.0,
            sparsity=0.5,
        ),
    ]


def test_weight_report_threshold_changes_sparsity():
    layer = linear_with_rows([[3.0, 5e-4], [0.0, -4.0]])

    assert weight_report(layer, threshold=1e-4)[0].sparsity == 0.25
    assert weight_report(layer, threshold=1.0)[0].sparsity == 0.5


def test_sparsity_over_all_weights():
    model = nn.Sequential(linear_with_rows([[3.0, 5e-4], [0.0, -4.0]]), linear_with_rows([[1e-5, 2.0]]))

    assert sparsity(model, threshold=1e-3) == 3 / 6
    assert sparsity(model, threshold=1e-3, params="all") == 3 / 9


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sparsity(nn.Linear(2, 2), threshold=0.0), "sparsity: threshold must be > 0, got 0.0."),
        (lambda: weight_report(nn.Linear(2, 2), threshold=-1), "weight_report: threshold must be > 0, got -1.0."),
        (
            lambda: sparsity(nn.ReLU()),
            "sparsity: params must select at least one parameter element, got none for 'weights'.",
        ),
    ],
)
def test_report_invalid_arguments(call, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        call()


def test_l1_training_increases_sparsity():
    # A strong L1 penalty pushes many weights towards zero, and the report shows it.
    plain = make_mlp(seed=6)
    with_l1 = make_mlp(seed=6)
    train_sgd(plain, torch.optim.SGD(plain.parameters(), lr=0.05), steps=200)
    train_sgd(with_l1, torch.optim.SGD(with_l1.parameters(), lr=0.05), L1(0.02), steps=200)

    assert sparsity(with_l1, threshold=1e-2) > sparsity(plain, threshold=1e-2) + 0.2
    l1_norms = [stats.l1_norm for stats in weight_report(with_l1)]
    plain_norms = [stats.l1_norm for stats in weight_report(plain)]
    assert all(a < b for a, b in zip(l1_norms, plain_norms))


# --------------------------------------------------------------------------------------
# Docstring examples
# --------------------------------------------------------------------------------------


PACKAGE_MODULES = ["selection", "penalty", "optim", "conversions", "max_norm", "report"]


@pytest.mark.parametrize("module_name", PACKAGE_MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(f"reglab.penalties.{module_name}")
    globs = {name: getattr(penalties_pkg, name) for name in penalties_pkg.__all__}
    globs.update(torch=torch, nn=nn)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RegularizationWarning)
        result = doctest.testmod(module, globs=globs, optionflags=doctest.NORMALIZE_WHITESPACE)

    assert result.failed == 0
    assert result.attempted > 0
