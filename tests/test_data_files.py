"""The IDX reader and the MNIST / Fashion-MNIST loaders: lookup, errors and download.

Every file here is written by the test into ``tmp_path``. The download test serves those
files from an ``http.server`` on 127.0.0.1 and points torchvision's mirrors at it, so no
test reaches the internet. Tests that read the real Fashion-MNIST need the Debian package
``dataset-fashion-mnist`` and are skipped without it.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from reglab.data import load_dataset, make_split, mnist, read_idx
from reglab.errors import DataError

SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not (SYSTEM_FASHION / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="needs the Debian package dataset-fashion-mnist",
)


def write_idx(path: Path, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write ``array`` (uint8 or big-endian) as an IDX file, gzip-compressed if the name ends in .gz."""
    codes = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
    code = codes[array.dtype.str[1:]]
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def fake_idx_set(directory: Path, *, n_train: int = 30, n_test: int = 10, gz: bool = True, seed: int = 0) -> dict:
    """Write four small MNIST-style IDX files into ``directory`` and return their arrays."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    suffix = ".gz" if gz else ""
    for stem, array in arrays.items():
        write_idx(directory / f"{stem}{suffix}", array)
    return arrays


@pytest.fixture
def isolated_lookup(tmp_path, monkeypatch):
    """Make the lookup independent of this machine: no REGLAB_DATA, empty system directories."""
    monkeypatch.delenv("REGLAB_DATA", raising=False)
    system = {name: tmp_path / "system" / name for name in mnist.SYSTEM_DIRS}
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", system)
    return system


# IDX reader


@pytest.mark.parametrize("name", ["values.idx", "values.idx.gz"])
def test_read_idx_round_trip(tmp_path, name):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    result = read_idx(write_idx(tmp_path / name, images))
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, images)
    assert result.flags.writeable


def test_read_idx_multibyte_types(tmp_path):
    values = np.array([[1.5, -2.0], [3.25, 1e10]], dtype=">f8")
    result = read_idx(write_idx(tmp_path / "values.idx", values))
    assert result.dtype == np.float64
    assert result.dtype.isnative
    np.testing.assert_array_equal(result, values)

    ints = np.array([-5, 70000], dtype=">i4")
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "ints.idx", ints)), ints)


def test_read_idx_detects_gzip_by_content(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    path = write_idx(tmp_path / "labels-no-suffix", labels, compress=True)
    np.testing.assert_array_equal(read_idx(path), labels)


def test_read_idx_wrong_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x12\x34\x08\x01" + np.array([3], dtype=">u4").tobytes() + b"abc")
    with pytest.raises(DataError, match="magic number 0x12340801") as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert "Delete the file and download it again" in str(info.value)


def test_read_idx_unknown_type_code(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x00\x00\x07\x01" + np.array([3], dtype=">u4").tobytes() + b"abc")
    with pytest.raises(DataError, match="type code 0x07, expected one of 0x08") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_size_mismatch(tmp_path):
    path = tmp_path / "short.idx"
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    write_idx(path, images)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert "declares 4 x 28 x 28 values of 1 byte(s) (3,136 bytes) but contains 3,036 bytes" in message


def test_read_idx_header_cut_short(tmp_path):
    path = tmp_path / "header.idx"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(DataError, match="ends inside its header"):
        read_idx(path)


def test_read_idx_truncated_gzip(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / "images.gz", noise)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError, match="corrupt or truncated gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert "download it again" in str(info.value)


def test_read_idx_corrupt_gzip_bytes(tmp_path):
    path = write_idx(tmp_path / "images.gz", np.arange(5000, dtype=np.uint8).reshape(50, 100) % 7)
    content = bytearray(path.read_bytes())
    content[20:40] = b"\xff" * 20
    path.write_bytes(bytes(content))
    with pytest.raises(DataError, match="corrupt or truncated gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "absent.idx")


# Lookup


def test_fashion_from_data_dir(tmp_path, isolated_lookup):
    arrays = fake_idx_set(tmp_path / "data")
    data = load_dataset("fashion-mnist", data_dir=tmp_path / "data")
    assert data.source == str(tmp_path / "data")
    assert data.x_train.shape == (30, 1, 28, 28)
    assert data.x_test.shape == (10, 1, 28, 28)
    assert data.x_train.dtype == torch.float32
    expected = torch.from_numpy(arrays["train-images-idx3-ubyte"]).float().unsqueeze(1) / 255
    torch.testing.assert_close(data.x_train, expected, rtol=0, atol=0)
    assert data.y_test.tolist() == list(range(10))
    assert data.classes[0] == "T-shirt/top"
    assert data.num_classes == 10


def test_torchvision_layout_uncompressed(tmp_path, isolated_lookup):
    fake_idx_set(tmp_path / "root" / "MNIST" / "raw", gz=False)
    data = load_dataset("mnist", data_dir=tmp_path / "root")
    assert data.source == str(tmp_path / "root" / "MNIST" / "raw")
    assert data.classes == tuple(str(d) for d in range(10))


def test_named_subdirectory_of_env_dir(tmp_path, isolated_lookup, monkeypatch):
    fake_idx_set(tmp_path / "shared" / "fashion-mnist")
    monkeypatch.setenv("REGLAB_DATA", str(tmp_path / "shared"))
    data = load_dataset("fashion-mnist")
    assert data.source == str(tmp_path / "shared" / "fashion-mnist")


def test_data_dir_before_env(tmp_path, isolated_lookup, monkeypatch):
    fake_idx_set(tmp_path / "first", n_train=20)
    fake_idx_set(tmp_path / "second", n_train=40)
    monkeypatch.setenv("REGLAB_DATA", str(tmp_path / "second"))
    assert len(load_dataset("mnist", data_dir=tmp_path / "first").x_train) == 20
    assert len(load_dataset("mnist").x_train) == 40


def test_system_dir_used_last(tmp_path, isolated_lookup):
    fake_idx_set(isolated_lookup["fashion-mnist"], n_train=20)
    (tmp_path / "empty").mkdir()
    data = load_dataset("fashion-mnist", data_dir=tmp_path / "empty")
    assert data.source == str(isolated_lookup["fashion-mnist"])


def test_fashion_not_found_lists_places(tmp_path, isolated_lookup, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    env_dir = tmp_path / "env"
    monkeypatch.setenv("REGLAB_DATA", str(env_dir))
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", data_dir=empty)
    message = str(info.value)

    for place in (
        empty,
        empty / "fashion-mnist",
        empty / "FashionMNIST" / "raw",
        env_dir,
        env_dir / "fashion-mnist",
        env_dir / "FashionMNIST" / "raw",
        isolated_lookup["fashion-mnist"],
    ):
        assert f"  {place} (" in message
    assert f"  {empty} (none of the files)" in message
    assert f"  {env_dir} (no such directory)" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "--download" in message
    assert "--data-dir DIR" in message
    assert "REGLAB_DATA=DIR" in message


def test_mnist_not_found_has_no_apt_hint(tmp_path, isolated_lookup):
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=tmp_path)
    message = str(info.value)
    assert "REGLAB_DATA is not set" in message
    assert str(isolated_lookup["mnist"]) in message
    assert "apt-get" not in message
    assert "--download" in message


def test_partial_directory_names_missing_file(tmp_path, isolated_lookup):
    fake_idx_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"missing t10k-labels-idx1-ubyte\[\.gz\]\)"):
        load_dataset("fashion-mnist", data_dir=tmp_path)


def test_corrupt_file_is_named(tmp_path, isolated_lookup):
    fake_idx_set(tmp_path)
    target = tmp_path / "train-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-50])
    with pytest.raises(DataError, match="corrupt or truncated gzip") as info:
        load_dataset("fashion-mnist", data_dir=tmp_path)
    assert str(target) in str(info.value)


def test_label_count_mismatch(tmp_path, isolated_lookup):
    fake_idx_set(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(7, dtype=np.uint8))
    with pytest.raises(DataError, match="must contain 10 uint8 labels, one per image"):
        load_dataset("mnist", data_dir=tmp_path)


def test_wrong_image_size(tmp_path, isolated_lookup):
    fake_idx_set(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((10, 32, 32), dtype=np.uint8))
    with pytest.raises(DataError, match=r"uint8 images shaped \(N, 28, 28\), got uint8 values shaped \(10, 32, 32\)"):
        load_dataset("mnist", data_dir=tmp_path)


def test_mnist_files_rejected_as_fashion(tmp_path, isolated_lookup):
    fake_idx_set(tmp_path, n_train=1, n_test=10, gz=False)
    # 60,000 training labels that are not 6,000 per class, as in MNIST.
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((60_000, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", (np.arange(60_000) % 11 % 10).astype(np.uint8))
    with pytest.raises(DataError, match="look like mnist, not fashion-mnist"):
        load_dataset("fashion-mnist", data_dir=tmp_path)


# Download through torchvision, served from 127.0.0.1


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requested: list[str] = []

    def log_message(self, format, *args):  # noqa: A002 - the base class names it so
        pass

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).requested.append(self.path)
        super().do_GET()


@pytest.fixture
def local_mirror(tmp_path, monkeypatch):
    """Serve files from ``tmp_path / "mirror"`` on 127.0.0.1 and point torchvision at it."""
    import torchvision.datasets

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")

    handler = type("Handler", (_QuietHandler,), {"requested": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(mirror)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "mirrors", [url])
    try:
        yield mirror, handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_from_local_mirror(tmp_path, isolated_lookup, local_mirror, monkeypatch):
    import torchvision.datasets

    mirror, handler = local_mirror
    arrays = fake_idx_set(mirror, n_train=40, n_test=20)
    resources = [
        (f"{stem}.gz", hashlib.md5((mirror / f"{stem}.gz").read_bytes()).hexdigest()) for stem in mnist.FILE_NAMES
    ]
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "resources", resources)

    root = tmp_path / "downloads"
    data = load_dataset("fashion-mnist", data_dir=root, download=True)

    raw = root / "FashionMNIST" / "raw"
    assert data.source == str(raw)
    for stem in mnist.FILE_NAMES:
        assert (raw / f"{stem}.gz").is_file()
        assert f"/{stem}.gz" in handler.requested
    assert data.x_train.shape == (40, 1, 28, 28)
    expected = torch.from_numpy(arrays["t10k-images-idx3-ubyte"]).float().unsqueeze(1) / 255
    torch.testing.assert_close(data.x_test, expected, rtol=0, atol=0)

    # A second load finds the files and downloads nothing.
    handler.requested.clear()
    again = load_dataset("fashion-mnist", data_dir=root, download=True)
    assert handler.requested == []
    assert again.source == str(raw)


def test_download_into_env_dir(tmp_path, isolated_lookup, local_mirror, monkeypatch):
    import torchvision.datasets

    mirror, _ = local_mirror
    fake_idx_set(mirror)
    resources = [(f"{stem}.gz", None) for stem in mnist.FILE_NAMES]
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "resources", resources)
    monkeypatch.setenv("REGLAB_DATA", str(tmp_path / "env"))

    data = load_dataset("fashion-mnist", download=True)
    assert data.source == str(tmp_path / "env" / "FashionMNIST" / "raw")


def test_download_failure(tmp_path, isolated_lookup, local_mirror):
    # The mirror is empty, so every request gets a 404.
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", data_dir=tmp_path / "downloads", download=True)
    message = str(info.value)
    assert f"downloading with torchvision into {tmp_path / 'downloads' / 'FashionMNIST' / 'raw'} failed" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "REGLAB_DATA=DIR" in message


# The real Fashion-MNIST from the Debian package


@pytest.fixture(scope="module")
def fashion():
    return load_dataset("fashion-mnist")


@needs_fashion
def test_fashion_shapes(fashion):
    assert fashion.x_train.shape == (60_000, 1, 28, 28)
    assert fashion.x_test.shape == (10_000, 1, 28, 28)
    assert fashion.y_train.dtype == torch.int64
    assert torch.bincount(fashion.y_train).tolist() == [6000] * 10
    assert float(fashion.x_train.min()) == 0.0
    assert float(fashion.x_train.max()) == 1.0
    assert fashion.is_image


@needs_fashion
def test_fashion_split_keeps_official_test(fashion):
    split = make_split(fashion, seed=0)
    expected_x = torch.from_numpy(read_idx(SYSTEM_FASHION / "t10k-images-idx3-ubyte.gz")).float().unsqueeze(1) / 255
    expected_y = torch.from_numpy(read_idx(SYSTEM_FASHION / "t10k-labels-idx1-ubyte.gz")).long()

    test = split.test.open("compare with the t10k file")
    assert len(split.test) == 10_000
    torch.testing.assert_close(test.x, expected_x, rtol=0, atol=0)
    assert torch.equal(test.y, expected_y)
    assert split.indices["test"] == list(range(10_000))
    assert len(split.train.y) == 48_000
    assert len(split.val.y) == 12_000
    assert sorted(split.indices["train"] + split.indices["val"]) == list(range(60_000))
    assert split.describe()["test_source"] == "official"


@needs_fashion
def test_fashion_loads_fast():
    import time

    started = time.perf_counter()
    load_dataset("fashion-mnist")
    # About 0.4 s on a 2-core CI runner; the bound leaves room for a slow disk.
    assert time.perf_counter() - started < 3.0
