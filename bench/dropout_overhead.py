"""Cost of reglab's dropout in a training step: the step with dropout over the step without.

One step is forward, cross-entropy, backward and an SGD-with-momentum update of the MLP
784-100-50-10 on a fixed minibatch of 128 Fashion-MNIST images. The dropout model has
:class:`reglab.nn.Dropout` with ``p=0.5`` after both hidden layers. The figure is the median
over repetitions of (time of the dropout steps) / (time of the same number of steps
without dropout). ``torch.nn.Dropout`` is timed alongside for comparison.

Run: ``python bench/dropout_overhead.py [repetitions]``.
"""

from __future__ import annotations

import statistics
import sys

import torch
import torch.nn.functional as F

from _common import interleave, median_ratio, reference_mlp, report
from reglab.data import load_dataset
from reglab.nn.models import build_model

STEPS = 200


def stepper(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def run() -> None:
        for _ in range(STEPS):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return run


def main(repetitions: int) -> None:
    torch.manual_seed(0)
    dataset = load_dataset("fashion-mnist")
    x = (dataset.x_train[:128] - 0.286) / 0.353
    y = dataset.y_train[:128]

    seconds = interleave(
        {
            "reglab_no_dropout": stepper(build_model("mlp:100,50", (1, 28, 28), 10), x, y),
            "reglab_dropout": stepper(build_model("mlp:100,50", (1, 28, 28), 10, hidden_p=0.5), x, y),
            "torch_no_dropout": stepper(reference_mlp(0.0), x, y),
            "torch_dropout": stepper(reference_mlp(0.5), x, y),
        },
        repetitions,
    )
    report(
        "dropout_overhead",
        {
            "repetitions": repetitions,
            "steps_per_repetition": STEPS,
            "median_ms_per_step": {name: 1e3 * statistics.median(v) / STEPS for name, v in seconds.items()},
            "ratios": {
                "reglab_dropout_over_no_dropout": median_ratio(seconds["reglab_dropout"], seconds["reglab_no_dropout"]),
                "torch_dropout_over_no_dropout": median_ratio(seconds["torch_dropout"], seconds["torch_no_dropout"]),
            },
            "targets": {"reglab_dropout_over_no_dropout": "<= 1.15"},
        },
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
