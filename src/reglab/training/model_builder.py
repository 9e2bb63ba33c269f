"""Build the network of a run from its model spec and its strategy's layer regularizers."""

from __future__ import annotations

from torch import nn

from reglab.errors import ConfigError
from reglab.nn.model_spec import user_module_error
from reglab.nn.models import build_model, dropconnect_rates, dropout_rates, parse_model_spec
from reglab.training.config import RunConfig, StrategyConfig, largest_probability


def check_layer_settings(model: str, regularization: StrategyConfig, strategy: str = "") -> None:
    """Check that the dropout and DropConnect settings fit the model's sites.

    Args:
        model: the model spec.
        regularization: the strategy's settings.
        strategy: the strategy's name, for the error message.

    Raises:
        ConfigError: a per-site list has the wrong length, the model is a user module and
            the strategy inserts dropout or DropConnect, or DropConnect is requested on a
            model without a fully connected hidden layer.
    """
    try:
        spec = parse_model_spec(model)
        dropout = regularization.dropout
        if dropout is not None:
            if spec.kind == "module" and dropout.input_p > 0:
                raise user_module_error(spec)
            dropout_rates(spec, dropout.p)
        dropconnect = regularization.dropconnect
        if dropconnect is not None:
            requested = largest_probability(dropconnect.p)
            if requested > 0 and not any(dropconnect_rates(spec, dropconnect.p)):
                raise ConfigError(
                    f"dropconnect.p={dropconnect.p!r} masks no layer of model {str(spec)!r}, which has "
                    f"sites {list(spec.sites)}; use a model with hidden layers such as 'mlp:512,512', "
                    "or give a per-site list."
                )
    except ConfigError as error:
        prefix = f"strategy {strategy!r}: " if strategy else ""
        raise ConfigError(f"{prefix}{error}") from None


def build_run_model(config: RunConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build ``config.model`` with the dropout and DropConnect of ``config.regularization``.

    Raises:
        ConfigError: see :func:`check_layer_settings` and :func:`reglab.nn.build_model`.
    """
    reg = config.regularization
    check_layer_settings(config.model, reg, config.strategy)
    dropout = reg.dropout
    return build_model(
        config.model,
        input_shape,
        num_classes,
        input_p=dropout.input_p if dropout else 0.0,
        hidden_p=dropout.p if dropout else 0.0,
        dropout_mode=dropout.mode if dropout else "inverted",
        dropconnect_p=reg.dropconnect.p if reg.dropconnect else 0.0,
    )
