"""Learning-rate schedules, stepped after every minibatch.

:func:`build_scheduler` turns a :class:`~reglab.training.config.ScheduleSettings` into a
``torch.optim.lr_scheduler.LambdaLR`` whose factor multiplies the run's learning rate
``lr``. The schedule lasts the run's ``epochs`` and advances once per minibatch, so the rate
changes smoothly within an epoch. With ``S`` minibatches per epoch, ``W = warmup_epochs · S``
warm-up steps and ``M = epochs · S - W`` remaining steps, the rate of step ``t`` (0-based)
is:

* warm-up, ``t < W``: ``lr · (t + 1) / (W + 1)``, a linear rise that reaches ``lr`` at the
  first step after it (Goyal et al., 2017, "Accurate, Large Minibatch SGD: Training
  ImageNet in 1 Hour").
* then, with ``s = t - W``:

  * ``cosine``: ``lr · (1 + cos(π s / M)) / 2``, cosine annealing to 0 without restarts
    (Loshchilov & Hutter, 2017, "SGDR: Stochastic Gradient Descent with Warm Restarts"),
    as ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=M)``.
  * ``step``: ``lr · gamma ** floor(s / (step_size · S))``, as ``StepLR`` with the step size
    counted in epochs.
  * ``one-cycle``: the learning-rate curve of ``torch.optim.lr_scheduler.OneCycleLR`` with
    ``max_lr=lr``, ``total_steps=M`` and its defaults (``pct_start=0.3``, cosine annealing,
    ``div_factor=25``, ``final_div_factor=1e4``): from ``lr/25`` up to ``lr`` over the first
    30% of the steps, then down to ``lr/25/1e4`` (Smith & Topin, 2019, "Super-Convergence").
    Unlike ``OneCycleLR``'s default, momentum is not cycled: every strategy keeps the
    optimizer's momentum, so the schedule changes only the learning rate.

The tests check each curve against the torch scheduler named above.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import LambdaLR

from reglab.training.config import ScheduleSettings

# OneCycleLR's defaults (torch 2.x).
_ONE_CYCLE_PCT_START = 0.3
_ONE_CYCLE_DIV_FACTOR = 25.0
_ONE_CYCLE_FINAL_DIV_FACTOR = 1e4


def build_scheduler(
    optimizer: torch.optim.Optimizer, settings: ScheduleSettings, *, epochs: int, steps_per_epoch: int
) -> LambdaLR:
    """Return a per-minibatch ``LambdaLR`` that follows ``settings`` over ``epochs`` epochs.

    Call its ``step()`` after every ``optimizer.step()``.

    Args:
        optimizer: the optimizer whose learning rate the schedule scales.
        settings: the schedule's name and parameters.
        epochs: the run's epoch budget; the schedule ends after it.
        steps_per_epoch: minibatches per epoch.
    """
    return LambdaLR(optimizer, schedule_factor(settings, epochs=epochs, steps_per_epoch=steps_per_epoch))


def schedule_factor(settings: ScheduleSettings, *, epochs: int, steps_per_epoch: int) -> Callable[[int], float]:
    """Return the function from a 0-based minibatch step to the factor on the learning rate."""
    warmup = settings.warmup_epochs * steps_per_epoch
    steps = max(1, epochs * steps_per_epoch - warmup)
    main = _MAIN_SCHEDULES[settings.name](settings, steps, steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return main(min(step - warmup, steps))

    return factor


def _cosine(settings: ScheduleSettings, steps: int, steps_per_epoch: int) -> Callable[[int], float]:
    return lambda step: 0.5 * (1.0 + math.cos(math.pi * step / steps))


def _step(settings: ScheduleSettings, steps: int, steps_per_epoch: int) -> Callable[[int], float]:
    period = settings.step_size * steps_per_epoch
    return lambda step: settings.gamma ** (step // period)


def _one_cycle(settings: ScheduleSettings, steps: int, steps_per_epoch: int) -> Callable[[int], float]:
    start = 1.0 / _ONE_CYCLE_DIV_FACTOR
    end = start / _ONE_CYCLE_FINAL_DIV_FACTOR
    peak_step = float(_ONE_CYCLE_PCT_START * steps) - 1
    last_step = steps - 1

    def anneal(begin: float, finish: float, fraction: float) -> float:
        return finish + (begin - finish) / 2.0 * (math.cos(math.pi * fraction) + 1)

    def factor(step: int) -> float:
        # OneCycleLR's two phases: phase 1 ends at peak_step, phase 2 at last_step.
        if step <= peak_step:
            return anneal(start, 1.0, step / peak_step if peak_step > 0 else 1.0)
        return anneal(1.0, end, min(1.0, (step - peak_step) / (last_step - peak_step)))

    return factor


_MAIN_SCHEDULES = {"cosine": _cosine, "step": _step, "one-cycle": _one_cycle}
