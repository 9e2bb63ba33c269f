"""The Monte-Carlo dropout and bias-variance sections of a compare study, on a tiny digits study."""

import csv
import shutil

import pytest
from typer.testing import CliRunner

from reglab.cli import app
from reglab.errors import ConfigError
from reglab.study import RunStore, StudySpec, compare_study, resolve_strategies
from reglab.study.compare import report_study
from reglab.study.leaderboard import build_leaderboard

MC_SECTION = "<h2>Monte-Carlo dropout</h2>"
BV_SECTION = "<h2>Bias and variance</h2>"
SAMPLES = [1, 3, 10]


def _spec(name: str, strategies: list[str]) -> StudySpec:
    return StudySpec(
        name=name,
        dataset="digits",
        model="mlp:16",
        strategies=resolve_strategies(strategies),
        seeds=[0, 1],
        epochs=2,
        batch_size=64,
        lr_grid=None,
    )


@pytest.fixture(scope="module")
def sections(tmp_path_factory):
    """A study with both sections: baseline, dropout and l2, two seeds, two bootstrap samples."""
    out = tmp_path_factory.mktemp("sections")
    outcome = compare_study(
        _spec("sections", ["baseline", "dropout", "l2"]),
        out,
        mc_samples=[10, 1, 3, 3],
        bias_variance=True,
        bias_variance_bootstraps=2,
    )
    return out, outcome


def _read(path):
    with path.open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_mc_curve_csv_grid_and_ranges(sections):
    _, outcome = sections
    rows = _read(outcome.mc_curve_path)

    assert {row["strategy"] for row in rows} == {"dropout"}
    for seed in ("0", "1"):
        seed_rows = [row for row in rows if row["seed"] == seed]
        for mean in ("arithmetic", "geometric"):
            assert [int(row["samples"]) for row in seed_rows if row["mean"] == mean] == SAMPLES
        assert len([row for row in seed_rows if row["mean"] == "deterministic"]) == 1
    for row in rows:
        assert 0.0 <= float(row["val_acc"]) <= 1.0
        assert float(row["val_nll"]) > 0.0


def test_mc_curve_deterministic_equals_stored_val_acc(sections):
    out, outcome = sections
    stored = {run["id"]: run for run in outcome.result.runs}
    rows = [row for row in _read(outcome.mc_curve_path) if row["mean"] == "deterministic"]

    assert len(rows) == 2
    for row in rows:
        run = stored[int(row["run_id"])]
        assert run["strategy"] == "dropout"
        assert float(row["val_acc"]) == pytest.approx(run["final_metrics"]["val_acc"], abs=1e-6)


def test_mc_curve_means_agree_at_one_pass(sections):
    _, outcome = sections
    rows = _read(outcome.mc_curve_path)
    for seed in ("0", "1"):
        one_pass = {row["mean"]: row for row in rows if row["seed"] == seed and row["samples"] == "1"}
        assert one_pass["arithmetic"]["val_acc"] == one_pass["geometric"]["val_acc"]


def test_bias_variance_components_add_up(sections):
    _, outcome = sections
    rows = _read(outcome.bias_variance_path)

    assert [row["strategy"] for row in rows][0] == "baseline"
    assert len(rows) == 2
    for row in rows:
        values = {key: float(value) for key, value in row.items() if key != "strategy"}
        assert values["bootstraps"] == 2
        assert values["seeds"] == 2
        assert values["squared_loss"] == pytest.approx(values["squared_bias2"] + values["squared_variance"], abs=1e-9)
        assert values["squared_variance"] == pytest.approx(
            values["squared_variance_bootstrap"] + values["squared_variance_seed"], abs=1e-9
        )
        assert values["zero_one_loss"] == pytest.approx(
            values["zero_one_bias"] + values["zero_one_net_variance"] + values["zero_one_residual"], abs=1e-9
        )
        assert values["zero_one_residual"] >= -1e-12
        assert 0.0 <= values["zero_one_loss"] <= 1.0


def test_sections_keep_test_sets_sealed(sections):
    out, outcome = sections
    with RunStore(out / "reglab.db") as store:
        runs = store.runs("sections")
        leaderboard = build_leaderboard(store)

    assert len(runs) == 6
    for run in runs:
        assert len(run["test_accesses"]) == 1
    assert leaderboard.excluded == []


def test_sections_never_open_a_test_set(sections, monkeypatch):
    from reglab.data.sealed import SealedTestSet
    from reglab.study.bias_variance import run_bias_variance
    from reglab.study.mc_dropout import run_mc_curve

    out, outcome = sections
    purposes = []
    monkeypatch.setattr(SealedTestSet, "open", lambda self, purpose, **kwargs: purposes.append(purpose))

    run_mc_curve(outcome.result, out, SAMPLES)
    run_bias_variance(outcome.result, outcome.summaries, 1)

    assert purposes == []


def test_report_html_has_sections(sections):
    _, outcome = sections
    html = outcome.report_path.read_text(encoding="utf-8")

    assert MC_SECTION in html
    assert BV_SECTION in html
    assert "validation split" in html
    assert 'alt="validation accuracy and NLL of Monte-Carlo dropout against the number of masks"' in html
    assert 'alt="bias-variance decomposition of the validation error"' in html
    assert "against baseline:" in html


def test_sections_off_are_absent(tmp_path):
    outcome = compare_study(_spec("off", ["baseline", "dropout"]), tmp_path, mc_curve=False)

    html = outcome.report_path.read_text(encoding="utf-8")
    assert MC_SECTION not in html
    assert BV_SECTION not in html
    assert outcome.mc_curve_path is None
    assert outcome.bias_variance_path is None
    assert not (tmp_path / "off" / "mc_curve.csv").exists()
    assert not (tmp_path / "off" / "bias_variance.csv").exists()


def test_mc_section_absent_without_dropout(tmp_path):
    outcome = compare_study(_spec("plain", ["baseline", "l2"]), tmp_path)

    assert MC_SECTION not in outcome.report_path.read_text(encoding="utf-8")
    assert outcome.mc_curve_path is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mc_samples": [0, 5]}, r"--mc-samples value must be an int >= 1 .*got 0"),
        ({"mc_samples": []}, r"--mc-samples must list at least one"),
        ({"mc_samples": [2.5]}, r"--mc-samples value must be an int >= 1 .*got 2.5"),
        ({"mc_samples": [5, 100_000_000]}, r"--mc-samples value must be at most 1000 \(each pass runs over the whole validation split\), got 100000000"),
        ({"bias_variance": True, "bias_variance_bootstraps": 0}, r"--bias-variance-bootstraps must be an int >= 1.*got 0"),
    ],
)
def test_bad_section_values_raise_before_training(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        compare_study(_spec("bad", ["baseline", "dropout"]), tmp_path, **options)
    assert not (tmp_path / "reglab.db").exists()


def test_cli_rejects_bad_section_values(tmp_path):
    runner = CliRunner()
    common = ["compare", "--dataset", "digits", "--model", "mlp:16", "--strategies", "dropout", "--seeds", "1",
              "--epochs", "1", "--lr", "0.1", "--out", str(tmp_path), "--quiet"]

    result = runner.invoke(app, [*common, "--mc-samples", "0,2"])
    assert result.exit_code != 0
    assert "--mc-samples value must be an int >= 1" in result.output

    result = runner.invoke(app, [*common, "--bias-variance", "--bias-variance-bootstraps", "0"])
    assert result.exit_code != 0
    assert "--bias-variance-bootstraps must be an int >= 1" in result.output
    assert not (tmp_path / "reglab.db").exists()


def test_report_recomputes_mc_curve_and_names_missing_sections(sections, tmp_path):
    out, outcome = sections
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = (copy / "sections" / "mc_curve.csv").read_text(encoding="utf-8")

    result = CliRunner().invoke(app, ["report", "sections", "--out", str(copy), "--mc-samples", "1,3,10"])

    assert result.exit_code == 0, result.output
    assert (copy / "sections" / "mc_curve.csv").read_text(encoding="utf-8") == before
    html = (copy / "sections" / "report.html").read_text(encoding="utf-8")
    assert MC_SECTION in html
    assert BV_SECTION not in html
    assert "'reglab compare --bias-variance'" in result.output


def test_report_names_run_without_checkpoint(sections, tmp_path):
    out, outcome = sections
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    dropout_run = next(run for run in outcome.result.runs if run["strategy"] == "dropout" and run["seed"] == 1)
    (copy / "sections" / "checkpoints" / f"run-{dropout_run['id']}.pt").unlink()

    rerendered = report_study("sections", copy, mc_samples=SAMPLES)

    rows = _read(rerendered.mc_curve_path)
    assert {row["seed"] for row in rows} == {"0"}
    html = rerendered.report_path.read_text(encoding="utf-8")
    assert "Not scored: dropout, seed 1, because checkpoint not found" in html


def test_sections_escape_strategy_names(tmp_path):
    strategies = resolve_strategies(["baseline", "dropout"])
    spec = _spec("escape", ["baseline"]).model_copy(
        update={"strategies": {"baseline": strategies["baseline"], "<i>drop</i>": strategies["dropout"]}, "seeds": [0]}
    )

    outcome = compare_study(spec, tmp_path, mc_samples=[1, 2], bias_variance=True, bias_variance_bootstraps=1)

    html = outcome.report_path.read_text(encoding="utf-8")
    assert MC_SECTION in html
    assert BV_SECTION in html
    assert "<i>drop</i>" not in html
    assert "&lt;i&gt;drop&lt;/i&gt; against baseline" in html


def test_mc_section_with_per_layer_dropout(tmp_path):
    """A list of drop probabilities, one per site, is scored and titled like a single p."""
    from reglab.training.config import DropoutSettings, StrategyConfig

    spec = StudySpec(
        name="layered",
        dataset="digits",
        model="cnn:4,8:bn",
        strategies={"conv-dropout": StrategyConfig(dropout=DropoutSettings(p=[0.1, 0.2, 0.5]))},
        seeds=[0],
        epochs=1,
        batch_size=64,
        lr_grid=None,
    )
    outcome = compare_study(spec, tmp_path, mc_samples=[1, 2])

    html = outcome.report_path.read_text(encoding="utf-8")
    assert MC_SECTION in html
    assert "dropout(p=[0.1, 0.2, 0.5], input_p=0)" in html
    assert {row["strategy"] for row in _read(outcome.mc_curve_path)} == {"conv-dropout"}
