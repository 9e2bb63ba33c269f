"""The ray backend: a study on a local Ray instance stores exactly what the local backend stores."""

import ipaddress
import sys

import pytest

from reglab.cli import app
from reglab.errors import ConfigError
from reglab.study import RunStore, run_study
from reglab.study.ray_backend import MISSING_RAY, import_ray
from reglab.study.runner import check_backend
from reglab.study.spec import StudySpec
from reglab.study.strategies import resolve_strategies


@pytest.fixture
def small_spec() -> StudySpec:
    """Two strategies, two seeds, two epochs of a small MLP on digits, fixed learning rate."""
    return StudySpec(
        name="ray-small",
        dataset="digits",
        model="mlp:32",
        strategies=resolve_strategies(["baseline", "l2"]),
        seeds=[0, 1],
        epochs=2,
        batch_size=64,
        lr_grid=None,
    )


@pytest.fixture
def ray_module():
    """Ray, configured for a local instance; shut down after the test even when it fails."""
    try:
        # import_ray sets the environment for a local instance before the first import.
        ray = import_ray(local=True)
    except ConfigError:
        pytest.skip("Ray is not installed; pip install 'reglab[ray]'")
    yield ray
    ray.shutdown()


class RecordProgress:
    """A progress sink that records finished and skipped runs, and the Ray node's address."""

    def __init__(self, ray):
        self.ray = ray
        self.trained = []
        self.skipped = []
        self.node_ips = set()

    def run_started(self, label, epochs):
        pass

    def epoch_finished(self, epoch, row):
        pass

    def run_finished(self, label, *, skipped, error=None):
        (self.skipped if skipped else self.trained).append(label)
        if self.ray.is_initialized():
            self.node_ips.add(self.ray.util.get_node_ip_address())


def comparable(runs):
    """Return each run's numbers by strategy and seed, without wall-clock seconds."""
    return {
        (run["strategy"], run["seed"]): {
            "final_metrics": run["final_metrics"],
            "test_metrics": run["test_metrics"],
            "best_epoch": run["best_epoch"],
            "stop_reason": run["stop_reason"],
            "history": [{k: v for k, v in row.items() if k != "seconds"} for row in run["history"]],
        }
        for run in runs
    }


@pytest.mark.slow
def test_ray_study_equals_local_study(small_spec, tmp_path, ray_module):
    with RunStore(tmp_path / "local.db") as store:
        run_study(small_spec, store)
        local_runs = store.runs(small_spec.name)

    progress = RecordProgress(ray_module)
    with RunStore(tmp_path / "ray.db") as store:
        result = run_study(small_spec, store, backend="ray", progress=progress)
        ray_runs = store.runs(small_spec.name)

    assert not ray_module.is_initialized(), "the study did not shut down the Ray instance it started"
    assert len(progress.trained) == 4
    assert progress.node_ips and all(ipaddress.ip_address(ip).is_loopback for ip in progress.node_ips)
    assert [(run["strategy"], run["seed"]) for run in result.runs] == [
        ("baseline", 0),
        ("l2", 0),
        ("baseline", 1),
        ("l2", 1),
    ]
    assert len(ray_runs) == 4
    assert comparable(ray_runs) == comparable(local_runs)


def test_ray_study_skips_finished_runs_without_ray(small_spec, tmp_path, ray_module):
    with RunStore(tmp_path / "reglab.db") as store:
        run_study(small_spec, store)
        progress = RecordProgress(ray_module)
        result = run_study(small_spec, store, backend="ray", progress=progress)
        runs = store.runs(small_spec.name)

    # Finished runs are skipped before anything is submitted, so no Ray instance starts.
    assert progress.trained == []
    assert progress.skipped == ["baseline seed=0", "l2 seed=0", "baseline seed=1", "l2 seed=1"]
    assert progress.node_ips == set()
    assert not ray_module.is_initialized()
    assert len(result.runs) == 4
    assert len(runs) == 4


def test_ray_study_rejects_unreachable_address(small_spec, tmp_path, ray_module):
    import socket

    # A port that was free a moment ago: nothing listens there.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"127.0.0.1:{port}"

    with RunStore(tmp_path / "reglab.db") as store:
        with pytest.raises(ConfigError) as caught:
            run_study(small_spec, store, backend="ray", address=address)
        assert store.runs(small_spec.name) == []
    assert str(caught.value).startswith(f"cannot connect to the Ray cluster at '{address}': ")
    assert "ray start --head" in str(caught.value)
    assert not ray_module.is_initialized()


def test_ray_backend_without_ray_names_extra(small_spec, tmp_path, monkeypatch):
    # A None entry in sys.modules makes `import ray` raise ImportError.
    monkeypatch.setitem(sys.modules, "ray", None)
    with RunStore(tmp_path / "reglab.db") as store:
        with pytest.raises(ConfigError) as caught:
            run_study(small_spec, store, backend="ray")
        assert store.runs(small_spec.name) == []
    assert str(caught.value) == MISSING_RAY == "the ray backend needs Ray: pip install 'reglab[ray]'"


def test_compare_cli_without_ray_exits_2(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    monkeypatch.setitem(sys.modules, "ray", None)
    result = CliRunner().invoke(
        app, ["compare", "--dataset", "digits", "--backend", "ray", "--out", str(tmp_path), "--quiet"]
    )
    assert result.exit_code == 2, result.output
    assert "pip install 'reglab[ray]'" in result.output
    assert not (tmp_path / "reglab.db").exists()


def test_check_backend_rejects_unknown_backend():
    with pytest.raises(ConfigError) as caught:
        check_backend("dask", None)
    assert str(caught.value) == "backend must be 'local' or 'ray', got 'dask'."


def test_check_backend_rejects_address_without_ray():
    with pytest.raises(ConfigError) as caught:
        check_backend("local", "10.0.0.5:6379")
    assert str(caught.value) == (
        "address '10.0.0.5:6379' is only used by the ray backend; choose backend 'ray' or remove the address."
    )


def test_study_file_reads_backend_and_address(tmp_path):
    from reglab.study.studyfile import StudyOverrides, read_study_file

    path = tmp_path / "study.yaml"
    path.write_text("dataset: digits\nbackend: ray\naddress: 10.0.0.5:6379\n", encoding="utf-8")

    study = read_study_file(path)
    assert (study.backend, study.address) == ("ray", "10.0.0.5:6379")
    assert study.spec.dataset == "digits"

    local = read_study_file(path, StudyOverrides(backend="local"))
    assert (local.backend, local.address) == ("local", None)

    other = read_study_file(path, StudyOverrides(address="127.0.0.1:6380"))
    assert (other.backend, other.address) == ("ray", "127.0.0.1:6380")


def test_study_file_rejects_unknown_backend(tmp_path):
    from reglab.study.studyfile import read_study_file

    path = tmp_path / "study.yaml"
    path.write_text("backend: dask\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"backend: Input should be 'local' or 'ray'"):
        read_study_file(path)
