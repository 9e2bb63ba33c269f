"""Study files for the analysis commands (``reglab learning-curve study.yaml``, ...).

An analysis reads the same file format as ``reglab compare``: the top-level settings that it
shares with a comparison (data set, model, learning rate, epochs, batch size, seeds,
device, and for ``bias-variance`` the strategies), plus its own section
(:mod:`reglab.study.analysis_sections`). Sections of other analyses are validated and left
alone, so one file can hold the settings of several analyses.

A top-level setting that the analysis cannot apply is rejected, so that no value in the file
is silently ignored: ``backend: ray`` (analyses train in this process), ``lr: auto``,
a split other than 60/20/20, an optimizer other than SGD with momentum 0.9, or ``dataset``
for ``geometry``. A setting equal to what the analysis does anyway (``backend: local``) is
accepted.

:func:`read_analysis_file` returns the file's values by the command's option names, and
:func:`write_analysis_settings` writes the settings that an analysis ran with back in the
same format, so that the analysis can be run again from that file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reglab.errors import ConfigError
from reglab.study.analysis_sections import SECTIONS, section_key
from reglab.study.spec import check_study_name
from reglab.study.strategies import STRATEGY_NAMES
from reglab.study.studyfile import StudyFile, load_study_mapping, resolve_seeds
from reglab.training.config import OptimizerSettings, validate

# Top-level keys that every training analysis uses, by the option name they set.
_TRAINING_KEYS = frozenset({"dataset", "epochs", "batch_size", "lr"})


@dataclass(frozen=True)
class AnalysisCommand:
    """Which study-file settings an analysis command uses.

    Attributes:
        name: the command, e.g. ``learning-curve``.
        uses: the top-level keys it applies besides ``name`` and ``seeds``, which every
            analysis uses. ``lr`` stands for ``lr`` and ``optimizer.lr``.
        option_names: section keys whose option has another parameter name (``min`` sets
            the parameter ``minimum`` of ``--min``).
        fixed: what the command does instead of a top-level key it cannot apply, for the error.
    """

    name: str
    uses: frozenset[str]
    option_names: dict[str, str] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)


_ONE_STRATEGY = "trains one built-in strategy, set by learning_curve.strategy"
ANALYSES: dict[str, AnalysisCommand] = {
    "learning-curve": AnalysisCommand(
        "learning-curve", _TRAINING_KEYS | {"model", "device"}, fixed={"strategies": _ONE_STRATEGY}
    ),
    "validation-curve": AnalysisCommand(
        "validation-curve",
        _TRAINING_KEYS | {"model", "device"},
        option_names={"min": "minimum", "max": "maximum"},
        fixed={"strategies": "varies one strength, set by validation_curve.param"},
    ),
    "bias-variance": AnalysisCommand("bias-variance", _TRAINING_KEYS | {"model", "device", "strategies"}),
    "boundaries": AnalysisCommand(
        "boundaries",
        _TRAINING_KEYS | {"model"},
        fixed={"strategies": "varies L2 strength and dropout, set by boundaries.l2 and boundaries.dropout"},
    ),
    "geometry": AnalysisCommand(
        "geometry",
        frozenset(),
        fixed={
            key: "fits synthetic two-feature linear regressions and trains no network"
            for key in ("dataset", "model", "epochs", "batch_size", "lr", "optimizer", "strategies")
        },
    ),
    "mc-curve": AnalysisCommand(
        "mc-curve",
        _TRAINING_KEYS | {"model"},
        fixed={"strategies": "trains dropout networks, set by mc_curve.dropout and mc_curve.input_dropout"},
    ),
    "capacity": AnalysisCommand(
        "capacity",
        _TRAINING_KEYS,
        fixed={
            "model": "builds its MLPs from capacity.widths and capacity.depths",
            "strategies": "trains unregularized networks only",
        },
    ),
}
"""The analysis commands that read study files, by command name."""

# What every analysis does instead of these keys; a file may set them to exactly that.
_ACCEPTED_VALUES = {"backend": "local", "val_fraction": 0.2, "test_fraction": 0.2, "device": "cpu"}
_DEFAULT_OPTIMIZER = OptimizerSettings()
_REASONS = {
    "backend": "trains in this process; backend and address apply to 'reglab compare'",
    "address": "trains in this process; backend and address apply to 'reglab compare'",
    "val_fraction": "always splits the data 60/20/20 (val_fraction and test_fraction 0.2)",
    "test_fraction": "always splits the data 60/20/20 (val_fraction and test_fraction 0.2)",
    "lr_grid": "trains with one fixed learning rate; the search over lr_grid is part of 'reglab compare'",
    "lr_search_epochs": "trains with one fixed learning rate; the search over lr_grid is part of 'reglab compare'",
    "device": "trains on the CPU only",
    "strategies": "does not train the file's strategies",
}

# The top-level keys that :func:`write_analysis_settings` writes outside the section.
_TOP_LEVEL = ("name", "dataset", "model", "strategies", "lr", "epochs", "batch_size", "seeds", "device")


@dataclass
class AnalysisFileContents:
    """The settings a study file gives an analysis, by the command's option parameter names.

    Attributes:
        name: the file's ``name``, or None when it sets none.
        values: only the settings the file sets; ``seeds`` is a list of seeds and list
            options are lists.
    """

    name: str | None
    values: dict[str, Any]


def read_analysis_file(path: str | Path, command: str) -> AnalysisFileContents:
    """Read a study file for analysis ``command`` and return the settings it gives.

    Raises:
        ConfigError: the file cannot be read or parsed, a key is unknown, of the wrong type
            or out of range, or the file sets a top-level key that ``command`` cannot apply.
            Each line of the message names the path to the key.
    """
    path = Path(path)
    analysis = ANALYSES[command]
    data = load_study_mapping(path)
    try:
        study_file: StudyFile = validate(StudyFile, data)
        values = _top_level_values(study_file, analysis)
        section = getattr(study_file, section_key(command))
        if section is not None:
            for key, value in section.model_dump(exclude_none=True).items():
                values[analysis.option_names.get(key, key)] = value
    except ConfigError as error:
        raise ConfigError(f"invalid study file '{path}' for reglab {command}:\n{error}") from None
    return AnalysisFileContents(study_file.name, values)


def _top_level_values(study_file: StudyFile, analysis: AnalysisCommand) -> dict[str, Any]:
    """Return the top-level settings that ``analysis`` applies, or raise for one it cannot apply."""
    given = study_file.model_fields_set - {section_key(command) for command in SECTIONS}
    values: dict[str, Any] = {}
    errors = []
    for key in sorted(given):
        value = getattr(study_file, key)
        if key == "name":
            try:
                if value is not None:
                    check_study_name(value)
            except ValueError as error:
                errors.append(f"name: {error}, got {value!r}")
            continue
        if key == "seeds":
            values["seeds"] = resolve_seeds(value)
        elif key == "optimizer" and "lr" in analysis.uses:
            errors += _optimizer_errors(study_file, analysis, values)
        elif key == "lr" and "lr" in analysis.uses:
            if value == "auto":
                errors.append(f"lr: {analysis.name} trains with one fixed learning rate; set a number, got 'auto'")
            elif value is not None and value <= 0:
                errors.append(f"lr: Input should be greater than 0, got {value!r}")
            elif value is not None:
                values["lr"] = value
        elif key == "strategies" and key in analysis.uses:
            errors += _builtin_strategy_errors(value)
            values["strategies"] = list(value)
        elif key in analysis.uses:
            values[key] = value
        elif key not in _ACCEPTED_VALUES or value != _ACCEPTED_VALUES[key]:
            reason = analysis.fixed.get(key) or _REASONS.get(key, "cannot use this setting")
            errors.append(f"{key}: {analysis.name} {reason}; remove it, got {value!r}")
    if errors:
        raise ConfigError("\n".join(errors))
    return values


def _optimizer_errors(study_file: StudyFile, analysis: AnalysisCommand, values: dict[str, Any]) -> list[str]:
    """Check ``optimizer`` against the analyses' SGD with momentum 0.9, and take its ``lr``."""
    optimizer = validate(OptimizerSettings, dict(study_file.optimizer), "optimizer")
    errors = []
    for key in sorted(optimizer.model_fields_set - {"lr"}):
        value, default = getattr(optimizer, key), getattr(_DEFAULT_OPTIMIZER, key)
        if value != default:
            errors.append(
                f"optimizer.{key}: {analysis.name} trains with SGD, momentum 0.9 and no weight decay; "
                f"remove it or set {default!r}, got {value!r}"
            )
    if "lr" in optimizer.model_fields_set:
        if study_file.lr is not None:
            errors.append(f"lr: set the learning rate either as lr or as optimizer.lr, not both, got {study_file.lr!r}")
        values["lr"] = optimizer.lr
    return errors


def _builtin_strategy_errors(strategies: list[str] | dict[str, Any]) -> list[str]:
    """Check that ``strategies`` (a list of names, or a mapping of names without settings) are built-in strategies."""
    errors = []
    for name in strategies:
        entry = strategies[name] if isinstance(strategies, dict) else None
        if entry is not None and entry != {"builtin": name}:
            errors.append(
                f"strategies.{name}: bias-variance trains built-in strategies only; list their names "
                f"({', '.join(STRATEGY_NAMES)}) without settings, got {entry!r}"
            )
        elif name not in STRATEGY_NAMES:
            errors.append(f"strategies.{name}: unknown built-in strategy; expected one of {', '.join(STRATEGY_NAMES)}, got {name!r}")
    return errors


def write_analysis_settings(
    out: str | Path, command: str, settings: dict[str, Any], *, name: str | None = None
) -> Path:
    """Write the settings an analysis ran with to ``out/study.yaml``, in the study-file format.

    ``settings`` are the command's option values by parameter name, as passed to the
    analysis; None values are left out, so the option's default applies when the file is
    read again. The file runs the same analysis with ``reglab COMMAND out/study.yaml``.
    Options that are not study-file settings (``out``, ``data_dir``, ``download``,
    ``quiet``) are not written.

    Returns:
        The path of the file.
    """
    analysis = ANALYSES[command]
    section_names = {option: key for key, option in analysis.option_names.items()}
    section_fields = SECTIONS[command].model_fields
    top: dict[str, Any] = {"name": name} if name is not None else {}
    section: dict[str, Any] = {}
    for option, value in settings.items():
        if value is None:
            continue
        value = list(value) if isinstance(value, tuple) else value
        key = section_names.get(option, option)
        if key in _TOP_LEVEL:
            top[key] = value
        elif key in section_fields:
            section[key] = value
        else:
            raise ConfigError(f"{command}: option {option!r} is not a study-file setting of this analysis, got {value!r}")
    top = {key: top[key] for key in _TOP_LEVEL if key in top}
    if section:
        top[section_key(command)] = section

    path = Path(out) / "study.yaml"
    header = (
        f"# The settings this 'reglab {command}' ran with. Run it again with:\n"
        f"#   reglab {command} {path}\n"
    )
    path.write_text(header + yaml.safe_dump(top, sort_keys=False, default_flow_style=None), encoding="utf-8")
    return path

