"""Checks that catch regularization layers misused at evaluation time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from reglab.errors import ReglabError
from reglab.nn.dropconnect import _DropConnectBase
from reglab.nn.dropout import _DropoutBase
from reglab.nn.masks import forked_rng

_TORCH_DROPOUT_TYPES = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


class NondeterministicEvalError(ReglabError, RuntimeError):
    """Two evaluation-mode forward passes on the same input gave different outputs."""


def is_stochastic_layer(module: nn.Module) -> bool:
    """Return whether ``module`` is a dropout or DropConnect layer, random in training mode.

    Recognized are the dropout layers of :mod:`torch.nn` (``Dropout``, ``Dropout1d``,
    ``Dropout2d``, ``Dropout3d``, ``AlphaDropout``, ``FeatureAlphaDropout``), reglab's
    :class:`~reglab.nn.dropout.Dropout`, and the DropConnect layers, with their
    subclasses. A module that calls a functional dropout in its own ``forward`` is not
    recognized.
    """
    return isinstance(module, (*_TORCH_DROPOUT_TYPES, _DropoutBase, _DropConnectBase))


@contextlib.contextmanager
def preserved_training_modes(*models: nn.Module) -> Iterator[None]:
    """Restore the ``training`` flag of every submodule of ``models`` when the block exits.

    The flags are restored also when the block raises. Modules are restored parent first
    through :meth:`~torch.nn.Module.train`, so an overridden ``train`` method is called.
    """
    saved = [(module, module.training) for model in models for module in model.modules()]
    try:
        yield
    finally:
        for module, training in saved:
            module.train(training)


def _same(a: Any, b: Any) -> bool:
    """Compare two outputs exactly, treating NaN as equal to NaN."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        if not (isinstance(a, Tensor) and isinstance(b, Tensor)):
            return False
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.is_floating_point() or a.is_complex():
            return bool(((a == b) | (a.isnan() & b.isnan())).all())
        return torch.equal(a, b)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _snapshot(output: Any) -> Any:
    """Copy the tensors of a module output, so later in-place operations cannot change it."""
    if isinstance(output, Tensor):
        return output.detach().clone()
    if isinstance(output, (tuple, list)):
        return [_snapshot(item) for item in output]
    if isinstance(output, dict):
        return {key: _snapshot(value) for key, value in output.items()}
    return output


def _describe(name: str, module: nn.Module) -> str:
    return f"'{name}' ({type(module).__name__})" if name else f"the model ({type(module).__name__})"


def check_eval_deterministic(model: nn.Module, example_input: Any) -> None:
    """Raise :class:`NondeterministicEvalError` if evaluation mode is random.

    The model runs twice in evaluation mode under :func:`torch.no_grad` on the same input,
    and the outputs must be equal (NaN counts as equal to NaN). The usual cause of a
    difference is a module that calls :func:`torch.nn.functional.dropout` without
    ``training=self.training``: that function defaults to ``training=True``, so it keeps
    dropping units after ``model.eval()``. The error names the first module, in the order
    in which modules finish their forward pass, that received equal inputs but returned
    different outputs.

    Modules that are random in evaluation on purpose declare it with a truthy attribute
    ``stochastic_eval``, as the DropConnect layers do with ``inference="mc"`` or
    ``"gaussian"``. They are exempt: during the check each call of such a module runs on
    a freshly seeded copy of the random number generator, so it returns the same output
    in both passes and leaves the other modules' random streams unchanged.

    The check changes nothing permanently: the ``training`` flag of every submodule and
    the global CPU and CUDA random number generator states are restored afterwards, also
    when the model raises.

    Args:
        model: the model to check.
        example_input: an input for the model. A tuple is unpacked into positional
            arguments, anything else is passed as the single argument. The check keeps
            a copy of every module's inputs and outputs, so a small batch suffices.

    Raises:
        NondeterministicEvalError: the two outputs differ.

    Example::

        >>> class Leaky(nn.Module):
        ...     def forward(self, x):
        ...         return torch.nn.functional.dropout(x, 0.5)
        >>> check_eval_deterministic(Leaky(), torch.ones(4, 8))
        Traceback (most recent call last):
        ...
        reglab.nn.checks.NondeterministicEvalError: ...
    """
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    names = {module: name for name, module in model.named_modules()}
    exempt = [module for module in names if getattr(module, "stochastic_eval", False)]

    records: list[tuple[nn.Module, Any, Any]] = []
    open_forks: list[contextlib.AbstractContextManager[None]] = []
    handles = []

    def record(module: nn.Module, inputs: Any, output: Any) -> None:
        records.append((module, _snapshot(inputs), _snapshot(output)))

    def enter_fork(module: nn.Module, inputs: Any) -> None:
        fork = forked_rng(seed=0)
        fork.__enter__()
        open_forks.append(fork)

    def exit_fork(module: nn.Module, inputs: Any, output: Any) -> None:
        open_forks.pop().__exit__(None, None, None)

    with preserved_training_modes(model), forked_rng(), torch.no_grad():
        model.eval()
        try:
            for module in exempt:
                handles.append(module.register_forward_pre_hook(enter_fork))
                handles.append(module.register_forward_hook(exit_fork))
            for module in names:
                handles.append(module.register_forward_hook(record))

            first = model(*args)
            first_records, records = records, []
            second = model(*args)
            second_records = records
        finally:
            for handle in handles:
                handle.remove()
            # A forward that raised inside an exempt module leaves its fork open. Close
            # it here, before the outer fork restores the caller's generator state.
            while open_forks:
                open_forks.pop().__exit__(None, None, None)

    if _same(first, second):
        return

    # Modules finish their forward pass before their parents, so the first module that
    # received equal inputs and returned different outputs is the innermost source.
    culprit = next(
        (
            module
            for (module, inputs_a, output_a), (_, inputs_b, output_b) in zip(
                first_records, second_records
            )
            if _same(inputs_a, inputs_b) and not _same(output_a, output_b)
        ),
        model,
    )
    layers = [_describe(names[m], m) for m in names if is_stochastic_layer(m) and m not in exempt]
    message = [
        "check_eval_deterministic: two eval-mode forward passes on the same input gave "
        f"different outputs. The randomness enters in the forward of "
        f"{_describe(names[culprit], culprit)}, which received equal inputs and returned "
        "different outputs.",
        "A functional dropout was probably called without training=self.training: "
        "torch.nn.functional.dropout defaults to training=True, so it stays active after "
        "model.eval(). Pass training=self.training, or use a dropout module.",
    ]
    if layers:
        message.append(
            "Dropout and DropConnect layers (in eval mode during the check): "
            + ", ".join(layers)
            + "."
        )
    if exempt:
        message.append(
            "Exempt because stochastic_eval is True: "
            + ", ".join(_describe(names[m], m) for m in exempt)
            + "."
        )
    raise NondeterministicEvalError(" ".join(message))
