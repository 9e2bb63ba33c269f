"""A 16-configuration study run one at a time against the same study with the batched engine.

The study trains Fashion-MNIST with the MLP 784-100-50-10, batch 128, one seed and two
epochs, over 16 strategies that differ in L2 strength (0, 1e-4, 1e-3, 1e-2), dropout (none
or p=0.5) and learning rate (0.05 or 0.02). Both sides call
:func:`reglab.study.run_study` with a fresh SQLite store: ``batched=False`` trains every
run with :func:`reglab.training.fit.fit`, ``batched=True`` trains the 16 runs in one
:func:`reglab.training.fit_batched.fit_batched` call. Each side loads the data set, makes
its splits, evaluates every epoch, opens each run's sealed test set once and stores the runs.

Run: ``python bench/study16.py [repetitions]``.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from _common import interleave, median_ratio, report
from reglab.study import RunStore, run_study
from reglab.study.spec import StudySpec
from reglab.training.config import DropoutSettings, StrategyConfig

EPOCHS = 2


def study() -> StudySpec:
    strategies = {}
    for l2, dropout, lr in itertools.product((0.0, 1e-4, 1e-3, 1e-2), (None, 0.5), (0.05, 0.02)):
        name = f"l2={l2:g},dropout={dropout},lr={lr:g}"
        strategies[name] = StrategyConfig(l2=l2, lr=lr, dropout=DropoutSettings(p=dropout) if dropout else None)
    return StudySpec(
        name="bench16",
        dataset="fashion-mnist",
        model="mlp:100,50",
        strategies=strategies,
        seeds=[0],
        epochs=EPOCHS,
        lr_grid=None,
    )


def main(repetitions: int) -> None:
    torch.manual_seed(0)
    spec = study()

    def run(batched: bool) -> None:
        with tempfile.TemporaryDirectory() as folder, RunStore(Path(folder) / "reglab.db") as store:
            result = run_study(spec, store, batched=batched)
        if len(result.runs) != len(spec.strategies):
            raise RuntimeError(f"expected {len(spec.strategies)} finished runs, got {len(result.runs)}")

    seconds = interleave(
        {"one_at_a_time": lambda: run(False), "batched": lambda: run(True)}, repetitions, warmup=0
    )
    report(
        "study16",
        {
            "repetitions": repetitions,
            "configurations": len(spec.strategies),
            "epochs": EPOCHS,
            "median_seconds": {name: statistics.median(v) for name, v in seconds.items()},
            "seconds": seconds,
            "ratios": {"one_at_a_time_over_batched": median_ratio(seconds["one_at_a_time"], seconds["batched"])},
            "targets": {"one_at_a_time_over_batched": ">= 2.5"},
        },
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
