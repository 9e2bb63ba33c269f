"""Model builders for the specs that the command line and study files accept.

A spec is a short string: ``softmax`` (one linear layer, multinomial logistic regression) or
``mlp:W1,W2,...`` (fully connected ReLU layers of the given widths). Every builder returns an
``nn.Sequential`` whose first module flattens the input, so the same model takes images
``(N, C, H, W)`` and feature vectors ``(N, F)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from reglab.errors import ConfigError
from reglab.nn.dropout import Dropout

_SPEC_HELP = "expected 'softmax' or 'mlp:W1,W2,...' with positive integer widths, for example 'mlp:512,512'"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec.

    Attributes:
        kind: ``"softmax"`` or ``"mlp"``.
        hidden: widths of the hidden layers, empty for ``softmax``.
    """

    kind: str
    hidden: tuple[int, ...] = ()

    def __str__(self) -> str:
        if self.kind == "softmax":
            return "softmax"
        return "mlp:" + ",".join(str(width) for width in self.hidden)


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse ``softmax`` or ``mlp:W1,W2,...``, raising ConfigError that names the spec."""
    text = spec.strip().lower()
    if text == "softmax":
        return ModelSpec("softmax")

    kind, _, widths = text.partition(":")
    if kind != "mlp" or not widths:
        raise ConfigError(f"Unknown model spec {spec!r}: {_SPEC_HELP}.")
    try:
        hidden = tuple(int(width) for width in widths.split(","))
    except ValueError:
        raise ConfigError(f"Invalid model spec {spec!r}: {_SPEC_HELP}.") from None
    if any(width <= 0 for width in hidden):
        raise ConfigError(f"Invalid model spec {spec!r}: {_SPEC_HELP}.")
    return ModelSpec("mlp", hidden)


def build_model(
    spec: str | ModelSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    input_p: float = 0.0,
    hidden_p: float = 0.0,
    dropout_mode: str = "inverted",
) -> nn.Sequential:
    """Build the network that ``spec`` names. The network returns logits.

    Dropout layers are only inserted where the drop probability is above zero, so a model
    without dropout has no dropout modules at all.

    Args:
        spec: a model spec string or a parsed :class:`ModelSpec`.
        input_shape: shape of one example, e.g. ``(1, 28, 28)`` or ``(2,)``.
        num_classes: number of output logits.
        input_p: drop probability applied to the flattened input.
        hidden_p: drop probability applied after every hidden ReLU.
        dropout_mode: ``"inverted"`` or ``"classic"``, see :class:`reglab.nn.Dropout`.

    Shape:
        - Input: ``(N, *input_shape)``.
        - Output: ``(N, num_classes)``.

    Example::

        >>> model = build_model("mlp:512,512", (1, 28, 28), 10, hidden_p=0.5)
        >>> model(torch.zeros(4, 1, 28, 28)).shape
        torch.Size([4, 10])
    """
    parsed = parse_model_spec(spec) if isinstance(spec, str) else spec
    in_features = math.prod(input_shape)

    layers: list[nn.Module] = [nn.Flatten()]
    if input_p > 0:
        layers.append(Dropout(input_p, mode=dropout_mode))

    width_in = in_features
    for width in parsed.hidden:
        layers += [nn.Linear(width_in, width), nn.ReLU()]
        if hidden_p > 0:
            layers.append(Dropout(hidden_p, mode=dropout_mode))
        width_in = width

    layers.append(nn.Linear(width_in, num_classes))
    return nn.Sequential(*layers)
