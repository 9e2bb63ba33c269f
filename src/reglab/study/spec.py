"""The specification of a study: data, model, strategies, seeds and budget."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from reglab.nn.models import parse_model_spec
from reglab.training.config import OptimizerSettings, Precision, RunConfig, StrategyConfig, _Settings, check_warmup
from reglab.training.model_builder import check_layer_settings

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

DEFAULT_LR_GRID = (0.1, 0.03, 0.01)


def check_study_name(name: str) -> str:
    """Return ``name``, or raise ValueError unless it is safe as one folder name inside the output folder."""
    if not _NAME_PATTERN.match(name):
        raise ValueError(
            "must start with a letter or digit and contain only letters, digits, '.', '_' and '-' "
            "(it names a folder inside the output folder)"
        )
    return name


class StudySpec(_Settings):
    """What a study trains.

    Every strategy is trained once per seed with the same data, model, optimizer and epoch
    budget. The seed decides the split, the initialization, the minibatch order, the dropout
    masks and the augmentation, so runs with the same seed form pairs across strategies.

    When ``lr_grid`` is set, each strategy without its own ``lr`` first picks its learning
    rate: one run per grid value on the first seed, ``lr_search_epochs`` epochs each (the same
    budget for every strategy), scored by validation accuracy. The test set is not opened
    during that search.
    """

    name: str
    dataset: str = "mnist-5k"
    model: str = "mlp:512,512"
    strategies: dict[str, StrategyConfig]
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(128, ge=1)
    optimizer: OptimizerSettings = OptimizerSettings()
    lr_grid: list[float] | None = Field(default_factory=lambda: list(DEFAULT_LR_GRID))
    lr_search_epochs: int | None = Field(None, ge=1)
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    precision: Precision = "fp32"

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_study_name(value)

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str) -> str:
        return str(parse_model_spec(value))

    @field_validator("lr_grid")
    @classmethod
    def _check_grid(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (not value or any(lr <= 0 for lr in value)):
            raise ValueError("must be a non-empty list of positive learning rates")
        return value

    @model_validator(mode="after")
    def _check_warmup(self) -> StudySpec:
        # Each strategy's schedule must fit the epoch budget and, when the strategy searches
        # its learning rate, the shorter budget of the search runs.
        for name, strategy in self.strategies.items():
            path = f"strategies.{name}.schedule" if strategy.schedule is not None else "optimizer.schedule"
            schedule = strategy.schedule or self.optimizer.schedule
            check_warmup(path, schedule, "epochs", self.epochs)
            if self.lr_grid is not None and strategy.lr is None:
                fix = "raise lr_search_epochs (default: half of epochs), or set a fixed lr"
                check_warmup(path, schedule, "the learning-rate search's epochs", self.search_epochs, fix)
        return self

    @property
    def search_epochs(self) -> int:
        """Epochs of each learning-rate search run: half the budget, at least one."""
        return self.lr_search_epochs or max(1, self.epochs // 2)

    def run_config(self, strategy: str, seed: int, *, lr: float | None = None, epochs: int | None = None) -> RunConfig:
        """Return the settings of one run of this study."""
        regularization = self.strategies[strategy]
        check_layer_settings(self.model, regularization, strategy)
        if lr is not None:
            regularization = regularization.model_copy(update={"lr": lr})
        return RunConfig(
            dataset=self.dataset,
            model=self.model,
            strategy=strategy,
            regularization=regularization,
            optimizer=self.optimizer,
            batch_size=self.batch_size,
            epochs=epochs or self.epochs,
            seed=seed,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            precision=self.precision,
        )


def default_study_name(dataset: str, model: str) -> str:
    """Return a folder-safe study name such as ``mnist-5k_mlp-512-512``."""
    text = f"{dataset}_{model}".replace(":", "-").replace(",", "-").replace("/", "-")
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)[:100]
