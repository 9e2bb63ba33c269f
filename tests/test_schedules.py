"""Learning-rate schedules: hand-computed rates, torch's schedulers as ground truth, settings."""

import math

import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR, StepLR

from reglab.data import load_dataset, make_split
from reglab.errors import ConfigError
from reglab.study.spec import StudySpec
from reglab.study.studyfile import schedule_settings
from reglab.training.config import RunConfig, ScheduleSettings, StrategyConfig, validate
from reglab.training.fit import _Trainer
from reglab.training.schedules import build_scheduler

LR = 0.1


def rates(settings, *, epochs, steps_per_epoch):
    """Return the learning rate of each optimizer step of the schedule."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    scheduler = build_scheduler(optimizer, settings, epochs=epochs, steps_per_epoch=steps_per_epoch)
    values = []
    for _ in range(epochs * steps_per_epoch):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


def torch_rates(make_scheduler, steps):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    scheduler = make_scheduler(optimizer)
    values = []
    for _ in range(steps):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


def test_cosine_with_warmup_by_hand():
    settings = ScheduleSettings(name="cosine", warmup_epochs=1)

    values = rates(settings, epochs=2, steps_per_epoch=2)

    # Two warm-up steps reach 1/3 and 2/3 of the rate; cosine over the two remaining steps.
    assert values == pytest.approx([LR / 3, 2 * LR / 3, LR, LR * (1 + math.cos(math.pi / 2)) / 2])


def test_step_by_hand():
    settings = ScheduleSettings(name="step", step_size=1, gamma=0.5)

    values = rates(settings, epochs=3, steps_per_epoch=2)

    assert values == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_step_with_warmup_by_hand():
    settings = ScheduleSettings(name="step", step_size=1, gamma=0.5, warmup_epochs=1)

    values = rates(settings, epochs=3, steps_per_epoch=1)

    assert values == pytest.approx([0.05, 0.1, 0.05])


@pytest.mark.parametrize("steps_per_epoch", [1, 3, 7])
def test_cosine_matches_torch(steps_per_epoch):
    epochs = 5
    steps = epochs * steps_per_epoch

    ours = rates(ScheduleSettings(name="cosine"), epochs=epochs, steps_per_epoch=steps_per_epoch)
    reference = torch_rates(lambda opt: CosineAnnealingLR(opt, T_max=steps), steps)

    assert ours == pytest.approx(reference, rel=1e-9, abs=1e-12)


def test_step_matches_torch():
    ours = rates(ScheduleSettings(name="step", step_size=2, gamma=0.3), epochs=7, steps_per_epoch=3)
    reference = torch_rates(lambda opt: StepLR(opt, step_size=6, gamma=0.3), 21)

    assert ours == pytest.approx(reference, rel=1e-9)


@pytest.mark.parametrize("steps", [1, 2, 3, 10, 57])
def test_one_cycle_matches_torch(steps):
    ours = rates(ScheduleSettings(name="one-cycle"), epochs=steps, steps_per_epoch=1)
    reference = torch_rates(lambda opt: OneCycleLR(opt, max_lr=LR, total_steps=steps, cycle_momentum=False), steps)

    assert ours == pytest.approx(reference, rel=1e-9)


def test_one_cycle_after_warmup_matches_torch():
    ours = rates(ScheduleSettings(name="one-cycle", warmup_epochs=2), epochs=6, steps_per_epoch=4)
    reference = torch_rates(lambda opt: OneCycleLR(opt, max_lr=LR, total_steps=16, cycle_momentum=False), 16)

    assert ours[:8] == pytest.approx([LR * (t + 1) / 9 for t in range(8)])
    assert ours[8:] == pytest.approx(reference, rel=1e-9)


def test_fit_steps_the_schedule_per_minibatch():
    split = make_split(load_dataset("digits"), seed=0)
    schedule = {"name": "cosine", "warmup_epochs": 1}
    config = RunConfig(dataset="digits", model="mlp:16", epochs=3, batch_size=256, optimizer={"lr": LR, "schedule": schedule})
    trainer = _Trainer(config, split, torch.device("cpu"))
    steps_per_epoch = math.ceil(len(split.train.x) / 256)

    trainer.train_epoch(split.train.x, split.train.y, 1)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(LR)

    trainer.train_epoch(split.train.x, split.train.y, 2)
    expected = LR * (1 + math.cos(math.pi * steps_per_epoch / (2 * steps_per_epoch))) / 2
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(expected)


def test_strategy_schedule_overrides_optimizer_schedule():
    config = RunConfig(
        optimizer={"schedule": {"name": "step"}},
        regularization=StrategyConfig(schedule=ScheduleSettings(name="cosine")),
    )

    assert config.schedule.name == "cosine"
    assert RunConfig(optimizer={"schedule": {"name": "step"}}).schedule.name == "step"
    assert RunConfig().schedule is None


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"name": "linear"}, "optimizer.schedule.name: Input should be 'cosine', 'step' or 'one-cycle', got 'linear'"),
        ({"warmup_epochs": -1}, "optimizer.schedule.warmup_epochs: Input should be greater than or equal to 0, got -1"),
        ({"name": "step", "step_size": 0}, "optimizer.schedule.step_size: Input should be greater than or equal to 1, got 0"),
        ({"name": "step", "gamma": 0}, "optimizer.schedule.gamma: Input should be greater than 0, got 0"),
        ({"name": "step", "gamma": 1.5}, "optimizer.schedule.gamma: Input should be less than or equal to 1, got 1.5"),
        ({"warmup_epochs": 3}, "optimizer.schedule.warmup_epochs: must be less than epochs (3)"),
    ],
)
def test_invalid_schedule_names_the_key(schedule, message):
    with pytest.raises(ConfigError) as error:
        validate(RunConfig, {"epochs": 3, "optimizer": {"schedule": schedule}})

    assert message in str(error.value)


def test_warmup_longer_than_search_is_rejected():
    data = {"name": "s", "epochs": 4, "strategies": {"cosine": {"schedule": {"name": "cosine", "warmup_epochs": 2}}}}

    with pytest.raises(ConfigError) as error:
        validate(StudySpec, data)

    assert "strategies.cosine.schedule.warmup_epochs: must be less than the learning-rate search's epochs (2)" in str(
        error.value
    )
    assert "raise lr_search_epochs" in str(error.value)
    assert validate(StudySpec, {**data, "lr_search_epochs": 3}).search_epochs == 3


def test_warmup_without_schedule_is_rejected():
    with pytest.raises(ConfigError, match="--warmup-epochs needs a schedule"):
        schedule_settings("none", 2)

    assert schedule_settings("none", 0) == {}
    assert schedule_settings("cosine", 2) == {"schedule": {"name": "cosine", "warmup_epochs": 2}}
