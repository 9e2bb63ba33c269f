"""The stratified three-way split and the sealed test set."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reglab.data import Dataset, SealedTestSet, TensorPair, load_dataset, make_split
from reglab.data.split import _allocate
from reglab.errors import ConfigError, DataError, SealedTestSetError


def make_dataset(class_sizes, *, features=3, test_sizes=None, image=False, seed=0):
    """A data set with ``class_sizes[k]`` examples of class k, in random order."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(class_sizes)), class_sizes))
    shape = (len(labels), 2, 4, 4) if image else (len(labels), features)
    x = torch.from_numpy(rng.random(shape, dtype=np.float32))
    x_test = y_test = None
    if test_sizes is not None:
        y_test = torch.from_numpy(np.repeat(np.arange(len(test_sizes)), test_sizes))
        x_test = torch.rand((len(y_test), *shape[1:]))
    classes = [str(k) for k in range(len(class_sizes))]
    return Dataset("toy", x, torch.from_numpy(labels), x_test, y_test, classes, "generated")


def open_test(split):
    return split.test.open("inspect the test set in a test", allow_repeat=True)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# Stratification, coverage and seeding


def test_split_sizes_default_fractions(digits):
    split = make_split(digits, seed=0)
    sizes = split.describe()["sizes"]
    n = len(digits.y_train)
    assert sizes["train"] + sizes["val"] + sizes["test"] == n
    for part, fraction in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        assert abs(sizes[part] - fraction * n) <= 1.5


def test_split_is_stratified(digits):
    split = make_split(digits, seed=3, val_fraction=0.15, test_fraction=0.25)
    class_sizes = torch.bincount(digits.y_train).tolist()
    parts = {"train": split.train.y, "val": split.val.y, "test": open_test(split).y}
    for part, fraction in (("train", 0.6), ("val", 0.15), ("test", 0.25)):
        counts = torch.bincount(parts[part], minlength=10).tolist()
        for label, (count, size) in enumerate(zip(counts, class_sizes)):
            assert abs(count - size * fraction) < 1 + 1e-9, (part, label, count, size * fraction)


def test_split_disjoint_and_covering(digits):
    split = make_split(digits, seed=1)
    train, val, test = (set(split.indices[part]) for part in ("train", "val", "test"))
    assert not train & val
    assert not train & test
    assert not val & test
    assert train | val | test == set(range(len(digits.y_train)))
    assert len(split.indices["train"]) == len(train)


def test_split_tensors_match_indices(digits):
    split = make_split(digits, seed=2)
    train_index = torch.tensor(split.indices["train"])
    test_index = torch.tensor(split.indices["test"])
    assert torch.equal(split.train.x, digits.x_train[train_index])
    assert torch.equal(split.train.y, digits.y_train[train_index])
    test = open_test(split)
    assert torch.equal(test.x, digits.x_train[test_index])
    assert torch.equal(test.y, digits.y_train[test_index])


def test_split_same_seed_same_split(digits):
    first = make_split(digits, seed=7)
    second = make_split(digits, seed=7)
    assert first.indices == second.indices
    assert torch.equal(first.train.x, second.train.x)


def test_split_different_seed_differs(digits):
    first = make_split(digits, seed=7)
    second = make_split(digits, seed=8)
    assert set(first.indices["test"]) != set(second.indices["test"])
    assert first.describe()["sizes"] == second.describe()["sizes"]


def test_official_test_split_kept():
    data = make_dataset([40, 60, 50], test_sizes=[5, 6, 7])
    split = make_split(data, seed=0, val_fraction=0.25, test_fraction=0.4)
    test = open_test(split)
    assert torch.equal(test.x, data.x_test)
    assert torch.equal(test.y, data.y_test)
    assert split.indices["test"] == list(range(18))
    assert len(split.val.y) in (37, 38)
    assert sorted(split.indices["train"] + split.indices["val"]) == list(range(150))
    val_counts = torch.bincount(split.val.y).tolist()
    assert val_counts[:2] == [10, 15]
    assert val_counts[2] in (12, 13)
    description = split.describe()
    assert description["test_fraction"] is None
    assert description["test_source"] == "official"
    assert description["class_counts"]["test"] == {"0": 5, "1": 6, "2": 7}


def test_small_class_gets_one_per_part():
    data = make_dataset([3, 100])
    split = make_split(data, seed=0)
    test = open_test(split)
    for labels in (split.train.y, split.val.y, test.y):
        assert int((labels == 0).sum()) == 1


@pytest.mark.parametrize(
    ("class_sizes", "test_sizes", "message"),
    [
        (
            [50, 50, 50, 50, 50, 50, 50, 2],
            None,
            "make_split: class 7 has 2 examples; a stratified 3-way split needs at least 3. "
            "Remove the class or provide more data.",
        ),
        (
            [50, 1],
            [5, 5],
            "make_split: class 1 has 1 example; a stratified split of the training data into "
            "training and validation needs at least 2. Remove the class or provide more data.",
        ),
    ],
)
def test_too_small_class_raises(class_sizes, test_sizes, message):
    data = make_dataset(class_sizes, test_sizes=test_sizes)
    with pytest.raises(DataError) as info:
        make_split(data, seed=0)
    assert str(info.value) == message


def test_too_small_named_class():
    base = make_dataset([10, 2])
    data = Dataset("toy", base.x_train, base.y_train, None, None, ("cat", "dog"), "generated")
    with pytest.raises(DataError, match=r"class 'dog' \(label 1\) has 2 examples"):
        make_split(data, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": -1}, "make_split: seed must be an int >= 0, got -1."),
        ({"seed": 1.5}, "make_split: seed must be an int >= 0, got 1.5."),
        ({"seed": 0, "val_fraction": 0.0}, "make_split: val_fraction must be in (0, 1), got 0.0."),
        ({"seed": 0, "test_fraction": 1.2}, "make_split: test_fraction must be in (0, 1), got 1.2."),
        (
            {"seed": 0, "val_fraction": 0.5, "test_fraction": 0.5},
            "make_split: val_fraction + test_fraction must be below 1 to leave training data, got 0.5 + 0.5 = 1.",
        ),
    ],
)
def test_split_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError) as info:
        make_split(make_dataset([20, 20]), **kwargs)
    assert str(info.value) == message


@settings(max_examples=60, deadline=None)
@given(
    class_sizes=st.lists(st.integers(3, 400), min_size=1, max_size=12),
    val_fraction=st.floats(0.05, 0.45),
    test_fraction=st.floats(0.05, 0.45),
)
def test_allocation_properties(class_sizes, val_fraction, test_fraction):
    counts = np.array(class_sizes)
    fractions = np.array([test_fraction, val_fraction, 1 - val_fraction - test_fraction])
    allocation = _allocate(counts, fractions)

    assert allocation.sum(axis=1).tolist() == class_sizes
    assert (allocation >= 1).all()
    ideal = counts[:, None] * fractions[None, :]
    # Within one example of the ideal share, except where the one-example minimum applies.
    forced = (ideal < 1).any(axis=1)
    assert (np.abs(allocation - ideal)[~forced] < 1 + 1e-9).all()
    # Part sizes stay near their targets.
    if not forced.any():
        assert (np.abs(allocation.sum(axis=0) - counts.sum() * fractions) < 2).all()


# Normalization statistics


def test_mean_std_from_training_part_only():
    data = make_dataset([30, 30, 30], image=True)
    split = make_split(data, seed=4)
    mean = split.train.x.mean(dim=(0, 2, 3))
    std = split.train.x.std(dim=(0, 2, 3), correction=0)
    torch.testing.assert_close(split.mean, mean)
    torch.testing.assert_close(split.std, std)

    # Changing every example outside the training part leaves the statistics unchanged.
    changed_x = data.x_train.clone()
    held_out = split.indices["val"] + split.indices["test"]
    changed_x[held_out] = 1.0
    changed = Dataset("toy", changed_x, data.y_train, None, None, data.classes, "generated")
    changed_split = make_split(changed, seed=4)
    assert changed_split.indices == split.indices
    torch.testing.assert_close(changed_split.mean, split.mean, rtol=0, atol=0)
    torch.testing.assert_close(changed_split.std, split.std, rtol=0, atol=0)


def test_normalize_images(digits):
    split = make_split(digits, seed=0)
    assert split.mean.shape == (1,)
    normalized = split.normalize(split.train.x)
    assert normalized.shape == split.train.x.shape
    assert abs(float(normalized.mean())) < 1e-4
    assert abs(float(normalized.std(correction=0)) - 1) < 1e-4
    single = split.normalize(split.train.x[0])
    torch.testing.assert_close(single, normalized[0])


def test_normalize_tabular_per_feature():
    data = make_dataset([40, 40], features=4)
    split = make_split(data, seed=0)
    assert split.mean.shape == (4,)
    normalized = split.normalize(split.train.x)
    torch.testing.assert_close(normalized.mean(dim=0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(normalized.std(dim=0, correction=0), torch.ones(4), atol=1e-5, rtol=0)


def test_constant_feature_std_is_one():
    data = make_dataset([20, 20], features=2)
    x = data.x_train.clone()
    x[:, 1] = 5.0
    constant = Dataset("toy", x, data.y_train, None, None, data.classes, "generated")
    split = make_split(constant, seed=0)
    assert float(split.std[1]) == 1.0
    assert torch.isfinite(split.normalize(split.val.x)).all()


# Description and device moves


def test_describe_is_json_ready(digits):
    split = make_split(digits, seed=5)
    description = json.loads(json.dumps(split.describe()))
    assert description["dataset"] == "digits"
    assert description["seed"] == 5
    assert description["val_fraction"] == 0.2
    assert description["test_fraction"] == 0.2
    assert description["test_source"] == "held out"
    for part in ("train", "val", "test"):
        counts = description["class_counts"][part]
        assert list(counts) == list(digits.classes)
        assert sum(counts.values()) == description["sizes"][part]
    assert split.test.n_accesses == 0


def test_split_to_shares_access_record(digits):
    split = make_split(digits, seed=0)
    moved = split.to("meta")
    assert moved.train.x.device.type == "meta"
    assert moved.mean.device.type == "meta"
    assert moved.indices == split.indices
    moved.test.open("final evaluation")
    assert split.test.n_accesses == 1
    with pytest.raises(SealedTestSetError):
        split.test.open("again on the original")


def test_split_properties(digits):
    split = make_split(digits, seed=0)
    assert split.num_classes == 10
    assert split.input_shape == (1, 8, 8)
    assert split.is_image
    assert "tensor" not in repr(split)


# Sealed test set


def make_sealed(seed=3):
    return SealedTestSet(torch.arange(6.0).reshape(3, 2), torch.tensor([0, 1, 1]), seed=seed)


def test_sealed_first_open_returns_data():
    sealed = make_sealed()
    test = sealed.open("final evaluation")
    assert isinstance(test, TensorPair)
    assert torch.equal(test.y, torch.tensor([0, 1, 1]))
    assert sealed.n_accesses == 1
    access = sealed.accesses[0]
    assert access["purpose"] == "final evaluation"
    assert access["repeat"] is False
    assert access["time"].endswith("+00:00")


def test_sealed_second_open_raises():
    sealed = make_sealed(seed=3)
    sealed.open("final evaluation")
    with pytest.raises(SealedTestSetError) as info:
        sealed.open("another look")
    assert str(info.value) == (
        "the test set of split seed=3 was already evaluated for 'final evaluation'; reglab "
        "evaluates it once, after model selection. Pass allow_repeat=True to evaluate it again; "
        "the run records every access."
    )
    assert sealed.n_accesses == 1


def test_sealed_allow_repeat_records_both():
    sealed = make_sealed()
    sealed.open("final evaluation")
    again = sealed.open("ensemble evaluation", allow_repeat=True)
    assert len(again.y) == 3
    assert [a["purpose"] for a in sealed.accesses] == ["final evaluation", "ensemble evaluation"]
    assert [a["repeat"] for a in sealed.accesses] == [False, True]


def test_sealed_accesses_is_a_copy():
    sealed = make_sealed()
    sealed.open("final evaluation")
    sealed.accesses.clear()
    sealed.accesses[0]["purpose"] = "changed"
    assert sealed.accesses[0]["purpose"] == "final evaluation"


def test_sealed_hides_tensors():
    sealed = make_sealed()
    assert len(sealed) == 3
    assert repr(sealed) == "SealedTestSet(split seed=3, 3 examples, 0 access(es))"
    for name in ("x", "y", "data", "targets"):
        assert not hasattr(sealed, name)
    assert sealed.n_accesses == 0


@pytest.mark.parametrize("purpose", ["", "   ", None])
def test_sealed_purpose_required(purpose):
    with pytest.raises(ConfigError, match="purpose must be a non-empty string"):
        make_sealed().open(purpose)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_split_on_cuda_batches_with_cpu_generator(digits):
    from reglab.data import iterate_minibatches

    split = make_split(digits, seed=0).to("cuda")
    generator = torch.Generator().manual_seed(0)
    batches = list(iterate_minibatches(split.train.x, split.train.y, 64, shuffle=True, generator=generator))
    assert batches[0][0].device.type == "cuda"
    assert sum(len(yb) for _, yb in batches) == len(split.train.y)
    normalized = split.normalize(batches[0][0])
    assert normalized.device.type == "cuda"
    assert split.test.open("final evaluation").x.device.type == "cuda"
