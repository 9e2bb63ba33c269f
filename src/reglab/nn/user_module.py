"""User networks named by ``module:package.path:factory`` specs."""

from __future__ import annotations

import importlib

from torch import nn

from reglab.errors import ConfigError


def describe_failure(error: BaseException) -> str:
    """Describe an exception raised by user code, or its call of ``sys.exit``, for a message."""
    if isinstance(error, SystemExit):
        return f"it called sys.exit({error.code!r})"
    return f"{type(error).__name__}: {error}"


def build_user_module(spec: str, target: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Import ``package.path``, call ``factory(input_shape, num_classes)`` and return its module.

    The module must be importable wherever the run trains (for example on ``PYTHONPATH``),
    including where ``reglab reproduce`` retrains it and on Ray workers.

    Args:
        spec: the whole model spec, for error messages.
        target: ``"package.path:factory"``.
        input_shape: shape of one example, e.g. ``(1, 28, 28)``.
        num_classes: number of output logits the network must return.

    Raises:
        ConfigError: the module cannot be imported, has no such attribute, the attribute is
            not callable, the call raises (the exception is chained), or it does not return
            an ``nn.Module``.
    """
    module_name, _, factory_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(
            f"model {spec!r}: cannot import module {module_name!r} ({error}); "
            "put its folder on PYTHONPATH or install its package."
        ) from None
    except (Exception, SystemExit) as error:
        raise ConfigError(
            f"model {spec!r}: importing module {module_name!r} failed: {describe_failure(error)}; "
            "fix the module's top-level code."
        ) from error

    factory = getattr(module, factory_name, None)
    if factory is None:
        raise ConfigError(
            f"model {spec!r}: module {module_name!r} has no attribute {factory_name!r}; "
            "check the name after the last ':'."
        )
    if not callable(factory):
        raise ConfigError(
            f"model {spec!r}: {target} must be callable as factory(input_shape, num_classes), "
            f"got a {type(factory).__name__}."
        )

    try:
        network = factory(tuple(input_shape), num_classes)
    except (Exception, SystemExit) as error:
        # Chained, so that a traceback (for example under 'python -X dev' or in a debugger) still
        # reaches the line of the factory that failed.
        raise ConfigError(
            f"model {spec!r}: factory {target!r} failed: {describe_failure(error)}; it must accept "
            "(input_shape, num_classes) and return a torch.nn.Module."
        ) from error
    if not isinstance(network, nn.Module):
        raise ConfigError(
            f"model {spec!r}: {target}(input_shape, num_classes) must return a torch.nn.Module, "
            f"got a {type(network).__name__}."
        )
    return network
