"""The small CNN in the usual NCHW layout against channels-last, and its evaluation batch size.

``cnn:32,64:bn`` on 28x28 images, one thread by default. Two figures:

* a training step (forward, cross-entropy, backward, SGD with momentum) on a minibatch of
  128, and an evaluation pass of 4,096 images in batches of 2,048, for the network in NCHW
  layout and as :func:`reglab.nn.build_model` returns it, channels-last. Batches of 2,048
  were reglab's evaluation batches before 0.3.0;
* evaluation time per 128 images of the channels-last network for several batch sizes,
  next to the size that :func:`reglab.nn.batch_size.inference_batch_size` picks.

Run: ``python bench/cnn_layout.py [repetitions]``.
"""

from __future__ import annotations

import statistics
import sys

import torch
import torch.nn.functional as F

from _common import interleave, median_ratio, report
from reglab.nn.batch_size import inference_batch_size
from reglab.nn.models import build_model

EVAL_ROWS = 4096
EVAL_BATCH_SIZES = (64, 128, 256, 1024, 2048)


def main(repetitions: int) -> None:
    torch.manual_seed(0)
    channels_last = build_model("cnn:32,64:bn", (1, 28, 28), 10)
    nchw = build_model("cnn:32,64:bn", (1, 28, 28), 10).to(memory_format=torch.contiguous_format)
    nchw.load_state_dict(channels_last.state_dict())
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    images = torch.randn(EVAL_ROWS, 1, 28, 28)
    optimizers = {id(model): torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) for model in (nchw, channels_last)}

    def steps(model: torch.nn.Module, count: int = 10) -> None:
        model.train()
        optimizer = optimizers[id(model)]
        for _ in range(count):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()

    @torch.no_grad()
    def evaluation(model: torch.nn.Module, batch_size: int) -> None:
        model.eval()
        for start in range(0, EVAL_ROWS, batch_size):
            model(images[start : start + batch_size])

    layouts = interleave(
        {
            "nchw_step": lambda: steps(nchw),
            "channels_last_step": lambda: steps(channels_last),
            "nchw_eval_2048": lambda: evaluation(nchw, 2048),
            "channels_last_eval_2048": lambda: evaluation(channels_last, 2048),
        },
        repetitions,
    )
    batches = interleave(
        {f"eval_{size}": (lambda size=size: evaluation(channels_last, size)) for size in EVAL_BATCH_SIZES},
        repetitions,
    )
    per_128 = {name: statistics.median(values) / (EVAL_ROWS / 128) for name, values in batches.items()}
    report(
        "cnn_layout",
        {
            "repetitions": repetitions,
            "median_seconds_per_10_steps": {name: statistics.median(layouts[name]) for name in ("nchw_step", "channels_last_step")},
            "median_seconds_per_4096_images": {
                name: statistics.median(layouts[name]) for name in ("nchw_eval_2048", "channels_last_eval_2048")
            },
            "eval_seconds_per_128_images_by_batch_size": per_128,
            "inference_batch_size": inference_batch_size(channels_last, images),
            "ratios": {
                "step_nchw_over_channels_last": median_ratio(layouts["nchw_step"], layouts["channels_last_step"]),
                "eval_2048_nchw_over_channels_last": median_ratio(
                    layouts["nchw_eval_2048"], layouts["channels_last_eval_2048"]
                ),
                "eval_2048_over_chosen_batch": median_ratio(
                    batches["eval_2048"], batches[f"eval_{inference_batch_size(channels_last, images)}"]
                ),
            },
        },
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
