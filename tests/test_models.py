"""Model specs and builders."""

import pytest
import torch
from torch import nn

from reglab.errors import ConfigError
from reglab.nn import Dropout
from reglab.nn.models import ModelSpec, build_model, parse_model_spec


def test_parse_mlp_spec():
    assert parse_model_spec("mlp:512,256") == ModelSpec("mlp", (512, 256))
    assert str(parse_model_spec(" MLP:64 ")) == "mlp:64"


def test_parse_softmax_spec():
    assert parse_model_spec("softmax") == ModelSpec("softmax")


@pytest.mark.parametrize("spec", ["cnn", "mlp", "mlp:", "mlp:a,b", "mlp:0", "mlp:-3", "resnet:18"])
def test_parse_rejects_bad_spec(spec):
    with pytest.raises(ConfigError, match=r"model spec .*expected 'softmax' or 'mlp:W1,W2,\.\.\.'"):
        parse_model_spec(spec)


def test_mlp_layers_and_output_shape():
    model = build_model("mlp:32,16", (1, 8, 8), 10)

    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 32), (32, 16), (16, 10)]
    assert model(torch.zeros(5, 1, 8, 8)).shape == (5, 10)
    assert not any(isinstance(m, Dropout) for m in model)


def test_mlp_dropout_positions():
    model = build_model("mlp:32,16", (2,), 3, input_p=0.2, hidden_p=0.5)

    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Flatten", "Dropout", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [m.p for m in model if isinstance(m, Dropout)] == [0.2, 0.5, 0.5]


def test_softmax_is_one_linear_layer():
    model = build_model("softmax", (1, 28, 28), 10)

    assert [type(m).__name__ for m in model] == ["Flatten", "Linear"]
