"""Train several configurations of one MLP at once and return one RunResult per configuration.

:func:`fit_batched` trains K configurations with a :class:`~reglab.training.batched.BatchedMLP`
and returns what :func:`reglab.training.fit.fit` returns for each of them. What the members
share and what each keeps:

* Shared: the training data, the minibatch order (one permutation per epoch) and the
  evaluation batches. Every member therefore needs the same data set, model spec, batch
  size and split fractions, and SGD as its optimizer.
* Per member, drawn from its own ``config.seed`` exactly as :func:`fit` draws them: the
  initialization, the dropout masks (a generator that continues the seeded global stream
  after the initialization) and the augmentation (a generator seeded with ``seed + 1``).
  Its learning rate, momentum, L2 and L1 strengths, max-norm, dropout settings, epoch limit
  and early stopping are its own too.

Without ``data_seed``, every member must have the same seed, and the minibatch order is the
one :func:`fit` draws for that seed. Each member then follows :func:`fit`'s computation up
to floating-point rounding, because batched and single matrix products round differently.
Those differences grow over many SGD steps. With ``data_seed``, members may have different
seeds, and the order comes from ``data_seed``.

With ``separate_data``, each member trains on the training part of its own split, such as
a bootstrap sample or a subsample, normalized with that split's statistics, and draws its
minibatch order from its own seed as :func:`fit` does. Members may then differ in seed and
still follow :func:`fit` up to rounding. Their training parts must have the same size, so
that every member takes the same number of steps, and so must their validation parts.

A member that stops early is removed from the batch at the end of that epoch, so its kept
weights no longer change and it costs no more compute.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reglab.data import Split, iterate_minibatches
from reglab.early_stopping import EarlyStopping, StopReason
from reglab.errors import ConfigError
from reglab.nn.batch_size import rows_within_budget
from reglab.nn.checks import check_eval_deterministic
from reglab.nn.models import parse_model_spec
from reglab.training.batched import BatchedMLP, MemberSettings, member_model
from reglab.training.config import RunConfig, largest_probability
from reglab.training.determinism import deterministic_mode
from reglab.training.device import resolve_device
from reglab.training.diagnostics import layer_stats
from reglab.training.evaluate import evaluate
from reglab.training.fit import METRICS, RunResult, TrainingError, build_augmentation, non_finite_loss_message
from reglab.training.model_builder import build_run_model

logger = logging.getLogger(__name__)

MemberEpochCallback = Callable[[int, int, dict[str, float]], None]

# Settings that every member of a batch must share, because they decide the data and the
# shapes that all members see.
_SHARED_SETTINGS = ("dataset", "model", "batch_size", "val_fraction", "test_fraction")


MAX_BATCH_MEMBERS = 16
"""The maximum number of configurations that one :func:`fit_batched` call trains, see :func:`batch_chunks`.

On the 2-core AMD EPYC of ``docs/benchmarks.md``, one epoch of 16 MLPs 784-100-50-10 took
8.0 to 8.4 s in one batch, 8.8 s in two batches of 8 and 9.8 to 10.4 s in four batches of 4.
Beyond 16, the stacked weights and their optimizer state outgrow the caches.
"""


BATCH_WEIGHT_BUDGET_BYTES = 8 * 2**20
"""The maximum bytes of weights that the members of one :func:`fit_batched` call keep together.

Each step reads and writes every member's weights, gradients and momentum several times
(forward, backward, penalty, update), so a batch whose weights outgrow the caches runs
these passes from memory. On the 2-core AMD EPYC of ``docs/benchmarks.md``, 7 MLPs
784-512-512-10 (2.7 MB of weights each) took 10.0 to 10.3 s for 5 epochs of mnist-5k in one
call and 9.1 to 10.0 s in calls of 2 or 3, against 8.7 to 11.4 s one at a time.
"""


def members_per_call(model: str, input_shape: Sequence[int], num_classes: int, dtype: torch.dtype = torch.float32) -> int:
    """Return how many configurations of ``model`` one :func:`fit_batched` call should train.

    That is as many as keep their weights within :data:`BATCH_WEIGHT_BUDGET_BYTES`, at most
    :data:`MAX_BATCH_MEMBERS` and at least 1: 16 for an MLP 784-100-50-10 (0.3 MB of
    weights each), 3 for an MLP 784-512-512-10 (2.7 MB each). A model that the batched
    engine does not train gets 1.
    """
    spec = parse_model_spec(model)
    if spec.kind not in ("softmax", "mlp"):
        return 1
    widths = [math.prod(input_shape), *spec.hidden, num_classes]
    weights = sum(fan_in * fan_out + fan_out for fan_in, fan_out in zip(widths, widths[1:]))
    member_bytes = weights * torch.finfo(dtype).bits // 8
    return max(1, min(MAX_BATCH_MEMBERS, BATCH_WEIGHT_BUDGET_BYTES // member_bytes))


def batch_chunks(items: Sequence[Any], limit: int = MAX_BATCH_MEMBERS) -> list[list[Any]]:
    """Split ``items`` into the fewest consecutive chunks of at most ``limit``, with sizes differing by at most one.

    For example 20 items give chunks of 10 and 10, not 16 and 4, so that no chunk is left
    with one member.
    """
    items = list(items)
    if not items:
        return []
    count = math.ceil(len(items) / limit)
    size, extra = divmod(len(items), count)
    chunks, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        chunks.append(items[start:end])
        start = end
    return chunks


def batching_problem(configs: Sequence[RunConfig], *, same_seed: bool = True) -> str | None:
    """Return why ``configs`` cannot be trained together by :func:`fit_batched`, or None.

    Args:
        configs: the configurations.
        same_seed: also require one seed, which keeps each member's minibatch order equal
            to the one :func:`reglab.training.fit.fit` draws.
    """
    if not configs:
        return "no configurations were given"
    for name in _SHARED_SETTINGS + (("seed",) if same_seed else ()):
        values = sorted({str(getattr(config, name)) for config in configs})
        if len(values) > 1:
            return f"the configurations differ in {name} ({', '.join(values)})"
    spec = parse_model_spec(configs[0].model)
    if spec.kind not in ("softmax", "mlp"):
        return f"the model {str(spec)!r} is not an MLP; the batched engine trains only 'softmax' and 'mlp:...' models"
    for config in configs:
        reg = config.regularization
        if reg.dropconnect is not None:
            return f"strategy {config.strategy!r} uses DropConnect, which the batched engine does not implement"
        if reg.dropout is not None and not isinstance(reg.dropout.p, float):
            return f"strategy {config.strategy!r} sets a dropout probability per layer; the batched engine takes one p"
        if config.optimizer.name != "sgd":
            return f"strategy {config.strategy!r} uses the optimizer {config.optimizer.name!r}; only 'sgd' is batched"
        settings = config.regularization.early_stopping
        if settings is not None and settings.refit:
            return f"strategy {config.strategy!r} refits on training plus validation data, which is not batched"
        options = _unbatched_options(config)
        if options:
            return f"strategy {config.strategy!r} uses {', '.join(options)}, which the batched engine does not implement"
    return None


def _unbatched_options(config: RunConfig) -> list[str]:
    """Return the training options of ``config`` that only :func:`fit` implements."""
    reg = config.regularization
    options = []
    if config.schedule is not None:
        options.append("a learning-rate schedule")
    if reg.label_smoothing:
        options.append("label smoothing")
    if reg.mixup is not None:
        options.append("mixup")
    if reg.random_erasing is not None:
        options.append("random erasing")
    if reg.clip_grad_norm is not None:
        options.append("gradient clipping")
    if reg.weight_decay:
        options.append("decoupled weight decay")
    if config.precision != "fp32":
        options.append(f"{config.precision} precision")
    return options


def fit_batched(
    configs: Sequence[RunConfig],
    split: Split | Sequence[Split],
    device: str | torch.device = "cpu",
    *,
    data_seed: int | None = None,
    separate_data: bool = False,
    on_epoch_end: MemberEpochCallback | None = None,
    evaluate_test: bool = True,
    errors: str = "raise",
    dtype: torch.dtype = torch.float32,
) -> list[Any]:
    """Train ``configs`` at once and return one :class:`RunResult` per configuration.

    Each result has the fields that :func:`reglab.training.fit.fit` fills: the per-epoch
    history (metrics in eval mode on non-augmented data), ``best_epoch``, ``stop_reason``,
    ``final_metrics`` of the kept weights, and the test metrics of one sealed test access.
    ``final_metrics`` is the history row of ``best_epoch``, which measured those weights.
    ``timings`` gives each member an equal share of the batch's seconds and adds
    ``batched_members`` (K), ``batch_seconds`` (the whole batch's time) and ``batch_keys``
    (every member's :meth:`~reglab.training.config.RunConfig.key`, in order).

    Args:
        configs: the K configurations; :func:`batching_problem` reports whether they fit together.
        split: the split to train on. One :class:`Split` per configuration gives each
            member its own sealed test set, opened once. A single split is shared: its test
            set is opened once for all members, and every member records that access. All
            splits must hold the same data (same data set, seed and fractions), unless
            ``separate_data`` is set.
        device: where to train, e.g. ``"cpu"`` or ``"cuda"``.
        data_seed: the seed of the minibatch order. None requires every configuration to
            have the same seed and uses it, as :func:`fit` does.
        separate_data: train and evaluate each member on its own split, with the minibatch
            order that :func:`fit` draws from the member's seed. The splits' training parts
            must have one size, and so must their validation parts. Excludes ``data_seed``.
        on_epoch_end: called with the member's index in ``configs``, the 1-based epoch and
            that epoch's history row.
        evaluate_test: False keeps every test set sealed and leaves ``test_metrics`` empty.
        errors: ``"raise"`` raises the first :class:`TrainingError` (a NaN or infinite
            loss) after the other members have finished; ``"return"`` puts the error in the
            failed member's place in the returned list.
        dtype: the floating-point type of weights and activations.

    Returns:
        One :class:`RunResult` per configuration, in order; with ``errors="return"``, a
        :class:`TrainingError` in place of each failed member.

    Raises:
        ConfigError: the configurations cannot be batched, or the splits differ.
        TrainingError: with ``errors="raise"``, a member's loss became NaN or infinite.
        SealedTestSetError: a test set was already opened.
    """
    configs = list(configs)
    for config in configs:
        if not isinstance(config, RunConfig):
            raise ConfigError(f"fit_batched: configs must be RunConfig objects, got a {type(config).__name__}.")
    if isinstance(split, (list, tuple)):
        parts = list(split)
    else:
        parts = [split]
    for part in parts:
        if not isinstance(part, Split):
            raise ConfigError(
                f"fit_batched: split must be a Split or a list of them, got a {type(part).__name__}; "
                "make one with reglab.data.make_split(load_dataset(name), seed=...)."
            )
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ConfigError(f"fit_batched: dtype must be a floating-point torch.dtype such as torch.float32, got {dtype!r}.")
    if errors not in ("raise", "return"):
        raise ConfigError(f"fit_batched: errors must be 'raise' or 'return', got {errors!r}.")
    if separate_data and data_seed is not None:
        raise ConfigError(
            f"fit_batched: data_seed={data_seed} and separate_data=True exclude each other, because with "
            "separate_data each member draws its minibatch order from its own seed. Drop data_seed."
        )
    problem = batching_problem(configs, same_seed=data_seed is None and not separate_data)
    if problem is not None:
        raise ConfigError(f"fit_batched: {problem}; train these configurations one at a time with fit().")
    splits = _check_separate_splits(configs, split) if separate_data else _check_splits(configs, split)

    device = resolve_device(device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), deterministic_mode(device):
        member_splits = _move_splits(splits, device) if separate_data else None
        trainer = _BatchedTrainer(configs, splits[0].to(device), device, dtype, data_seed, member_splits)
        outcomes = trainer.train(on_epoch_end)
    return _results(configs, splits, device, trainer, outcomes, evaluate_test, errors)


def _check_splits(configs: list[RunConfig], split: Split | Sequence[Split]) -> list[Split]:
    splits = [split] * len(configs) if isinstance(split, Split) else list(split)
    if len(splits) != len(configs):
        raise ConfigError(f"fit_batched: expected one split or {len(configs)} splits, got {len(splits)}.")
    first = splits[0]
    for other in splits[1:]:
        same = other is first or (
            other.dataset == first.dataset
            and other.seed == first.seed
            and other.val_fraction == first.val_fraction
            and other.test_fraction == first.test_fraction
        )
        if not same:
            raise ConfigError(
                f"fit_batched: every split must hold the same data, got {first!r} and {other!r}; "
                "make them with make_split(dataset, seed=...) and the same seed and fractions."
            )
        # A bootstrap sample or a subsample keeps the split's seed and fractions, but every
        # member would train on the first split's rows.
        if other is not first and other.indices["train"] != first.indices["train"]:
            raise ConfigError(
                f"fit_batched: the splits {first!r} and {other!r} have different training rows, for example "
                "two bootstrap samples. Pass separate_data=True to train each member on its own split."
            )
    return splits


def _check_separate_splits(configs: list[RunConfig], split: Split | Sequence[Split]) -> list[Split]:
    if isinstance(split, Split):
        raise ConfigError(
            f"fit_batched: separate_data=True needs one split per configuration ({len(configs)}), got a single split."
        )
    splits = list(split)
    if len(splits) != len(configs):
        raise ConfigError(f"fit_batched: expected {len(configs)} splits, one per configuration, got {len(splits)}.")
    for part in ("train", "val"):
        sizes = sorted({len(getattr(member_split, part).y) for member_split in splits})
        if len(sizes) > 1:
            raise ConfigError(
                f"fit_batched: with separate_data every split's {part} part must have one size, got sizes "
                f"{', '.join(map(str, sizes))}. Train members of different sizes in separate calls."
            )
    return splits


def _move_splits(splits: list[Split], device: torch.device) -> list[Split]:
    """Move every split to ``device``, each distinct split object once, so a repeated split is not copied."""
    moved: dict[int, Split] = {}
    for split in splits:
        if id(split) not in moved:
            moved[id(split)] = split.to(device)
    return [moved[id(split)] for split in splits]


class _Outcome:
    """The training outcome of one member: its history, stop reason and kept weights."""

    def __init__(self, stopper: EarlyStopping | None) -> None:
        self.stopper = stopper
        self.history: list[dict[str, float]] = []
        self.reason = StopReason.MAX_EPOCHS
        self.best_state: list[Tensor] | None = None
        self.final_state: list[Tensor] | None = None
        # dead_relu[epoch - 1]: per hidden layer, the fraction of ReLUs that output 0 on every
        # training example in that epoch's evaluation, as layer_stats reports them.
        self.dead_relu: list[list[float]] = []
        self.error: TrainingError | None = None


class _BatchedTrainer:
    """The batched model, generators, early stopping and epoch loop of one call."""

    def __init__(
        self,
        configs: list[RunConfig],
        split: Split,
        device: torch.device,
        dtype: torch.dtype,
        data_seed: int | None,
        member_splits: list[Split] | None,
    ) -> None:
        self.configs = configs
        self.split = split
        # With separate data, member_splits[i] is the split of configs[i], and
        # data_generators[i] draws its minibatch order as fit() would.
        self.member_splits = member_splits
        self.device = device
        self.dtype = dtype
        input_shape = tuple(split.train.x.shape[1:])
        self.input_shape = input_shape
        spec = parse_model_spec(configs[0].model)

        models, settings, mask_generators = [], [], []
        for config in configs:
            model, generator = _init_member(config, input_shape, split.num_classes, device)
            models.append(model.to(device=device, dtype=dtype))
            settings.append(_member_settings(config))
            mask_generators.append(generator)
        self.engine = BatchedMLP.from_models(spec, input_shape, split.num_classes, models, settings, mask_generators)

        if member_splits is None:
            seeds = [configs[0].seed if data_seed is None else data_seed]
        else:
            seeds = [config.seed for config in configs]
        self.data_generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.augmentations: list[nn.Module | None] = []
        self.augment_generators: list[torch.Generator | None] = []
        for config in configs:
            if config.regularization.augment:
                self.augmentations.append(build_augmentation(config, input_shape))
                self.augment_generators.append(torch.Generator(device=device).manual_seed(config.seed + 1))
            else:
                self.augmentations.append(None)
                self.augment_generators.append(None)

        # A shared split's training and validation inputs are normalized once, for every
        # evaluation and, when no member augments, for the training minibatches too.
        # Normalizing is elementwise, so a batch of the normalized tensor contains the same values
        # as the normalized batch.
        self.normalized: dict[str, Tensor] = {}
        if member_splits is None:
            self.normalized = {part: split.normalize(getattr(split, part).x.to(dtype)) for part in ("train", "val")}
        self.normalized_training = member_splits is None and all(a is None for a in self.augmentations)

        # active[i] is the index in configs of the engine's member i.
        self.active = list(range(len(configs)))
        self.outcomes = [_Outcome(_build_early_stopping(config)) for config in configs]
        self.train_seconds = 0.0
        self.eval_seconds = 0.0

    def member_split(self, member: int) -> Split:
        """Return the split, on the training device, that member ``member`` of ``configs`` trained on."""
        return self.split if self.member_splits is None else self.member_splits[member]

    def train(self, on_epoch_end: MemberEpochCallback | None) -> list[_Outcome]:
        max_epochs = max(config.epochs for config in self.configs)
        for epoch in range(1, max_epochs + 1):
            if not self.active:
                break
            started = time.perf_counter()
            self._train_epoch(epoch)
            self.train_seconds += time.perf_counter() - started
            if not self.active:
                break

            eval_started = time.perf_counter()
            rows = self._measure()
            self.eval_seconds += time.perf_counter() - eval_started
            seconds = (time.perf_counter() - started) / len(self.active)
            stopped = []
            for position, member in enumerate(self.active):
                row = {"epoch": epoch, **rows[position], "seconds": seconds}
                if self._record_epoch(position, member, epoch, row, on_epoch_end):
                    stopped.append(position)
            self._remove(stopped)

        for position, member in enumerate(self.active):
            self.outcomes[member].final_state = self.engine.member_state(position)
        return self.outcomes

    def _record_epoch(
        self, position: int, member: int, epoch: int, row: dict[str, float], on_epoch_end: MemberEpochCallback | None
    ) -> bool:
        """Add ``row`` to the member's history; return True when the member stops training."""
        outcome = self.outcomes[member]
        outcome.history.append(row)
        if on_epoch_end is not None:
            on_epoch_end(member, epoch, row)

        stopper = outcome.stopper
        if stopper is not None:
            should_stop = stopper.step(epoch, row)
            if stopper.restore_best_weights and stopper.best_epoch == epoch:
                outcome.best_state = self.engine.member_state(position)
            if should_stop:
                outcome.reason = stopper.reason
                return True
        return epoch >= self.configs[member].epochs

    def _remove(self, positions: list[int]) -> None:
        """Take the members at ``positions`` out of the batch, keeping their last weights."""
        if not positions:
            return
        for position in positions:
            self.outcomes[self.active[position]].final_state = self.engine.member_state(position)
        kept = [position for position in range(len(self.active)) if position not in positions]
        self.active = [self.active[position] for position in kept]
        self.augmentations = [self.augmentations[position] for position in kept]
        self.augment_generators = [self.augment_generators[position] for position in kept]
        if kept:
            self.engine.select(kept)

    def _train_epoch(self, epoch: int) -> None:
        engine = self.engine
        batch_size = self.configs[0].batch_size
        sources = [self.split] if self.member_splits is None else self.member_splits
        # With separate data there is one iterator per member. A stopped member's iterator is not advanced.
        iterators = [
            iterate_minibatches(
                self.normalized["train"] if self.normalized_training else source.train.x,
                source.train.y,
                batch_size,
                shuffle=True,
                generator=generator,
            )
            for source, generator in zip(sources, self.data_generators)
        ]
        for _ in range(math.ceil(len(self.split.train.y) / batch_size)):
            if self.member_splits is None:
                xb, yb = next(iterators[0])
                targets = yb
            else:
                pairs = [next(iterators[member]) for member in self.active]
                xb = torch.stack([pair[0] for pair in pairs])
                targets = torch.stack([pair[1] for pair in pairs])
            inputs = self._inputs(xb)
            logits = engine.forward(inputs, training=True)
            k, batch, classes = logits.shape
            labels = targets.reshape(-1) if targets.dim() == 2 else targets.repeat(k)
            cross_entropy = F.cross_entropy(logits.reshape(k * batch, classes), labels, reduction="none")
            # The penalties' gradients enter in sgd_step, so the loss here is the data term.
            losses = cross_entropy.view(k, batch).mean(dim=1)

            finite = torch.isfinite(losses)
            all_finite = bool(finite.all())
            engine.zero_grad()
            torch.where(finite, losses, 0.0).sum().backward()
            engine.sgd_step()
            engine.apply_max_norm()
            if not all_finite:
                self._fail(finite, losses.detach(), epoch)
                if not self.active:
                    return

        # fit() checks the loss with its penalty after every step. Here the penalties are
        # checked once per epoch, one pass over the weights instead of one per step. An
        # infinite or NaN weight stays so under the update, so such a member fails in the
        # same epoch. A penalty that overflows from finite weights is caught at the end of
        # the epoch instead of at its step.
        penalties = engine.penalties()
        finite = torch.isfinite(penalties)
        if not bool(finite.all()):
            self._fail(finite, penalties, epoch)

    def _inputs(self, xb: Tensor) -> Tensor:
        """Return the normalized batch, shared ``[B, ...]`` or per member ``[K, B, ...]``.

        With separate data, ``xb`` is already one batch per member, ``[K, B, ...]``. A batch of
        the normalized training inputs is returned as it is.
        """
        if self.normalized_training:
            return xb
        xb = xb.to(self.dtype)
        if self.member_splits is not None:
            members = []
            for position, augmentation in enumerate(self.augmentations):
                x = xb[position]
                if augmentation is not None:
                    x = augmentation(x, generator=self.augment_generators[position])
                members.append(self.member_splits[self.active[position]].normalize(x))
            return torch.stack(members)
        if all(augmentation is None for augmentation in self.augmentations):
            return self.split.normalize(xb)

        # Members with the same seed draw the same augmentation, so it is computed once per seed.
        augmented: dict[int, Tensor] = {}
        per_member = []
        for position, augmentation in enumerate(self.augmentations):
            if augmentation is None:
                per_member.append(xb)
                continue
            seed = self.configs[self.active[position]].seed
            if seed not in augmented:
                augmented[seed] = augmentation(xb, generator=self.augment_generators[position])
            per_member.append(augmented[seed])
        return self.split.normalize(torch.stack(per_member))

    def _fail(self, finite: Tensor, losses: Tensor, epoch: int) -> None:
        failed = [position for position, ok in enumerate(finite.tolist()) if not ok]
        for position in failed:
            member = self.active[position]
            config = self.configs[member]
            outcome = self.outcomes[member]
            lr = self.engine.settings[position].lr
            outcome.error = TrainingError(non_finite_loss_message(config, lr, losses[position].item(), epoch))
        self._remove(failed)

    @torch.no_grad()
    def _measure(self) -> list[dict[str, float]]:
        """Return each active member's history row, and keep its dead-ReLU fractions of this epoch."""
        ever_active: list[Tensor] = []
        train = self._evaluate("train", ever_active=ever_active)
        val = self._evaluate("val")
        if ever_active:
            active_fractions = torch.stack([active.float().mean(dim=1) for active in ever_active], dim=1)
            dead = [[1.0 - fraction for fraction in member] for member in active_fractions.tolist()]
        else:
            dead = [[] for _ in self.active]
        for position, member in enumerate(self.active):
            self.outcomes[member].dead_relu.append(dead[position])

        rows = []
        for (train_loss, train_acc), (val_loss, val_acc) in zip(train, val):
            rows.append(
                {
                    "train_loss": train_loss,
                    "train_acc": train_acc,
                    "val_loss": val_loss,
                    "val_acc": val_acc,
                    "gap": train_acc - val_acc,
                }
            )
        return rows

    def _evaluate(self, part: str, ever_active: list[Tensor] | None = None) -> list[tuple[float, float]]:
        """Return each active member's ``(mean cross-entropy, accuracy)`` on a part of its split, in eval mode.

        The batches are as large as :func:`reglab.nn.batch_size.rows_within_budget` allows
        for the widest activation of all members together.

        Args:
            part: ``"train"`` or ``"val"``.
            ever_active: a list that receives, per hidden layer, whether each unit of each
                member output a positive value for some example, ``[K, width]``.
        """
        k = self.engine.size
        widths = [math.prod(self.input_shape), *(k * weight.shape[2] for weight in self.engine.weights)]
        batch_size = rows_within_budget(max(widths) * torch.finfo(self.dtype).bits // 8)
        total_loss = torch.zeros(k, dtype=torch.float64, device=self.device)
        correct = torch.zeros(k, dtype=torch.long, device=self.device)
        n = len(getattr(self.split, part).y)
        for start in range(0, n, batch_size):
            rows = slice(start, start + batch_size)
            if self.member_splits is None:
                inputs = self.normalized[part][rows]
                yb = getattr(self.split, part).y[rows]
                # The shared input makes the first layer one product [B, in] @ [in, K·out], whose
                # rounding can depend on K. A member's metrics can then differ in the last bits
                # from the same run trained alone, so `reglab reproduce` retrains the original batch.
                labels = yb.repeat(k)
            else:
                splits = [self.member_splits[member] for member in self.active]
                inputs = torch.stack([s.normalize(getattr(s, part).x[rows].to(self.dtype)) for s in splits])
                yb = torch.stack([getattr(s, part).y[rows] for s in splits])
                labels = yb.reshape(-1)
            hidden: list[Tensor] | None = [] if ever_active is not None else None
            logits = self.engine.forward(inputs, training=False, hidden=hidden)
            if ever_active is not None and hidden:
                # amax over the rows is much faster than (h > 0).any(dim=1) on CPU.
                active = [h.amax(dim=1) > 0 for h in hidden]
                ever_active[:] = active if not ever_active else [a | b for a, b in zip(ever_active, active)]
            _, batch, classes = logits.shape
            losses = F.cross_entropy(logits.reshape(k * batch, classes), labels, reduction="none")
            total_loss += losses.view(k, batch).sum(dim=1).double()
            correct += (logits.argmax(dim=2) == yb).sum(dim=1)
        n = max(n, 1)
        return [(loss / n, hits / n) for loss, hits in zip(total_loss.tolist(), correct.tolist())]


def _init_member(
    config: RunConfig, input_shape: tuple[int, ...], num_classes: int, device: torch.device
) -> tuple[nn.Module, torch.Generator | None]:
    """Build the member's network from its seed, as :func:`fit` does, and its mask generator.

    :func:`fit` seeds the global RNG, builds the network on CPU and then draws the dropout
    masks from the global RNG of the training device. The generator returned here continues
    that stream: on CPU it takes the global state after the initialization, and on another
    device it is that device's generator seeded with ``config.seed``.
    """
    dropout = config.regularization.dropout
    torch.manual_seed(config.seed)
    model = build_run_model(config, input_shape, num_classes)
    if dropout is None or (largest_probability(dropout.p) == 0 and dropout.input_p == 0):
        return model, None
    if device.type == "cpu":
        generator = torch.Generator()
        generator.set_state(torch.get_rng_state())
    else:
        # NOTE: not run on a GPU yet; it assumes a fresh generator seeded with config.seed
        # draws what the device's default generator draws after torch.manual_seed(config.seed).
        generator = torch.Generator(device=device).manual_seed(config.seed)
    return model, generator


def _member_settings(config: RunConfig) -> MemberSettings:
    reg = config.regularization
    dropout = reg.dropout
    return MemberSettings(
        lr=reg.lr if reg.lr is not None else config.optimizer.lr,
        momentum=config.optimizer.momentum,
        l2=reg.l2,
        l1=reg.l1,
        max_norm=reg.max_norm,
        input_p=dropout.input_p if dropout else 0.0,
        hidden_p=dropout.p if dropout else 0.0,
        dropout_mode=dropout.mode if dropout else "inverted",
    )


def _build_early_stopping(config: RunConfig) -> EarlyStopping | None:
    settings = config.regularization.early_stopping
    if settings is None:
        return None
    return EarlyStopping(**settings.model_dump(exclude={"refit"}))


def _results(
    configs: list[RunConfig],
    splits: list[Split],
    device: torch.device,
    trainer: _BatchedTrainer,
    outcomes: list[_Outcome],
    evaluate_test: bool,
    errors: str,
) -> list[Any]:
    """Hand every member back as an ``nn.Sequential`` and evaluate it as :func:`fit` does.

    The training and validation data come from the trainer's split, or with separate data
    from the member's split, already on ``device``.
    Only the member's own test set is opened and moved there.
    """
    k = len(configs)
    batch_keys = [config.key() for config in configs]
    shared_split = all(split is splits[0] for split in splits)
    shared_test: Any = None
    # Members that share a split share its normalized test inputs, which the test
    # evaluation would otherwise normalize once per member.
    normalized_test = _LastNormalized()
    kept = _kept_networks(configs, trainer, outcomes)
    results: list[Any] = []
    for member, (config, outcome) in enumerate(zip(configs, outcomes)):
        if outcome.error is not None:
            results.append(outcome.error)
            continue
        started = time.perf_counter()
        split = splits[member]
        data = trainer.member_split(member)
        best_epoch, model = kept[member]
        # The kept weights are those of epoch best_epoch, which the batched evaluation
        # already measured, so its row gives the final metrics without another pass.
        kept_row = outcome.history[best_epoch - 1]
        final_metrics = {key: kept_row[key] for key in METRICS}

        check_eval_deterministic(model, data.normalize(data.val.x[:64].to(trainer.dtype)))
        test_metrics: dict[str, float] = {}
        if evaluate_test:
            if not shared_split or shared_test is None:
                purpose = f"final evaluation of strategy {config.strategy!r}, seed {config.seed}"
                if shared_split and k > 1:
                    purpose = f"final evaluation of {k} batched strategies, seed {config.seed}"
                opened = split.test.open(purpose)
                shared_test = (opened.x.to(device=device, dtype=trainer.dtype), opened.y.to(device))
            test_x, test_y = shared_test
            test_loss, test_acc = evaluate(model, normalized_test(data, test_x), test_y)
            test_metrics = {"test_loss": test_loss, "test_acc": test_acc}

        batch_seconds = trainer.train_seconds + trainer.eval_seconds
        results.append(
            RunResult(
                config=config,
                history=outcome.history,
                best_epoch=best_epoch,
                stop_reason=outcome.reason.value,
                final_metrics=final_metrics,
                test_metrics=test_metrics,
                test_accesses=list(split.test.accesses),
                split=split.describe(),
                timings={
                    "train_seconds": trainer.train_seconds / k,
                    "eval_seconds": trainer.eval_seconds / k,
                    "total_seconds": batch_seconds / k + time.perf_counter() - started,
                    "batched_members": k,
                    "batch_seconds": batch_seconds,
                    "batch_keys": batch_keys,
                    "device": device.type,
                },
                # The evaluation of epoch best_epoch measured the kept weights on the
                # training inputs, so it also gave their dead-ReLU fractions.
                weight_stats=layer_stats(model, None, dead_relu=outcome.dead_relu[best_epoch - 1]),
                model=model,
            )
        )

    if errors == "raise":
        for result in results:
            if isinstance(result, TrainingError):
                raise result
    return results


def _kept_networks(
    configs: list[RunConfig], trainer: _BatchedTrainer, outcomes: list[_Outcome]
) -> dict[int, tuple[int, nn.Sequential]]:
    """Return, for each member that trained without error, the epoch of its kept weights and its network.

    The kept weights are those of the best epoch when early stopping restores them, and the
    last weights otherwise.
    """
    kept = {}
    for member, (config, outcome) in enumerate(zip(configs, outcomes)):
        if outcome.error is not None:
            continue
        best_epoch = len(outcome.history)
        state = outcome.final_state
        stopper = outcome.stopper
        if stopper is not None:
            stopper.finish(None, reason=outcome.reason)
            if stopper.best_epoch is not None and stopper.restore_best_weights:
                best_epoch = stopper.best_epoch
                state = outcome.best_state
        assert state is not None
        num_classes = trainer.split.num_classes
        model = member_model(trainer.engine.spec, trainer.input_shape, num_classes, _member_settings(config), state)
        kept[member] = (best_epoch, model)
    return kept


class _LastNormalized:
    """``split.normalize(x)``, kept and reused while the same statistics normalize the same tensor.

    A split's normalization depends only on its ``mean``, ``std`` and whether it holds
    images. The batched runner gives each member its own copy of one split, and the copies
    share these tensors, so the result is reused when ``x``, ``mean`` and ``std`` are the
    same objects. Normalizing elementwise gives the same values for the whole tensor at
    once as for each evaluation batch, so reusing the result changes no metric. Only the
    last result is kept, which bounds the memory to one normalized copy.
    """

    def __init__(self) -> None:
        self._key: tuple[Tensor, Tensor, Tensor, bool] | None = None
        self._value: Tensor | None = None

    def __call__(self, split: Split, x: Tensor) -> Tensor:
        key = (x, split.mean, split.std, split.is_image)
        same = self._key is not None and all(a is b for a, b in zip(key[:3], self._key[:3]))
        if not same or key[3] != self._key[3] or self._value is None:
            self._key, self._value = key, split.normalize(x)
        return self._value
