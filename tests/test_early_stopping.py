"""Tests for reglab.early_stopping.

Scripted metric sequences drive :class:`EarlyStopping` by hand, one ``step`` per epoch. The
tables map each sequence and its settings to the epoch at which training stops and why.
"""

from __future__ import annotations

import io
import math
import pickle

import pytest
import torch
from torch import nn

from reglab.early_stopping import (
    EarlyStopping,
    StoppingConfig,
    StoppingState,
    StopReason,
    evaluate_stopping,
    resolve_mode,
)
from reglab.errors import ConfigError

NAN = math.nan
INF = math.inf


def run_sequence(stopper: EarlyStopping, rows: list[dict[str, float]]) -> tuple[int | None, StopReason | None]:
    """Step through ``rows`` (epoch 1, 2, ...) and return the stop epoch and reason."""
    for epoch, row in enumerate(rows, start=1):
        if stopper.step(epoch, row):
            return epoch, stopper.reason
    return None, None


def as_rows(monitor: str, values: list[float]) -> list[dict[str, float]]:
    return [{monitor: value} for value in values]


# (settings, monitored values, expected stop epoch, expected reason, expected best epoch)
MONITOR_CASES = [
    pytest.param({"patience": 3}, [1.0, 0.9, 0.95, 0.96, 0.97], 5, StopReason.NO_IMPROVEMENT, 2, id="patience-3"),
    pytest.param({"patience": 0}, [1.0, 1.1], 2, StopReason.NO_IMPROVEMENT, 1, id="patience-0"),
    pytest.param({"patience": 2}, [1.0, 0.9, 0.8, 0.7], None, None, 4, id="always-improving"),
    pytest.param({"patience": 2}, [1.0, 1.0, 1.0], 3, StopReason.NO_IMPROVEMENT, 1, id="equal-is-no-improvement"),
    pytest.param({"patience": 2}, [1.0, 1.1, 0.9, 1.2, 1.3], 5, StopReason.NO_IMPROVEMENT, 3, id="late-improvement-resets"),
    # min_delta: a change of exactly min_delta is no improvement (values exact in binary).
    pytest.param(
        {"patience": 1, "min_delta": 0.25}, [1.0, 0.75], 2, StopReason.NO_IMPROVEMENT, 1, id="min-delta-boundary-min"
    ),
    pytest.param(
        {"patience": 1, "min_delta": 0.25}, [1.0, 0.7421875, 0.25], None, None, 3, id="min-delta-just-beyond-min"
    ),
    pytest.param(
        {"patience": 1, "min_delta": 0.25, "mode": "max"},
        [0.5, 0.75],
        2,
        StopReason.NO_IMPROVEMENT,
        1,
        id="min-delta-boundary-max",
    ),
    pytest.param(
        {"patience": 1, "min_delta": 0.25, "mode": "max"}, [0.5, 0.7578125], None, None, 2, id="min-delta-beyond-max"
    ),
    # Modes.
    pytest.param({"patience": 2, "mode": "max"}, [0.5, 0.6, 0.55, 0.58], 4, StopReason.NO_IMPROVEMENT, 2, id="max"),
    pytest.param({"patience": 2, "mode": "min"}, [0.5, 0.6, 0.55, 0.58], 3, StopReason.NO_IMPROVEMENT, 1, id="min"),
    # Baseline: improvements that do not beat it leave the patience count running.
    pytest.param(
        {"patience": 3, "baseline": 0.5}, [1.0, 0.9, 0.8, 0.7], 3, StopReason.BASELINE_NOT_REACHED, 3, id="baseline-never"
    ),
    pytest.param(
        {"patience": 3, "baseline": 0.5}, [1.0, 0.9, 0.45, 0.44, 0.43], None, None, 5, id="baseline-reached-in-time"
    ),
    pytest.param(
        {"patience": 3, "baseline": 0.5},
        [1.0, 0.4, 0.45, 0.46, 0.47],
        5,
        StopReason.NO_IMPROVEMENT,
        2,
        id="baseline-reached-then-plateau",
    ),
    pytest.param(
        {"patience": 1, "baseline": 0.5, "min_delta": 0.25},
        [0.25],
        1,
        StopReason.BASELINE_NOT_REACHED,
        1,
        id="baseline-uses-min-delta",
    ),
    pytest.param(
        {"patience": 2, "baseline": 0.5, "mode": "max"},
        [0.1, 0.3, 0.45],
        2,
        StopReason.BASELINE_NOT_REACHED,
        2,
        id="baseline-max",
    ),
    # Warm-up: epochs 1..start_from_epoch record no best and count toward no patience.
    pytest.param({"patience": 1}, [0.1, 0.2, 1.0, 1.1], 2, StopReason.NO_IMPROVEMENT, 1, id="no-warm-up"),
    pytest.param(
        {"patience": 1, "start_from_epoch": 2}, [0.1, 0.2, 1.0, 1.1], 4, StopReason.NO_IMPROVEMENT, 3, id="warm-up-2"
    ),
    pytest.param({"patience": 0, "start_from_epoch": 3}, [5.0, 6.0, 7.0], None, None, None, id="warm-up-only"),
    # check_finite.
    pytest.param({"patience": 5}, [1.0, NAN], 2, StopReason.NON_FINITE, 1, id="nan"),
    pytest.param({"patience": 5}, [1.0, INF], 2, StopReason.NON_FINITE, 1, id="inf"),
    pytest.param({"patience": 5, "mode": "max"}, [1.0, -INF], 2, StopReason.NON_FINITE, 1, id="minus-inf"),
    pytest.param({"patience": 5, "start_from_epoch": 4}, [NAN], 1, StopReason.NON_FINITE, None, id="nan-in-warm-up"),
    pytest.param(
        {"patience": 2, "check_finite": False}, [1.0, NAN, NAN], 3, StopReason.NO_IMPROVEMENT, 1, id="nan-unchecked"
    ),
    pytest.param({"patience": 2, "check_finite": False}, [NAN, 1.0], None, None, 2, id="nan-first-unchecked"),
    pytest.param(
        {"patience": 1, "check_finite": False}, [NAN, 1.0], 1, StopReason.NO_IMPROVEMENT, None, id="nan-first-patience-1"
    ),
]


@pytest.mark.parametrize(("settings", "values", "stop_epoch", "reason", "best_epoch"), MONITOR_CASES)
def test_stop_epoch_table(settings, values, stop_epoch, reason, best_epoch):
    stopper = EarlyStopping(monitor="score", **settings)

    assert run_sequence(stopper, as_rows("score", values)) == (stop_epoch, reason)
    assert stopper.best_epoch == best_epoch
    assert stopper.stopped_epoch == stop_epoch


def gap_rows(gaps: list[float]) -> list[dict[str, float]]:
    # The loss keeps improving, so only the gap can stop training.
    return [
        {"val_loss": 1.0 - 0.01 * epoch, "train_acc": 0.5 + gap, "val_acc": 0.5}
        for epoch, gap in enumerate(gaps, start=1)
    ]


# (settings, gaps, expected stop epoch, expected reason)
GAP_CASES = [
    pytest.param({"patience": 3, "max_gap": 0.1}, [0.05, 0.2, 0.2, 0.2], 4, StopReason.GAP_TOO_LARGE, id="three-above"),
    pytest.param({"patience": 3, "max_gap": 0.1}, [0.2, 0.2, 0.05, 0.2, 0.2], None, None, id="interrupted"),
    pytest.param({"patience": 2, "max_gap": 0.125}, [0.125, 0.125, 0.125], None, None, id="equal-is-not-above"),
    pytest.param({"patience": 0, "max_gap": 0.1}, [0.05, 0.2], 2, StopReason.GAP_TOO_LARGE, id="patience-0"),
    pytest.param(
        {"patience": 1, "max_gap": 0.1, "start_from_epoch": 2}, [0.3, 0.3, 0.3], 3, StopReason.GAP_TOO_LARGE, id="warm-up"
    ),
    pytest.param({"patience": 1}, [0.9, 0.9, 0.9], None, None, id="off-by-default"),
]


@pytest.mark.parametrize(("settings", "gaps", "stop_epoch", "reason"), GAP_CASES)
def test_max_gap_table(settings, gaps, stop_epoch, reason):
    stopper = EarlyStopping(**settings)

    assert run_sequence(stopper, gap_rows(gaps)) == (stop_epoch, reason)


def test_max_gap_prefers_gap_metric():
    stopper = EarlyStopping(patience=1, max_gap=0.1)
    rows = [{"val_loss": 1.0 - 0.1 * epoch, "train_acc": 0.9, "val_acc": 0.5, "gap": 0.0} for epoch in range(1, 5)]

    assert run_sequence(stopper, rows) == (None, None)


@pytest.mark.parametrize(
    ("monitor", "expected"),
    [
        ("val_loss", "min"),
        ("train_loss", "min"),
        ("gap", "min"),
        ("val_acc", "max"),
        ("train_acc", "max"),
        ("val_accuracy", "max"),
        ("val_auc", "max"),
        ("val_AUC", "max"),
        ("val_f1", "max"),
    ],
)
def test_auto_mode(monitor, expected):
    assert resolve_mode(monitor, "auto") == expected
    assert EarlyStopping(monitor=monitor).mode == expected


def test_auto_mode_max_for_accuracy():
    stopper = EarlyStopping(monitor="val_acc", patience=2)

    assert run_sequence(stopper, as_rows("val_acc", [0.5, 0.6, 0.55, 0.58])) == (4, StopReason.NO_IMPROVEMENT)
    assert stopper.best_score == 0.6


def test_tensor_metrics_accepted():
    stopper = EarlyStopping(patience=1)

    assert not stopper.step(1, {"val_loss": torch.tensor(0.5)})
    assert stopper.step(2, {"val_loss": torch.tensor(0.75)})
    assert stopper.best_score == 0.5


def test_wait_counts_epochs_since_best():
    stopper = EarlyStopping(patience=10)
    waits = []
    for epoch, loss in enumerate([1.0, 1.1, 1.2, 0.5, 0.6], start=1):
        stopper.step(epoch, {"val_loss": loss})
        waits.append(stopper.wait)

    assert waits == [0, 1, 2, 0, 1]


# Weights: a linear layer whose weight equals the epoch number.


def step_with_weights(stopper: EarlyStopping, model: nn.Linear, losses: list[float]) -> int | None:
    for epoch, loss in enumerate(losses, start=1):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        if stopper.step(epoch, {"val_loss": loss}, model):
            return epoch
    return None


def test_restore_best_weights_after_stop():
    model = nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping(patience=2)

    stop_epoch = step_with_weights(stopper, model, [1.0, 0.8, 0.6, 0.7, 0.9])
    assert stop_epoch == 5
    assert model.weight.item() == 5.0

    stopper.finish(model, reason=StopReason.MAX_EPOCHS)
    assert model.weight.item() == 3.0
    assert stopper.reason is StopReason.NO_IMPROVEMENT


def test_restore_best_weights_at_epoch_limit():
    model = nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping(patience=5)

    assert step_with_weights(stopper, model, [1.0, 0.5, 0.7, 0.8]) is None
    stopper.finish(model, reason=StopReason.MAX_EPOCHS)

    assert model.weight.item() == 2.0
    assert stopper.reason is StopReason.MAX_EPOCHS
    assert stopper.stopped_epoch == 4
    assert stopper.best_epoch == 2


def test_restore_after_non_finite_metric():
    model = nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping(patience=5)

    assert step_with_weights(stopper, model, [1.0, 0.5, NAN]) == 3
    stopper.finish(model)

    assert model.weight.item() == 2.0
    assert stopper.reason is StopReason.NON_FINITE


def test_no_restore_when_disabled():
    model = nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping(patience=1, restore_best_weights=False)

    step_with_weights(stopper, model, [1.0, 2.0])
    stopper.finish(model)

    assert model.weight.item() == 2.0
    assert stopper.best_weights is None


def test_best_weights_are_clones_on_same_device():
    model = nn.Linear(2, 2)
    stopper = EarlyStopping()
    stopper.step(1, {"val_loss": 1.0}, model)

    for name, tensor in model.state_dict().items():
        stored = stopper.best_weights[name]
        assert stored.device == tensor.device
        assert stored.data_ptr() != tensor.data_ptr()
        assert torch.equal(stored, tensor)


def test_finish_without_model_warns():
    model = nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping(patience=1)
    step_with_weights(stopper, model, [1.0, 2.0])

    with pytest.warns(UserWarning, match=r"no model was passed; call finish\(model\)"):
        stopper.finish()


def test_finish_warns_when_best_epoch_had_no_model():
    model = nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping(patience=3)
    stopper.step(1, {"val_loss": 1.0}, model)
    stopper.step(2, {"val_loss": 0.5})

    with pytest.warns(UserWarning, match="no weights were stored for the best epoch 2"):
        stopper.finish(model)


# State: reset, state_dict, pickling.

LOSSES = [1.0, 0.9, 0.95, 0.85, 0.86, 0.87, 0.88, 0.89]


def full_run(losses: list[float]) -> tuple[int | None, StopReason | None, int | None, float]:
    model = nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping(patience=3)
    stop_epoch = step_with_weights(stopper, model, losses)
    stopper.finish(model, reason=StopReason.MAX_EPOCHS)
    return stop_epoch, stopper.reason, stopper.best_epoch, model.weight.item()


@pytest.mark.parametrize("resume_after", [1, 2, 3, 4, 5])
def test_state_dict_round_trip_continues(resume_after):
    expected = full_run(LOSSES)
    assert expected == (7, StopReason.NO_IMPROVEMENT, 4, 4.0)

    model = nn.Linear(1, 1, bias=False)
    first = EarlyStopping(patience=3)
    assert step_with_weights(first, model, LOSSES[:resume_after]) is None
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)

    second = EarlyStopping(patience=3)
    second.load_state_dict(torch.load(buffer, weights_only=True))
    stop_epoch = None
    for epoch in range(resume_after + 1, len(LOSSES) + 1):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        if second.step(epoch, {"val_loss": LOSSES[epoch - 1]}, model):
            stop_epoch = epoch
            break
    second.finish(model, reason=StopReason.MAX_EPOCHS)

    assert (stop_epoch, second.reason, second.best_epoch, model.weight.item()) == expected


def test_state_dict_contains_version_and_tensors():
    model = nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping()
    stopper.step(1, {"val_loss": 1.0}, model)
    state = stopper.state_dict()

    assert state["version"] == 1
    assert isinstance(state["best_weights"]["weight"], torch.Tensor)


def test_load_state_dict_rejects_other_version():
    state = EarlyStopping().state_dict()
    state["version"] = 99

    with pytest.raises(ConfigError, match=r"^EarlyStopping: state_dict version must be 1, got 99\.$"):
        EarlyStopping().load_state_dict(state)


def test_load_state_dict_rejects_other_monitor():
    state = EarlyStopping(monitor="val_acc").state_dict()

    with pytest.raises(ConfigError, match="recorded with monitor='val_acc', but this EarlyStopping has monitor='val_loss'"):
        EarlyStopping().load_state_dict(state)


def test_pickle_mid_run_continues():
    stopper = EarlyStopping(patience=3)
    rows = as_rows("val_loss", LOSSES)
    for epoch in range(1, 5):
        stopper.step(epoch, rows[epoch - 1], nn.Linear(1, 1))
    clone = pickle.loads(pickle.dumps(stopper))

    results = []
    for candidate in (stopper, clone):
        stop = next((epoch for epoch in range(5, 9) if candidate.step(epoch, rows[epoch - 1])), None)
        results.append((stop, candidate.reason, candidate.best_epoch, candidate.wait))
    assert results[0] == results[1] == (7, StopReason.NO_IMPROVEMENT, 4, 3)


def test_reset_allows_reuse():
    stopper = EarlyStopping(patience=1)
    assert run_sequence(stopper, as_rows("val_loss", [1.0, 2.0])) == (2, StopReason.NO_IMPROVEMENT)

    stopper.reset()

    assert (stopper.best_epoch, stopper.best_score, stopper.stopped_epoch, stopper.reason) == (None, None, None, None)
    assert stopper.wait == 0
    assert run_sequence(stopper, as_rows("val_loss", [3.0, 2.0, 2.5])) == (3, StopReason.NO_IMPROVEMENT)


def test_evaluate_stopping_is_pure():
    config = StoppingConfig(patience=1)
    state = StoppingState(best_score=1.0, best_epoch=1, last_epoch=1)

    first = evaluate_stopping(state, 2, {"val_loss": 2.0}, config)
    second = evaluate_stopping(state, 2, {"val_loss": 2.0}, config)

    assert first == second
    assert first.should_stop
    assert first.reason is StopReason.NO_IMPROVEMENT
    assert state == StoppingState(best_score=1.0, best_epoch=1, last_epoch=1)


def test_stop_reason_values():
    assert [reason.value for reason in StopReason] == ["patience", "baseline", "non_finite", "gap", "max_epochs"]
    assert str(StopReason.MAX_EPOCHS) == "max_epochs"


# Errors.


def test_missing_metric_lists_available():
    stopper = EarlyStopping(monitor="val_f1")
    message = "EarlyStopping: monitor='val_f1' is not in the metrics; available: train_acc, val_acc, val_loss."

    with pytest.raises(ConfigError) as info:
        stopper.step(1, {"val_loss": 0.5, "val_acc": 0.9, "train_acc": 0.95})
    assert str(info.value) == message


def test_missing_gap_metrics():
    stopper = EarlyStopping(max_gap=0.1)
    message = (
        "EarlyStopping: max_gap needs the metric 'gap' or both 'train_acc' and 'val_acc'; "
        "available: train_acc, val_loss."
    )

    with pytest.raises(ConfigError) as info:
        stopper.step(1, {"val_loss": 0.5, "train_acc": 0.9})
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "minimum"}, "EarlyStopping: mode must be one of 'min', 'max', 'auto', got 'minimum'."),
        ({"patience": -1}, "EarlyStopping: patience must be an int >= 0, got -1."),
        ({"patience": 2.5}, "EarlyStopping: patience must be an int >= 0, got 2.5."),
        ({"min_delta": -0.1}, "EarlyStopping: min_delta must be >= 0 (use 0 to switch it off), got -0.1."),
        ({"start_from_epoch": -1}, "EarlyStopping: start_from_epoch must be an int >= 0, got -1."),
        ({"baseline": NAN}, "EarlyStopping: baseline must be a finite number, got nan."),
        ({"max_gap": "big"}, "EarlyStopping: max_gap must be a finite number, got 'big'."),
        ({"monitor": ""}, "EarlyStopping: monitor must be a non-empty metric name, got ''."),
        ({"check_finite": 1}, "EarlyStopping: check_finite must be True or False, got 1."),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ConfigError) as info:
        EarlyStopping(**kwargs)
    assert str(info.value) == message


def test_config_error_is_value_error():
    with pytest.raises(ValueError):
        EarlyStopping(patience=-1)


@pytest.mark.parametrize("epoch", [0, -1])
def test_epoch_must_be_positive(epoch):
    with pytest.raises(ConfigError, match=rf"^EarlyStopping: epoch must be an int >= 1, got {epoch}\.$"):
        EarlyStopping().step(epoch, {"val_loss": 1.0})


def test_epoch_must_increase():
    stopper = EarlyStopping()
    stopper.step(3, {"val_loss": 1.0})

    with pytest.raises(ConfigError, match="epoch must be greater than the previous epoch 3, got 3"):
        stopper.step(3, {"val_loss": 1.0})


def test_non_numeric_metric():
    with pytest.raises(ConfigError, match="the metric 'val_loss' must be a number or a 0-d tensor, got 'low'"):
        EarlyStopping().step(1, {"val_loss": "low"})


def test_settings_are_read_only():
    stopper = EarlyStopping(patience=4)

    with pytest.raises(AttributeError):
        stopper.patience = 5
    assert stopper.patience == 4


def test_repr_shows_resolved_mode():
    assert repr(EarlyStopping(monitor="val_acc", patience=3)) == (
        "EarlyStopping(monitor='val_acc', mode='max', patience=3, min_delta=0.0, baseline=None, "
        "start_from_epoch=0, restore_best_weights=True, check_finite=True, max_gap=None)"
    )
