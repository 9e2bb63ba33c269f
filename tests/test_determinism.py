"""Deterministic mode switches CUDA kernels only for GPU devices and restores the settings."""

import os

import pytest
import torch

from reglab.study.reproduce import MetricDifference, Verification
from reglab.training.determinism import GPU_TOLERANCE, deterministic_mode


def _flags():
    return (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )


def test_cpu_leaves_settings_alone():
    before = _flags()

    with deterministic_mode(torch.device("cpu")):
        inside = _flags()

    assert inside == before
    assert _flags() == before


def test_cuda_switches_and_restores(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = _flags()

    # Entering the mode touches no CUDA call, so it runs on a machine without a GPU.
    with deterministic_mode(torch.device("cuda")):
        inside = _flags()
        workspace = os.environ.get("CUBLAS_WORKSPACE_CONFIG")

    assert inside == (True, True, False)
    assert workspace == ":4096:8"
    assert _flags() == before


def _verification(differences, tolerance):
    return Verification(
        run_id=1,
        identical=not differences,
        differences=differences,
        compared=10,
        tolerance=tolerance,
        largest_difference=max((abs(d.stored - d.reproduced) for d in differences if isinstance(d.stored, float)), default=0.0),
    )


@pytest.mark.parametrize(
    ("differences", "tolerance", "passed"),
    [
        ([], 0.0, True),
        ([MetricDifference("final_metrics.val_acc", 0.9, 0.9 + 1e-7)], 0.0, False),
        ([MetricDifference("final_metrics.val_acc", 0.9, 0.9 + 1e-7)], GPU_TOLERANCE, True),
        ([MetricDifference("final_metrics.val_acc", 0.9, 0.91)], GPU_TOLERANCE, False),
        ([MetricDifference("stop_reason", "max_epochs", "early_stopping")], GPU_TOLERANCE, False),
    ],
)
def test_verdict_tolerance(differences, tolerance, passed):
    assert _verification(differences, tolerance).passed is passed
