"""Retrain a stored run from its stored settings and seed, and compare the metrics exactly.

The reproduction builds the split again from the same seed, so it evaluates a fresh copy of
the same sealed test set once. That access belongs to the reproduction and is stored with
its verdict in the ``verifications`` table. The original run's record of test accesses is
left as it was, so a reproduced run still counts as evaluated once.

On the same device and library versions, reglab's runs are deterministic, so the comparison
is exact: any difference in a history row, a final metric or a test metric is a mismatch.
When the run's weight checkpoint exists (:mod:`reglab.study.checkpoints`), every retrained
tensor must also equal the checkpoint's bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from pydantic import ValidationError

from reglab.data import load_dataset, make_split
from reglab.errors import ConfigError
from reglab.study.checkpoints import checkpoint_path, load_checkpoint
from reglab.study.store import RunStore, library_versions
from reglab.training.config import RunConfig, format_validation_error
from reglab.training.determinism import GPU_TOLERANCE
from reglab.training.device import resolve_device
from reglab.training.fit import RunResult, TrainingError, fit
from reglab.training.fit_batched import fit_batched

# Per-epoch wall-clock time differs on every run and is not a result.
_UNTIMED_HISTORY_KEYS = ("seconds",)


@dataclass(frozen=True)
class MetricDifference:
    """One metric whose reproduced value differs from the stored one."""

    metric: str
    stored: Any
    reproduced: Any


@dataclass
class Verification:
    """The verdict of one reproduction.

    Attributes:
        run_id: the reproduced run.
        identical: True when every compared value is exactly equal.
        differences: every value that differs, named like ``history[3].val_acc``,
            ``final_metrics.train_acc`` or ``test_metrics.test_acc``.
        compared: how many values were compared.
        notes: facts that may explain a mismatch, such as other library versions or a stored
            configuration that no longer matches its settings key.
        verification_id: the row stored in ``verifications``, once stored.
    """

    run_id: int
    identical: bool
    differences: list[MetricDifference]
    compared: int
    notes: list[str] = field(default_factory=list)
    test_accesses: list[dict[str, Any]] = field(default_factory=list)
    verification_id: int | None = None
    tolerance: float = 0.0
    largest_difference: float = 0.0

    @property
    def passed(self) -> bool:
        """True when every value is identical, or on a GPU, every number within ``tolerance``.

        A difference in anything but a number (an epoch count, a stop reason, a shape, a
        failed run) fails the verification at any tolerance.
        """
        if self.identical:
            return True
        numeric = all(_gap(d.stored, d.reproduced) < math.inf or d.stored == "checkpoint" for d in self.differences)
        return self.tolerance > 0 and numeric and self.largest_difference <= self.tolerance

    def details(self) -> dict[str, Any]:
        """Return the JSON-ready record stored in ``verifications.details_json``."""
        return {
            "identical": self.identical,
            "tolerance": self.tolerance,
            "largest_difference": self.largest_difference,
            "compared": self.compared,
            "differences": [vars(difference) for difference in self.differences],
            "notes": self.notes,
            "reproduction_test_accesses": self.test_accesses,
            "versions": library_versions(),
        }


def reproduce_run(
    store: RunStore,
    run_id: int,
    *,
    data_dir: str | None = None,
    download: bool = False,
    device: str | torch.device = "cpu",
) -> Verification:
    """Retrain stored run ``run_id``, compare it with the stored run and store the verdict.

    On a CPU, the verdict needs every value to be identical. When the run or its
    reproduction trained on a GPU (both train in
    :func:`~reglab.training.determinism.deterministic_mode`), numbers may differ by up to
    :data:`~reglab.training.determinism.GPU_TOLERANCE`; the verdict still lists every
    difference.

    Raises:
        ConfigError: no run has this id, the run failed or only searched a learning rate,
            or its stored settings are no longer valid.
    """
    stored = store.run(run_id)
    if stored is None:
        raise ConfigError(f"run {run_id} not found in {store.path}; list the runs with 'reglab runs'.")
    if stored["status"] != "finished":
        raise ConfigError(f"run {run_id} has status {stored['status']!r}; only finished runs can be reproduced.")
    if stored["role"] != "run":
        raise ConfigError(
            f"run {run_id} is a {stored['role']!r} run, which never opened its test set; "
            "reproduce the study's runs with role 'run'."
        )

    config = _stored_config(stored)
    split_seed = (stored["split"] or {}).get("seed", config.seed)
    dataset = load_dataset(config.dataset, data_dir=data_dir, download=download)
    split = make_split(dataset, seed=split_seed, val_fraction=config.val_fraction, test_fraction=config.test_fraction)

    # A run trained by the batched engine is retrained by it, in the same batch (the same
    # members in the same order), because the rounding of batched matrix products can
    # depend on the batch size. Runs stored before the batch was recorded are retrained
    # as a batch of one, and the verdict notes it.
    members = (stored["timings"] or {}).get("batched_members")
    batch, position = _stored_batch(store, stored, config)
    try:
        if members is not None:
            splits = [split if member == position else _fresh_test(split) for member in range(len(batch))]
            result = fit_batched(batch, splits, device, errors="return")[position]
            if isinstance(result, TrainingError):
                raise result
        else:
            result = fit(config, split, device=device, evaluate_test=True)
    except TrainingError as error:
        verification = Verification(
            run_id=run_id,
            identical=False,
            differences=[MetricDifference("status", "finished", f"failed: {error}")],
            compared=1,
        )
    else:
        verification = compare_with_stored(stored, result)
        checkpoint = checkpoint_path(store.path.parent, stored["study"], run_id)
        if checkpoint.is_file() and result.model is not None:
            compare_weights(verification, load_checkpoint(checkpoint), result.model.state_dict())

    # A GPU on either side: numbers may differ in the last bits even in deterministic mode.
    devices = {(stored["timings"] or {}).get("device", "cpu"), resolve_device(device).type}
    if devices != {"cpu"}:
        verification.tolerance = GPU_TOLERANCE
        verification.notes.append(
            f"trained on {' and '.join(sorted(devices))}: numbers may differ by up to {GPU_TOLERANCE:g}"
        )
    if members is not None and len(batch) != members:
        verification.notes.append(
            f"trained by the batched engine in a batch of {members}, retrained in a batch of {len(batch)}"
        )
    if config.key() != stored["run_key"]:
        verification.notes.append(
            f"the stored settings no longer match the run's settings key {stored['run_key']} "
            "(they were changed after the run was stored)"
        )
    for library, version in library_versions().items():
        stored_version = (stored["versions"] or {}).get(library)
        if stored_version is not None and stored_version != version:
            verification.notes.append(f"{library} {version} now, {stored_version} when the run was stored")
    verification.verification_id = store.save_verification(run_id, verification.passed, verification.details())
    return verification


def _stored_batch(store: RunStore, stored: dict[str, Any], config: RunConfig) -> tuple[list[RunConfig], int]:
    """Return the configurations that were trained in one batch with ``stored``, and its position.

    The batch is read from the run's ``timings.batch_keys``; every member, finished or
    failed, is stored in the same study. Without that record, the batch is the run alone.
    """
    keys = (stored["timings"] or {}).get("batch_keys")
    if not keys or stored["run_key"] not in keys:
        return [config], 0
    by_key = {run["run_key"]: run for run in store.runs(stored["study"], role=None)}
    if any(key not in by_key for key in keys):
        return [config], 0
    batch = [_stored_config(by_key[key]) for key in keys]
    position = keys.index(stored["run_key"])
    batch[position] = config
    return batch, position


def _stored_config(stored: dict[str, Any]) -> RunConfig:
    """Validate a stored run's settings, raising ConfigError with one ``path: message`` line per bad key."""
    try:
        return RunConfig.model_validate(stored["config"])
    except ValidationError as error:
        raise ConfigError(
            f"the stored settings of run {stored['id']} are no longer valid:\n{format_validation_error(error)}"
        ) from None


def _fresh_test(split: Any) -> Any:
    """Return ``split`` with its own unopened copy of the sealed test set."""
    return dataclasses.replace(split, test=split.test.unopened_copy())


def compare_with_stored(stored: dict[str, Any], result: RunResult) -> Verification:
    """Compare a reproduction with a stored run, value by value, exactly."""
    pairs: list[tuple[str, Any, Any]] = [
        ("epochs_trained", len(stored["history"]), len(result.history)),
        ("best_epoch", stored["best_epoch"], result.best_epoch),
        ("stop_reason", stored["stop_reason"], result.stop_reason),
    ]
    for epoch, (old_row, new_row) in enumerate(zip(stored["history"], result.history), start=1):
        for key in sorted(set(old_row) | set(new_row)):
            if key not in _UNTIMED_HISTORY_KEYS:
                pairs.append((f"history[{epoch}].{key}", old_row.get(key), new_row.get(key)))
    for group, old, new in (
        ("final_metrics", stored["final_metrics"] or {}, result.final_metrics),
        ("test_metrics", stored["test_metrics"] or {}, result.test_metrics),
    ):
        for key in sorted(set(old) | set(new)):
            pairs.append((f"{group}.{key}", old.get(key), new.get(key)))

    differences = [MetricDifference(name, a, b) for name, a, b in pairs if not _same(a, b)]
    return Verification(
        run_id=int(stored["id"]),
        identical=not differences,
        differences=differences,
        compared=len(pairs),
        test_accesses=result.test_accesses,
        largest_difference=max((_gap(d.stored, d.reproduced) for d in differences), default=0.0),
    )


def compare_weights(verification: Verification, stored: dict[str, Any], reproduced: dict[str, Any]) -> None:
    """Add the checkpoint's tensors to ``verification``, each compared bit for bit.

    A tensor that differs is recorded as ``weights.<name>`` with its maximum absolute
    difference, or with its shape when the shapes differ.
    """
    for name in sorted(set(stored) | set(reproduced)):
        verification.compared += 1
        old, new = stored.get(name), reproduced.get(name)
        if old is None or new is None:
            presence = ("present" if old is not None else "missing", "present" if new is not None else "missing")
            difference = MetricDifference(f"weights.{name}", *presence)
        elif old.shape != new.shape:
            difference = MetricDifference(f"weights.{name}", f"shape {list(old.shape)}", f"shape {list(new.shape)}")
        elif torch.equal(old, new.detach().cpu()):
            continue
        else:
            max_difference = (old.double() - new.detach().cpu().double()).abs().max().item()
            difference = MetricDifference(f"weights.{name}", "checkpoint", f"max absolute difference {max_difference:g}")
            verification.largest_difference = max(verification.largest_difference, max_difference)
        verification.differences.append(difference)
        verification.identical = False


def _gap(a: Any, b: Any) -> float:
    """Return the absolute difference of two numbers, or infinity for anything else."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b))
    return math.inf


def _same(a: Any, b: Any) -> bool:
    """Exact equality, where two NaNs count as equal."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b
