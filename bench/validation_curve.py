"""A validation-curve sweep trained one run at a time against the same sweep with the batched engine.

The sweep is :func:`reglab.analysis.validation_curves.validation_curve` on ``mnist-5k``
with the MLP 784-256-10 (the command's default model), 8 L2 strengths from 1e-5 to 1e-1 on
a log scale, 2 seeds, 3 epochs, batch 128. ``batched=False`` trains each of the 16 runs
with :func:`reglab.training.fit.fit`; ``batched=True`` trains the 8 strengths of each seed
in one :func:`reglab.training.fit_batched.fit_batched` call. Both sides make their splits
and measure train and validation accuracy after every epoch. The data set is loaded once,
outside the timing.

Run: ``python bench/validation_curve.py [repetitions]``.
"""

from __future__ import annotations

import statistics
import sys

import numpy as np

from _common import interleave, median_ratio, report
from reglab.analysis.validation_curves import strength_grid, validation_curve
from reglab.data import load_dataset

EPOCHS = 3
SEEDS = (0, 1)
MODEL = "mlp:256"


def main(repetitions: int) -> None:
    data = load_dataset("mnist-5k")
    values = strength_grid("log", 1e-5, 1e-1, 8)
    results = {}

    def sweep(batched: bool) -> None:
        results[batched] = validation_curve(
            data, model=MODEL, param="l2", values=values, seeds=SEEDS, epochs=EPOCHS, batched=batched
        )

    seconds = interleave(
        {"one_at_a_time": lambda: sweep(False), "batched": lambda: sweep(True)}, repetitions, warmup=0
    )
    difference = max(
        float(np.abs(results[True].val_acc - results[False].val_acc).max()),
        float(np.abs(results[True].train_acc - results[False].train_acc).max()),
    )
    report(
        "validation_curve",
        {
            "repetitions": repetitions,
            "model": MODEL,
            "strengths": len(values),
            "seeds": len(SEEDS),
            "epochs": EPOCHS,
            "max_accuracy_difference": difference,
            "median_seconds": {name: statistics.median(v) for name, v in seconds.items()},
            "seconds": seconds,
            "ratios": {"one_at_a_time_over_batched": median_ratio(seconds["one_at_a_time"], seconds["batched"])},
        },
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
