"""Layers: dropout, DropConnect, the eval-mode determinism check and model builders."""

from reglab.nn.checks import NondeterministicEvalError, check_eval_deterministic
from reglab.nn.dropconnect import DropConnectConv2d, DropConnectLinear
from reglab.nn.dropout import Dropout
from reglab.nn.models import ModelSpec, build_model, dropconnect_rates, dropout_rates, parse_model_spec

__all__ = [
    "DropConnectConv2d",
    "DropConnectLinear",
    "Dropout",
    "ModelSpec",
    "NondeterministicEvalError",
    "build_model",
    "check_eval_deterministic",
    "dropconnect_rates",
    "dropout_rates",
    "parse_model_spec",
]
