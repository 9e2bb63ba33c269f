"""The batched engine: equivalence with one-at-a-time training, dropout masks, results.

Strategy: the engine must give each member the run that it would get alone. Two references
check that. :func:`reglab.training.fit.fit` is the first: with one seed per batch the
engine reproduces fit's minibatch order, initialization, dropout masks and augmentation, so
histories and weights agree to float32 rounding. A plain float64 loop written here with
``torch.optim.SGD`` and reglab's penalties is the second, for members with different seeds.
In float64 the agreement is much tighter.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch
import torch.nn.functional as F

from reglab.data import iterate_minibatches, load_dataset, make_split
from reglab.early_stopping import EarlyStopping, StopReason
from reglab.errors import ConfigError, SealedTestSetError
from reglab.nn.masks import keep_mask
from reglab.nn.models import build_model, parse_model_spec
from reglab.penalties import L1, L2
from reglab.training.batched import BatchedMLP, MemberSettings, draw_keep_masks
from reglab.training.config import (
    DropoutSettings,
    EarlyStoppingSettings,
    OptimizerSettings,
    RunConfig,
    StrategyConfig,
)
from reglab.training.diagnostics import layer_stats
from reglab.training.fit import TrainingError, fit
from reglab.training.fit_batched import (
    MAX_BATCH_MEMBERS,
    _LastNormalized,
    batch_chunks,
    batching_problem,
    fit_batched,
    members_per_call,
)

MODEL = "mlp:24,16"


@pytest.fixture(autouse=True)
def one_thread():
    """Run on one thread: on a loaded 2-core machine, two OpenMP threads slow small ops a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _config(strategy: str, regularization: StrategyConfig, *, seed: int = 3, epochs: int = 5) -> RunConfig:
    return RunConfig(
        dataset="digits",
        model=MODEL,
        strategy=strategy,
        regularization=regularization,
        epochs=epochs,
        seed=seed,
        batch_size=64,
        optimizer=OptimizerSettings(lr=0.05, momentum=0.9),
    )


def _max_weight_difference(a, b) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def _max_history_difference(a, b) -> float:
    keys = ("train_loss", "train_acc", "val_loss", "val_acc")
    return max(abs(row_a[key] - row_b[key]) for row_a, row_b in zip(a, b) for key in keys)


# Equivalence with fit().

STRATEGIES = {
    "baseline": StrategyConfig(),
    "l2": StrategyConfig(l2=1e-3),
    "l1-own-lr": StrategyConfig(l1=1e-4, lr=0.02),
    "dropout": StrategyConfig(dropout=DropoutSettings(p=0.3, input_p=0.2)),
    "dropout-classic": StrategyConfig(dropout=DropoutSettings(p=0.5, mode="classic")),
    "max-norm": StrategyConfig(max_norm=0.5),
    "augment": StrategyConfig(augment=True),
    "early-stop": StrategyConfig(
        lr=0.1, early_stopping=EarlyStoppingSettings(monitor="val_loss", patience=0)
    ),
    "early-stop-last": StrategyConfig(
        early_stopping=EarlyStoppingSettings(monitor="val_acc", patience=1, restore_best_weights=False)
    ),
}


def test_fit_batched_matches_fit(digits):
    configs = [_config(name, strategy) for name, strategy in STRATEGIES.items()]
    configs.append(_config("short", StrategyConfig(l2=1e-4), epochs=2))

    expected = [fit(config, make_split(digits, seed=3)) for config in configs]
    results = fit_batched(configs, [make_split(digits, seed=3) for _ in configs])

    assert any(result.stop_reason == StopReason.NO_IMPROVEMENT.value for result in expected)
    for reference, result in zip(expected, results):
        name = reference.config.strategy
        assert len(result.history) == len(reference.history), name
        assert result.best_epoch == reference.best_epoch, name
        assert result.stop_reason == reference.stop_reason, name
        assert _max_history_difference(result.history, reference.history) < 1e-5, name
        assert _max_weight_difference(result.model, reference.model) < 1e-5, name
        assert result.test_metrics["test_acc"] == pytest.approx(reference.test_metrics["test_acc"], abs=1e-5), name
        assert result.final_metrics["val_loss"] == pytest.approx(reference.final_metrics["val_loss"], abs=1e-5)


def test_fit_batched_matches_fit_with_half_dropout(digits):
    # Every member's dropout divisor is a power of two (1 or 0.5), so the engine folds the
    # scale into the mask. The results must still follow fit().
    strategies = {
        "baseline": StrategyConfig(),
        "half": StrategyConfig(dropout=DropoutSettings(p=0.5, input_p=0.5)),
        "half-classic": StrategyConfig(dropout=DropoutSettings(p=0.5, mode="classic")),
    }
    configs = [_config(name, strategy, epochs=2) for name, strategy in strategies.items()]
    expected = [fit(config, make_split(digits, seed=3)) for config in configs]
    results = fit_batched(configs, [make_split(digits, seed=3) for _ in configs])
    for reference, result in zip(expected, results):
        name = reference.config.strategy
        assert _max_history_difference(result.history, reference.history) < 1e-5, name
        assert _max_weight_difference(result.model, reference.model) < 1e-5, name


def test_last_normalized_reuses_same_inputs(digits):
    split, other = make_split(digits, seed=3), make_split(digits, seed=4)
    normalized = _LastNormalized()
    first = normalized(split, split.train.x)
    assert torch.equal(first, split.normalize(split.train.x))
    assert normalized(split, split.train.x) is first
    # A member's copy of the split shares its statistics, so it reuses the result.
    assert normalized(dataclasses.replace(split), split.train.x) is first
    assert torch.equal(normalized(other, split.train.x), other.normalize(split.train.x))
    assert torch.equal(normalized(split, split.val.x), split.normalize(split.val.x))


def test_fit_batched_returns_build_model_networks(digits):
    configs = [_config("dropout", STRATEGIES["dropout"], epochs=1), _config("baseline", StrategyConfig(), epochs=1)]
    results = fit_batched(configs, [make_split(digits, seed=3) for _ in configs])
    for config, result in zip(configs, results):
        dropout = config.regularization.dropout
        expected = build_model(
            MODEL, (64,), 10, input_p=dropout.input_p if dropout else 0.0, hidden_p=dropout.p if dropout else 0.0
        )
        assert [type(m) for m in result.model] == [type(m) for m in expected]
        assert result.timings["batched_members"] == 2


def test_member_result_close_to_batch_of_one(digits):
    # A shared product [B, in] @ [in, K·out] may round differently for different K. A member
    # therefore agrees with a batch of one only up to rounding.
    configs = [_config(name, STRATEGIES[name], epochs=3) for name in ("l2", "dropout", "max-norm")]
    batch = fit_batched(configs, make_split(digits, seed=3), evaluate_test=False)
    for config, in_batch in zip(configs, batch):
        alone = fit_batched([config], make_split(digits, seed=3), evaluate_test=False)[0]
        assert _max_history_difference(alone.history, in_batch.history) < 1e-6, config.strategy
        assert _max_weight_difference(alone.model, in_batch.model) < 1e-6, config.strategy


def test_member_weight_stats_match_layer_stats(digits):
    # The dead-ReLU fractions come from the evaluation of the kept weights' epoch. Early
    # stopping keeps an earlier epoch's weights, and a large learning rate kills units.
    names = ("baseline", "dropout", "dropout-classic", "early-stop", "early-stop-last")
    configs = [_config(name, STRATEGIES[name], epochs=4) for name in names]
    configs.append(_config("dying", StrategyConfig(lr=3.0), epochs=2))
    split = make_split(digits, seed=3)
    results = fit_batched(configs, split, evaluate_test=False, errors="return")

    finished = [result for result in results if not isinstance(result, TrainingError)]
    assert any(result.best_epoch < len(result.history) for result in finished)
    for result in finished:
        expected = layer_stats(result.model, split.normalize(split.train.x))
        assert result.weight_stats == expected, result.config.strategy
        assert [layer["dead_relu"] is None for layer in expected] == [False, False, True]
    assert any(layer["dead_relu"] for result in finished for layer in result.weight_stats)


# Equivalence with a float64 reference loop, members with different seeds.


def _reference_run(config: RunConfig, split, data_seed: int) -> tuple[torch.nn.Module, list[dict], int]:
    """Train one configuration in float64 with torch.optim.SGD, reglab's penalties and EarlyStopping."""
    reg = config.regularization
    torch.manual_seed(config.seed)
    model = build_model(config.model, (64,), 10).double()
    lr = reg.lr if reg.lr is not None else config.optimizer.lr
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=config.optimizer.momentum)
    penalties = [L2(reg.l2), L1(reg.l1)]
    settings = reg.early_stopping
    stopper = EarlyStopping(**settings.model_dump(exclude={"refit"})) if settings else None
    generator = torch.Generator().manual_seed(data_seed)

    history = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        for xb, yb in iterate_minibatches(split.train.x, split.train.y, config.batch_size, shuffle=True, generator=generator):
            loss = F.cross_entropy(model(split.normalize(xb.double())), yb)
            loss = loss + sum(penalty(model) for penalty in penalties)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        row = {"epoch": epoch}
        with torch.no_grad():
            model.eval()
            for part, data in (("train", split.train), ("val", split.val)):
                logits = model(split.normalize(data.x.double()))
                row[f"{part}_loss"] = F.cross_entropy(logits, data.y).item()
                row[f"{part}_acc"] = (logits.argmax(1) == data.y).double().mean().item()
        history.append(row)
        if stopper is not None and stopper.step(epoch, row, model):
            break
    best_epoch = len(history)
    if stopper is not None:
        stopper.finish(model)
        best_epoch = stopper.best_epoch
    return model, history, best_epoch


def test_fit_batched_float64_matches_reference_loop(digits):
    stop_on_loss = EarlyStoppingSettings(monitor="val_loss", patience=0)
    configs = [
        _config("a", StrategyConfig(), seed=0),
        _config("b", StrategyConfig(l2=1e-2, lr=0.1), seed=1),
        _config("c", StrategyConfig(l1=1e-3, lr=0.01, early_stopping=stop_on_loss), seed=2),
        _config("d", StrategyConfig(l2=1e-3, l1=1e-4, lr=0.3, early_stopping=stop_on_loss), seed=3),
    ]
    split = make_split(digits, seed=0)

    results = fit_batched(configs, split, data_seed=11, dtype=torch.float64, evaluate_test=False)

    stopped_early = 0
    for config, result in zip(configs, results):
        model, history, best_epoch = _reference_run(config, split, data_seed=11)
        stopped_early += len(history) < config.epochs
        assert len(result.history) == len(history), config.strategy
        assert result.best_epoch == best_epoch, config.strategy
        assert _max_history_difference(result.history, history) < 1e-10, config.strategy
        assert _max_weight_difference(result.model, model) < 1e-10, config.strategy
    assert stopped_early >= 1


def test_fit_batched_different_seeds_need_data_seed(digits):
    configs = [_config("a", StrategyConfig(), seed=0), _config("b", StrategyConfig(), seed=1)]
    with pytest.raises(ConfigError, match=r"differ in seed \(0, 1\)"):
        fit_batched(configs, make_split(digits, seed=0))


# Dropout masks.


def test_keep_masks_match_keep_mask_stream():
    shape = (64, 24)
    generators = [torch.Generator().manual_seed(seed) for seed in (0, 1)]
    masks = draw_keep_masks(shape, [0.3, 0.0], generators, torch.device("cpu"))
    expected = keep_mask(shape, 0.3, generator=torch.Generator().manual_seed(0))
    assert masks.shape == (2, *shape)
    assert torch.equal(masks[0], expected)
    assert bool(masks[1].all())


def test_keep_masks_keep_rate_per_member():
    probabilities = [0.1, 0.5, 0.8]
    generators = [torch.Generator().manual_seed(seed) for seed in range(3)]
    masks = draw_keep_masks((400, 500), probabilities, generators, torch.device("cpu"))
    for member, p in enumerate(probabilities):
        # 200,000 Bernoulli draws: the standard error of the rate is below 0.0012.
        assert masks[member].float().mean().item() == pytest.approx(1 - p, abs=0.006)


def test_keep_masks_independent_between_elements_and_members():
    generators = [torch.Generator().manual_seed(seed) for seed in (5, 6)]
    masks = draw_keep_masks((500, 400), [0.5, 0.5], generators, torch.device("cpu")).float()
    centred = masks - masks.mean()
    neighbours = (centred[0, :, 1:] * centred[0, :, :-1]).mean() / centred[0].var()
    members = (centred[0] * centred[1]).mean() / centred.var()
    # Correlations over about 200,000 pairs: the standard error is about 0.0022.
    assert abs(neighbours.item()) < 0.012
    assert abs(members.item()) < 0.012


def test_keep_masks_reproducible_from_seed():
    def draw(seeds):
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        return draw_keep_masks((32, 16), [0.5, 0.5], generators, torch.device("cpu"))

    assert torch.equal(draw([1, 2]), draw([1, 2]))
    assert not torch.equal(draw([1, 2]), draw([1, 3]))


def test_draw_keep_masks_rejects_missing_generators():
    with pytest.raises(ValueError, match="got 3 probabilities and 1 generators; pass one generator"):
        draw_keep_masks((4,), [0.5, 0.5, 0.5], [None], torch.device("cpu"))


def test_batched_forward_matches_member_networks():
    spec = parse_model_spec("mlp:8,6")
    settings = [MemberSettings(lr=0.1, hidden_p=0.5, dropout_mode="classic"), MemberSettings(lr=0.1, input_p=0.2)]
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(build_model(spec, (5,), 3))
    engine = BatchedMLP.from_models(spec, (5,), 3, models, settings, [None, None])
    x = torch.randn(7, 5)

    logits = engine.forward(x, training=False)
    for member in range(2):
        network = engine.member(member).eval()
        assert torch.allclose(logits[member], network(x), atol=1e-6)


# Failures, the sealed test set and the batching checks.


def test_fit_batched_returns_nan_member_error(digits):
    configs = [_config("ok", StrategyConfig(), epochs=2), _config("diverges", StrategyConfig(lr=1e30), epochs=2)]
    results = fit_batched(configs, [make_split(digits, seed=3) for _ in configs], errors="return")
    reference = fit(configs[0], make_split(digits, seed=3))

    assert isinstance(results[1], TrainingError)
    assert "strategy 'diverges' (seed 3)" in str(results[1])
    assert _max_history_difference(results[0].history, reference.history) < 1e-5


def test_fit_batched_raises_nan_member_error(digits):
    configs = [_config("ok", StrategyConfig(), epochs=1), _config("diverges", StrategyConfig(lr=1e30), epochs=1)]
    with pytest.raises(TrainingError, match="lower the learning rate"):
        fit_batched(configs, make_split(digits, seed=3))


def test_fit_batched_names_a_large_penalty(digits):
    configs = [_config("ok", StrategyConfig(), epochs=1), _config("heavy", StrategyConfig(l2=1e300), epochs=1)]
    with pytest.raises(TrainingError, match=r"strategy 'heavy'.*penalty strength l2=1e\+300.*lower the strength"):
        fit_batched(configs, make_split(digits, seed=3))


def test_fit_batched_fails_a_member_whose_penalty_overflows(digits, monkeypatch):
    # The penalty is checked once per epoch. A member whose penalty is no longer finite fails
    # with the penalty's value, and the other member finishes as it would alone.
    penalties = BatchedMLP.penalties

    def overflow_second(self):
        values = penalties(self)
        return torch.where(torch.arange(self.size) == self.size - 1, torch.inf, values) if self.size == 2 else values

    monkeypatch.setattr(BatchedMLP, "penalties", overflow_second)
    configs = [_config("ok", StrategyConfig(), epochs=2), _config("overflows", StrategyConfig(l2=1e-3), epochs=2)]
    results = fit_batched(configs, make_split(digits, seed=3), errors="return")

    assert isinstance(results[1], TrainingError)
    assert "became inf in epoch 1 of strategy 'overflows'" in str(results[1])
    reference = fit(configs[0], make_split(digits, seed=3))
    assert _max_history_difference(results[0].history, reference.history) < 1e-5


def test_fit_batched_opens_each_test_set_once(digits):
    configs = [_config(name, StrategyConfig(), epochs=1) for name in ("a", "b")]
    splits = [make_split(digits, seed=3) for _ in configs]
    results = fit_batched(configs, splits)
    for split, result in zip(splits, results):
        assert split.test.n_accesses == 1
        assert len(result.test_accesses) == 1

    shared = make_split(digits, seed=3)
    results = fit_batched(configs, shared)
    assert shared.test.n_accesses == 1
    assert all(len(result.test_accesses) == 1 for result in results)


@pytest.mark.parametrize(
    ("configs", "split", "kwargs", "message"),
    [
        (None, "digits", {}, "split must be a Split or a list of them, got a str"),
        ([{"dataset": "digits"}], None, {}, "configs must be RunConfig objects, got a dict"),
        (None, None, {"dtype": torch.int64}, "dtype must be a floating-point torch.dtype"),
    ],
)
def test_fit_batched_rejects_bad_arguments(digits, configs, split, kwargs, message):
    configs = configs or [_config("a", StrategyConfig(), epochs=1)]
    split = split or make_split(digits, seed=3)
    with pytest.raises(ConfigError, match=re.escape(message)):
        fit_batched(configs, split, **kwargs)


def test_batching_problem_names_the_difference():
    base = _config("a", StrategyConfig())
    assert batching_problem([base, _config("b", StrategyConfig(l2=0.1))]) is None
    other_model = base.model_copy(update={"model": "mlp:8"})
    assert batching_problem([base, other_model]) == "the configurations differ in model (mlp:24,16, mlp:8)"
    adam = base.model_copy(update={"optimizer": OptimizerSettings(name="adam")})
    assert "only 'sgd' is batched" in batching_problem([base, adam])
    refit = _config("r", StrategyConfig(early_stopping=EarlyStoppingSettings(refit=True)))
    assert "refits on training plus validation data" in batching_problem([base, refit])


@pytest.mark.parametrize(
    ("count", "sizes"), [(0, []), (1, [1]), (16, [16]), (17, [9, 8]), (20, [10, 10]), (33, [11, 11, 11])]
)
def test_batch_chunks_are_balanced(count, sizes):
    chunks = batch_chunks(list(range(count)))
    assert [len(chunk) for chunk in chunks] == sizes
    assert [item for chunk in chunks for item in chunk] == list(range(count))


def test_members_per_call_follow_the_weight_size():
    assert members_per_call("mlp:100,50", (1, 28, 28), 10) == MAX_BATCH_MEMBERS
    assert members_per_call("mlp:512,512", (1, 28, 28), 10) == 3
    assert members_per_call("mlp:4096,4096", (1, 28, 28), 10) == 1
    assert members_per_call("cnn:32,64", (1, 28, 28), 10) == 1


# The study runner.


def test_plan_units_chunks_large_batches():
    from reglab.study.runner import plan_units

    configs = [_config(f"l2-{i}", StrategyConfig(l2=i * 1e-4)) for i in range(MAX_BATCH_MEMBERS + 2)]
    configs.append(_config("adam", StrategyConfig()).model_copy(update={"optimizer": OptimizerSettings(name="adam")}))
    units = plan_units(configs, role="study", evaluate_test=True, batched=True)
    assert [len(unit.configs) for unit in units] == [9, 9, 1]
    assert units[-1].configs[0].strategy == "adam"
    assert [len(unit.configs) for unit in plan_units(configs[:7], role="run", evaluate_test=True, batched=True, max_members=3)] == [3, 2, 2]


def test_run_study_batches_one_seed(tiny_spec, tmp_path):
    from reglab.study import RunStore, run_study

    strategies = {**tiny_spec.strategies, "diverges": StrategyConfig(lr=1e30)}
    spec = tiny_spec.model_copy(update={"strategies": strategies, "seeds": [0], "epochs": 2})
    with RunStore(tmp_path / "batched.db") as store:
        batched = run_study(spec, store)
    with RunStore(tmp_path / "single.db") as store:
        single = run_study(spec, store, batched=False)

    assert [failure["strategy"] for failure in batched.failures] == ["diverges"]
    assert "lower the learning rate" in batched.failures[0]["error"]
    assert [run["strategy"] for run in batched.runs] == [run["strategy"] for run in single.runs]
    for run, reference in zip(batched.runs, single.runs):
        assert run["timings"]["batched_members"] == 4
        assert len(run["test_accesses"]) == 1
        assert run["test_metrics"]["test_acc"] == pytest.approx(reference["test_metrics"]["test_acc"], abs=1e-3)
        assert _max_history_difference(run["history"], reference["history"]) < 1e-5


def test_unopened_copy_has_own_access_record(digits):
    split = make_split(digits, seed=0)
    copy = split.test.unopened_copy()
    copy.open("first run")
    assert copy.n_accesses == 1
    assert split.test.n_accesses == 0
    split.test.open("second run")
    with pytest.raises(SealedTestSetError, match="already opened; copy it before the first access"):
        split.test.unopened_copy()
