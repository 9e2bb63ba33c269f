"""Per-layer diagnostics of a trained model: weight norms, sparsity and dead ReLUs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch
from torch import Tensor, nn

from reglab.nn.batch_size import inference_batch_size
from reglab.nn.dropout import Dropout
from reglab.penalties import weight_report


# Modules that may sit between a weight layer and the ReLU that it feeds.
_BETWEEN_LAYER_AND_RELU = (nn.Dropout, Dropout, nn.BatchNorm2d)


def dead_relu_fractions(model: nn.Module, x: Tensor, batch_size: int | None = None) -> list[float]:
    """Return, for each ``nn.ReLU`` in ``model``, the fraction of units that output 0 for every row of ``x``.

    A unit is a feature of an ``(N, units)`` output or a channel of an ``(N, C, H, W)``
    output; a channel is dead when it outputs 0 at every position for every row. The model
    runs in eval mode without gradients, and its mode is restored afterwards.

    Args:
        model: a network whose ReLU modules output ``(N, units)`` or ``(N, C, ...)``.
        x: the inputs, already normalized as the model expects.
        batch_size: rows per forward pass; None picks it from the size of the model's
            activations with :func:`reglab.nn.batch_size.inference_batch_size`.
    """
    if batch_size is None:
        batch_size = inference_batch_size(model, x)
    relus = [module for module in model.modules() if isinstance(module, nn.ReLU)]
    ever_active: list[Tensor | None] = [None] * len(relus)

    def recorder(index: int):
        def record(module: nn.Module, inputs: object, output: Tensor) -> None:
            per_unit = output.transpose(0, 1).reshape(output.shape[1], -1) if output.dim() > 2 else output.T
            active = (per_unit > 0).any(dim=1)
            ever_active[index] = active if ever_active[index] is None else ever_active[index] | active

        return record

    handles = [relu.register_forward_hook(recorder(index)) for index, relu in enumerate(relus)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                model(x[start : start + batch_size])
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return [1.0 - active.float().mean().item() for active in ever_active]


def layer_stats(model: nn.Module, x: Tensor | None, dead_relu: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """Return one dict per weight matrix: its norms and sparsity, and ``dead_relu``.

    ``dead_relu`` is the fraction of the layer's units whose ReLU outputs 0 for every row of
    ``x`` (normalized inputs, usually the training split), or None for a layer that no ReLU
    follows, such as the output layer. Pairing assumes an ``nn.Sequential`` in which each
    hidden ``nn.Linear`` or ``nn.Conv2d`` comes before its ``nn.ReLU``, with at most dropout
    and BatchNorm between them, as :func:`reglab.nn.build_model` builds. Other networks get
    ``dead_relu`` None for every layer.

    Args:
        model: the network.
        x: the inputs of the dead-ReLU pass; unused when ``dead_relu`` is given.
        dead_relu: the fractions of :func:`dead_relu_fractions`, one per ``nn.ReLU``,
            when they were already computed, for example for several networks in one pass.
    """
    stats = [asdict(layer) for layer in weight_report(model)]
    if dead_relu is not None:
        dead = list(dead_relu)
    elif x is not None:
        parameter = next(model.parameters(), None)
        dead = dead_relu_fractions(model, x if parameter is None else x.to(parameter.dtype))
    else:
        raise ValueError("layer_stats: pass the inputs x or the precomputed dead_relu fractions.")

    hidden_weights = []
    if isinstance(model, nn.Sequential):
        modules = list(model.named_children())
        for position, (name, module) in enumerate(modules):
            follows = [m for _, m in modules[position + 1 :] if not isinstance(m, _BETWEEN_LAYER_AND_RELU)]
            if isinstance(module, (nn.Linear, nn.Conv2d)) and follows and isinstance(follows[0], nn.ReLU):
                hidden_weights.append(f"{name}.weight")

    dead_by_name = dict(zip(hidden_weights, dead)) if len(hidden_weights) == len(dead) else {}
    for layer in stats:
        layer["dead_relu"] = dead_by_name.get(layer["name"])
    return stats
