"""Optimizer construction for a run."""

from __future__ import annotations

import torch
from torch import nn

from reglab.training.config import OptimizerSettings


def build_optimizer(model: nn.Module, settings: OptimizerSettings, lr: float) -> torch.optim.Optimizer:
    """Build SGD (with momentum), Adam or AdamW for ``model``.

    AdamW's decoupled ``weight_decay`` (Loshchilov & Hutter, 2019) applies to weights only,
    the parameters with two or more dimensions, matching the default of reglab's penalties.
    """
    if settings.name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=settings.momentum)
    if settings.name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)

    weights = [param for param in model.parameters() if param.ndim >= 2]
    others = [param for param in model.parameters() if param.ndim < 2]
    groups = [
        {"params": weights, "weight_decay": settings.weight_decay},
        {"params": others, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr)
