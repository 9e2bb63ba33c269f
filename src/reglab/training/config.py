"""Validated settings of one training run.

A :class:`RunConfig` is everything that decides a run's result: data set, model, optimizer,
regularization, epochs and seed. Its JSON form is stored with every run, and its
:meth:`RunConfig.key` identifies a finished run so that a study never trains it twice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reglab.errors import ConfigError


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _check_layer_probability(value: float | list[float]) -> float | list[float]:
    """Check a drop probability, or each of a list, in [0, 1): dropping everything cannot learn."""
    for index, p in enumerate([value] if isinstance(value, float) else value):
        where = "" if isinstance(value, float) else f" (entry {index})"
        if p < 0.0:
            raise ValueError(f"Input should be greater than or equal to 0{where}")
        if p >= 1.0:
            raise ValueError(f"Input should be less than 1{where}")
    return value


# The dtype of a run's forward passes, see reglab.training.precision.
Precision = Literal["fp32", "bf16"]

# One drop probability for every site of the model, or a list with one per site.
LayerProbability = Annotated[Union[float, list[float]], AfterValidator(_check_layer_probability)]


class DropoutSettings(_Settings):
    """Dropout on the input and after every hidden layer.

    ``p`` is the drop probability after hidden layers and ``input_p`` on the input, as in
    ``torch.nn.Dropout``. ``p`` is one number or a list with one probability per site of the
    model, see :func:`reglab.nn.models.dropout_rates`: a single number applies after every
    fully connected hidden layer, and half of it after every convolution block.
    """

    p: LayerProbability = 0.5
    input_p: float = Field(0.0, ge=0.0, lt=1.0)
    mode: Literal["inverted", "classic"] = "inverted"


class DropConnectSettings(_Settings):
    """DropConnect (Wan et al., 2013): hidden layers drop weights instead of units.

    ``p`` is the probability that a weight is zeroed while training, one number or a list
    with one probability per site of the model, see
    :func:`reglab.nn.models.dropconnect_rates`: a single number applies to every fully
    connected hidden layer, and convolutions stay plain. The output layer is never masked.
    """

    p: LayerProbability = 0.5


class EarlyStoppingSettings(_Settings):
    """Arguments of :class:`reglab.EarlyStopping`; ``patience`` counts epochs.

    With ``refit``, the run selects the number of epochs on validation data, then trains a
    fresh model on training plus validation data for that many epochs, and that model is the
    one whose sealed test set is evaluated.
    """

    monitor: str = "val_loss"
    mode: Literal["min", "max", "auto"] = "auto"
    patience: int = Field(10, ge=0)
    min_delta: float = Field(0.0, ge=0.0)
    restore_best_weights: bool = True
    refit: bool = False


class ScheduleSettings(_Settings):
    """A learning-rate schedule over the run's ``epochs``, stepped after every minibatch.

    ``name`` is ``cosine`` (cosine annealing to 0, SGDR without restarts, Loshchilov &
    Hutter, 2017), ``step`` (multiply by ``gamma`` every ``step_size`` epochs) or
    ``one-cycle`` (Smith & Topin, 2019, with ``torch.optim.lr_scheduler.OneCycleLR``'s
    defaults and the run's learning rate as the peak). ``warmup_epochs`` first raises the
    rate linearly over that many epochs (Goyal et al., 2017), and the schedule then runs
    over the remaining epochs. :mod:`reglab.training.schedules` gives the formulas.
    """

    name: Literal["cosine", "step", "one-cycle"] = "cosine"
    warmup_epochs: int = Field(0, ge=0)
    step_size: int = Field(10, ge=1)
    gamma: float = Field(0.1, gt=0.0, le=1.0)

    def describe(self) -> str:
        """Return a short summary such as ``cosine, 2 warm-up epochs``."""
        text = self.name
        if self.name == "step":
            text += f"(step_size={self.step_size}, gamma={self.gamma:g})"
        if self.warmup_epochs:
            text += f", {self.warmup_epochs} warm-up epochs"
        return text


class StrategyConfig(_Settings):
    """A named set of regularizers. All fields off means no regularization.

    ``l2`` and ``l1`` are penalty strengths: L2 adds ``l2/2 · Σw²`` and L1 adds ``l1 · Σ|w|``
    to the mean minibatch loss, over weights only (not biases). ``lr`` overrides the study's
    learning rate for this strategy, and ``schedule`` its learning-rate schedule.

    The other training options, each described in :mod:`reglab.training.step`:
    ``label_smoothing`` (the smoothing factor of the cross-entropy, Szegedy et al., 2016),
    ``mixup`` (the alpha of mixup's Beta(alpha, alpha), Zhang et al., 2018),
    ``random_erasing`` (the probability of erasing a rectangle of an image, Zhong et al.,
    2020), ``clip_grad_norm`` (the maximum global gradient norm, Pascanu et al., 2013) and
    ``weight_decay`` (decoupled weight decay of the weights, Loshchilov & Hutter, 2019).
    """

    l2: float = Field(0.0, ge=0.0)
    l1: float = Field(0.0, ge=0.0)
    dropout: DropoutSettings | None = None
    dropconnect: DropConnectSettings | None = None
    augment: bool = False
    early_stopping: EarlyStoppingSettings | None = None
    max_norm: float | None = Field(None, gt=0.0)
    lr: float | None = Field(None, gt=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    mixup: float | None = Field(None, gt=0.0)
    random_erasing: float | None = Field(None, gt=0.0, le=1.0)
    clip_grad_norm: float | None = Field(None, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    schedule: ScheduleSettings | None = None

    def describe(self) -> str:
        """Return a one-line summary such as ``l2=0.001, dropout(p=0.5, input_p=0.2)``."""
        parts = []
        if self.l2:
            parts.append(f"l2={self.l2:g}")
        if self.l1:
            parts.append(f"l1={self.l1:g}")
        if self.dropout is not None:
            parts.append(f"dropout(p={format_probability(self.dropout.p)}, input_p={self.dropout.input_p:g})")
        if self.dropconnect is not None:
            parts.append(f"dropconnect(p={format_probability(self.dropconnect.p)})")
        if self.max_norm is not None:
            parts.append(f"max_norm={self.max_norm:g}")
        if self.augment:
            parts.append("augment")
        if self.random_erasing is not None:
            parts.append(f"random erasing(p={self.random_erasing:g})")
        if self.mixup is not None:
            parts.append(f"mixup(alpha={self.mixup:g})")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing:g}")
        if self.weight_decay:
            parts.append(f"decoupled weight_decay={self.weight_decay:g}")
        if self.clip_grad_norm is not None:
            parts.append(f"clip_grad_norm={self.clip_grad_norm:g}")
        if self.schedule is not None:
            parts.append(f"lr schedule {self.schedule.describe()}")
        if self.early_stopping is not None:
            es = self.early_stopping
            refit = ", refit on train+validation" if es.refit else ""
            parts.append(f"early stopping({es.monitor}, patience={es.patience}{refit})")
        return ", ".join(parts) or "no regularization"


def format_probability(p: float | list[float]) -> str:
    """Format a drop probability, one number or one per layer, as ``0.5`` or ``[0.1, 0.2]``."""
    return f"{p:g}" if isinstance(p, float) else "[" + ", ".join(f"{value:g}" for value in p) + "]"


def largest_probability(p: float | list[float]) -> float:
    """Return the largest drop probability of ``p``, one number or one per layer (0 for an empty list)."""
    return p if isinstance(p, float) else max(p, default=0.0)


class OptimizerSettings(_Settings):
    """The optimizer. ``weight_decay`` is the decoupled decay of AdamW only.

    ``schedule`` is the learning-rate schedule of every strategy that does not set its own.
    """

    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.05, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    schedule: ScheduleSettings | None = None


class RunConfig(_Settings):
    """Everything that decides the result of one run."""

    dataset: str = "mnist-5k"
    model: str = "mlp:512,512"
    strategy: str = "baseline"
    regularization: StrategyConfig = StrategyConfig()
    optimizer: OptimizerSettings = OptimizerSettings()
    batch_size: int = Field(128, ge=1)
    epochs: int = Field(30, ge=1)
    # The store keeps seeds in SQLite INTEGER columns, which hold at most 2**63 - 1.
    seed: int = Field(0, ge=0, le=2**63 - 1)
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    precision: Precision = "fp32"

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str) -> str:
        from reglab.nn.models import parse_model_spec

        return str(parse_model_spec(value))

    @model_validator(mode="after")
    def _check_warmup(self) -> RunConfig:
        owner = "regularization" if self.regularization.schedule is not None else "optimizer"
        check_warmup(f"{owner}.schedule", self.schedule, "epochs", self.epochs)
        return self

    @property
    def schedule(self) -> ScheduleSettings | None:
        """The learning-rate schedule: the strategy's own, else the optimizer's."""
        return self.regularization.schedule or self.optimizer.schedule

    def key(self) -> str:
        """Return a stable hash of the settings, used to find an already finished run.

        Settings listed in :data:`ADDED_SETTINGS` are left out of the hash while they hold
        their default value, so a run stored before they existed keeps its key.
        """
        data = self.model_dump(mode="json")
        for path, default in ADDED_SETTINGS.items():
            *parents, name = path.split(".")
            owner = data
            for parent in parents:
                owner = owner.get(parent) or {}
            if name in owner and owner[name] == default:
                del owner[name]
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# Settings added after runs were first stored, by dotted path in ``RunConfig.model_dump``,
# with the JSON form of their default value. Add every new setting here.
ADDED_SETTINGS: dict[str, Any] = {
    "optimizer.schedule": None,
    "regularization.label_smoothing": 0.0,
    "regularization.mixup": None,
    "regularization.random_erasing": None,
    "regularization.clip_grad_norm": None,
    "regularization.weight_decay": 0.0,
    "regularization.schedule": None,
    "regularization.dropconnect": None,
    "precision": "fp32",
}


def check_warmup(
    path: str, schedule: ScheduleSettings | None, budget_name: str, epochs: int, fix: str = "raise epochs"
) -> None:
    """Raise ValueError, naming ``path``, when the schedule's warm-up does not end before ``epochs``."""
    if schedule is not None and schedule.warmup_epochs >= epochs:
        raise ValueError(
            f"{path}.warmup_epochs: must be less than {budget_name} ({epochs}), so that the schedule runs "
            f"after the warm-up; lower warmup_epochs or {fix}, got {schedule.warmup_epochs}"
        )


# The maximum length of a value in an error line, because a YAML alias can expand a short file into megabytes.
MAX_SHOWN_VALUE = 200


def format_validation_error(error: ValidationError, prefix: str = "") -> str:
    """Turn a pydantic error into lines of ``path.to.key: message, got value``.

    A check across several settings has no single key; its message names the keys itself.
    """
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in (prefix, *item["loc"]) if part != "")
        message = item["msg"].removeprefix("Value error, ").rstrip(".")
        if not item["loc"] and item["type"] == "value_error":
            lines.append(f"{prefix}.{message}" if prefix else message)
            continue
        if item["type"] == "extra_forbidden":
            message = "unknown setting; check the spelling"
        got = repr(item.get("input"))
        if len(got) > MAX_SHOWN_VALUE:
            got = f"{got[:MAX_SHOWN_VALUE]}... ({len(got):,} characters)"
        lines.append(f"{path}: {message}, got {got}")
    return "\n".join(lines)


def validate(model_cls: type[_Settings], data: dict[str, Any], prefix: str = "") -> Any:
    """Build ``model_cls`` from ``data``, raising ConfigError with the path to each bad key."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, prefix)) from None
