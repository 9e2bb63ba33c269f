"""Inference batch sizes from activation sizes, and the layout of the built-in convolution networks."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from reglab.errors import ConfigError
from reglab.inference import mc_predict
from reglab.nn.batch_size import inference_batch_size
from reglab.nn.models import build_model
from reglab.training.evaluate import evaluate


def test_mlp_batch_follows_its_widest_layer():
    # The flattened input, 784 floats, is the largest output: 4 MiB fits 1,337 rows.
    model = build_model("mlp:512,512", (1, 28, 28), 10)
    assert inference_batch_size(model, torch.zeros(5, 1, 28, 28)) == 1024
    assert inference_batch_size(model, torch.zeros(5, 1, 28, 28), budget_bytes=2**30) == 2048


def test_cnn_batch_keeps_largest_activation_in_budget():
    # The first block outputs 32 x 28 x 28 floats, 100,352 bytes per image: 16 MiB holds 167.
    model = build_model("cnn:32,64", (1, 28, 28), 10)
    assert inference_batch_size(model, torch.zeros(3, 1, 28, 28), budget_bytes=16 * 2**20) == 128
    assert inference_batch_size(model, torch.zeros(3, 1, 28, 28)) == 64


def test_trial_pass_changes_no_state():
    torch.manual_seed(0)
    model = build_model("cnn:4,8:bn", (1, 8, 8), 3, hidden_p=0.5)
    model.train()
    model[1].eval()  # a mixed mode that must survive the trial pass
    modes = [module.training for module in model.modules()]
    buffers = {name: value.clone() for name, value in model.named_buffers()}
    x = torch.randn(4, 1, 8, 8)
    rng = torch.get_rng_state()

    inference_batch_size(model, x)

    assert [module.training for module in model.modules()] == modes
    assert torch.equal(torch.get_rng_state(), rng)
    for name, value in model.named_buffers():
        assert torch.equal(value, buffers[name]), name


def test_evaluate_batch_size_keeps_metrics():
    torch.manual_seed(0)
    model = build_model("cnn:8,16:bn", (1, 16, 16), 4)
    x, y = torch.randn(300, 1, 16, 16), torch.randint(0, 4, (300,))
    loss, acc = evaluate(model, x, y)
    loss_32, acc_32 = evaluate(model, x, y, batch_size=32)
    assert acc == acc_32
    assert abs(loss - loss_32) < 1e-5


def test_mc_predict_default_batches_follow_the_activations():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 300_000), nn.ReLU(), nn.Dropout(0.5), nn.Linear(300_000, 2))
    calls = []
    model[1].register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    mc_predict(model, torch.randn(100, 4), samples=20)
    # 300,000 floats per example: 4 MiB fits 3, below the floor of 64 rows. The first call is the trial pass.
    assert calls[0] == 1
    assert set(calls[1:]) == {64, 36}


def test_builtin_conv_networks_are_channels_last():
    for spec in ("cnn:8,16:bn", "lenet"):
        model = build_model(spec, (1, 28, 28), 10)
        convs = [module for module in model.modules() if isinstance(module, nn.Conv2d)]
        assert all(conv.weight.is_contiguous(memory_format=torch.channels_last) for conv in convs), spec
        assert not convs[1].weight.is_contiguous(), spec


class _Recurrent(nn.Module):
    """An LSTM classifier: the LSTM returns a tuple of tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 4096, batch_first=True)
        self.head = nn.Linear(4096, 2)

    def forward(self, x):
        output, _ = self.lstm(x)
        return self.head(output[:, -1])


def test_tuple_outputs_count_toward_the_budget():
    # 64 steps of 4,096 floats: 1 MiB per example, so the 64-row floor applies.
    assert inference_batch_size(_Recurrent(), torch.zeros(2, 64, 8)) == 64


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"largest": 0}, "largest must be an int >= 1, got 0"),
        ({"smallest": 0}, "smallest must be an int >= 1, got 0"),
        ({"smallest": 4096, "largest": 8}, "smallest=4096 is above largest=8"),
        ({"budget_bytes": 2.5}, "budget_bytes must be an int >= 1, got 2.5"),
    ],
)
def test_inference_batch_size_rejects_bad_limits(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        inference_batch_size(nn.Linear(4, 2), torch.zeros(3, 4), **kwargs)


def test_inference_batch_size_rejects_a_list():
    with pytest.raises(ConfigError, match="x must be a tensor of inputs, got list"):
        inference_batch_size(nn.Linear(4, 2), [[0.0] * 4])


@pytest.mark.parametrize(
    ("x", "y", "batch_size", "message"),
    [
        (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), None, "x is empty"),
        (torch.zeros(3, 4), torch.zeros(2, dtype=torch.long), None, "x has 3 rows but y has 2"),
        (torch.zeros(3, 4), torch.zeros(3, dtype=torch.long), -5, "batch_size must be an int >= 1, got -5"),
        (torch.zeros(3, 4), torch.zeros(3, dtype=torch.long), 2.5, "batch_size must be an int >= 1, got 2.5"),
    ],
)
def test_evaluate_rejects_bad_input(x, y, batch_size, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        evaluate(nn.Linear(4, 2), x, y, batch_size=batch_size)


def test_evaluate_restores_modes_when_the_pass_raises():
    model = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.5)).train()
    with pytest.raises(RuntimeError):
        evaluate(model, torch.zeros(3, 5), torch.zeros(3, dtype=torch.long), batch_size=2)
    assert all(module.training for module in model.modules())
