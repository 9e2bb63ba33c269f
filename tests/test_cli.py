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


def _result_cells(output):
    """Return the first five cells of the result row of `reglab train`'s table."""
    row = next(line for line in output.splitlines() if "max_epochs" in line)
    return [cell.strip() for cell in row.split("│")[1:6]]


def test_train_shows_an_identical_stored_run(tmp_path):
    args = ("train", "--dataset", "digits", "--model", "mlp:8", "--epochs", "1", "--out", str(tmp_path))
    first = invoke(*args)
    second = invoke(*args)
    other_seed = invoke(*args, "--seed", "1")

    assert first.exit_code == 0, first.output
    assert "Stored as run 1" in first.output
    assert second.exit_code == 0, second.output
    assert "epoch   1" not in second.output
    assert "Run 1 of study 'train'" in second.output
    assert "has the same settings and seed, so nothing was trained" in " ".join(second.output.split())
    # Selected epoch, stop reason and the train, validation and test accuracies.
    assert _result_cells(second.output) == _result_cells(first.output)
    assert "Stored as run 2" in other_seed.output


def test_train_rejects_a_seed_beyond_the_store(tmp_path):
    result = invoke("train", "--dataset", "digits", "--model", "mlp:8", "--seed", str(2**63), "--out", str(tmp_path))

    assert result.exit_code == 2, result.output
    assert "seed: Input should be less than or equal to 9223372036854775807" in result.output
    assert not (tmp_path / "reglab.db").exists()


_EXITING_MODULE = """
import sys
from torch import nn


class Exits(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.training and self.calls > 3:
            sys.exit(3)
        return self.linear(x.flatten(1))


def make(input_shape, num_classes):
    return Exits()
"""


@pytest.mark.parametrize(
    ("statement", "cause"),
    [("sys.exit(3)", "it called sys.exit(3)"), ("raise RuntimeError('boom')", "RuntimeError: boom")],
)
def test_train_names_a_failing_user_module(tmp_path, monkeypatch, statement, cause):
    # One module name per case: Python caches an imported module by its name.
    name = f"reglab_failing_net_{abs(hash(statement))}"
    (tmp_path / f"{name}.py").write_text(_EXITING_MODULE.replace("sys.exit(3)", statement))
    monkeypatch.syspath_prepend(str(tmp_path))
    result = invoke("train", "--dataset", "digits", "--model", f"module:{name}:make", "--epochs", "1", "--out", str(tmp_path))

    assert result.exit_code == 2, result.output
    assert f"module:{name}:make failed ({cause}) while training" in " ".join(result.output.split())


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
        (["--strategies", ""], "--strategies must name at least one item, got ''"),
        (["--strategies", "l2,,dropout"], "--strategies has an empty item at position 2, got 'l2,,dropout'"),
        (["--strategies", "l2,"], "--strategies has an empty item at position 2"),
        (["--strategies", "l2,dropout,l2"], "strategy 'l2' is listed twice"),
        (["--mc-curve", "--mc-samples", "1,,2"], "--mc-samples has an empty item at position 2, got '1,,2'"),
        (["--precision", "half"], "precision: Input should be 'fp32' or 'bf16', got 'half'"),
        (["--name", ""], "name: must start with a letter or digit"),
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


@pytest.mark.parametrize("below", [False, True])
def test_compare_names_a_file_given_as_output_folder(tmp_path, below):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = blocker / "runs" if below else blocker

    result = invoke("compare", *TINY, "--out", str(out))

    assert result.exit_code == 2
    assert f"'{blocker}' is a file, not a folder" in " ".join(result.output.split())
    assert blocker.read_text() == "not a folder"


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


def test_compare_failed_run_exits_1(tmp_path):
    args = ["--dataset", "digits", "--model", "mlp:16", "--epochs", "1", "--seeds", "1", "--lr", "0.05"]
    result = invoke("compare", *args, "--strategies", "l2", "--l2", "1e300", "--out", str(tmp_path), "--quiet")

    assert result.exit_code == 1, result.output
    assert "1 of 2 run(s) failed" in result.output
    assert "exit status is 1" in result.output
    # The penalty, not the learning rate, is named as the likely cause.
    assert "l2=1e+300" in result.output
    assert "lower the learning rate" not in result.output
    folder = tmp_path / "digits_mlp-16"
    assert len((folder / "results.csv").read_text().splitlines()) == 2
    assert "<h3>Failed runs</h3>" in (folder / "report.html").read_text()


@pytest.mark.parametrize(("strategy", "setting"), [("augment", "augment"), ("random-erasing", "random_erasing")])
def test_image_strategies_on_features_rejected(tmp_path, strategy, setting):
    result = invoke(
        "compare", "--dataset", "moons", "--model", "mlp:8", "--epochs", "1", "--seeds", "1",
        "--strategies", strategy, "--out", str(tmp_path), "--quiet",
    )  # fmt: skip

    assert result.exit_code == 2, result.output
    assert f"strategies.{strategy}.{setting}:" in result.output
    assert "data set 'moons' has examples of shape (2,)" in result.output
    assert f"remove {setting} from strategy '{strategy}'" in result.output
    assert "failed" not in result.output
    assert not (tmp_path / "moons_mlp-8").exists()



def test_help_at_80_columns_shows_every_word():
    """No help text is cut with '…' at 80 columns, and square brackets are printed, not read as markup."""
    commands = [
        "compare", "train", "init", "runs", "show", "report", "export", "reproduce", "leaderboard", "geometry",
        "boundaries", "mc-curve", "capacity", "learning-curve", "validation-curve", "bias-variance", "tune", "compete",
    ]  # fmt: skip
    for command in commands:
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "80"})

        assert result.exit_code == 0, result.output
        assert "…" not in result.output, command
        assert max(len(line) for line in result.output.splitlines()) <= 80, command
        if command == "compare":
            text = "".join(line.strip("│ ") for line in result.output.splitlines())
            assert "'reglab[ray]'" in text
            assert "'cnn[:C1,C2[,C3][:bn,fc=N,convs=N]]'" in text
            assert "--bias-variance-bootstraps" in text


def test_batched_seconds_are_marked_as_shares(tmp_path):
    """Runs of one seed train in one batch; the table marks their seconds as equal shares."""
    result = invoke(
        "compare", "--dataset", "digits", "--model", "mlp:8", "--epochs", "1", "--seeds", "1", "--lr", "0.05",
        "--strategies", "l2", "--out", str(tmp_path), "--quiet",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "seconds*" in result.output
    assert "equal share of its batch's time" in " ".join(result.output.split())
    html = (tmp_path / "digits_mlp-8" / "report.html").read_text()
    assert "equal share of the batch's time" in " ".join(html.split())


def test_compare_ctrl_c_message_on_stderr(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("reglab.study.compare_study", interrupted)

    result = invoke("compare", "--dataset", "digits", "--strategies", "l2", "--out", str(tmp_path), "--quiet")

    assert result.exit_code == 130
    assert result.stdout == ""
    assert "Interrupted. Every finished run is stored in" in " ".join(result.stderr.split())
    assert "Run the same command again to resume" in " ".join(result.stderr.split())
