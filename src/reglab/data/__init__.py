"""Data sets held in memory, the stratified three-way split and the sealed test set.

Example::

    >>> from reglab.data import load_dataset, make_split
    >>> split = make_split(load_dataset("mnist-5k"), seed=0)
    >>> test = split.test.open("final evaluation")
"""

from __future__ import annotations

# The loader modules register their data sets when imported.
from reglab.data import builtin, mnist, user  # noqa: F401
from reglab.data.batching import iterate_minibatches
from reglab.data.dataset import Dataset
from reglab.data.idx import read_idx
from reglab.data.registry import available_datasets, load_dataset, register_dataset
from reglab.data.sealed import SealedTestSet, TensorPair
from reglab.data.split import Split, make_split

__all__ = [
    "Dataset",
    "SealedTestSet",
    "Split",
    "TensorPair",
    "available_datasets",
    "iterate_minibatches",
    "load_dataset",
    "make_split",
    "read_idx",
    "register_dataset",
]
