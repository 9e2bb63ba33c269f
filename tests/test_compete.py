"""``reglab compete``: selection on validation data, a budget-sized final run, one test evaluation."""

import json
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from reglab.cli import app
from reglab.errors import ConfigError
from reglab.study import RunStore
from reglab.study import compete as compete_module
from reglab.study.compete import (
    SLOWDOWN_MARGIN,
    CompeteResult,
    Probe,
    Recipe,
    compete,
    final_epochs,
    overrun_message,
    parse_budget,
    recipes_for,
)
from reglab.study.leaderboard import build_leaderboard
from reglab.training.model_builder import build_run_model

runner = CliRunner()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("90s", 90), ("1h", 3600), ("1h30m", 5400), ("2.5m", 150), ("45", 45), (" 10M ", 600)],
)
def test_parse_budget(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "30 min", "-5m", "0", "m", "nan", "inf"])
def test_parse_budget_rejects_bad_text(text):
    with pytest.raises(ConfigError, match=r"compete: budget must be .*got"):
        parse_budget(text)


def test_recipes_depend_on_the_input():
    assert all(recipe.model.startswith("cnn") for recipe in recipes_for("fashion-mnist", (1, 28, 28)))
    assert all(recipe.model.startswith("mlp") for recipe in recipes_for("digits", (1, 8, 8)))
    assert all(recipe.model.startswith("mlp") for recipe in recipes_for("moons", (2,)))


@pytest.mark.parametrize("dataset", ["fashion-mnist", "mnist"])
def test_image_recipes_build_and_validate(dataset):
    # Every candidate's per-layer dropout must fit its network, which only building shows.
    for recipe in recipes_for(dataset, (1, 28, 28)):
        config = recipe.config(dataset, 0, 5)
        model = build_run_model(config, (1, 28, 28), 10)
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(
    ("bf16_fast", "models"),
    [(False, ["cnn:32,64,128:bn", "cnn:32,64:bn"]), (True, ["cnn:32,64,128:bn,convs=2", "cnn:32,64,128:bn"])],
)
def test_clothing_recipes_erase_and_differ_in_depth(monkeypatch, bf16_fast, models):
    monkeypatch.setattr(compete_module, "bf16_is_fast", lambda device: bf16_fast)
    recipes = recipes_for("fashion-mnist", (1, 28, 28))

    assert [recipe.model for recipe in recipes] == models
    for recipe in recipes:
        settings = recipe.config("fashion-mnist", 0, 5).regularization
        assert settings.random_erasing == 0.5
        assert not settings.augment


def _recipes():
    sgd = {"name": "sgd", "lr": 0.05}
    return [
        Recipe("tiny-lr", "mlp:16", {}, {"name": "sgd", "lr": 1e-5}, batch_size=64, max_epochs=4),
        Recipe("good-lr", "mlp:16", {"dropout": {"p": 0.1}}, sgd, batch_size=64, max_epochs=4),
    ]


def test_compete_selects_on_validation(tmp_path):
    with RunStore(tmp_path / "reglab.db") as store:
        result = compete("digits", 600, store, recipes=_recipes())
        runs = store.runs(result.study, role=None)
        board = build_leaderboard(store)

    # The recipe with a usable learning rate wins on validation accuracy.
    assert result.recipe == "good-lr"
    assert [probe.recipe for probe in result.probes] == ["tiny-lr", "good-lr"]
    assert result.probes[1].val_acc > result.probes[0].val_acc

    # Probes never open the test set; the final run opens it once and is capped by max_epochs.
    probes = [run for run in runs if run["role"] == "selection"]
    final = [run for run in runs if run["role"] == "run"]
    assert len(probes) == 2
    assert all(not run["test_accesses"] for run in probes)
    assert len(final) == 1
    assert len(final[0]["test_accesses"]) == 1
    assert result.epochs == 4
    assert final[0]["config"]["epochs"] == 4

    # A 600 s budget leaves time to reproduce; the verdict reaches the leaderboard.
    assert result.verified is True
    assert [entry.run_id for entry in board.entries] == [result.run_id]
    assert board.entries[0].verified is True
    assert "dropout" in board.entries[0].settings
    assert (tmp_path / result.study / "checkpoints" / f"run-{result.run_id}.pt").is_file()


def test_compete_budget_too_small(tmp_path):
    with RunStore(tmp_path / "reglab.db") as store:
        with pytest.raises(ConfigError, match=r"budget 0 s leaves no time .* give at least --budget \d+s"):
            compete("digits", 0.001, store, recipes=_recipes()[1:])
        # The probe that finished is kept.
        assert len(store.runs("compete-digits", role="selection")) == 1


def test_compete_command_writes_its_record(tmp_path):
    # 15 s leaves room for the final run when other jobs slow the probes down.
    result = runner.invoke(app, ["compete", "--dataset", "digits", "--budget", "15s", "--out", str(tmp_path), "--quiet"])

    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "compete-digits" / "compete.json").read_text())
    assert record["recipe"] in {recipe.name for recipe in recipes_for("digits", (1, 8, 8))}
    assert 0.5 < record["test_acc"] <= 1.0
    assert record["seconds"] < 60
    assert record["final_seconds"] > 0
    assert record["probe_seconds_per_epoch"] > 0
    assert "see `reglab leaderboard`" in result.output
    assert "of a 15 s budget" in result.output


def test_compete_command_rejects_a_bad_budget(tmp_path):
    result = runner.invoke(app, ["compete", "--dataset", "digits", "--budget", "half an hour", "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "budget must be a duration such as 30m" in result.output
    assert not (tmp_path / "reglab.db").exists()


@pytest.mark.parametrize(
    ("verify", "expected"),
    [
        # 20 s less 5 % reserve, 4 s spent, 1.15 s fixed cost: 13.85 s at 1.15 s an epoch.
        (False, 12),
        # (13.85 s less 1.15 s fixed cost and 1 s loading) / 2 = 5.85 s at 1.15 s an epoch.
        (True, 5),
    ],
)
def test_final_epochs_keep_a_slowdown_margin(verify, expected):
    probe = Probe("mlp", 3, 0.9, seconds_per_epoch=1.0, overhead_seconds=1.0)

    assert SLOWDOWN_MARGIN == 1.15
    assert final_epochs(20, 4, probe, load_seconds=1.0, verify=verify) == expected
    assert final_epochs(5, 4, probe, load_seconds=1.0, verify=verify) == 0


def test_probes_measure_fixed_cost(tmp_path):
    with RunStore(tmp_path / "reglab.db") as store:
        result = compete("digits", 600, store, recipes=_recipes()[1:])

    (probe,) = result.probes
    assert probe.overhead_seconds > 0
    assert result.probe_seconds_per_epoch == probe.seconds_per_epoch
    assert result.seconds_per_epoch > 0


def test_slow_final_run_skips_reproduction(tmp_path, monkeypatch):
    # The final run is made slow by sleeping after it, as on a machine that got loaded after
    # the probes: it takes 60% of the time left when it starts, so a reproduction of the same
    # length cannot fit. Its wall time, not its training time alone, decides on the reproduction.
    budget = 10.0
    started = time.perf_counter()
    real_fit = compete_module.fit

    def slow_final_fit(config, split, **kwargs):
        final_started = time.perf_counter()
        result = real_fit(config, split, **kwargs)
        if kwargs.get("evaluate_test", True):
            left = budget - (final_started - started)
            time.sleep(max(0.0, final_started + 0.6 * left - time.perf_counter()))
        return result

    monkeypatch.setattr(compete_module, "fit", slow_final_fit)
    with RunStore(tmp_path / "reglab.db") as store:
        result = compete("digits", budget, store, recipes=_recipes()[1:])

    assert result.verified is None
    assert result.seconds <= budget


def _result(seconds, seconds_per_epoch):
    return CompeteResult(
        study="compete-digits", recipe="mlp-dropout", description="", model="mlp:512,512", run_id=1, epochs=10,
        best_epoch=9, val_acc=0.9, test_acc=0.9, seconds=seconds, budget_seconds=20, verified=None,
        final_seconds=seconds / 2, seconds_per_epoch=seconds_per_epoch, probe_seconds_per_epoch=1.0,
    )  # fmt: skip


def test_overrun_message_names_the_cause():
    assert overrun_message(_result(19, 2.0)) is None
    slower = overrun_message(_result(36, 2.0))
    fixed_costs = overrun_message(_result(36, 1.1))

    assert slower.startswith("took 36 s of a 20 s budget: the machine was slower than during the probes")
    assert "2.00 s against 1.00 s" in slower
    assert fixed_costs.startswith("took 36 s of a 20 s budget: loading the data")


def test_compete_command_reports_overrun(tmp_path, monkeypatch):
    monkeypatch.setattr(compete_module, "compete", lambda *args, **kwargs: _result(36, 2.0))

    result = runner.invoke(app, ["compete", "--dataset", "digits", "--budget", "20s", "--out", str(tmp_path), "--quiet"])

    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "36 s of a 20 s budget" in output
    assert "Over budget: it took 36 s of a 20 s budget: the machine was slower than during the probes" in output


def test_second_compete_reuses_stored_runs(tmp_path, monkeypatch):
    with RunStore(tmp_path / "reglab.db") as store:
        first = compete("digits", 600, store, recipes=_recipes())

        # Every probe and the final run are stored, so nothing trains again.
        def no_training(*args, **kwargs):
            raise AssertionError("compete trained a run that was already stored")

        monkeypatch.setattr("reglab.study.compete.fit", no_training)
        monkeypatch.setattr("reglab.study.reproduce.fit_batched", no_training)
        monkeypatch.setattr("reglab.study.reproduce.fit", no_training)
        second = compete("digits", 600, store, recipes=_recipes())
        runs = store.runs(first.study, role=None)

    assert second.run_id == first.run_id
    assert second.test_acc == first.test_acc
    assert (first.reused, second.reused) == (False, True)
    assert [probe.note for probe in second.probes] == ["stored earlier", "stored earlier"]
    assert second.verified is True
    assert len(runs) == 3
    assert sum(len(run["test_accesses"] or []) for run in runs) == 1


def test_rerun_keeps_final_run_sized_differently(tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("compete trained a second final run")

    with RunStore(tmp_path / "reglab.db") as store:
        monkeypatch.setattr("reglab.study.compete.final_epochs", lambda *args, **kwargs: 2)
        first = compete("digits", 600, store, recipes=_recipes())

        # The reused probes leave more time, so the sizing would now give more epochs.
        monkeypatch.setattr("reglab.study.compete.final_epochs", lambda *args, **kwargs: 4)
        monkeypatch.setattr("reglab.study.compete.fit", no_training)
        second = compete("digits", 600, store, recipes=_recipes())
        finals = store.runs(first.study, role="run")

    assert first.epochs == 2
    assert second.epochs == 2
    assert second.run_id == first.run_id
    assert second.test_acc == first.test_acc
    assert (first.reused, second.reused) == (False, True)
    assert len(finals) == 1


def test_compete_with_new_name_trains_afresh(tmp_path):
    with RunStore(tmp_path / "reglab.db") as store:
        first = compete("digits", 600, store, recipes=_recipes())
        renamed = compete("digits", 600, store, recipes=_recipes(), name="digits-again")
        runs = store.runs("digits-again", role=None)

    assert renamed.study == "digits-again"
    assert renamed.run_id != first.run_id
    assert all(probe.note != "stored earlier" for probe in renamed.probes)
    assert len(runs) == 3


def test_compete_command_rejects_a_bad_name(tmp_path):
    args = ["compete", "--dataset", "digits", "--budget", "5s", "--name", "../up", "--out", str(tmp_path)]
    result = runner.invoke(app, args)

    assert result.exit_code != 0
    assert "name '../up' must start with a letter or digit" in result.output
    assert "--name compete-fashion-mnist-2" in result.output


def test_user_images_get_recipes_without_default_augmentation():
    recipes = recipes_for("npz:images.npz", (1, 16, 16), precision="fp32")

    assert [recipe.name for recipe in recipes] == ["cnn-erasing"]
    assert not recipes[0].config("npz:images.npz", 0, 5).regularization.augment


def test_user_data_default_name_is_valid(tmp_path, monkeypatch):
    images = tmp_path / "img16.npz"
    generator = np.random.default_rng(0)
    np.savez(images, x=generator.random((200, 1, 16, 16), dtype=np.float32), y=np.arange(200) % 4)

    def stop_before_training(*args, **kwargs):
        raise RuntimeError("stop")

    monkeypatch.setattr(compete_module, "fit", stop_before_training)

    with RunStore(tmp_path / "reglab.db") as store, pytest.raises(RuntimeError, match="stop"):
        compete(f"npz:{images}", 60, store)

    with RunStore(tmp_path / "reglab.db") as store:
        assert store.studies() == [f"compete-npz-{str(images).replace('/', '-')}"[:100]]


def test_compete_rejects_the_name_of_another_commands_study(tmp_path):
    with RunStore(tmp_path / "reglab.db") as store:
        store.save_study("all", {"name": "all", "strategies": {}})

        with pytest.raises(ConfigError, match=r"compete: name 'all' is a study of 'reglab compare' in .*; give another --name"):
            compete("digits", 60, store, name="all")
