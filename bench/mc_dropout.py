"""Monte-Carlo dropout inference, T=32 passes over 10,000 images: a naive loop against mc_predict.

The naive loop puts the whole model in training mode and averages the softmax of 32 full
forward passes without gradients. :func:`reglab.inference.mc_predict` runs the layers before
the first dropout layer once and only the rest 32 times, and also returns the predictive
entropy and the mutual information. The model is the MLP 784-100-50-10 with dropout 0.5
after both hidden layers, untrained (the time does not depend on the weights).

Run: ``python bench/mc_dropout.py [repetitions]``.
"""

from __future__ import annotations

import statistics
import sys

import torch

from _common import interleave, median_ratio, report
from reglab.data import load_dataset
from reglab.inference import mc_predict
from reglab.nn.models import build_model

SAMPLES = 32


def main(repetitions: int) -> None:
    torch.manual_seed(0)
    dataset = load_dataset("fashion-mnist")
    x = (dataset.x_test - 0.286) / 0.353
    model = build_model("mlp:100,50", (1, 28, 28), 10, hidden_p=0.5)

    @torch.no_grad()
    def naive() -> None:
        model.train()
        probs = torch.zeros(len(x), 10)
        for _ in range(SAMPLES):
            probs += torch.softmax(model(x), dim=1)
        probs /= SAMPLES

    def reglab() -> None:
        mc_predict(model, x, samples=SAMPLES)

    seconds = interleave({"naive": naive, "reglab": reglab}, repetitions)
    report(
        "mc_dropout",
        {
            "repetitions": repetitions,
            "samples": SAMPLES,
            "images": len(x),
            "median_seconds": {name: statistics.median(v) for name, v in seconds.items()},
            "ratios": {"naive_over_reglab": median_ratio(seconds["naive"], seconds["reglab"])},
            "targets": {"naive_over_reglab": ">= 3"},
        },
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
