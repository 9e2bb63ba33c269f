"""Training options: label smoothing, mixup, random erasing, clipping, decoupled weight decay."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn
from typer.testing import CliRunner

from reglab.cli import app
from reglab.cli.compare import DEFAULT_STRATEGIES
from reglab.data import load_dataset, make_split
from reglab.erasing import RandomErasing
from reglab.errors import ConfigError
from reglab.mixup import mixup_batch
from reglab.study import RunStore
from reglab.study.compare import CompareOptions
from reglab.study.strategies import DEFAULT_STRATEGY_NAMES, builtin_strategies
from reglab.training.config import OptimizerSettings, RunConfig, ScheduleSettings, StrategyConfig, validate
from reglab.training.fit import _Trainer, fit
from reglab.training.fit_batched import batching_problem
from reglab.training.optim import DecoupledWeightDecay, build_optimizer

runner = CliRunner()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def digits_config(regularization, **changes):
    settings = {"dataset": "digits", "model": "mlp:32", "epochs": 1, "batch_size": 64, "seed": 3}
    return RunConfig(**{**settings, **changes}, regularization=regularization)


def config(**regularization):
    return digits_config(regularization)


def trainer_for(digits, cfg):
    torch.manual_seed(cfg.seed)
    return _Trainer(cfg, make_split(digits, seed=cfg.seed), torch.device("cpu"))


# Settings.


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"label_smoothing": 1.0}, "strategies.s.label_smoothing: Input should be less than 1, got 1.0"),
        ({"label_smoothing": -0.1}, "strategies.s.label_smoothing: Input should be greater than or equal to 0"),
        ({"mixup": 0}, "strategies.s.mixup: Input should be greater than 0, got 0"),
        ({"random_erasing": 1.5}, "strategies.s.random_erasing: Input should be less than or equal to 1, got 1.5"),
        ({"random_erasing": 0}, "strategies.s.random_erasing: Input should be greater than 0, got 0"),
        ({"clip_grad_norm": 0}, "strategies.s.clip_grad_norm: Input should be greater than 0, got 0"),
        ({"weight_decay": -1e-3}, "strategies.s.weight_decay: Input should be greater than or equal to 0"),
    ],
)
def test_invalid_option_names_the_key(setting, message):
    with pytest.raises(ConfigError) as error:
        validate(StrategyConfig, setting, "strategies.s")

    assert message in str(error.value)


def test_new_settings_keep_the_default_key():
    plain = RunConfig()
    explicit = RunConfig(regularization=StrategyConfig(label_smoothing=0.0, weight_decay=0.0))

    assert explicit.key() == plain.key()
    assert RunConfig(regularization=StrategyConfig(mixup=0.2)).key() != plain.key()
    assert RunConfig(optimizer=OptimizerSettings(schedule=ScheduleSettings())).key() != plain.key()


def test_describe_lists_the_options():
    strategy = StrategyConfig(
        label_smoothing=0.1,
        mixup=0.2,
        random_erasing=0.5,
        clip_grad_norm=1.0,
        weight_decay=1e-3,
        schedule=ScheduleSettings(name="step", warmup_epochs=2),
    )

    text = strategy.describe()

    assert "random erasing(p=0.5)" in text
    assert "mixup(alpha=0.2)" in text
    assert "label_smoothing=0.1" in text
    assert "decoupled weight_decay=0.001" in text
    assert "clip_grad_norm=1" in text
    assert "lr schedule step(step_size=10, gamma=0.1), 2 warm-up epochs" in text


def test_builtin_option_strategies():
    strategies = builtin_strategies()

    assert strategies["label-smoothing"].label_smoothing == 0.1
    assert strategies["mixup"].mixup == 0.2
    assert strategies["random-erasing"].random_erasing == 0.5
    assert strategies["weight-decay"].weight_decay == 1e-3
    assert strategies["clip"].clip_grad_norm == 1.0
    assert strategies["cosine"].schedule == ScheduleSettings(name="cosine")


def test_default_compare_strategies_unchanged():
    original = ("baseline", "l2", "l1", "dropout", "early-stopping", "augment", "combined")

    assert DEFAULT_STRATEGY_NAMES == original
    assert DEFAULT_STRATEGIES == ",".join(original)
    assert tuple(CompareOptions(dataset="digits", model="mlp:32").to_spec().strategies) == original


@pytest.mark.parametrize(
    ("strategy", "reason"),
    [
        (StrategyConfig(label_smoothing=0.1), "label smoothing"),
        (StrategyConfig(mixup=0.2), "mixup"),
        (StrategyConfig(random_erasing=0.5), "random erasing"),
        (StrategyConfig(clip_grad_norm=1.0), "gradient clipping"),
        (StrategyConfig(weight_decay=1e-3), "decoupled weight decay"),
        (StrategyConfig(schedule=ScheduleSettings()), "a learning-rate schedule"),
    ],
)
def test_batched_engine_declines_options(strategy, reason):
    configs = [config(), RunConfig(**{**config().model_dump(), "strategy": "s", "regularization": strategy.model_dump()})]

    problem = batching_problem(configs)

    assert problem == f"strategy 's' uses {reason}, which the batched engine does not implement"
    assert batching_problem([config()]) is None


# Label smoothing.


def test_label_smoothing_loss_is_smoothed_cross_entropy(digits):
    trainer = trainer_for(digits, config(label_smoothing=0.1))
    x = trainer.split.normalize(trainer.split.train.x[:64])
    y = trainer.split.train.y[:64]

    loss = trainer.step.loss(x, y)

    logits = trainer.model(x)
    assert torch.allclose(loss, F.cross_entropy(logits, y, label_smoothing=0.1))
    assert not torch.allclose(loss, F.cross_entropy(logits, y))


# Mixup.


def test_mixup_mixes_pairs_with_one_lambda():
    n = 16
    x = torch.eye(n)
    y = torch.arange(n)

    batch = mixup_batch(x, y, 0.4, generator=torch.Generator().manual_seed(0))

    assert 0.0 <= batch.lam <= 1.0
    partner = y[batch.y_b]
    expected = batch.lam * x + (1 - batch.lam) * x[partner]
    assert torch.allclose(batch.x, expected)
    assert torch.equal(batch.y_a, y)
    assert sorted(batch.y_b.tolist()) == list(range(n))


def test_mixup_loss_equals_soft_target_cross_entropy():
    x = torch.randn(8, 5)
    y = torch.randint(0, 3, (8,))
    logits = torch.randn(8, 3)

    batch = mixup_batch(x, y, 1.0, generator=torch.Generator().manual_seed(1))

    target = batch.lam * F.one_hot(batch.y_a, 3) + (1 - batch.lam) * F.one_hot(batch.y_b, 3)
    assert torch.allclose(batch.cross_entropy(logits), F.cross_entropy(logits, target.float()))


def test_mixup_is_reproducible_from_a_seed():
    x = torch.randn(32, 4)
    y = torch.arange(32)

    first = mixup_batch(x, y, 0.2, generator=torch.Generator().manual_seed(5))
    second = mixup_batch(x, y, 0.2, generator=torch.Generator().manual_seed(5))
    other = mixup_batch(x, y, 0.2, generator=torch.Generator().manual_seed(6))

    assert first.lam == second.lam
    assert torch.equal(first.x, second.x)
    assert (other.lam, other.y_b.tolist()) != (first.lam, first.y_b.tolist())


@pytest.mark.parametrize(("x_shape", "y_shape"), [((8, 3), (4,)), ((8, 3), (8, 1)), ((), (1,))])
def test_mixup_needs_one_label_per_row(x_shape, y_shape):
    with pytest.raises(ConfigError, match=r"mixup_batch: y must hold one label per row of x, got x of shape"):
        mixup_batch(torch.zeros(x_shape), torch.zeros(y_shape, dtype=torch.long), 0.2)


def test_mixup_lambda_follows_beta():
    generator = torch.Generator().manual_seed(0)
    x = torch.zeros(4, 1)
    y = torch.arange(4)

    lambdas = [mixup_batch(x, y, 0.2, generator=generator).lam for _ in range(2000)]

    assert stats.kstest(lambdas, stats.beta(0.2, 0.2).cdf).pvalue > 0.01
    assert stats.kstest(lambdas, stats.uniform().cdf).pvalue < 1e-6


def test_mixup_rejects_bad_alpha():
    with pytest.raises(ConfigError, match=r"mixup_batch: alpha must be > 0, got 0\."):
        mixup_batch(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long), 0)


# Random erasing.


def erased_rectangles(erased):
    """Return (top, left, h, w) of each image's zero pixels, or None where nothing is zero."""
    boxes = []
    for image in erased[:, 0]:
        zeros = (image == 0).nonzero()
        if len(zeros) == 0:
            boxes.append(None)
            continue
        top, left = zeros.min(0).values.tolist()
        bottom, right = zeros.max(0).values.tolist()
        boxes.append((top, left, bottom - top + 1, right - left + 1, len(zeros)))
    return boxes


def test_random_erasing_statistics():
    height, width = 24, 32
    x = torch.ones(4000, 2, height, width)

    erased = RandomErasing(p=0.3)(x, generator=torch.Generator().manual_seed(0))
    boxes = erased_rectangles(erased)

    fraction = sum(box is not None for box in boxes) / len(boxes)
    assert abs(fraction - 0.3) < 0.03
    # Both channels are erased alike, and only the rectangle changes.
    assert torch.equal(erased[:, 0], erased[:, 1])
    tops, bottoms = [], []
    for box in boxes:
        if box is None:
            continue
        top, left, h, w, count = box
        assert count == h * w
        # Some area in scale * H * W and some ratio h / w in (0.3, 3.3) round to these sides.
        assert (h + 0.5) * (w + 0.5) >= 0.02 * height * width
        assert (h - 0.5) * (w - 0.5) <= 0.33 * height * width
        assert (h + 0.5) / (w - 0.5) >= 0.3
        assert (h - 0.5) / (w + 0.5) <= 3.3
        assert h < height
        assert w < width
        tops.append(top)
        bottoms.append(top + h)
    assert min(tops) == 0
    assert max(bottoms) == height


def test_random_erasing_is_reproducible_from_a_seed():
    x = torch.rand(64, 1, 8, 8)
    erase = RandomErasing(p=0.5, value=-1.0)

    first = erase(x, generator=torch.Generator().manual_seed(3))
    second = erase(x, generator=torch.Generator().manual_seed(3))
    other = erase(x, generator=torch.Generator().manual_seed(4))

    assert torch.equal(first, second)
    assert not torch.equal(first, other)
    assert ((first == -1.0) | (first == x)).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 1.5}, r"RandomErasing: p must be in \[0, 1\], got 1.5\."),
        ({"scale": (0.5, 1.5)}, r"RandomErasing: scale must be \(min, max\) with 0 <= min <= max <= 1"),
        ({"ratio": (0.0, 2.0)}, r"RandomErasing: ratio must be \(min, max\) with 0 < min <= max"),
    ],
)
def test_random_erasing_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RandomErasing(**kwargs)


def test_random_erasing_rejects_feature_vectors():
    moons = load_dataset("moons")
    cfg = RunConfig(dataset="moons", model="mlp:8", epochs=1, strategy="random-erasing", regularization={"random_erasing": 0.5})

    with pytest.raises(ConfigError) as error:
        fit(cfg, make_split(moons, seed=0))

    message = str(error.value)
    assert message.startswith("strategies.random-erasing.random_erasing: random erasing needs images")
    assert "remove random_erasing from strategy 'random-erasing' or choose an image data set" in message


# Gradient clipping.


def gradient_norms(trainer, x, y):
    """Train one epoch and return the global gradient norm at every optimizer step."""
    norms = []
    step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())
        return step(*args, **kwargs)

    trainer.optimizer.step = recording_step
    trainer.train_epoch(x, y, 1)
    return norms


def test_clipping_bounds_the_gradient_norm(digits):
    unclipped = trainer_for(digits, config())
    clipped = trainer_for(digits, config(clip_grad_norm=0.05))
    split = unclipped.split

    free_norms = gradient_norms(unclipped, split.train.x, split.train.y)
    clipped_norms = gradient_norms(clipped, split.train.x, split.train.y)

    assert max(free_norms) > 0.05
    assert max(clipped_norms) <= 0.05 * (1 + 1e-5)


# Decoupled weight decay.


def trained_weights(digits, momentum, **regularization):
    cfg = digits_config(regularization, optimizer={"momentum": momentum, "lr": 0.1})
    return fit(cfg, make_split(digits, seed=3), evaluate_test=False).model.state_dict()


def max_difference(a, b):
    return max((a[name] - b[name]).abs().max().item() for name in a)


def test_decoupled_decay_equals_l2_with_plain_sgd(digits):
    decoupled = trained_weights(digits, 0.0, weight_decay=0.01)
    l2 = trained_weights(digits, 0.0, l2=0.01)
    plain = trained_weights(digits, 0.0)

    assert max_difference(decoupled, l2) < 1e-6
    assert max_difference(decoupled, plain) > 1e-4


def test_decoupled_decay_differs_from_l2_with_momentum(digits):
    decoupled = trained_weights(digits, 0.9, weight_decay=0.01)
    l2 = trained_weights(digits, 0.9, l2=0.01)

    assert max_difference(decoupled, l2) > 1e-4


def test_decoupled_decay_shrinks_weights_only():
    model = nn.Linear(3, 2)
    weight, bias = model.weight.detach().clone(), model.bias.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    DecoupledWeightDecay(model, 0.5)(optimizer)

    assert torch.allclose(model.weight, weight * 0.95)
    assert torch.equal(model.bias, bias)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_decay_goes_through_adamw_groups(name):
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))

    optimizer = build_optimizer(model, OptimizerSettings(name=name, weight_decay=0.5), 0.01, weight_decay=0.02)

    assert isinstance(optimizer, torch.optim.AdamW)
    assert [group["weight_decay"] for group in optimizer.param_groups] == [0.02, 0.0]
    assert all(p.ndim >= 2 for p in optimizer.param_groups[0]["params"])


def test_sgd_uses_fused_kernel_and_matches_default_update():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    reference = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    reference.load_state_dict(model.state_dict())
    optimizer = build_optimizer(model, OptimizerSettings(name="sgd", momentum=0.9), 0.1)
    default = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))

    for net, opt in ((model, optimizer), (reference, default)):
        for _ in range(5):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()

    assert optimizer.defaults["fused"] is True
    for fused_param, param in zip(model.parameters(), reference.parameters()):
        # The fused kernel rounds differently from the default implementation, by about 1e-7.
        assert torch.allclose(fused_param, param, atol=1e-6, rtol=0)


# Reproducibility.


def test_options_same_seed_identical_metrics(digits):
    options = {
        "label_smoothing": 0.1,
        "mixup": 0.3,
        "random_erasing": 0.5,
        "clip_grad_norm": 1.0,
        "weight_decay": 1e-3,
        "augment": True,
    }
    cfg = digits_config(options, epochs=2, seed=1, optimizer={"schedule": {"name": "one-cycle", "warmup_epochs": 1}})

    first = fit(cfg, make_split(digits, seed=1))
    second = fit(cfg, make_split(digits, seed=1))

    def without_time(history):
        return [{key: value for key, value in row.items() if key != "seconds"} for row in history]

    assert without_time(first.history) == without_time(second.history)
    assert first.test_metrics == second.test_metrics
    assert np.isfinite(first.final_metrics["train_loss"])


@pytest.mark.parametrize(
    "options",
    [
        ["--strategy", "mixup", "--schedule", "cosine", "--warmup-epochs", "1"],
        ["--strategy", "random-erasing", "--schedule", "one-cycle"],
        ["--strategy", "weight-decay", "--schedule", "step"],
    ],
)
def test_reproduce_runs_with_options(tmp_path, options):
    common = ["--dataset", "digits", "--model", "mlp:32", "--epochs", "2", "--out", str(tmp_path), "--quiet"]
    trained = runner.invoke(app, ["train", *common, *options])
    assert trained.exit_code == 0, trained.output

    result = runner.invoke(app, ["reproduce", "1", "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert "values identical" in result.output


def test_compare_with_options_end_to_end(tmp_path):
    result = runner.invoke(
        app,
        [
            "compare",
            "--dataset", "digits", "--epochs", "2", "--seeds", "1", "--model", "mlp:32",
            "--strategies", "baseline,mixup,label-smoothing", "--schedule", "cosine",
            "--out", str(tmp_path), "--quiet",
        ],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    for name in ("baseline", "mixup", "label-smoothing"):
        assert name in result.output
    with RunStore(tmp_path / "reglab.db") as store:
        runs = store.find_runs(study="digits_mlp-32")
    finals = [run for run in runs if run["role"] == "run"]
    assert sorted(run["strategy"] for run in finals) == ["baseline", "label-smoothing", "mixup"]
    assert all(run["config"]["optimizer"]["schedule"]["name"] == "cosine" for run in runs)


def test_compare_rejects_warmup_without_schedule(tmp_path):
    result = runner.invoke(app, ["compare", "--dataset", "digits", "--warmup-epochs", "2", "--out", str(tmp_path)])

    assert result.exit_code == 2
    assert "--warmup-epochs needs a schedule" in result.output


# Study files.


def test_study_file_schedule_overrides():
    from reglab.study.studyfile import StudyOverrides, study_spec_from_dict

    data = {"dataset": "digits", "epochs": 4, "lr": 0.05, "optimizer": {"schedule": {"name": "step", "step_size": 2}}}

    assert study_spec_from_dict(data).optimizer.schedule == ScheduleSettings(name="step", step_size=2)
    warmed = study_spec_from_dict(data, StudyOverrides(warmup_epochs=1)).optimizer.schedule
    assert warmed == ScheduleSettings(name="step", step_size=2, warmup_epochs=1)
    replaced = study_spec_from_dict(data, StudyOverrides(schedule="cosine")).optimizer.schedule
    assert replaced == ScheduleSettings(name="cosine")
    assert study_spec_from_dict(data, StudyOverrides(schedule="none")).optimizer.schedule is None
    with pytest.raises(ConfigError, match="--warmup-epochs needs a schedule"):
        study_spec_from_dict({"dataset": "digits"}, StudyOverrides(warmup_epochs=1))


def test_study_file_strategy_options():
    from reglab.study.studyfile import study_spec_from_dict

    data = {"strategies": {"soft": {"builtin": "mixup", "label_smoothing": 0.05}, "bad": {"mixup": -1}}}

    with pytest.raises(ConfigError, match=r"strategies\.bad\.mixup: Input should be greater than 0, got -1"):
        study_spec_from_dict(data)
    del data["strategies"]["bad"]
    soft = study_spec_from_dict(data).strategies["soft"]
    assert (soft.mixup, soft.label_smoothing) == (0.2, 0.05)
