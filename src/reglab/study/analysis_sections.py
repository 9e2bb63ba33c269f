"""The per-analysis sections of a study file: each analysis command's own settings.

A study file may hold a section for each analysis, named after the command with ``_`` for
``-`` (``learning_curve:`` for ``reglab learning-curve``). A section's keys are the
command's options, with ``_`` for ``-`` (``--bootstrap-seed`` is ``bootstrap_seed``) and
lists for comma-separated values. Every key is optional: a key that is left out takes the
option's default, or the option's value when it is given on the command line.

Each field of a section is None when the file does not set it. Ranges are checked here, so
a bad value is reported with the path to its key (``learning_curve.sizes: ...``).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, StrictBool, StrictInt, field_validator

from reglab.training.config import _Settings

Count = Annotated[StrictInt, Field(ge=1)]
Strength = Annotated[float, Field(ge=0.0)]
Probability = Annotated[float, Field(ge=0.0, lt=1.0)]
Dpi = Annotated[StrictInt, Field(ge=10)]


class LearningCurveSection(_Settings):
    """Settings of ``reglab learning-curve``.

    ``sizes`` lists training-set sizes: an integer is a count of examples, a number with a
    point is a fraction of the training split in (0, 1].
    """

    strategy: str | None = None
    sizes: list[Union[StrictInt, float]] | None = Field(None, min_length=1)
    match_steps: StrictBool | None = None

    @field_validator("strategy")
    @classmethod
    def _check_strategy(cls, value: str | None) -> str | None:
        from reglab.study.strategies import STRATEGY_NAMES

        if value is not None and value not in STRATEGY_NAMES:
            raise ValueError(f"expected one built-in strategy of {', '.join(STRATEGY_NAMES)}")
        return value

    @field_validator("sizes")
    @classmethod
    def _check_sizes(cls, value: list[int | float] | None) -> list[int | float] | None:
        for position, size in enumerate(value or []):
            if isinstance(size, int) and size < 1:
                raise ValueError(f"item {position} is a count of examples and must be >= 1")
            if isinstance(size, float) and not 0.0 < size <= 1.0:
                raise ValueError(f"item {position} is a fraction of the training split and must be in (0, 1]")
        return value


class ValidationCurveSection(_Settings):
    """Settings of ``reglab validation-curve``: the strength ``param`` and its values, listed or on a grid."""

    param: str | None = None
    values: list[Strength] | None = Field(None, min_length=1)
    grid: Literal["log", "linear"] | None = None
    min: float | None = None
    max: float | None = None
    num: StrictInt | None = Field(None, ge=2)

    @field_validator("param")
    @classmethod
    def _check_param(cls, value: str | None) -> str | None:
        from reglab.analysis.validation_curves import PARAMS

        if value is not None and value not in PARAMS:
            raise ValueError(f"expected one of {', '.join(PARAMS)}")
        return value


class BiasVarianceSection(_Settings):
    """Settings of ``reglab bias-variance``; its strategies are the file's top-level ``strategies``."""

    bootstraps: Count | None = None
    bootstrap_seed: StrictInt | None = Field(None, ge=0)


class BoundariesSection(_Settings):
    """Settings of ``reglab boundaries``: the L2 strengths of the top row and the drop probabilities of the bottom row."""

    l2: list[Strength] | None = Field(None, min_length=1)
    dropout: list[Probability] | None = Field(None, min_length=1)
    samples: StrictInt | None = Field(None, ge=6)
    noise: float | None = Field(None, ge=0.0)
    grid: StrictInt | None = Field(None, ge=2)
    dpi: Dpi | None = None


class GeometrySection(_Settings):
    """Settings of ``reglab geometry``, which fits synthetic two-feature regressions."""

    samples: StrictInt | None = Field(None, ge=3)
    correlation: float | None = Field(None, gt=-1.0, lt=1.0)
    noise: float | None = Field(None, ge=0.0)
    strengths: StrictInt | None = Field(None, ge=2)
    strength: float | None = Field(None, gt=0.0)
    dpi: Dpi | None = None


class McCurveSection(_Settings):
    """Settings of ``reglab mc-curve``: the drop probabilities and the numbers of passes T."""

    dropout: float | None = Field(None, gt=0.0, lt=1.0)
    input_dropout: Probability | None = None
    samples: list[Count] | None = Field(None, min_length=1)
    threads: Count | None = None
    dpi: Dpi | None = None


class CapacitySection(_Settings):
    """Settings of ``reglab capacity``: the hidden-layer widths and depths of the MLPs."""

    widths: list[Count] | None = Field(None, min_length=1)
    depths: list[Count] | None = Field(None, min_length=1)
    threads: Count | None = None
    dpi: Dpi | None = None


SECTIONS: dict[str, type[_Settings]] = {
    "learning-curve": LearningCurveSection,
    "validation-curve": ValidationCurveSection,
    "bias-variance": BiasVarianceSection,
    "boundaries": BoundariesSection,
    "geometry": GeometrySection,
    "mc-curve": McCurveSection,
    "capacity": CapacitySection,
}
"""Each analysis command's section model, by command name."""


def section_key(command: str) -> str:
    """Return the study-file key of ``command``'s section, e.g. ``learning_curve``."""
    return command.replace("-", "_")

