"""YAML study files: a :class:`StudySpec` written down, validated with the path to each bad key.

A study file names the data set, model, optimizer, budget, seeds and strategies. Each
strategy is a set of :class:`~reglab.training.config.StrategyConfig` fields, or a built-in
strategy (``builtin: l2``) with some of its fields overridden. ``reglab init`` writes a
commented example (:data:`EXAMPLE_STUDY_FILE`).

Values given on the command line override the file's; :class:`StudyOverrides` contains them.
Three keys set where the study trains rather than what it trains, so they are not part of
the :class:`StudySpec`: ``backend`` (``local`` or ``ray``), ``address`` (a Ray cluster's
``HOST:PORT``) and ``device``; :func:`read_study_file` returns them.

The same file may also hold a section per analysis command (``learning_curve:``, ...; see
:mod:`reglab.study.analysis_sections`). ``reglab compare`` validates those sections but does
not use them; :mod:`reglab.study.analysisfile` reads a study file for an analysis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import Field, StrictInt, field_validator

from reglab._paths import file_in_the_way
from reglab.errors import ConfigError
from reglab.study.analysis_sections import (
    BiasVarianceSection,
    BoundariesSection,
    CapacitySection,
    GeometrySection,
    LearningCurveSection,
    McCurveSection,
    ValidationCurveSection,
)
from reglab.study.spec import DEFAULT_LR_GRID, StudySpec
from reglab.study.strategies import (
    DEFAULT_STRATEGY_NAMES,
    STRATEGY_NAMES,
    StrategyDefaults,
    builtin_strategies,
    resolve_strategies,
)
from reglab.training.config import OptimizerSettings, Precision, StrategyConfig, _Settings, validate


class StudyFile(_Settings):
    """The top level of a study file, before strategies and seeds are resolved.

    ``seeds`` is a list of seeds or a count (``3`` means seeds 0, 1 and 2). ``lr`` is a
    learning rate, or ``"auto"`` for a search over ``lr_grid`` (default 0.1, 0.03, 0.01).
    Setting ``lr`` or ``optimizer.lr`` without ``lr_grid`` trains every strategy with that
    rate and turns the search off.
    """

    name: str | None = None
    dataset: str = "mnist-5k"
    model: str = "mlp:512,512"
    optimizer: dict[str, Any] = Field(default_factory=dict)
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(128, ge=1)
    seeds: Union[StrictInt, list[StrictInt]] = 3
    lr: Union[float, Literal["auto"], None] = None
    lr_grid: list[float] | None = None
    lr_search_epochs: int | None = Field(None, ge=1)
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    precision: Precision = "fp32"
    strategies: Union[list[str], dict[str, Union[dict[str, Any], None]], None] = None
    backend: Literal["local", "ray"] = "local"
    address: str | None = None
    device: str | None = None
    learning_curve: LearningCurveSection | None = None
    validation_curve: ValidationCurveSection | None = None
    bias_variance: BiasVarianceSection | None = None
    boundaries: BoundariesSection | None = None
    geometry: GeometrySection | None = None
    mc_curve: McCurveSection | None = None
    capacity: CapacitySection | None = None

    @field_validator("strategies", mode="before")
    @classmethod
    def _check_strategies_shape(cls, value: Any) -> Any:
        # Without these checks, a wrong shape gets one error per accepted shape, in pydantic's terms.
        if value is None:
            raise ValueError(
                "the key is empty; list strategies such as [l2, dropout], or remove the key for the command's "
                "default strategies"
            )
        if not isinstance(value, (list, dict)):
            raise ValueError("expected a list of built-in strategy names such as [l2, dropout], or a mapping of named strategies")
        if isinstance(value, list):
            for position, item in enumerate(value, start=1):
                if not isinstance(item, str):
                    raise ValueError(f"item {position} must be a strategy name such as l2, not {item!r}")
        if isinstance(value, dict):
            for name in value:
                if not isinstance(name, str):
                    raise ValueError(
                        f"strategy names must be text, got {name!r}; quote the name, for example '{name}': {{}}, "
                        "because YAML reads yes, no, on, off and numbers as other types"
                    )
            for name, settings in value.items():
                if settings is not None and not isinstance(settings, dict):
                    raise ValueError(
                        f"the settings of {name!r} must be a mapping such as {{l2: 1e-4}}, or empty, not {settings!r}"
                    )
        return value


@dataclass
class StudyFileContents:
    """A study file's :class:`StudySpec` and where its runs train (``device`` None: not set)."""

    spec: StudySpec
    backend: str = "local"
    address: str | None = None
    device: str | None = None


@dataclass
class StudyOverrides:
    """Settings given explicitly on the command line; None means "not given".

    ``strategies`` replaces the file's strategies with these built-in ones. ``l2``, ``l1``,
    ``p``, ``input_p`` and ``patience`` replace that strength in every strategy that uses
    the regularizer (``p`` in every strategy with dropout, for example). ``schedule``
    (``"none"`` removes it) and ``warmup_epochs`` replace those of ``optimizer.schedule``.
    """

    name: str | None = None
    dataset: str | None = None
    model: str | None = None
    strategies: list[str] | None = None
    seeds: int | None = None
    epochs: int | None = None
    lr: str | float | None = None
    batch_size: int | None = None
    l2: float | None = None
    l1: float | None = None
    p: float | None = None
    input_p: float | None = None
    patience: int | None = None
    backend: str | None = None
    address: str | None = None
    schedule: str | None = None
    warmup_epochs: int | None = None
    precision: str | None = None


def load_study_file(path: str | Path, overrides: StudyOverrides | None = None) -> StudySpec:
    """Read a YAML study file and return its validated :class:`StudySpec`.

    Raises:
        ConfigError: as :func:`read_study_file`.
    """
    return read_study_file(path, overrides).spec


def read_study_file(path: str | Path, overrides: StudyOverrides | None = None) -> StudyFileContents:
    """Read a YAML study file and return its validated :class:`StudySpec`, backend, address and device.

    Args:
        path: the study file.
        overrides: command-line values that replace the file's.

    Raises:
        ConfigError: the file is missing or unreadable, is not valid YAML (the message gives
            the line and column), or a setting is unknown, of the wrong type or out of
            range (the message gives the path to the key, e.g. ``strategies.l2.l2``).
    """
    path = Path(path)
    data = load_study_mapping(path)
    try:
        spec = study_spec_from_dict(data, overrides, default_name=path.stem)
        study_file = validate(StudyFile, data)
        backend, address = _resolve_backend(study_file, overrides or StudyOverrides())
    except ConfigError as error:
        raise ConfigError(f"invalid study file '{path}':\n{error}") from None
    return StudyFileContents(spec, backend, address, study_file.device)


def load_study_mapping(path: Path) -> dict[str, Any]:
    """Read a study file's YAML (with ``safe_load``) and return its top-level mapping, unvalidated.

    Raises:
        ConfigError: the file is missing or unreadable, is not valid YAML (the message gives
            the line and column), or does not contain a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"study file '{path}' not found; write an example with 'reglab init {path}'.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read study file '{path}': {error}.") from None

    try:
        data = yaml.load(text, Loader=_StudyFileLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ConfigError(f"study file '{path}' is not valid YAML: {_describe_yaml_error(error)}") from None

    if data is None:
        raise ConfigError(
            f"study file '{path}' contains no settings; write some, for example 'dataset: digits' and "
            "'strategies: [l2, dropout]' ('reglab init' writes a commented example), or leave the file out "
            "for the default study."
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"study file '{path}' must contain a mapping of settings (name, dataset, strategies, ...), "
            f"got a {type(data).__name__}."
        )
    return data


def _resolve_backend(study_file: StudyFile, overrides: StudyOverrides) -> tuple[str, str | None]:
    """Return the backend and Ray address; the file's address is dropped when ``--backend local`` overrides it."""
    backend = _pick(overrides.backend, study_file.backend)
    address = overrides.address
    if address is None and overrides.backend in (None, "ray"):
        address = study_file.address
    return backend, address


def study_spec_from_dict(
    data: dict[str, Any], overrides: StudyOverrides | None = None, *, default_name: str = "study"
) -> StudySpec:
    """Resolve the contents of a study file into a :class:`StudySpec`.

    Raises:
        ConfigError: a setting is invalid; each line names the path to the key.
    """
    overrides = overrides or StudyOverrides()
    study_file: StudyFile = validate(StudyFile, data)

    strategies = _resolve_strategies(study_file, overrides)
    optimizer, lr_grid = _resolve_learning_rate(study_file, overrides)
    seeds = resolve_seeds(_pick(overrides.seeds, study_file.seeds))

    spec_data = {
        "name": _pick(overrides.name, study_file.name, default_name),
        "dataset": _pick(overrides.dataset, study_file.dataset),
        "model": _pick(overrides.model, study_file.model),
        "strategies": strategies,
        "seeds": seeds,
        "epochs": _pick(overrides.epochs, study_file.epochs),
        "batch_size": _pick(overrides.batch_size, study_file.batch_size),
        "optimizer": optimizer,
        "lr_grid": lr_grid,
        "lr_search_epochs": study_file.lr_search_epochs,
        "val_fraction": study_file.val_fraction,
        "test_fraction": study_file.test_fraction,
        "precision": _pick(overrides.precision, study_file.precision),
    }
    return validate(StudySpec, spec_data)


def resolve_seeds(seeds: int | list[int]) -> list[int]:
    """Return the seeds of a study file's ``seeds``: a count ``n`` means 0, 1, ..., n-1.

    Raises:
        ConfigError: a count below 1, a negative seed or a repeated seed.
    """
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"seeds: a count of seeds must be >= 1, got {seeds!r}")
        seeds = list(range(seeds))
    if any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds: expected distinct seeds >= 0, got {seeds!r}")
    return seeds


def _pick(*values: Any) -> Any:
    """Return the first value that is not None."""
    return next(value for value in values if value is not None)


def _resolve_learning_rate(study_file: StudyFile, overrides: StudyOverrides) -> tuple[OptimizerSettings, list[float] | None]:
    """Return the optimizer and the learning-rate grid (None: no search)."""
    optimizer_data = dict(study_file.optimizer)
    lr = study_file.lr
    if lr is not None and "lr" in optimizer_data:
        raise ConfigError(f"lr: set the learning rate either as lr or as optimizer.lr, not both, got {lr!r}")
    if lr is not None and lr != "auto" and study_file.lr_grid is not None:
        raise ConfigError(f"lr: a fixed learning rate turns the search over lr_grid off; remove one of them, got {lr!r}")

    if isinstance(lr, float) and lr <= 0:
        raise ConfigError(f"lr: Input should be greater than 0 or 'auto', got {lr!r}")
    fixed = "lr" in optimizer_data or (lr is not None and lr != "auto")
    if study_file.lr_grid is not None:
        grid = study_file.lr_grid
    elif fixed:
        grid = None
    else:
        grid = list(DEFAULT_LR_GRID)
    if lr is not None and lr != "auto":
        optimizer_data["lr"] = lr

    if overrides.lr is not None:
        if str(overrides.lr) == "auto":
            grid = study_file.lr_grid or list(DEFAULT_LR_GRID)
        else:
            try:
                optimizer_data["lr"] = float(overrides.lr)
            except ValueError:
                raise ConfigError(f"compare: lr must be a positive number or 'auto', got {overrides.lr!r}.") from None
            grid = None

    optimizer_data = _apply_schedule_overrides(optimizer_data, overrides)
    optimizer = validate(OptimizerSettings, optimizer_data, "optimizer")
    return optimizer, grid


def _apply_schedule_overrides(optimizer_data: dict[str, Any], overrides: StudyOverrides) -> dict[str, Any]:
    """Replace the file's ``optimizer.schedule`` with ``--schedule`` and ``--warmup-epochs``."""
    if overrides.schedule is None and overrides.warmup_epochs is None:
        return optimizer_data
    data = dict(optimizer_data)
    schedule = data.get("schedule")
    if overrides.schedule is not None:
        data.pop("schedule", None)
        data.update(schedule_settings(overrides.schedule, overrides.warmup_epochs))
    elif isinstance(schedule, dict):
        data["schedule"] = {**schedule, "warmup_epochs": overrides.warmup_epochs}
    else:
        schedule_settings(None, overrides.warmup_epochs)
    return data


def schedule_settings(schedule: str | None, warmup_epochs: int | None) -> dict[str, Any]:
    """Return the optimizer settings for ``--schedule`` and ``--warmup-epochs``.

    Returns ``{"schedule": {"name": ..., "warmup_epochs": ...}}``, or ``{}`` when
    ``schedule`` is None or ``"none"``.

    Raises:
        ConfigError: ``warmup_epochs`` is given without a schedule.
    """
    if schedule is None or schedule == "none":
        if warmup_epochs:
            raise ConfigError(
                "--warmup-epochs needs a schedule to warm up to; add --schedule cosine, step or one-cycle, "
                f"got --warmup-epochs {warmup_epochs!r} without a schedule."
            )
        return {}
    return {"schedule": {"name": schedule, "warmup_epochs": warmup_epochs or 0}}


def _resolve_strategies(study_file: StudyFile, overrides: StudyOverrides) -> dict[str, StrategyConfig]:
    """Build every strategy, with the baseline first, and apply the strength overrides."""
    defaults = StrategyDefaults()
    if overrides.strategies is not None:
        strategies = resolve_strategies(overrides.strategies, defaults)
    elif study_file.strategies is None:
        strategies = resolve_strategies(list(DEFAULT_STRATEGY_NAMES), defaults)
    elif not study_file.strategies:
        raise ConfigError(
            f"strategies: nothing is listed to compare with the baseline, got {study_file.strategies!r}; "
            "name at least one strategy (for example [dropout, l2]), or remove the key to compare the default "
            "strategies. `reglab train` trains a single run."
        )
    elif isinstance(study_file.strategies, list):
        strategies = resolve_strategies(study_file.strategies, defaults)
    else:
        strategies = {}
        for name, entry in study_file.strategies.items():
            strategies[name] = _build_strategy(name, entry)
        if "baseline" not in strategies:
            strategies = {"baseline": StrategyConfig(), **strategies}
        else:
            strategies = {"baseline": strategies["baseline"], **strategies}

    return {name: _apply_strengths(name, config, overrides) for name, config in strategies.items()}


def _build_strategy(name: str, entry: dict[str, Any] | None) -> StrategyConfig:
    """Validate one strategy entry, merging it into its ``builtin`` when it names one.

    An entry without settings (``l2:``) is the built-in strategy of that name. A nested
    setting merges key by key: ``{builtin: dropout, dropout: {p: 0.3}}`` keeps the built-in
    ``input_p``. ``dropout: null`` removes the built-in dropout.
    """
    if entry is None:
        if name not in STRATEGY_NAMES:
            known = ", ".join(STRATEGY_NAMES)
            raise ConfigError(
                f"strategies.{name}: no settings given, and {name!r} is not a built-in strategy "
                f"({known}); give its settings or a builtin, got None"
            )
        entry = {"builtin": name}
    entry = dict(entry)
    builtin = entry.pop("builtin", None)
    if builtin is None:
        return validate(StrategyConfig, entry, f"strategies.{name}")
    if builtin not in STRATEGY_NAMES:
        known = ", ".join(STRATEGY_NAMES)
        raise ConfigError(f"strategies.{name}.builtin: unknown built-in strategy; expected one of {known}, got {builtin!r}")

    merged = builtin_strategies()[builtin].model_dump(exclude_unset=True)
    for key, value in entry.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return validate(StrategyConfig, merged, f"strategies.{name}")


def _apply_strengths(name: str, config: StrategyConfig, overrides: StudyOverrides) -> StrategyConfig:
    """Replace the strengths given on the command line in a strategy that uses them."""
    data = config.model_dump(exclude_unset=True)
    if overrides.l2 is not None and config.l2:
        data["l2"] = overrides.l2
    if overrides.l1 is not None and config.l1:
        data["l1"] = overrides.l1
    if config.dropout is not None:
        dropout = dict(data.get("dropout") or {})
        if overrides.p is not None:
            dropout["p"] = overrides.p
        if overrides.input_p is not None:
            dropout["input_p"] = overrides.input_p
        data["dropout"] = dropout
    if config.early_stopping is not None and overrides.patience is not None:
        data["early_stopping"] = {**(data.get("early_stopping") or {}), "patience": overrides.patience}
    return validate(StrategyConfig, data, f"strategies.{name}")


class _StudyFileLoader(yaml.SafeLoader):
    """PyYAML's safe loader that reads ``1e9`` and ``5E-4`` as numbers and rejects repeated keys.

    PyYAML follows YAML 1.1, whose floats need a point (``1.0e9``), so ``lr: 1e-3`` would
    arrive as the text ``'1e-3'``. It also keeps the last of two equal keys in a mapping,
    which YAML forbids. A study file with ``epochs`` twice would then train the second value
    without a word.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # A merge key (<<) may be overridden by the keys beside it.
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                first = lines.get(key)
            except TypeError:
                continue  # An unhashable key; the base class reports it.
            if first is not None:
                where = f"twice on line {line}" if first == line else f"twice, on lines {first} and {line}"
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given {where}; keep one", key_node.start_mark
                )
            lines[key] = line
        return super().construct_mapping(node, deep=deep)


_StudyFileLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _describe_yaml_error(error: yaml.YAMLError) -> str:
    """Return a YAML error as ``line L, column C: problem``, numbered from 1."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return f"{problem}."
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}."


EXAMPLE_STUDY_FILE = """\
# A reglab study: every strategy below is trained once per seed, with the same data,
# model, optimizer and epoch budget, and compared with the baseline.
# Run it with:  reglab compare study.yaml
# Command-line flags override these values, e.g.  reglab compare study.yaml --epochs 5

# Study name: a folder under the output folder and the key of its runs in reglab.db.
# Default: the file name without .yaml.
name: digits-example

# Data set: mnist-5k, digits, fashion-mnist, mnist, moons, circles, csv:PATH or npz:PATH.
dataset: digits

# Model: softmax, or mlp:W1,W2,... with the hidden-layer widths.
model: mlp:64

# Optimizer: sgd (with momentum), adam or adamw. weight_decay is AdamW's decoupled decay.
# schedule: a learning-rate schedule over the epochs, stepped after every minibatch:
#   name: cosine, step or one-cycle; warmup_epochs: epochs of linear warm-up first;
#   step_size and gamma (step only): multiply the rate by gamma every step_size epochs.
optimizer:
  name: sgd
  momentum: 0.9
  # schedule:
  #   name: cosine
  #   warmup_epochs: 2

# Learning rate: a number for every strategy, or auto to let each strategy pick one
# from lr_grid by validation accuracy on the first seed (the test set stays sealed).
lr: 0.05
# lr_grid: [0.1, 0.03, 0.01]

epochs: 20        # at most this many epochs per run
batch_size: 64
# precision: bf16  # forward passes in bfloat16; pays on CPUs with AMX or AVX-512 BF16 and recent GPUs

# Seeds: a count (3 means seeds 0, 1, 2) or a list such as [0, 1, 2]. A seed decides the
# split, initialization, minibatch order, dropout masks and augmentation.
seeds: 2

# Strategies: a name and its regularizers. The baseline (no regularization) is added first
# when it is missing. A strategy either lists its settings:
#   l2, l1        penalty strengths on weights: l2 adds l2/2 * sum(w^2), l1 adds l1 * sum(|w|)
#   dropout       {p, input_p, mode}: drop probability after hidden layers and on the input;
#                 p may be a list with one probability per layer of the model
#   dropconnect   {p}: probability that a hidden layer's weight is zeroed while training
#   max_norm      maximum L2 norm of each unit's incoming weights
#   augment       true for the data set's default augmentation
#   early_stopping  {monitor, mode, patience, min_delta, restore_best_weights, refit}
#   lr            this strategy's own learning rate
#   schedule      this strategy's own learning-rate schedule, as optimizer.schedule
#   label_smoothing  smoothing factor of the cross-entropy, in [0, 1)
#   mixup         alpha > 0: train on pairs mixed with weight lambda ~ Beta(alpha, alpha)
#   random_erasing  probability of erasing a random rectangle of an image (images only)
#   clip_grad_norm  maximum L2 norm of all gradients together
#   weight_decay  decoupled weight decay of the weights (w <- w - lr * weight_decay * w)
# or starts from a built-in strategy (baseline, l2, l1, dropout, early-stopping, augment,
# combined, label-smoothing, mixup, random-erasing, weight-decay, clip, cosine,
# dropconnect) with `builtin:` and overrides some of its settings. A built-in name without
# settings (`augment:`) is that built-in strategy.
strategies:
  baseline: {}
  l2:
    builtin: l2           # l2 = 0.001
  strong-l2:
    l2: 0.01
  dropout:
    builtin: dropout      # p = 0.5, input_p = 0.2
    dropout:
      p: 0.3              # keeps the built-in input_p
  early-stopping:
    early_stopping:
      monitor: val_acc
      patience: 5
  mixup-smoothing:
    mixup: 0.2
    label_smoothing: 0.1

# The analysis commands (learning-curve, validation-curve, bias-variance, boundaries,
# geometry, mc-curve, capacity) read study files too: the settings above that they can
# apply, plus a section of their own. 'reglab init --analysis learning-curve' writes one.
"""


def write_example_study_file(path: str | Path, *, overwrite: bool = False, analysis: str | None = None) -> Path:
    """Write :data:`EXAMPLE_STUDY_FILE`, or the example of analysis command ``analysis``, to ``path``.

    Raises:
        ConfigError: ``analysis`` is not an analysis command, the file exists and
            ``overwrite`` is False, or it cannot be written.
    """
    from reglab.study.analysis_examples import example_analysis_file
    from reglab.study.analysis_sections import SECTIONS

    path = Path(path)
    if analysis is not None and analysis not in SECTIONS:
        raise ConfigError(f"--analysis must be one of {', '.join(SECTIONS)}, got {analysis!r}.")
    if path.is_dir():
        raise ConfigError(f"'{path}' is a folder; give a file path such as '{path / 'study.yaml'}'.")
    blocking = file_in_the_way(path.parent)
    if blocking is not None:
        raise ConfigError(f"cannot write the study file '{path}': '{blocking}' is a file, not a folder; choose another path.")
    if path.exists() and not overwrite:
        raise ConfigError(f"'{path}' already exists; choose another path or pass --force to overwrite it.")
    text = EXAMPLE_STUDY_FILE if analysis is None else example_analysis_file(analysis, str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot write the study file '{path}': {error.strerror or error}.") from None
    return path
