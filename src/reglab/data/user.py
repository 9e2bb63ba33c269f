"""User data from a CSV or NPZ file: ``csv:PATH`` and ``npz:PATH``.

Labels may be integers or strings. Integer labels that are already ``0..K-1`` are kept, and
any other set of labels is mapped to ``0..K-1`` in sorted order, with the original values as
class names.
"""

from __future__ import annotations

import csv
import math
import zipfile
from pathlib import Path

import numpy as np
import torch

from reglab.data.dataset import Dataset
from reglab.data.registry import register_dataset
from reglab.errors import ConfigError, DataError


@register_dataset("csv:")
def load_csv(path: str, *, data_dir: Path | None = None, download: bool = False, delimiter: str = ",") -> Dataset:
    """Load a CSV file of numeric features and one label column.

    The first row is a header when it contains a cell named ``label`` or when a cell other
    than the last is not a number. The label column is the one named ``label`` if the
    header has one, else the last column. Every other column is a feature.

    Args:
        path: the CSV file.
        delimiter: the character between fields.

    Returns:
        A :class:`Dataset` with ``x_train`` of shape ``(rows, features)`` and no official
        test split.

    Raises:
        DataError: the file is missing or empty, a row has the wrong number of fields, or
            a feature is not a finite number.
    """
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ConfigError(f"load_dataset('csv:'): delimiter must be a single character, got {delimiter!r}.")
    file = _existing_file(path, "CSV")
    rows = _read_rows(file, delimiter)

    first_line, first = rows[0]
    names = [cell.lower() for cell in first]
    has_header = "label" in names or not all(_is_number(cell) for cell in first[:-1])
    columns = len(first)
    if columns < 2:
        raise DataError(
            f"CSV file {file} has {columns} column on line {first_line}, expected at least one feature "
            f"column and a label column. If the fields are not separated by {delimiter!r}, pass delimiter=..."
        )
    label_column = names.index("label") if has_header and "label" in names else columns - 1
    column_names = first if has_header else [str(i + 1) for i in range(columns)]
    data_rows = rows[1:] if has_header else rows
    if not data_rows:
        raise DataError(f"CSV file {file} has a header but no data rows.")

    features = np.empty((len(data_rows), columns - 1), dtype=np.float32)
    labels: list[str] = []
    feature_columns = [c for c in range(columns) if c != label_column]
    for row_index, (line, cells) in enumerate(data_rows):
        if len(cells) != columns:
            raise DataError(
                f"CSV file {file}, line {line}: expected {columns} fields like line {first_line}, "
                f"got {len(cells)}. Check for missing or extra separators."
            )
        for feature_index, column in enumerate(feature_columns):
            features[row_index, feature_index] = _parse_feature(file, line, column_names[column], cells[column])
        if not cells[label_column]:
            raise DataError(f"CSV file {file}, line {line}: the label (column {column_names[label_column]!r}) is empty.")
        labels.append(cells[label_column])

    y, _, classes = encode_labels(np.array(labels), None, owner=f"CSV file {file}")
    return Dataset(f"csv:{path}", torch.from_numpy(features), y, None, None, classes, str(file))


@register_dataset("npz:")
def load_npz(path: str, *, data_dir: Path | None = None, download: bool = False) -> Dataset:
    """Load arrays ``x`` and ``y``, and optionally ``x_test``, ``y_test`` and ``classes``.

    ``x`` is tabular when shaped ``(N, F)``, and images when shaped ``(N, H, W)`` or
    ``(N, C, H, W)`` (channels first). 8-bit images are divided by 255; other images must
    already lie in [0, 1]. When ``x_test`` and ``y_test`` are present they are kept as the
    official test split. ``classes``, if present, names the classes, and then ``y`` must
    contain integers in ``[0, len(classes))``.

    Args:
        path: the ``.npz`` file, as written by :func:`numpy.savez`.

    Returns:
        The :class:`Dataset`.

    Raises:
        DataError: the file is missing or not an NPZ archive, an array is missing or has
            the wrong shape or dtype, or only one of ``x_test``/``y_test`` is present.
    """
    file = _existing_file(path, "NPZ")
    arrays = _read_npz(file)
    owner = f"NPZ file {file}"

    missing = [key for key in ("x", "y") if key not in arrays]
    if missing:
        raise DataError(
            f"{owner} is missing the array(s) {', '.join(missing)}; it contains {', '.join(sorted(arrays)) or 'no arrays'}. "
            f"Save it with numpy.savez(path, x=..., y=...) and optionally x_test=..., y_test=..., classes=...."
        )
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{owner} contains only one of x_test and y_test; save both or neither.")
    has_test = "x_test" in arrays

    x_train = _as_inputs(owner, "x", arrays["x"])
    x_test = _as_inputs(owner, "x_test", arrays["x_test"]) if has_test else None
    y_train_raw = _as_label_array(owner, "y", arrays["y"])
    y_test_raw = _as_label_array(owner, "y_test", arrays["y_test"]) if has_test else None

    if "classes" in arrays:
        classes = _named_classes(owner, arrays["classes"])
        for key, values in (("y", y_train_raw), ("y_test", y_test_raw)):
            if values is None:
                continue
            if values.dtype.kind not in "iu":
                got = f"dtype {values.dtype}"
            elif values.min() < 0 or values.max() >= len(classes):
                got = f"values from {values.min()} to {values.max()}"
            else:
                continue
            raise DataError(
                f"{owner}: with {len(classes)} class names, {key} must contain integers in "
                f"[0, {len(classes) - 1}], got {got}."
            )
        y_train = torch.from_numpy(y_train_raw.astype(np.int64))
        y_test = torch.from_numpy(y_test_raw.astype(np.int64)) if y_test_raw is not None else None
    else:
        y_train, y_test, classes = encode_labels(y_train_raw, y_test_raw, owner=owner)

    return Dataset(f"npz:{path}", x_train, y_train, x_test, y_test, classes, str(file))


def encode_labels(
    train: np.ndarray, test: np.ndarray | None, *, owner: str
) -> tuple[torch.Tensor, torch.Tensor | None, tuple[str, ...]]:
    """Map integer or string labels to ``0..K-1``.

    Integer labels that are exactly ``0..K-1`` over train and test together are kept.
    Otherwise the sorted distinct labels become classes ``0..K-1``. Strings that all parse
    as integers (also ``"3.0"``) are treated as integers.

    Args:
        train: the training labels, shape ``(N,)``.
        test: the test labels, or None.
        owner: the file named in error messages.

    Returns:
        ``(y_train, y_test, classes)``: int64 tensors and the class names.

    Raises:
        DataError: the labels are floats with a fractional part.
    """
    parts = [_integer_labels(owner, train)] + ([_integer_labels(owner, test)] if test is not None else [])
    distinct = np.unique(np.concatenate(parts))
    if distinct.dtype.kind in "iu" and np.array_equal(distinct, np.arange(len(distinct))):
        codes = [part.astype(np.int64) for part in parts]
    else:
        codes = [np.searchsorted(distinct, part).astype(np.int64) for part in parts]
    classes = tuple(str(label) for label in distinct)
    y_test = torch.from_numpy(codes[1]) if test is not None else None
    return torch.from_numpy(codes[0]), y_test, classes


def _integer_labels(owner: str, labels: np.ndarray) -> np.ndarray:
    """Return ``labels`` as int64 when they are whole numbers, else as strings."""
    if labels.dtype.kind in "biu":
        return labels.astype(np.int64)
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            example = next(value for value in labels if not math.isfinite(value) or value != round(value))
            raise DataError(
                f"{owner}: labels must be integers or strings, got float values such as {example}. "
                "reglab trains classifiers; a continuous target is not supported."
            )
        return labels.astype(np.int64)

    strings = labels.astype(str)
    try:
        as_float = np.array([float(value) for value in strings])
    except ValueError:
        return strings
    if np.all(np.isfinite(as_float)) and np.all(as_float == np.round(as_float)):
        return as_float.astype(np.int64)
    return strings


def _existing_file(path: str, kind: str) -> Path:
    file = Path(path).expanduser()
    if file.is_dir():
        suffix = ".csv" if kind == "CSV" else ".npz"
        raise DataError(
            f"{kind} path {path!r} is a folder ({file.resolve()}); give the {kind} file itself, for example "
            f"'{kind.lower()}:{Path(path) / ('data' + suffix)}'."
        )
    if not file.is_file():
        raise DataError(
            f"{kind} file {path!r} not found (looked at {file.resolve()}). Check the path after "
            f"'{kind.lower()}:'; relative paths start from the current directory."
        )
    return file.resolve()


def _read_rows(file: Path, delimiter: str) -> list[tuple[int, list[str]]]:
    rows: list[tuple[int, list[str]]] = []
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            for cells in reader:
                cells = [cell.strip() for cell in cells]
                if any(cells):
                    rows.append((reader.line_num, cells))
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"CSV file {file} could not be parsed: {error}. Save it as UTF-8 text.") from error
    if not rows:
        raise DataError(f"CSV file {file} is empty.")
    return rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_feature(file: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        field_text = repr(text) if text else "an empty field"
        raise DataError(
            f"CSV file {file}, line {line}, column {column!r}: features must be finite numbers, "
            f"got {field_text}. Encode categorical features as numbers and fill or drop missing values."
        )
    return value


def _read_npz(file: Path) -> dict[str, np.ndarray]:
    # numpy.load would read any other file as a pickle or a single .npy array.
    if not zipfile.is_zipfile(file):
        raise DataError(
            f"NPZ file {file} is not an NPZ archive (a zip file of .npy arrays). "
            "Write it with numpy.savez(path, x=..., y=...)."
        )
    try:
        with np.load(file, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise DataError(
            f"NPZ file {file} could not be read ({error}). Write it with numpy.savez(path, x=..., y=...)."
        ) from error
    except ValueError as error:
        raise DataError(
            f"NPZ file {file} contains Python objects, which reglab does not load ({error}). "
            "Save numeric or string arrays only."
        ) from error


def _as_inputs(owner: str, key: str, values: np.ndarray) -> torch.Tensor:
    if values.dtype.kind not in "biuf":
        raise DataError(f"{owner}: {key} must be a numeric array, got dtype {values.dtype}.")
    if values.ndim == 3:
        values = values[:, None]
    elif values.ndim == 4 and values.shape[1] > 4 and values.shape[-1] <= 4:
        raise DataError(
            f"{owner}: {key} has shape {values.shape}, which looks channels-last; reglab expects "
            f"images as (N, C, H, W). Save numpy.transpose({key}, (0, 3, 1, 2)) instead."
        )
    elif values.ndim not in (2, 4):
        raise DataError(
            f"{owner}: {key} must be shaped (N, F), (N, H, W) or (N, C, H, W), got shape {values.shape}."
        )

    if values.dtype == np.uint8 and values.ndim == 4:
        return torch.from_numpy(values.astype(np.float32) / 255.0)
    return torch.from_numpy(values.astype(np.float32))


def _as_label_array(owner: str, key: str, values: np.ndarray) -> np.ndarray:
    if values.ndim != 1:
        raise DataError(f"{owner}: {key} must be one label per example, shaped (N,), got shape {values.shape}.")
    if values.dtype.kind not in "biufUS":
        raise DataError(f"{owner}: {key} must contain integers or strings, got dtype {values.dtype}.")
    return values


def _named_classes(owner: str, values: np.ndarray) -> tuple[str, ...]:
    if values.ndim != 1 or len(values) == 0:
        raise DataError(f"{owner}: classes must be a non-empty 1-D array of names, got shape {values.shape}.")
    return tuple(str(value) for value in values)
