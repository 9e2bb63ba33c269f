"""The fit loop on digits: reproducibility, model selection and the sealed test set."""

import re

import pytest
import torch

from reglab.data import load_dataset, make_split
from reglab.errors import SealedTestSetError
from reglab.penalties import RegularizationWarning, reset_warning_registry
from reglab.training.config import DropoutSettings, EarlyStoppingSettings, RunConfig, StrategyConfig
from reglab.training.fit import TrainingError, fit


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def config(**changes):
    settings = {"dataset": "digits", "model": "mlp:32", "epochs": 4, "batch_size": 64, "seed": 3}
    settings.update(changes)
    return RunConfig(**settings)


def run(digits, cfg, **kwargs):
    return fit(cfg, make_split(digits, seed=cfg.seed), **kwargs)


def test_same_seed_gives_identical_metrics(digits):
    cfg = config(regularization=StrategyConfig(dropout=DropoutSettings(p=0.5), augment=True, l2=1e-3))

    first = run(digits, cfg)
    second = run(digits, cfg)

    def without_time(history):
        return [{key: value for key, value in row.items() if key != "seconds"} for row in history]

    assert without_time(first.history) == without_time(second.history)
    assert first.test_metrics == second.test_metrics
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)


def test_different_seed_gives_different_weights(digits):
    first = run(digits, config(seed=1))
    second = run(digits, config(seed=2))

    assert not torch.equal(first.model[1].weight, second.model[1].weight)


def test_fit_leaves_global_rng_untouched(digits):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)

    run(digits, config(regularization=StrategyConfig(dropout=DropoutSettings(p=0.5))))

    assert torch.equal(torch.rand(3), expected)


def test_history_rows_have_every_metric(digits):
    result = run(digits, config())

    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    for row in result.history:
        assert set(row) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "gap", "seconds"}
        assert row["gap"] == pytest.approx(row["train_acc"] - row["val_acc"])
    assert result.best_epoch == 4
    assert result.stop_reason == "max_epochs"


def test_early_stopping_keeps_best_epoch_weights(digits):
    es = EarlyStoppingSettings(monitor="val_loss", patience=2)
    result = run(digits, config(epochs=40, regularization=StrategyConfig(early_stopping=es), optimizer={"lr": 0.3}))

    assert result.stop_reason == "patience"
    assert len(result.history) == result.best_epoch + 2
    best_row = result.history[result.best_epoch - 1]
    assert result.final_metrics["val_loss"] == pytest.approx(best_row["val_loss"])
    assert best_row["val_loss"] == min(row["val_loss"] for row in result.history)


def test_refit_trains_on_train_plus_validation(digits):
    es = EarlyStoppingSettings(monitor="val_acc", patience=2, refit=True)
    result = run(digits, config(epochs=6, regularization=StrategyConfig(early_stopping=es)))

    assert "refit_train_acc" in result.final_metrics
    assert len(result.test_accesses) == 1


def test_test_set_is_opened_once(digits):
    split = make_split(digits, seed=0)
    result = fit(config(seed=0), split)

    assert len(result.test_accesses) == 1
    assert "final evaluation" in result.test_accesses[0]["purpose"]
    with pytest.raises(SealedTestSetError, match="already evaluated"):
        fit(config(seed=0), split)


def test_learning_rate_search_keeps_test_sealed(digits):
    split = make_split(digits, seed=0)
    result = fit(config(seed=0), split, evaluate_test=False)

    assert result.test_metrics == {}
    assert split.test.n_accesses == 0


def test_non_finite_loss_raises_with_advice(digits):
    with pytest.raises(TrainingError, match=r"lower the learning rate \(lr=1e\+30\)"):
        run(digits, config(optimizer={"lr": 1e30}))


@pytest.mark.parametrize(
    ("regularization", "cause"),
    [({"l2": 1e300}, "penalty strength l2=1e+300"), ({"l1": 1e300}, "penalty strength l1=1e+300")],
)
def test_non_finite_loss_names_a_large_penalty(digits, regularization, cause):
    with pytest.raises(TrainingError, match=rf"likely cause is the {re.escape(cause)}, .*lower the strength") as raised:
        run(digits, config(regularization=StrategyConfig(**regularization), epochs=1))
    assert "lower the learning rate" not in str(raised.value)


def test_adam_with_l2_warns(digits):
    reset_warning_registry()
    with pytest.warns(RegularizationWarning, match="AdamW"):
        run(digits, config(epochs=1, optimizer={"name": "adam", "lr": 1e-3}, regularization=StrategyConfig(l2=1e-3)))
