"""The ``"ray"`` backend: a study's training calls run as tasks on a Ray cluster.

Each training call of :func:`reglab.study.runner.run_study` (one run, or one seed's
batched runs) becomes one Ray task that needs one CPU, or one GPU when the study trains
on CUDA. The driver, the process that runs the study, puts the data set into Ray's object
store once, submits every unfinished call, and stores each result in the SQLite store as
it arrives. Workers never open the store, and they need no data files. Every node needs
reglab and its dependencies installed, at the same versions as the driver, for the runs
to be reproducible.

Ray is optional: ``pip install 'reglab[ray]'``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import torch

from reglab.data import Dataset
from reglab.errors import ConfigError
from reglab.study.runner import RunFailure, WorkUnit, train_unit
from reglab.training.fit import RunResult

logger = logging.getLogger(__name__)

MISSING_RAY = "the ray backend needs Ray: pip install 'reglab[ray]'"


def import_ray(*, local: bool) -> ModuleType:
    """Import Ray, configured for a local instance when ``local`` is True.

    Before the first import, this sets two of Ray's environment variables unless they are
    already set. ``RAY_USAGE_STATS_ENABLED=0`` turns off Ray's usage statistics. For a
    local instance, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes Ray (2.60 on Linux) use
    the loopback address as the node's address, so its servers bind to 127.0.0.1 instead
    of every interface. Ray reads that variable when it is imported.

    Raises:
        ConfigError: Ray is not installed.
    """
    if "ray" not in sys.modules:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if local:
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError(MISSING_RAY) from None
    return ray


def _train_unit_task(unit: WorkUnit, dataset: Dataset, device: str) -> list[RunResult | RunFailure]:
    """Train ``unit`` in a Ray worker and return its results without the trained models."""
    results = train_unit(unit, dataset, torch.device(device))
    for result in results:
        if isinstance(result, RunResult):
            result.model = None
    return results


class RayTrainer:
    """Trains work units as Ray tasks and yields each with its results as they finish.

    It connects on the first :meth:`train` call that has units, so a study whose runs all
    finished earlier starts no Ray instance. A Ray session that is already initialized in
    this process is used as it is and left running; :meth:`close` shuts down only a session
    that this trainer started.

    Args:
        address: ``HOST:PORT`` of a running cluster, or None to start a local instance.
        dataset: the study's data set, put into Ray's object store once.
        device: where each task trains.
    """

    def __init__(self, address: str | None, dataset: Dataset, device: torch.device) -> None:
        self._ray = import_ray(local=address is None)
        self._address = address
        self._dataset = dataset
        self._device = device
        self._dataset_ref: Any = None
        self._started = False

    def close(self) -> None:
        """Shut down the Ray session if this trainer started it."""
        if self._started:
            self._ray.shutdown()
            self._started = False

    def train(self, units: list[WorkUnit]) -> Iterator[tuple[WorkUnit, list[RunResult | RunFailure]]]:
        """Submit every unit, then yield each unit and its results in the order they finish.

        Tasks still pending when the caller stops (an error, or an interrupt) are cancelled.

        Raises:
            ConfigError: the connection to the cluster at the address failed.
        """
        if not units:
            return
        ray = self._ray
        if not ray.is_initialized():
            _init(ray, self._address)
            self._started = True
        if self._dataset_ref is None:
            self._dataset_ref = ray.put(self._dataset)

        if self._device.type == "cuda":
            # Ray sets CUDA_VISIBLE_DEVICES to the task's GPU, so inside the task that GPU is cuda:0.
            # NOTE: this branch has not been run on a GPU machine yet.
            task = ray.remote(_train_unit_task).options(num_cpus=1, num_gpus=1)
            device = "cuda"
        else:
            task = ray.remote(_train_unit_task).options(num_cpus=1)
            device = str(self._device)

        pending = {task.remote(unit, self._dataset_ref, device): unit for unit in units}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                unit = pending.pop(ready[0])
                yield unit, ray.get(ready[0])
        finally:
            for ref in pending:
                ray.cancel(ref)


def _init(ray: ModuleType, address: str | None) -> None:
    """Start a local Ray instance on 127.0.0.1, or connect to the cluster at ``address``."""
    if address is None:
        ray.init(
            address="local",
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            logging_level=logging.WARNING,
        )
        node_ip = ray.util.get_node_ip_address()
        if not ipaddress.ip_address(node_ip).is_loopback:
            # Happens when Ray was imported before import_ray() could set
            # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0.
            logger.warning(
                "the local Ray instance uses address %s, so its servers listen on every interface; "
                "set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before importing ray to keep them on 127.0.0.1",
                node_ip,
            )
        return

    _check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, ValueError) as error:
        raise ConfigError(
            f"cannot connect to the Ray cluster at {address!r}: {error}. Pass the address that "
            "'ray start --head' printed (HOST:6379). A cluster with token authentication also needs "
            "RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or ~/.ray/auth_token)."
        ) from None


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Open and close a TCP connection to a ``HOST:PORT`` address; skip other address forms.

    Ray 2.60 retries an address where nothing listens for more than four minutes before it
    gives up, so this check fails fast instead.

    Raises:
        ConfigError: the connection failed or timed out.
    """
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as error:
        raise ConfigError(
            f"cannot connect to the Ray cluster at {address!r}: {error.strerror or error}. Start one with "
            "'ray start --head' and pass the address it prints (HOST:6379)."
        ) from None
