"""One minibatch step of the fit loop with a strategy's training options.

:class:`TrainingStep` computes the training loss of a minibatch and takes the optimizer
step. The options, all off by default, come from
:class:`~reglab.training.config.StrategyConfig` and the run's learning-rate schedule:

* ``random_erasing``: :class:`reglab.erasing.RandomErasing` with probability ``p`` and
  torchvision's ranges, on normalized images, so an erased rectangle takes the training
  mean (Zhong et al., 2020). Images only.
* ``mixup``: :func:`reglab.mixup.mixup_batch` with ``alpha``, after erasing (Zhang et al.,
  2018).
* ``label_smoothing``: ``F.cross_entropy(label_smoothing=...)``, the target
  ``(1 - ε)·e_y + ε/K`` over K classes (Szegedy et al., 2016, "Rethinking the Inception
  Architecture for Computer Vision"). With mixup, each of the two terms is smoothed.
* ``clip_grad_norm``: ``torch.nn.utils.clip_grad_norm_`` on all parameters after the
  backward pass: when the gradients' global L2 norm exceeds the maximum, they are scaled
  down to it (Pascanu, Mikolov & Bengio, 2013, "On the difficulty of training recurrent
  neural networks"). Penalty gradients are included, because penalties are in the loss.
* ``weight_decay``: decoupled weight decay of the weights (Loshchilov & Hutter, 2019), by
  :class:`reglab.training.optim.DecoupledWeightDecay` for SGD and through AdamW's
  parameter groups for Adam and AdamW.
* the schedule (:mod:`reglab.training.schedules`), stepped after every optimizer step.

Training metrics are not affected: the fit loop measures them in eval mode with the plain
cross-entropy on unaugmented data.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reglab.erasing import RandomErasing
from reglab.errors import ConfigError
from reglab.mixup import mixup_batch
from reglab.training.config import RunConfig
from reglab.training.optim import DecoupledWeightDecay
from reglab.training.schedules import build_scheduler

# Offset of the mixup generator's seed from the run's seed; the minibatch order uses the
# seed itself and the augmentation seed + 1.
_MIXUP_SEED_OFFSET = 2


class TrainingStep:
    """The loss of a minibatch and the optimizer step of one run.

    Args:
        config: the run's settings.
        model: the model being trained.
        optimizer: its optimizer, from :func:`reglab.training.optim.build_optimizer`.
        input_shape: the shape of one example, to reject random erasing on feature vectors.
        augment_generator: the run's augmentation generator, which random erasing also uses.

    Raises:
        ConfigError: random erasing is set for a data set of feature vectors.
    """

    def __init__(
        self,
        config: RunConfig,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        input_shape: tuple[int, ...],
        augment_generator: torch.Generator,
    ) -> None:
        reg = config.regularization
        self.config = config
        self.model = model
        self.optimizer = optimizer
        self.label_smoothing = reg.label_smoothing
        self.mixup = reg.mixup
        self.clip_grad_norm = reg.clip_grad_norm
        self.augment_generator = augment_generator
        self.mixup_generator = torch.Generator().manual_seed(config.seed + _MIXUP_SEED_OFFSET)
        self.erasing = None
        if reg.random_erasing is not None:
            check_image_settings(config, input_shape)
            self.erasing = RandomErasing(p=reg.random_erasing)
        self.decay = None
        if reg.weight_decay and config.optimizer.name == "sgd":
            self.decay = DecoupledWeightDecay(model, reg.weight_decay)
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None

    def start_epoch(self, num_examples: int) -> None:
        """Build the schedule before the first epoch, once the number of examples is known.

        The schedule always spans ``config.epochs`` epochs. A refit on training plus
        validation data has more minibatches per epoch, so its schedule has more steps, but
        its learning rate at the start of each epoch is about the selection run's.
        """
        schedule = self.config.schedule
        if schedule is None or self.scheduler is not None:
            return
        steps_per_epoch = math.ceil(num_examples / self.config.batch_size)
        self.scheduler = build_scheduler(
            self.optimizer, schedule, epochs=self.config.epochs, steps_per_epoch=steps_per_epoch
        )

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Return the training loss of a normalized minibatch, without penalties."""
        if self.erasing is not None:
            x = self.erasing(x, generator=self.augment_generator)
        if self.mixup is None:
            return F.cross_entropy(self.model(x), y, label_smoothing=self.label_smoothing)
        batch = mixup_batch(x, y, self.mixup, generator=self.mixup_generator)
        return batch.cross_entropy(self.model(batch.x), label_smoothing=self.label_smoothing)

    def step(self) -> None:
        """Clip the gradients, decay the weights, step the optimizer and then the schedule."""
        if self.clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        if self.decay is not None:
            self.decay(self.optimizer)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()


def check_image_settings(config: RunConfig, input_shape: tuple[int, ...]) -> None:
    """Check that the run's image-only settings, ``augment`` and ``random_erasing``, fit its data.

    Both transform images of shape ``(C, H, W)``; a data set of feature vectors, such as
    ``moons``, has none. A study calls this before training any run.

    Raises:
        ConfigError: ``augment`` or ``random_erasing`` is set and one example of the data set
            is not shaped ``(C, H, W)``; the message names the strategy and the data set.
    """
    if len(input_shape) == 3:
        return
    reg = config.regularization
    for setting, value, what in (
        ("augment", reg.augment or None, "augmentation (a random affine map or crop)"),
        ("random_erasing", reg.random_erasing, "random erasing"),
    ):
        if value is not None:
            raise ConfigError(
                f"strategies.{config.strategy}.{setting}: {what} needs images of shape (C, H, W), "
                f"but data set {config.dataset!r} has examples of shape {input_shape}; remove {setting} "
                f"from strategy {config.strategy!r} or choose an image data set such as digits, got {value!r}"
            )
