"""The command line end to end on digits, and its errors for bad input."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from reglab.cli import app

runner = CliRunner()

TINY = ["--dataset", "digits", "--model", "mlp:32", "--epochs", "2", "--seeds", "2", "--lr", "0.05", "--batch-size", "64"]


def invoke(*args):
    return runner.invoke(app, list(args))


def test_compare_end_to_end(tmp_path):
    result = invoke("compare", *TINY, "--strategies", "l2,dropout,augment,early-stopping", "--out", str(tmp_path), "--quiet")

    assert result.exit_code == 0, result.output
    assert "baseline" in result.output
    assert "early-stopping" in result.output
    assert (tmp_path / "digits_mlp-32" / "report.html").is_file()
    assert (tmp_path / "digits_mlp-32" / "results.csv").is_file()
    assert (tmp_path / "reglab.db").is_file()


def test_compare_second_call_skips_finished_runs(tmp_path):
    first = invoke("compare", *TINY, "--strategies", "l2", "--out", str(tmp_path))
    assert first.exit_code == 0, first.output

    second = invoke("compare", *TINY, "--strategies", "l2", "--out", str(tmp_path))

    assert second.exit_code == 0, second.output
    assert second.output.count("failed") == 0


def test_train_prints_history_and_test_metrics(tmp_path):
    result = invoke("train", "--dataset", "digits", "--model", "mlp:32", "--epochs", "3", "--out", str(tmp_path))

    assert result.exit_code == 0, result.output
    assert result.output.count("epoch ") >= 3
    assert "test %" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "cifar-99"], "cifar-99"),
        (["--strategies", "l2,magic"], "Unknown strategy 'magic'"),
        (["--model", "resnet:5"], "Unknown model spec 'resnet:5'"),
        (["--lr", "fast"], "lr must be a positive number or 'auto', got 'fast'"),
        (["--lr", "-1"], "compare: --lr must be > 0, got -1.0."),
        (["--dropout", "1.2"], "compare: --dropout must be in [0, 1), got 1.2."),
        (["--dropout", "1"], "compare: --dropout must be in [0, 1), got 1.0."),
        (["--input-dropout", "-0.1"], "compare: --input-dropout must be in [0, 1), got -0.1."),
        (["--l2", "-0.001"], "compare: --l2 must be >= 0 (use 0 to switch it off), got -0.001."),
        (["--l1", "-1"], "compare: --l1 must be >= 0 (use 0 to switch it off), got -1.0."),
        (["--patience", "-2"], "compare: --patience must be an int >= 0, got -2."),
        (["--device", "banana"], "device 'banana' is not a torch device"),
    ],
)
def test_compare_bad_input(tmp_path, args, message):
    result = invoke("compare", *args, "--out", str(tmp_path), "--quiet")

    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_compare_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    result = invoke("compare", *TINY, "--out", str(blocker / "runs"))

    assert result.exit_code == 2
    assert "cannot write to the output folder" in result.output
    assert "--out" in result.output


def test_missing_idx_files_list_where_reglab_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("REGLAB_DATA", str(tmp_path / "env"))
    (tmp_path / "none").mkdir()
    result = invoke("compare", "--dataset", "mnist", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path), "--quiet")

    assert result.exit_code == 2
    assert str(tmp_path / "none") in result.output
    assert "--download" in result.output


def test_console_script_error_has_no_traceback(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-c", "from reglab.cli import main; main()", "compare", "--dataset", "nope", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 2
    assert "nope" in completed.stderr
    assert "Traceback" not in completed.stderr


FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not __import__("os").path.isdir(FASHION), reason="needs Debian's dataset-fashion-mnist")
def test_compare_on_debian_fashion_mnist(tmp_path):
    result = invoke(
        "compare", "--dataset", "fashion-mnist", "--model", "mlp:64", "--seeds", "1", "--epochs", "1",
        "--strategies", "augment", "--lr", "0.05", "--out", str(tmp_path), "--quiet",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    rows = (tmp_path / "fashion-mnist_mlp-64" / "results.csv").read_text().splitlines()
    assert len(rows) == 3
    assert "augment" in result.output


def test_compare_cuda_without_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = invoke("compare", *TINY, "--device", "cuda", "--out", str(tmp_path), "--quiet")

    assert result.exit_code == 2
    assert "CUDA is not available on this machine; use --device cpu" in result.output
    assert not (tmp_path / "digits_mlp-32").exists()


def test_missing_data_dir_is_an_error(tmp_path):
    result = invoke("compare", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "typo"), "--out", str(tmp_path), "--quiet")

    assert result.exit_code == 2
    assert f"data folder '{tmp_path / 'typo'}' (--data-dir) not found" in result.output
