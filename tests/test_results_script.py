"""scripts/results.py writes docs/results.md only from the numbers its commands produced."""

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "results.py"


@pytest.fixture(scope="module")
def results():
    spec = importlib.util.spec_from_file_location("results_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _study(out, name, scores):
    """Write one seed per strategy; a second seed shifts every accuracy by the same amount."""
    summary, runs = [], []
    for run_id, (strategy, val_acc, test_acc) in enumerate(scores, start=1):
        summary.append(
            {"strategy": strategy, "lr": 0.05, "val_acc_mean": val_acc, "test_acc_mean": test_acc, "test_acc_ci95": 0.01}
        )
        for seed in (0, 1):
            runs.append(
                {"run_id": 2 * run_id + seed, "strategy": strategy, "seed": seed, "val_acc": val_acc, "test_acc": test_acc + seed / 100}
            )
    _write(out / name / "summary.csv", summary)
    _write(out / name / "results.csv", runs)


def test_page_picks_on_validation_and_judges_the_target(results, tmp_path):
    # The pick has the best validation accuracy, not the best test accuracy.
    _study(tmp_path, "mlp-mnist-5k", [("baseline", 0.95, 0.97), ("augment", 0.97, 0.96)])
    (tmp_path / "runs.json").write_text(
        json.dumps({"mlp-mnist-5k": {"seconds": 60.0, "finished": "2026-12-04 23:00 UTC", "machine": "test cpu"}})
    )

    page = results.page(tmp_path)

    assert "Pick on validation: `augment`, test accuracy: 96.00% against the target 96.5% (not met)." in page
    assert "| augment | 0.05 | 97.00 | 96.00 ± 1.00 | 4.00 | 4, 5 |" in page
    assert "| mnist-5k, MLP, best regularization | mlp-mnist-5k | `augment` | 96.00 | 96.5 | no |" in page
    assert "Machine: test cpu" in page
    assert "reglab compare docs/results/mlp-mnist-5k.yaml --out results-out" in page


def test_page_lists_what_has_not_run(results, tmp_path):
    page = results.page(tmp_path)

    assert "## Not run yet" in page
    assert "ladder-fashion-mnist" in page
    assert "compete-fashion-mnist" in page


def test_ladder_ordering_is_by_test_error(results, tmp_path):
    scores = [("baseline", 0.9, 0.94), ("l2", 0.9, 0.95), ("max-norm", 0.9, 0.945), ("dropout-l2", 0.9, 0.96), ("dropout-max-norm", 0.9, 0.955)]
    _study(tmp_path, "ladder-mnist-5k", scores)

    page = results.page(tmp_path)

    expected = "baseline (6.00%) > max-norm (5.50%) > l2 (5.00%) > dropout-max-norm (4.50%) > dropout-l2 (4.00%)"
    assert expected in page
    assert "- `max-norm` against `l2`: -0.50 points of test accuracy, unlike in the paper; beyond" in page
    assert "- `dropout-l2` against `max-norm`: +1.50 points of test accuracy, as in the paper; beyond" in page
