"""scripts/validation_run.py scores a recipe on validation data and never opens the test set."""

import importlib.util
import json
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def _load(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    spec = importlib.util.spec_from_file_location("validation_run_script", SCRIPTS / "validation_run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_run_keeps_test_set_sealed(monkeypatch, tmp_path):
    script = _load(monkeypatch)
    opened = []
    original_fit = script.fit

    def recording_fit(config, split, **kwargs):
        result = original_fit(config, split, **kwargs)
        opened.append(split.test.n_accesses)
        return result

    monkeypatch.setattr(script, "fit", recording_fit)
    script.main(
        ["tiny", "mlp:8", '{"label_smoothing": 0.1}', "--dataset", "digits", "--epochs", "2", "--precision", "bf16", "--out", str(tmp_path)]
    )

    record = json.loads((tmp_path / "validation-runs" / "tiny.json").read_text())
    assert opened == [0]
    assert record["settings"] == "label_smoothing=0.1"
    assert record["precision"] == "bf16"
    assert [row["epoch"] for row in record["history"]] == [1, 2]
    assert record["val_acc"] == record["history"][-1]["val_acc"]
    assert not any("test" in key for key in record)
    assert record["command"].startswith("python scripts/validation_run.py tiny mlp:8")
