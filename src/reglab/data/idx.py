"""A reader for the IDX files that MNIST and Fashion-MNIST are distributed in.

An IDX file is a 4-byte magic number (two zero bytes, a type code and the number of
dimensions), one big-endian uint32 per dimension, then the values in C order, big-endian.
The format is described at http://yann.lecun.com/exdb/mnist/ (section "File formats").
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from reglab.errors import DataError

# Type code (third byte of the magic number) -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"
_REMEDY = "Delete the file and download it again, or reinstall the package that provides it."


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not, into a numpy array.

    Compression is detected from the file's first bytes, not from its name.

    Args:
        path: the file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
        A writable array in native byte order, shaped as the header declares, e.g.
        ``uint8`` of shape ``(60000, 28, 28)`` for Fashion-MNIST's training images.

    Raises:
        DataError: the file is missing, is not valid gzip, was cut short, or its header
            does not match its contents (magic number, type code or size).

    Example::

        >>> images = read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
        >>> images.shape, images.dtype
        ((10000, 28, 28), dtype('uint8'))
    """
    path = Path(path)
    content = _read_bytes(path)

    if len(content) < 4:
        raise DataError(
            f"IDX file {path} is too short ({len(content)} bytes) to hold the 4-byte magic "
            f"number. {_REMEDY}"
        )
    if content[0] != 0 or content[1] != 0:
        raise DataError(
            f"IDX file {path} has the magic number 0x{content[:4].hex()}, expected two zero bytes, "
            f"a type code and the number of dimensions (e.g. 0x00000803 for images). {_REMEDY}"
        )

    type_code, ndim = content[2], content[3]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02X}" for code in IDX_DTYPES)
        raise DataError(
            f"IDX file {path} has the type code 0x{type_code:02X}, expected one of {known}. {_REMEDY}"
        )
    if ndim == 0:
        raise DataError(f"IDX file {path} declares 0 dimensions, expected at least 1. {_REMEDY}")

    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DataError(
            f"IDX file {path} ends inside its header: {ndim} dimensions need {header_size} bytes, "
            f"the file has {len(content)}. {_REMEDY}"
        )
    dims = tuple(int(d) for d in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))

    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(content) - header_size
    if actual != expected:
        shape = " x ".join(str(d) for d in dims)
        raise DataError(
            f"IDX file {path} declares {shape} values of {dtype.itemsize} byte(s) "
            f"({expected:,} bytes) but contains {actual:,} bytes after the header. {_REMEDY}"
        )

    values = np.frombuffer(content, dtype=dtype, offset=header_size).reshape(dims)
    # The copy makes the array writable (torch.from_numpy warns on read-only arrays) and
    # converts multi-byte types to native byte order.
    return values.astype(dtype.newbyteorder("="), copy=True)


def _read_bytes(path: Path) -> bytes:
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"IDX file {path} not found.") from None
    except OSError as error:
        raise DataError(f"IDX file {path} could not be read: {error}.") from error

    if not content.startswith(_GZIP_MAGIC):
        return content
    try:
        return gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"IDX file {path} is a corrupt or truncated gzip file ({error}). {_REMEDY}"
        ) from error
