"""Train one recipe and score it on validation data only, to choose candidate recipes.

The sealed test set stays closed: the run is scored on validation data, epoch by epoch,
and the result goes to ``OUT/validation-runs/NAME.json`` with the command, the machine and
the history. docs/results.md lists these runs as the evidence behind the candidate recipes
of ``reglab compete`` and the settings of the study files in docs/results.

Usage::

    python scripts/validation_run.py NAME MODEL SETTINGS --epochs 50 [--lr 0.05] [--threads 1] [--precision bf16]

``SETTINGS`` is the JSON of the run's regularization, as in a study file's strategy, for
example ``'{"random_erasing": 0.5, "label_smoothing": 0.1}'``. The optimizer is SGD with
momentum 0.9 and a cosine schedule with one warm-up epoch, as in the compete recipes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from results import _machine

from reglab.data import load_dataset, make_split
from reglab.study.compete import Recipe
from reglab.training.fit import fit


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="name of the run and of its JSON file")
    parser.add_argument("model", help="model spec, e.g. cnn:32,64:bn")
    parser.add_argument("settings", type=json.loads, help="regularization settings as JSON")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="the run's precision (default fp32)")
    parser.add_argument("--out", type=Path, default=Path("results-out"))
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    optimizer = {"name": "sgd", "lr": args.lr, "momentum": 0.9, "schedule": {"name": "cosine", "warmup_epochs": 1}}
    recipe = Recipe(
        args.name, args.model, {"early_stopping": None, **args.settings}, optimizer, max_epochs=args.epochs, precision=args.precision
    )
    config = recipe.config(args.dataset, args.seed, args.epochs)
    split = make_split(load_dataset(args.dataset), seed=args.seed)

    def show(epoch: int, row: dict[str, float]) -> None:
        print(f"epoch {epoch:3d}  train_acc {row['train_acc']:.4f}  val_acc {row['val_acc']:.4f}  ({row['seconds']:.0f} s)", flush=True)

    started = time.perf_counter()
    result = fit(config, split, evaluate_test=False, on_epoch_end=show)

    record = {
        "name": args.name,
        "command": "python scripts/validation_run.py " + shlex.join(argv),
        "machine": _machine(),
        "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(time.perf_counter() - started, 1),
        "dataset": args.dataset,
        "model": config.model,
        "settings": config.regularization.describe(),
        "precision": config.precision,
        "epochs": args.epochs,
        "seed": args.seed,
        "val_acc": result.final_metrics["val_acc"],
        "train_acc": result.final_metrics["train_acc"],
        "history": [{key: row[key] for key in ("epoch", "train_acc", "val_acc", "seconds")} for row in result.history],
    }
    folder = args.out / "validation-runs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{args.name}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"{args.name}: validation accuracy {result.final_metrics['val_acc']:.4f} after {args.epochs} epochs")


if __name__ == "__main__":
    main(sys.argv[1:])
