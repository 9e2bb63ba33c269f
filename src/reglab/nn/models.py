"""Model builders for the specs that the command line and study files accept.

:func:`build_model` turns a spec (see :mod:`reglab.nn.model_spec` for the grammar) into a
network that returns logits. ``softmax`` and ``mlp`` start with ``nn.Flatten``, so they take
images ``(N, C, H, W)`` and feature vectors ``(N, F)``. ``cnn`` and ``lenet`` take images
only. Every built-in network is one flat ``nn.Sequential``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import nn

from reglab.errors import ConfigError
from reglab.nn.dropconnect import DropConnectConv2d, DropConnectLinear
from reglab.nn.dropout import Dropout
from reglab.nn.model_check import allocation_error, check_model_memory, check_model_output
from reglab.nn.model_spec import ModelSpec, layer_rates, parse_model_spec, user_module_error
from reglab.nn.user_module import build_user_module

# A single dropout p gives convolution blocks half the rate of fully connected layers:
# Srivastava et al. (2014, JMLR) used 0.1 to 0.25 after convolution layers and
# 0.5 in fully connected layers. A single DropConnect p reaches fully connected layers
# only, where Wan et al. (2013) applied it.
DROPOUT_CONV_SCALE = 0.5
DROPCONNECT_CONV_SCALE = 0.0


def dropout_rates(spec: str | ModelSpec, p: float | Sequence[float]) -> tuple[float, ...]:
    """Return the dropout probability after each site of ``spec`` (see :class:`ModelSpec`).

    A single ``p`` applies after every fully connected hidden layer and ``p / 2`` after every
    convolution block. A list gives one probability per site.
    """
    parsed = parse_model_spec(spec) if isinstance(spec, str) else spec
    return layer_rates(parsed, p, setting="dropout.p", conv_scale=DROPOUT_CONV_SCALE)


def dropconnect_rates(spec: str | ModelSpec, p: float | Sequence[float]) -> tuple[float, ...]:
    """Return the DropConnect probability of each site's weights.

    A single ``p`` applies to every fully connected hidden layer and leaves convolutions
    plain. A list gives one probability per site, so convolutions can be masked too.
    """
    parsed = parse_model_spec(spec) if isinstance(spec, str) else spec
    return layer_rates(parsed, p, setting="dropconnect.p", conv_scale=DROPCONNECT_CONV_SCALE)


def build_model(
    spec: str | ModelSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    input_p: float = 0.0,
    hidden_p: float | Sequence[float] = 0.0,
    dropout_mode: str = "inverted",
    dropconnect_p: float | Sequence[float] = 0.0,
) -> nn.Module:
    """Build the network that ``spec`` names. The network returns logits.

    Dropout and DropConnect layers are only inserted where their probability is above zero,
    so a model without them contains plain ``nn.Linear`` and ``nn.Conv2d`` layers only.

    Args:
        spec: a model spec string or a parsed :class:`ModelSpec`.
        input_shape: shape of one example, e.g. ``(1, 28, 28)`` or ``(2,)``.
        num_classes: number of output logits.
        input_p: drop probability applied to the input.
        hidden_p: drop probability after each site, one number or one per site (see
            :func:`dropout_rates`).
        dropout_mode: ``"inverted"`` or ``"classic"``, see :class:`reglab.nn.Dropout`.
        dropconnect_p: DropConnect probability of each site's weights, one number or one
            per site (see :func:`dropconnect_rates`). The output layer is never masked.

    Shape:
        - Input: ``(N, *input_shape)``.
        - Output: ``(N, num_classes)``.

    Raises:
        ConfigError: ``input_shape`` is empty or not positive ints, ``num_classes`` is not an
            int >= 1, ``cnn`` or ``lenet`` gets an input that is not an image large enough
            for its poolings; a per-site list has the wrong length; a user module gets
            dropout or DropConnect; a user module's factory fails the checks of
            :func:`reglab.nn.user_module.build_user_module`; a built-in model would not
            fit in memory (:func:`reglab.nn.model_check.check_model_memory`); the network
            fails a forward pass on a trial batch or does not return ``(N, num_classes)``
            logits (:func:`reglab.nn.model_check.check_model_output`).

    Example::

        >>> model = build_model("cnn:32,64:bn", (1, 28, 28), 10, hidden_p=0.5)
        >>> model(torch.zeros(4, 1, 28, 28)).shape
        torch.Size([4, 10])
    """
    parsed = parse_model_spec(spec) if isinstance(spec, str) else spec
    input_shape = tuple(input_shape)
    if not input_shape or not all(_is_count(size) and size > 0 for size in input_shape):
        raise ConfigError(
            f"build_model: input_shape must be the shape of one example, positive ints such as (1, 28, 28) "
            f"or (2,), got {input_shape!r}."
        )
    if not _is_count(num_classes) or num_classes < 1:
        raise ConfigError(f"build_model: num_classes must be an int >= 1, got {num_classes!r}.")
    input_shape, num_classes = tuple(int(size) for size in input_shape), int(num_classes)
    if parsed.kind == "module":
        if input_p > 0:
            raise user_module_error(parsed)
        dropout_rates(parsed, hidden_p)
        dropconnect_rates(parsed, dropconnect_p)
        model = build_user_module(str(parsed), parsed.target, input_shape, num_classes)
    else:
        settings = {"input_p": input_p, "hidden_p": hidden_p, "dropout_mode": dropout_mode, "dropconnect_p": dropconnect_p}
        check_model_memory(str(parsed), input_shape, lambda: _build_builtin(parsed, input_shape, num_classes, **settings))
        try:
            model = _build_builtin(parsed, input_shape, num_classes, **settings)
        except RuntimeError as error:
            converted = allocation_error(str(parsed), error)
            if converted is None:
                raise
            raise converted from error
    check_model_output(model, str(parsed), input_shape, num_classes)
    return model


def _is_count(value: object) -> bool:
    """Return whether ``value`` is an integer (Python's or NumPy's) and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _build_builtin(
    parsed: ModelSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    input_p: float,
    hidden_p: float | Sequence[float],
    dropout_mode: str,
    dropconnect_p: float | Sequence[float],
) -> nn.Module:
    """Build a softmax, mlp, cnn or lenet network; see :func:`build_model`."""
    drop = dropout_rates(parsed, hidden_p)
    connect = dropconnect_rates(parsed, dropconnect_p)
    layers = _Layers(drop, connect, dropout_mode)
    if parsed.kind in ("softmax", "mlp"):
        width_in = math.prod(input_shape)
        layers.append(nn.Flatten())
    if input_p > 0:
        layers.append(Dropout(input_p, mode=dropout_mode))

    if parsed.kind in ("softmax", "mlp"):
        for width in parsed.hidden:
            layers.linear_site(width_in, width)
            width_in = width
    elif parsed.kind == "cnn":
        channels, height, width = _image_shape(parsed, input_shape, len(parsed.channels), 2 ** len(parsed.channels))
        for out_channels in parsed.channels:
            layers.conv_site(channels, out_channels, 3, padding=1, batch_norm=parsed.batch_norm, convs=parsed.convs)
            channels, height, width = out_channels, height // 2, width // 2
        layers.append(nn.Flatten())
        layers.linear_site(channels * height * width, parsed.fc)
        width_in = parsed.fc
    else:
        width_in = _lenet_features(parsed, input_shape, layers)
        layers.linear_site(width_in, 120)
        layers.linear_site(120, 84)
        width_in = 84

    layers.append(nn.Linear(width_in, num_classes))
    model = nn.Sequential(*layers.modules)
    if parsed.kind in ("cnn", "lenet"):
        # Channels-last convolution weights make the convolutions, BatchNorm and pooling run
        # on NHWC activations, which oneDNN computes faster on CPU: a training step of
        # cnn:32,64:bn took about 96 ms against 138 ms (batch 128, one thread).
        model = model.to(memory_format=torch.channels_last)
    return model


def _lenet_features(spec: ModelSpec, input_shape: tuple[int, ...], layers: _Layers) -> int:
    """Append LeNet-5's two convolution blocks; return the number of flattened features.

    LeCun et al. (1998) fed 32x32 images to an unpadded 5x5 convolution. Padding 2 keeps a
    28x28 image at 28x28, so MNIST reaches the same 16x5x5 features as the original.
    """
    channels, height, width = _image_shape(spec, input_shape, 2, 12)
    layers.conv_site(channels, 6, 5, padding=2)
    height, width = height // 2, width // 2
    layers.conv_site(6, 16, 5, padding=0)
    height, width = (height - 4) // 2, (width - 4) // 2
    layers.append(nn.Flatten())
    return 16 * height * width


def _image_shape(spec: ModelSpec, input_shape: tuple[int, ...], poolings: int, minimum: int) -> tuple[int, int, int]:
    """Return ``(C, H, W)``, raising ConfigError unless the input is an image of at least ``minimum`` pixels a side."""
    if len(input_shape) != 3:
        raise ConfigError(
            f"model {str(spec)!r} needs images shaped (C, H, W), got input shape {input_shape}; "
            "use 'mlp:...' or 'softmax' for feature vectors."
        )
    channels, height, width = input_shape
    if min(height, width) < minimum:
        if spec.kind == "cnn" and poolings == 2:
            fix = "use 'mlp:...' or 'softmax'"
        else:
            fix = "use 'cnn:C1,C2' (two blocks, images of at least 4x4 pixels) or 'mlp:...'"
        raise ConfigError(
            f"model {str(spec)!r} pools {poolings} times and needs images of at least {minimum}x{minimum} pixels, "
            f"got input shape {input_shape}; {fix}."
        )
    return channels, height, width


class _Layers:
    """The module list of a network being built, with each site's dropout and DropConnect."""

    def __init__(self, dropout: tuple[float, ...], dropconnect: tuple[float, ...], dropout_mode: str) -> None:
        self.modules: list[nn.Module] = []
        self.dropout = dropout
        self.dropconnect = dropconnect
        self.dropout_mode = dropout_mode
        self.site = 0

    def append(self, module: nn.Module) -> None:
        self.modules.append(module)

    def linear_site(self, in_features: int, out_features: int) -> None:
        """Append Linear -> ReLU -> [Dropout]."""
        p = self.dropconnect[self.site]
        self.append(DropConnectLinear(in_features, out_features, p=p) if p > 0 else nn.Linear(in_features, out_features))
        self.append(nn.ReLU())
        self._end_site()

    def conv_site(
        self, in_channels: int, out_channels: int, kernel: int, *, padding: int, batch_norm: bool = False, convs: int = 1
    ) -> None:
        """Append ``convs`` times Conv2d -> [BatchNorm2d] -> ReLU, then 2x2 max-pool -> [Dropout].

        The site's DropConnect probability applies to every convolution of the block.
        """
        p = self.dropconnect[self.site]
        for _ in range(convs):
            if p > 0:
                self.append(DropConnectConv2d(in_channels, out_channels, kernel, p=p, padding=padding))
            else:
                self.append(nn.Conv2d(in_channels, out_channels, kernel, padding=padding))
            if batch_norm:
                self.append(nn.BatchNorm2d(out_channels))
            self.append(nn.ReLU())
            in_channels = out_channels
        self.append(nn.MaxPool2d(2))
        self._end_site()

    def _end_site(self) -> None:
        p = self.dropout[self.site]
        if p > 0:
            self.append(Dropout(p, mode=self.dropout_mode))
        self.site += 1


__all__ = ["ModelSpec", "build_model", "dropconnect_rates", "dropout_rates", "parse_model_spec"]
