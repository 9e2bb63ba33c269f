"""Helpers shared by the benchmark scripts: data, the reference MLP, interleaved timing.

Every benchmark times reglab and its reference in one process, alternating them, and reports
the median of the per-repetition ratios, because other processes on a shared machine slow
both sides of one repetition alike but not two repetitions alike.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

# One thread by default: on a 2-core machine shared with other work, two OpenMP threads
# spin-wait for each other, which made one reglab epoch 8 to 18 times slower in our runs.
THREADS = int(os.environ.get("REGLAB_BENCH_THREADS", "1"))
torch.set_num_threads(THREADS)

FASHION_DIR = Path(os.environ.get("REGLAB_DATA", "/usr/share/datasets/fashion-mnist"))
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# The normalization of the reference pipeline: Fashion-MNIST's training mean and std.
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530


def torchvision_root() -> Path:
    """Return a temporary root with Fashion-MNIST in torchvision's ``FashionMNIST/raw`` layout.

    torchvision looks for the decompressed IDX files, so the ``.gz`` files are decompressed
    there and nothing is downloaded.
    """
    root = Path(tempfile.mkdtemp(prefix="reglab-bench-"))
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for source in sorted(FASHION_DIR.glob("*-ubyte.gz")):
        with gzip.open(source, "rb") as compressed, open(raw / source.name.removesuffix(".gz"), "wb") as out:
            shutil.copyfileobj(compressed, out)
    return root


def reference_mlp(p: float = 0.5) -> nn.Sequential:
    """Build the plain-PyTorch MLP 784-100-50-10 with ``nn.Dropout(p)`` after each hidden ReLU."""
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(784, 100), nn.ReLU()]
    if p > 0:
        layers.append(nn.Dropout(p))
    layers += [nn.Linear(100, 50), nn.ReLU()]
    if p > 0:
        layers.append(nn.Dropout(p))
    layers.append(nn.Linear(50, 10))
    return nn.Sequential(*layers)


def reglab_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """Return the optimizer that reglab's fit loop builds for SGD with lr 0.05, momentum 0.9."""
    from reglab.training.config import OptimizerSettings
    from reglab.training.optim import build_optimizer

    return build_optimizer(model, OptimizerSettings(name="sgd", lr=0.05, momentum=0.9), 0.05)


def reglab_epoch(
    x: torch.Tensor,
    y: torch.Tensor,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    normalize: Callable[[torch.Tensor], torch.Tensor],
    generator: torch.Generator,
    augmentation: nn.Module | None = None,
    augment_generator: torch.Generator | None = None,
) -> None:
    """Train one epoch the way reglab's fit loop does, from tensors held in memory.

    Minibatches come from :func:`reglab.data.iterate_minibatches`, are augmented as a batch
    when ``augmentation`` is given, normalized, and the loss is checked for NaN each step,
    as :class:`reglab.training.fit` does.
    """
    from reglab.data import iterate_minibatches

    model.train()
    for xb, yb in iterate_minibatches(x, y, 128, shuffle=True, generator=generator):
        if augmentation is not None:
            xb = augmentation(xb, generator=augment_generator)
        loss = torch.nn.functional.cross_entropy(model(normalize(xb)), yb)
        if not torch.isfinite(loss):
            raise RuntimeError("the loss became NaN")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def reference_epoch(loader: Any, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Train one epoch of the plain-PyTorch reference: a DataLoader of per-sample transforms."""
    model.train()
    for xb, yb in loader:
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def interleave(
    candidates: dict[str, Callable[[], Any]], repetitions: int, *, warmup: int = 1
) -> dict[str, list[float]]:
    """Call each candidate once per repetition, in turn, and return the seconds of every call.

    A candidate that returns a float reports its own seconds (for example the training
    time that :func:`reglab.training.fit.fit` measures), which replace the wall time.
    """
    for _ in range(warmup):
        for function in candidates.values():
            function()
    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    for repetition in range(repetitions):
        order = list(candidates.items())
        if repetition % 2:
            order.reverse()
        for name, function in order:
            started = time.perf_counter()
            reported = function()
            elapsed = time.perf_counter() - started
            seconds[name].append(reported if isinstance(reported, float) else elapsed)
    return seconds


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Return the median over repetitions of ``numerator[i] / denominator[i]``."""
    return statistics.median(a / b for a, b in zip(numerator, denominator))


def machine() -> dict[str, Any]:
    """Return the CPU model, core count, load, torch version and date of this run."""
    model = platform.processor() or "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def report(name: str, figures: dict[str, Any]) -> None:
    """Print ``figures`` and write them, with the machine description, to ``results/NAME.json``."""
    record = {"benchmark": name, "command": f"python bench/{name}.py", "machine": machine(), **figures}
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    print(f"written to {path}")
