"""reglab's epoch time against the time of its matrix products alone (the matmul floor).

One epoch of the MLP 784-100-50-10 on 60,000 images in minibatches of 128 needs, per step,
three forward products and five backward ones (the weight gradients of all three layers and
the input gradients of the last two). The floor is the time of exactly those products with
``torch.mm`` on preallocated tensors of the same shapes, for all 469 steps, on the same
machine and thread count. The reglab epoch is the loop of ``_common.reglab_epoch`` with
dropout 0.5, as in ``epoch_time.py``.

Run: ``python bench/matmul_floor.py [repetitions]``.
"""

from __future__ import annotations

import statistics
import sys

import torch

from _common import interleave, median_ratio, reglab_epoch, reglab_optimizer, report
from reglab.data import load_dataset
from reglab.nn.models import build_model

WIDTHS = (784, 100, 50, 10)


def floor_epoch(n: int, batch_size: int = 128):
    sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    weights = [torch.randn(a, b) for a, b in zip(WIDTHS[:-1], WIDTHS[1:])]
    by_batch = {}
    for b in set(sizes):
        acts = [torch.randn(b, width) for width in WIDTHS]
        by_batch[b] = acts

    def run() -> None:
        for b in sizes:
            acts = by_batch[b]
            # Forward: h_{i+1} = h_i W_i.
            for i, weight in enumerate(weights):
                torch.mm(acts[i], weight)
            # Backward: grad W_i = h_i^T g_{i+1} for every layer, grad h_i = g_{i+1} W_i^T for i > 0.
            for i, weight in enumerate(weights):
                torch.mm(acts[i].T, acts[i + 1])
                if i > 0:
                    torch.mm(acts[i + 1], weight.T)

    return run


def main(repetitions: int) -> None:
    torch.manual_seed(0)
    dataset = load_dataset("fashion-mnist")
    x, y = dataset.x_train, dataset.y_train
    model = build_model("mlp:100,50", (1, 28, 28), 10, hidden_p=0.5)
    optimizer = reglab_optimizer(model)
    generator = torch.Generator().manual_seed(0)

    seconds = interleave(
        {
            "reglab": lambda: reglab_epoch(x, y, model, optimizer, lambda b: (b - 0.286) / 0.353, generator),
            "matmul_floor": floor_epoch(len(x)),
        },
        repetitions,
    )
    report(
        "matmul_floor",
        {
            "repetitions": repetitions,
            "median_seconds": {name: statistics.median(v) for name, v in seconds.items()},
            "ratios": {"reglab_over_floor": median_ratio(seconds["reglab"], seconds["matmul_floor"])},
            "targets": {"reglab_over_floor": "<= 3"},
        },
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
