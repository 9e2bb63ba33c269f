"""Epoch time of plain PyTorch (torchvision dataset, DataLoader) against reglab, with and without augmentation.

The reference reads Fashion-MNIST through ``torchvision.datasets.FashionMNIST`` and a
``DataLoader`` (batch 128, shuffled, per-sample ``ToTensor`` and ``Normalize``, plus
``RandomAffine(20, translate=(0.15, 0.15))`` for the augmented figure). reglab keeps the
images in one tensor, draws minibatches by index and augments each minibatch with
:class:`reglab.augment.RandomAffine`. Both train the MLP 784-100-50-10 with dropout 0.5 and
SGD with momentum on all 60,000 training images. A third figure reads the training time
that :func:`reglab.training.fit.fit` itself records, scaled from its 48,000 training
images to 60,000.

Run: ``python bench/epoch_time.py [repetitions]``.
"""

from __future__ import annotations

import shutil
import statistics
import sys

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from _common import (
    FASHION_MEAN,
    FASHION_STD,
    interleave,
    median_ratio,
    reference_epoch,
    reference_mlp,
    reglab_epoch,
    reglab_optimizer,
    report,
    torchvision_root,
)
from reglab.augment import RandomAffine
from reglab.data import load_dataset, make_split
from reglab.nn.models import build_model
from reglab.training.config import DropoutSettings, RunConfig, StrategyConfig
from reglab.training.fit import fit


def main(repetitions: int) -> None:
    torch.manual_seed(0)
    root = torchvision_root()
    try:
        normalize = transforms.Normalize((FASHION_MEAN,), (FASHION_STD,))
        plain = datasets.FashionMNIST(root, train=True, transform=transforms.Compose([transforms.ToTensor(), normalize]))
        affine = transforms.RandomAffine(20, translate=(0.15, 0.15))
        augmented = datasets.FashionMNIST(
            root, train=True, transform=transforms.Compose([transforms.ToTensor(), affine, normalize])
        )
        plain_loader = DataLoader(plain, batch_size=128, shuffle=True)
        augmented_loader = DataLoader(augmented, batch_size=128, shuffle=True)

        dataset = load_dataset("fashion-mnist")
        x, y = dataset.x_train, dataset.y_train
        mean, std = x.mean(), x.std()

        def reglab_normalize(batch: torch.Tensor) -> torch.Tensor:
            return (batch - mean) / std

        reference_model = reference_mlp(0.5)
        reference_optimizer = torch.optim.SGD(reference_model.parameters(), lr=0.05, momentum=0.9)
        model = build_model("mlp:100,50", (1, 28, 28), 10, hidden_p=0.5)
        optimizer = reglab_optimizer(model)
        generator = torch.Generator().manual_seed(0)
        augment_generator = torch.Generator().manual_seed(1)
        reglab_affine = RandomAffine(20, translate=(0.15, 0.15))

        config = RunConfig(
            dataset="fashion-mnist",
            model="mlp:100,50",
            regularization=StrategyConfig(dropout=DropoutSettings(p=0.5)),
            epochs=1,
        )

        def fit_epoch() -> float:
            result = fit(config, make_split(dataset, seed=0))
            return result.timings["train_seconds"] * len(x) / result.split["sizes"]["train"]

        seconds = interleave(
            {
                "reference": lambda: reference_epoch(plain_loader, reference_model, reference_optimizer),
                "reglab": lambda: reglab_epoch(x, y, model, optimizer, reglab_normalize, generator),
                "reglab_fit": fit_epoch,
                "reference_augmented": lambda: reference_epoch(augmented_loader, reference_model, reference_optimizer),
                "reglab_augmented": lambda: reglab_epoch(
                    x, y, model, optimizer, reglab_normalize, generator, reglab_affine, augment_generator
                ),
            },
            repetitions,
        )
    finally:
        shutil.rmtree(root)

    report(
        "epoch_time",
        {
            "repetitions": repetitions,
            "median_seconds": {name: statistics.median(values) for name, values in seconds.items()},
            "seconds": seconds,
            "ratios": {
                "plain_reference_over_reglab": median_ratio(seconds["reference"], seconds["reglab"]),
                "plain_reference_over_reglab_fit": median_ratio(seconds["reference"], seconds["reglab_fit"]),
                "augmented_reference_over_reglab": median_ratio(
                    seconds["reference_augmented"], seconds["reglab_augmented"]
                ),
            },
            "targets": {"plain_reference_over_reglab": ">= 6", "augmented_reference_over_reglab": ">= 10"},
        },
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
