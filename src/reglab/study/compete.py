"""``reglab compete``: the best-known recipe for a data set, trained within a wall-clock budget.

A competition run goes through four steps, all on one seeded three-way split:

1. **Selection.** Each candidate recipe for the data set trains a short probe (the same
   number of epochs for every candidate, with its schedule compressed to that length) and is
   scored by validation accuracy. The sealed test set stays closed. At most a third of the
   budget goes to the probes; candidates that do not fit are skipped, and the selection table marks them.
2. **Sizing.** The probes measure the time of one epoch of each recipe (the median over the
   probe's epochs) and the fixed cost of a run (building the model, evaluating, storing).
   The time left after that fixed cost, divided by the epoch time times ``SLOWDOWN_MARGIN``,
   gives how many epochs the chosen recipe trains, so a machine up to that much slower than
   during the probes still ends in time. The epoch count, not the clock, enters the run's
   settings, so the run can be reproduced exactly.
3. **The final run** trains the chosen recipe for that many epochs, keeps the weights of its
   best validation epoch, and evaluates the sealed test set once. It is stored like any
   other run, so ``reglab leaderboard`` ranks it.
4. **Verification.** When the time left allows a second training (or ``verify`` reserves
   it), :func:`reglab.study.reproduce.reproduce_run` retrains the stored run and stores its
   verdict, which the leaderboard shows. The decision uses the measured time of the final
   run and of loading the data, times ``SLOWDOWN_MARGIN``.

A machine that slows down by more than the margin still overruns the budget. The result
then reports the overrun and the measured epoch times, see :func:`overrun_message`.
"""

from __future__ import annotations

import logging
import math
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from reglab.augment import CLOTHING_DATASETS, DIGIT_DATASETS
from reglab.data import Split, load_dataset, make_split
from reglab.errors import ConfigError
from reglab.study.spec import check_study_name
from reglab.study.store import RunStore
from reglab.training.config import RunConfig, validate
from reglab.training.device import resolve_device
from reglab.training.fit import RunResult, fit
from reglab.training.precision import PRECISIONS, bf16_is_fast

logger = logging.getLogger(__name__)

# Share of the budget that the probes of the selection step may use.
SELECTION_SHARE = 1 / 3

# Epochs of each probe, when the budget allows; fewer when it does not, never under one.
PROBE_EPOCHS = 3

# The time kept back for evaluating and storing the final run, as a share of the budget.
RESERVE_SHARE = 0.05

# The final run and the reproduction are sized for epochs this much slower than the probes
# measured, because a loaded machine can slow down between the probes and the final run.
# The final runs of three competitions on Fashion-MNIST took 1.10, 0.93 and 0.91 times the
# median probe epoch. Any margin above the actual slowdown is budget left unused.
SLOWDOWN_MARGIN = 1.15

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_budget(text: str) -> float:
    """Parse a duration such as ``30m``, ``90s``, ``1h`` or ``1h30m`` into seconds.

    A bare number counts seconds.

    Raises:
        ConfigError: the text is not a positive duration; the message shows the accepted forms.
    """
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        match = _DURATION.match(value)
        if not value or match is None:
            raise ConfigError(
                f"compete: budget must be a duration such as 30m, 90s, 1h or 1h30m, got {text!r}."
            ) from None
        hours, minutes, secs = (float(part) if part else 0.0 for part in match.groups())
        seconds = 3600 * hours + 60 * minutes + secs
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"compete: budget must be a positive duration such as 30m, got {text!r}.")
    return seconds


@dataclass(frozen=True)
class Recipe:
    """One candidate: a model, its regularizers, its optimizer and schedule.

    Attributes:
        name: the recipe's name, stored as the run's strategy.
        model: a model spec, see :func:`reglab.nn.models.parse_model_spec`.
        regularization: :class:`~reglab.training.config.StrategyConfig` settings.
        optimizer: :class:`~reglab.training.config.OptimizerSettings` settings.
        batch_size: the minibatch size.
        max_epochs: the recipe does not gain from more epochs than this.
        precision: ``"fp32"`` or ``"bf16"``, see :mod:`reglab.training.precision`.
    """

    name: str
    model: str
    regularization: dict[str, Any]
    optimizer: dict[str, Any]
    batch_size: int = 128
    max_epochs: int = 60
    precision: str = "fp32"

    def config(self, dataset: str, seed: int, epochs: int) -> RunConfig:
        """Return the validated run settings of this recipe for ``epochs`` epochs."""
        schedule = self.optimizer.get("schedule")
        optimizer = dict(self.optimizer)
        if schedule is not None and schedule.get("warmup_epochs", 0) >= epochs:
            optimizer["schedule"] = {**schedule, "warmup_epochs": max(0, epochs - 1) // 3}
        return validate(
            RunConfig,
            {
                "dataset": dataset,
                "model": self.model,
                "strategy": self.name,
                "regularization": self.regularization,
                "optimizer": optimizer,
                "batch_size": self.batch_size,
                "epochs": epochs,
                "seed": seed,
                "precision": self.precision,
            },
            f"compete.{self.name}",
        )


def _sgd(lr: float, warmup_epochs: int = 1) -> dict[str, Any]:
    return {"name": "sgd", "lr": lr, "momentum": 0.9, "schedule": {"name": "cosine", "warmup_epochs": warmup_epochs}}


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """Return ``precision``, with ``"auto"`` replaced by ``"bf16"`` where ``device`` computes it natively, else ``"fp32"``.

    Raises:
        ConfigError: ``precision`` is not one of ``"auto"``, ``"fp32"`` and ``"bf16"``, or
            ``device`` cannot be used (:func:`reglab.training.device.resolve_device`).
    """
    if precision not in ("auto", *PRECISIONS):
        raise ConfigError(f"compete: precision must be auto, fp32 or bf16, got {precision!r}.")
    if precision == "auto":
        return "bf16" if bf16_is_fast(resolve_device(device)) else "fp32"
    return precision


def recipes_for(
    dataset: str, input_shape: tuple[int, ...], device: str | torch.device = "cpu", precision: str = "auto"
) -> list[Recipe]:
    """Return the candidate recipes for a data set, most promising first.

    Images of at least 16x16 pixels get a small CNN with BatchNorm, dropout after the pooled
    blocks and in the classifier, label smoothing, decoupled weight decay and a cosine
    schedule with one warm-up epoch. For clothing the candidates use random erasing and
    differ in depth. For other images they differ in the regularization through the data
    (the data set's default augmentation, random erasing, or both). Other inputs get an MLP
    with dropout. The recipes follow common practice for these data sets and runs scored on
    their validation sets, never on their test sets.

    ``precision`` is ``"fp32"``, ``"bf16"`` or ``"auto"``, which picks ``"bf16"`` where
    ``device`` computes bfloat16 natively (:func:`reglab.training.precision.bf16_is_fast`).
    Every recipe trains in that precision. In ``bf16``, the deeper candidate for clothing
    has two convolutions per block, which that speed pays for.

    Raises:
        ConfigError: ``precision`` is not one of ``"auto"``, ``"fp32"`` and ``"bf16"``.
    """
    precision = resolve_precision(precision, device)
    common = {"label_smoothing": 0.1, "weight_decay": 5e-4, "early_stopping": None}
    images = len(input_shape) == 3 and min(input_shape[1:]) >= 16
    if images:
        model = "cnn:32,64:bn"
        dropout = {"p": [0.1, 0.1, 0.5], "input_p": 0.0}
        erasing = {**common, "dropout": dropout, "random_erasing": 0.5}
        if dataset.lower() in CLOTHING_DATASETS:
            # On Fashion-MNIST's validation set, with cnn:32,64:bn for about 50 epochs, the
            # default crops and flips lowered accuracy (92.4%, and 91.9% with erasing, against
            # 92.8% for erasing alone): the network underfits them. With a third block, erasing
            # reached 93.1% in the 34 epochs of a 30-minute competition, against 92.8% in 56
            # epochs with two blocks. In bf16 on a 2-core Xeon with AMX, two convolutions per
            # block scored 91.7% after the 3 probe epochs, against 90.2% for one, and 94.7%
            # after 54 epochs (docs/results.md).
            deeper = {**erasing, "dropout": {"p": [0.1, 0.1, 0.1, 0.5], "input_p": 0.0}}
            three_blocks = Recipe("cnn3-erasing", "cnn:32,64,128:bn", deeper, _sgd(0.05), precision=precision)
            if precision == "bf16":
                vgg = Recipe("vgg3-erasing", "cnn:32,64,128:bn,convs=2", deeper, _sgd(0.05), precision=precision)
                return [vgg, three_blocks]
            return [three_blocks, Recipe("cnn-erasing", model, erasing, _sgd(0.05), precision=precision)]
        erasing_only = Recipe("cnn-erasing", model, erasing, _sgd(0.05), precision=precision)
        if dataset.lower() not in DIGIT_DATASETS:
            # Only built-in data sets have a default augmentation (reglab.augment.default_augmentation).
            return [erasing_only]
        return [
            Recipe("cnn-augment", model, {**common, "dropout": dropout, "augment": True}, _sgd(0.05), precision=precision),
            Recipe(
                "cnn-augment-erasing",
                model,
                {**common, "dropout": dropout, "augment": True, "random_erasing": 0.5},
                _sgd(0.05),
                precision=precision,
            ),
            erasing_only,
        ]

    dropout = {"p": 0.5, "input_p": 0.2 if len(input_shape) == 3 else 0.0}
    return [
        Recipe("mlp-dropout", "mlp:512,512", {**common, "dropout": dropout}, _sgd(0.05), precision=precision),
        Recipe("mlp-dropout-slow", "mlp:512,512", {**common, "dropout": dropout}, _sgd(0.02), precision=precision),
    ]


@dataclass
class Probe:
    """The selection score of one candidate."""

    recipe: str
    epochs: int
    val_acc: float | None
    seconds_per_epoch: float | None
    note: str = ""
    # Wall-clock seconds of the probe run outside its epochs: building, evaluating, storing.
    overhead_seconds: float = 0.0


@dataclass
class CompeteResult:
    """The outcome of ``reglab compete``, in the form it writes to ``compete.json``.

    Attributes:
        study: the study name under which the runs are stored.
        recipe: the chosen recipe's name.
        description: the chosen recipe's settings in words.
        model: its model spec.
        run_id: the stored final run.
        epochs: the final run's epoch budget.
        best_epoch: the epoch whose weights were kept.
        val_acc: validation accuracy of the kept weights.
        test_acc: the single sealed test evaluation.
        seconds: wall-clock seconds of the whole competition.
        budget_seconds: the budget.
        verified: True or False after a reproduction, None when none fitted the budget.
        probes: the selection scores.
        final_seconds: wall-clock seconds of the final run, storing included.
        seconds_per_epoch: the final run's mean epoch time.
        probe_seconds_per_epoch: the epoch time that the chosen recipe's probe measured,
            from which ``epochs`` was sized.
        precision: its precision, ``"fp32"`` or ``"bf16"``.
        reused: True when the final run was stored by an earlier call with the same name
            and seed; ``seconds`` and ``budget_seconds`` are then this call's, while
            ``epochs`` and ``final_seconds`` are the stored run's.
    """

    study: str
    recipe: str
    description: str
    model: str
    run_id: int
    epochs: int
    best_epoch: int
    val_acc: float
    test_acc: float
    seconds: float
    budget_seconds: float
    verified: bool | None
    probes: list[Probe] = field(default_factory=list)
    final_seconds: float = 0.0
    seconds_per_epoch: float = 0.0
    probe_seconds_per_epoch: float = 0.0
    precision: str = "fp32"
    reused: bool = False

    @property
    def over_budget(self) -> bool:
        return self.seconds > self.budget_seconds


def format_seconds(seconds: float) -> str:
    """Format a duration as seconds below two minutes and as minutes above."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def overrun_message(result: CompeteResult) -> str | None:
    """Return a sentence that explains an overrun of the budget, or None when the competition ended in time."""
    if not result.over_budget:
        return None
    took = f"took {format_seconds(result.seconds)} of a {format_seconds(result.budget_seconds)} budget"
    if result.seconds_per_epoch > result.probe_seconds_per_epoch * SLOWDOWN_MARGIN:
        return (
            f"{took}: the machine was slower than during the probes (an epoch of the final run took "
            f"{result.seconds_per_epoch:.2f} s against {result.probe_seconds_per_epoch:.2f} s in the probe). "
            "The results are valid; give a larger --budget on a loaded machine to end in time."
        )
    return (
        f"{took}: loading the data, the probes or the fixed costs of the final run took longer than "
        "estimated. The results are valid; give a larger --budget to end in time."
    )


ProgressCallback = Callable[[str], None]


def compete(
    dataset: str,
    budget_seconds: float,
    store: RunStore,
    *,
    seed: int = 0,
    device: str = "cpu",
    verify: bool = False,
    data_dir: str | None = None,
    download: bool = False,
    recipes: list[Recipe] | None = None,
    precision: str = "auto",
    name: str | None = None,
    on_message: ProgressCallback | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> CompeteResult:
    """Select a recipe on validation data, train it within the budget and evaluate it once.

    Args:
        dataset: a data set name, see :func:`reglab.data.load_dataset`.
        budget_seconds: the wall-clock budget of the whole competition.
        store: where the probes (role ``selection``) and the final run (role ``run``) go.
        seed: the seed of the split and of every run.
        device: where to train.
        verify: size the final run so that a reproduction fits in the budget as well.
        data_dir: a folder with the data set's files.
        download: allow torchvision's downloader.
        recipes: the candidates; :func:`recipes_for` by default.
        precision: the precision of the default candidates, see :func:`recipes_for`.
        name: the study name of the probes and the final run, ``compete-DATASET`` by
            default. A later call with the same name and seed reuses the stored probes,
            with the epoch times they measured, and the stored final run of the chosen
            recipe whatever its epochs; a new name measures and trains afresh.
        on_message: called with a line of text at each step.
        on_epoch_end: called after each epoch of the final run.

    Returns:
        The :class:`CompeteResult`.

    Raises:
        ConfigError: ``name`` is not a valid study name. Also raised when the budget cannot
            fit one probe epoch and one final epoch, with the measured epoch time and the
            smallest useful budget in the message.
    """
    study = f"compete-{re.sub(r'[^A-Za-z0-9._-]', '-', dataset)}"[:100] if name is None else name
    try:
        check_study_name(study)
    except ValueError as error:
        raise ConfigError(f"compete: name {study!r} {error}; for example --name compete-fashion-mnist-2.") from None
    earlier = store.study_spec(study)
    if earlier is not None and earlier.get("command") != "compete":
        raise ConfigError(
            f"compete: name {study!r} is a study of 'reglab {earlier.get('command', 'compare')}' in {store.path}; "
            "give another --name, for example --name compete-2."
        )
    started = time.perf_counter()
    say = on_message or (lambda text: logger.info(text))
    data = load_dataset(dataset, data_dir=data_dir, download=download)
    split = make_split(data, seed=seed)
    # A reproduction loads the data set again, so its estimate includes this time.
    load_seconds = time.perf_counter() - started
    candidates = recipes if recipes is not None else recipes_for(dataset, tuple(split.train.x.shape[1:]), device, precision)
    store.save_study(study, {"command": "compete", "dataset": dataset, "budget_seconds": budget_seconds, "seed": seed})

    def elapsed() -> float:
        return time.perf_counter() - started

    # Selection on validation data.
    probes = _select(candidates, dataset, split, seed, device, store, study, budget_seconds, elapsed, say)
    scored = [probe for probe in probes if probe.val_acc is not None]
    best = max(scored, key=lambda probe: probe.val_acc)
    recipe = next(candidate for candidate in candidates if candidate.name == best.recipe)
    say(f"chose {recipe.name} (validation accuracy {best.val_acc:.4f} after {best.epochs} probe epoch(s))")

    # One final run per competition: a rerun with the same name and seed reuses it, even where
    # the reused probes would now size it longer, so that the test set is opened once.
    stored = next(
        (
            run
            for run in store.runs(study, role="run")
            if run["seed"] == seed and run["strategy"] == recipe.name and run["status"] == "finished"
        ),
        None,
    )
    if stored is not None:
        epochs = stored["config"]["epochs"]
        config = recipe.config(dataset, seed, epochs)
        say(
            f"run {stored['id']} ({recipe.name}, {epochs} epochs) was stored by an earlier run of compete "
            "with this name and seed; reusing it. Give another --name to compete again."
        )
        run_id = stored["id"]
        metrics = {**stored["final_metrics"], **stored["test_metrics"]}
        best_epoch = stored["best_epoch"]
        final_seconds = stored["timings"]["total_seconds"]
        seconds_per_epoch = _mean_epoch_seconds(stored["history"])
    else:
        epochs = _size_final_run(budget_seconds, elapsed(), best, recipe, load_seconds, verify)

        # The final run, evaluated once on the sealed test set.
        config = recipe.config(dataset, seed, epochs)
        say(f"training {recipe.name} for {epochs} epoch(s): {config.regularization.describe()}")
        final_started = time.perf_counter()
        split = make_split(data, seed=seed, val_fraction=config.val_fraction, test_fraction=config.test_fraction)
        result = fit(config, split, device=device, on_epoch_end=on_epoch_end)
        run_id = store.save_run(study, result)
        _save_weights(store, study, run_id, result)
        metrics = {**result.final_metrics, **result.test_metrics}
        best_epoch = result.best_epoch
        final_seconds = time.perf_counter() - final_started
        seconds_per_epoch = _mean_epoch_seconds(result.history)
    if seconds_per_epoch > best.seconds_per_epoch * SLOWDOWN_MARGIN:
        logger.warning(
            "compete: an epoch of the final run took %.2f s, more than the %.2f s (probe time times %.2f) it was sized for",
            seconds_per_epoch,
            best.seconds_per_epoch * SLOWDOWN_MARGIN,
            SLOWDOWN_MARGIN,
        )

    # Verification, when a reproduction fits: it loads the data and trains the same epochs again.
    verified = None
    reproduction_estimate = (load_seconds + final_seconds) * SLOWDOWN_MARGIN
    earlier = store.verifications(run_id)
    if earlier:
        verified = bool(earlier[-1]["identical"])
        say(f"run {run_id} was reproduced before: {'verified' if verified else 'mismatch'}")
    elif elapsed() + reproduction_estimate <= budget_seconds:
        from reglab.study.reproduce import reproduce_run

        say(f"reproducing run {run_id} to verify it")
        verified = reproduce_run(store, run_id, device=device, data_dir=data_dir).identical
    else:
        say(
            f"no time left to reproduce run {run_id} (it needs about {format_seconds(reproduction_estimate)}); "
            f"run `reglab reproduce {run_id}` to verify it"
        )

    return CompeteResult(
        study=study,
        recipe=recipe.name,
        description=config.regularization.describe(),
        model=config.model,
        run_id=run_id,
        epochs=epochs,
        best_epoch=best_epoch,
        val_acc=metrics["val_acc"],
        test_acc=metrics["test_acc"],
        seconds=elapsed(),
        budget_seconds=budget_seconds,
        verified=verified,
        probes=probes,
        final_seconds=final_seconds,
        seconds_per_epoch=seconds_per_epoch,
        probe_seconds_per_epoch=best.seconds_per_epoch,
        precision=config.precision,
        reused=stored is not None,
    )


def _size_final_run(
    budget_seconds: float, elapsed_seconds: float, probe: Probe, recipe: Recipe, load_seconds: float, verify: bool
) -> int:
    """Return the final run's epochs from the probe's times, or raise ConfigError when none fits."""
    epochs = min(recipe.max_epochs, final_epochs(budget_seconds, elapsed_seconds, probe, load_seconds, verify=verify))
    if epochs < 1:
        runs = 2 if verify else 1
        epoch_estimate = probe.seconds_per_epoch * SLOWDOWN_MARGIN
        needed = elapsed_seconds + runs * (epoch_estimate + probe.overhead_seconds * SLOWDOWN_MARGIN) / (1 - RESERVE_SHARE)
        raise ConfigError(
            f"compete: budget {budget_seconds:.0f} s leaves no time for the final run after selection "
            f"(one epoch of {recipe.name} takes about {probe.seconds_per_epoch:.2g} s); give at least "
            f"--budget {math.ceil(needed * 1.5)}s."
        )
    return epochs


def final_epochs(
    budget_seconds: float, elapsed_seconds: float, probe: Probe, load_seconds: float, *, verify: bool = False
) -> int:
    """Return how many epochs the final run can train in the time left, or 0 when not one fits.

    The time left is the budget less ``RESERVE_SHARE`` of it, the time already spent and the
    run's fixed cost. Each epoch counts ``SLOWDOWN_MARGIN`` times the probe's epoch time, and
    the fixed cost ``SLOWDOWN_MARGIN`` times the probe's. With ``verify``, the time left is
    shared with a reproduction, which also loads the data set again (``load_seconds``).
    """
    epoch_estimate = probe.seconds_per_epoch * SLOWDOWN_MARGIN
    overhead_estimate = probe.overhead_seconds * SLOWDOWN_MARGIN
    left = budget_seconds * (1 - RESERVE_SHARE) - elapsed_seconds - overhead_estimate
    if verify:
        left = (left - overhead_estimate - load_seconds) / 2
    return max(0, math.floor(left / epoch_estimate))


def _select(
    candidates: list[Recipe],
    dataset: str,
    split: Split,
    seed: int,
    device: str,
    store: RunStore,
    study: str,
    budget_seconds: float,
    elapsed: Callable[[], float],
    say: ProgressCallback,
) -> list[Probe]:
    """Train a short probe of each candidate and score it on validation data."""
    probes: list[Probe] = []
    limit = budget_seconds * SELECTION_SHARE
    epochs = PROBE_EPOCHS
    for position, recipe in enumerate(candidates):
        # Shorten the probes once the first one shows they would not fit.
        if probes and probes[0].seconds_per_epoch is not None:
            per_epoch = probes[0].seconds_per_epoch
            remaining = limit - elapsed()
            if remaining < per_epoch * (len(candidates) - position) * epochs:
                epochs = max(1, int(remaining // (per_epoch * (len(candidates) - position))))
            if elapsed() + per_epoch * epochs > limit:
                probes.append(Probe(recipe.name, 0, None, None, "skipped: the selection share of the budget was spent"))
                say(f"skipped {recipe.name}: the selection share of the budget was spent")
                continue

        probe_started = time.perf_counter()
        config = recipe.config(dataset, seed, epochs)
        stored = store.finished_run(study, config.key())
        if stored is not None and stored["role"] == "selection":
            probes.append(_stored_probe(recipe.name, epochs, stored))
            say(f"probe {recipe.name}: stored by an earlier run of compete, validation accuracy {probes[-1].val_acc:.4f}")
            continue
        result = fit(config, split, device=device, evaluate_test=False)
        store.save_run(study, result, role="selection")
        seconds = _median_epoch_seconds(result.history)
        overhead = max(0.0, time.perf_counter() - probe_started - _total_epoch_seconds(result.history))
        probes.append(Probe(recipe.name, epochs, result.final_metrics["val_acc"], seconds, overhead_seconds=overhead))
        say(f"probe {recipe.name}: validation accuracy {result.final_metrics['val_acc']:.4f} ({seconds:.1f} s per epoch)")
    return probes


def _stored_probe(recipe: str, epochs: int, stored: dict[str, Any]) -> Probe:
    """Rebuild a probe's score and timings from its stored run."""
    history = stored["history"]
    seconds = _median_epoch_seconds(history)
    overhead = max(0.0, stored["timings"]["total_seconds"] - _total_epoch_seconds(history))
    return Probe(recipe, epochs, stored["final_metrics"]["val_acc"], seconds, "stored earlier", overhead_seconds=overhead)


def _mean_epoch_seconds(history: list[dict[str, Any]]) -> float:
    return _total_epoch_seconds(history) / len(history)


def _total_epoch_seconds(history: list[dict[str, Any]]) -> float:
    return sum(row["seconds"] for row in history)


def _median_epoch_seconds(history: list[dict[str, Any]]) -> float:
    """Return the median epoch time of a probe.

    The first epoch also pays one-time costs: in a probe of cnn:32,64,128:bn it took 43 s
    against 32 and 28 s for the next two, and the final run's epochs averaged 30 s.
    """
    return statistics.median(row["seconds"] for row in history)


def _save_weights(store: RunStore, study: str, run_id: int, result: RunResult) -> None:
    from reglab.study.checkpoints import checkpoint_path, save_checkpoint

    if result.model is not None:
        save_checkpoint(result.model, checkpoint_path(store.path.parent, study, run_id))
