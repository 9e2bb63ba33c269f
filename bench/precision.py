"""Training steps and evaluation in float32 against bfloat16 mixed precision.

The networks are the two clothing candidates of ``reglab compete`` and a wide MLP, on 28x28
images. For each, the script times ten training steps (forward, cross-entropy, backward, SGD
with momentum) on minibatches of 128 and one evaluation pass over 4,096 images. Each runs in
float32 and inside :func:`reglab.training.precision.autocast` with ``"bf16"``. The script also
reports :func:`reglab.training.precision.bf16_is_fast`, which decides whether
``reglab compete`` uses bfloat16 on this machine.

Run: ``python bench/precision.py [repetitions]`` (one thread unless
``REGLAB_BENCH_THREADS`` says otherwise).
"""

from __future__ import annotations

import statistics
import sys

import torch
import torch.nn.functional as F

from _common import interleave, median_ratio, report
from reglab.nn.models import build_model
from reglab.training.precision import autocast, bf16_is_fast

MODELS = ("cnn:32,64,128:bn", "cnn:32,64,128:bn,convs=2", "mlp:1024,1024")
EVAL_ROWS = 4096
EVAL_BATCH = 256


def main(repetitions: int) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    images = torch.randn(EVAL_ROWS, 1, 28, 28)
    models = {spec: build_model(spec, (1, 28, 28), 10) for spec in MODELS}
    optimizers = {spec: torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) for spec, model in models.items()}

    def steps(spec: str, precision: str, count: int = 10) -> None:
        model, optimizer = models[spec], optimizers[spec]
        model.train()
        for _ in range(count):
            with autocast(precision, "cpu"):
                loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    @torch.no_grad()
    def evaluation(spec: str, precision: str) -> None:
        model = models[spec]
        model.eval()
        with autocast(precision, "cpu"):
            for start in range(0, EVAL_ROWS, EVAL_BATCH):
                model(images[start : start + EVAL_BATCH])

    tasks = {}
    for spec in MODELS:
        for precision in ("fp32", "bf16"):
            tasks[f"{spec} step {precision}"] = lambda spec=spec, precision=precision: steps(spec, precision)
            tasks[f"{spec} eval {precision}"] = lambda spec=spec, precision=precision: evaluation(spec, precision)
    times = interleave(tasks, repetitions)

    report(
        "precision",
        {
            "repetitions": repetitions,
            "bf16_is_fast": bf16_is_fast("cpu"),
            "median_seconds": {name: statistics.median(values) for name, values in times.items()},
            "ratios_fp32_over_bf16": {
                f"{spec} {part}": median_ratio(times[f"{spec} {part} fp32"], times[f"{spec} {part} bf16"])
                for spec in MODELS
                for part in ("step", "eval")
            },
        },
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
