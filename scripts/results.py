"""Rerun the experiments behind docs/results.md and write the page from their outputs.

Each experiment is one reglab command. ``run`` executes commands and leaves their outputs in
an output folder; ``page`` reads those outputs and writes docs/results.md, so the page holds
only numbers that the commands produced. Model selection in every experiment uses
validation data only; each run's sealed test set is evaluated once.

Usage::

    python scripts/results.py list
    python scripts/results.py run ladder-mnist-5k mc-curve     # or: run all
    python scripts/results.py page

The output folder is ``results-out`` unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

ROOT = Path(__file__).resolve().parent.parent
STUDIES = Path("docs/results")


@dataclass(frozen=True)
class Experiment:
    """One command whose outputs a section of the page reads.

    Attributes:
        name: the experiment's name on the command line of this script.
        args: the reglab command line, without ``reglab`` and without ``--out``.
        folder: where the command writes its tables, relative to the output folder.
    """

    name: str
    args: tuple[str, ...]
    folder: str

    def command(self, out: Path) -> list[str]:
        return [sys.executable, "-m", "reglab", *self.args, "--out", str(out / self.out)]

    @property
    def out(self) -> str:
        """The ``--out`` folder: the store's folder for studies, the output folder for analyses."""
        return self.folder if self.folder.startswith("analyses/") else "."

    def shown(self) -> str:
        """Return the command as the page shows it, with the default output folder."""
        out = Path("results-out") / self.out
        return "reglab " + shlex.join(self.args) + f" --out {out.as_posix()}"


def _study(name: str) -> Experiment:
    return Experiment(name, ("compare", str(STUDIES / f"{name}.yaml")), name)


EXPERIMENTS = {
    experiment.name: experiment
    for experiment in (
        _study("ladder-mnist-5k"),
        _study("ladder-fashion-mnist"),
        _study("mlp-mnist-5k"),
        _study("mlp-fashion-mnist"),
        _study("mlp-wide-fashion-mnist"),
        _study("mlp-refit-fashion-mnist"),
        _study("cnn-mnist-5k"),
        _study("dropconnect-mnist-5k"),
        # Its own study name, so that it probes the candidates again and sizes the final run
        # from the median probe epoch, instead of reusing the probes and the final run stored
        # under the names of earlier versions.
        Experiment(
            "compete-fashion-mnist",
            ("compete", "--dataset", "fashion-mnist", "--budget", "30m", "--name", "compete-fashion-mnist-0.5.0"),
            "compete-fashion-mnist-0.5.0",
        ),
        Experiment(
            "mc-curve",
            ("mc-curve", "--dataset", "mnist-5k", "--model", "mlp:512,512", "--dropout", "0.5", "--epochs", "30"),
            "analyses/mc-curve",
        ),
        Experiment(
            "learning-curve",
            ("learning-curve", "--dataset", "mnist-5k", "--model", "softmax"),
            "analyses/learning-curve",
        ),
    )
}


def run(names: list[str], out: Path) -> None:
    """Run the named experiments one after another and record how long each took."""
    selected = list(EXPERIMENTS) if names == ["all"] else names
    unknown = [name for name in selected if name not in EXPERIMENTS]
    if unknown:
        raise SystemExit(f"unknown experiment {unknown[0]!r}; `python scripts/results.py list` shows them")

    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.json"
    for name in selected:
        experiment = EXPERIMENTS[name]
        machine = _machine()
        print(f"$ {experiment.shown()}", flush=True)
        started = time.perf_counter()
        subprocess.run(experiment.command(out), cwd=ROOT, check=True)
        # Read the record again, since another run of this script may have added to it.
        record = json.loads(log.read_text()) if log.exists() else {}
        record[name] = {
            "command": experiment.shown(),
            "seconds": round(time.perf_counter() - started, 1),
            "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine,
        }
        log.write_text(json.dumps(record, indent=2) + "\n")


def _machine() -> str:
    import torch

    import reglab

    threads = os.environ.get("OMP_NUM_THREADS", str(torch.get_num_threads()))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return (
        f"{_cpu()}, {os.cpu_count()} cores, {threads} torch thread(s); reglab {reglab.__version__} "
        f"(commit {commit or 'unknown'}), torch {torch.__version__}"
    )


def _cpu() -> str:
    """Return the CPU's model name from /proc/cpuinfo, or the platform's processor field."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _pct(value: str | float) -> str:
    return f"{100 * float(value):.2f}"


def _study_table(folder: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Return the page's table lines for one compare study, and its summary by strategy."""
    summary = {row["strategy"]: row for row in _rows(folder / "summary.csv")}
    runs = _rows(folder / "results.csv")
    lines = [
        "| strategy | lr | validation acc. % | test acc. % (mean ± 95% interval) | test error % | run ids |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in summary.items():
        ids = ", ".join(run["run_id"] for run in runs if run["strategy"] == name)
        error = 100 - 100 * float(row["test_acc_mean"])
        lines.append(
            f"| {name} | {float(row['lr']):g} | {_pct(row['val_acc_mean'])} | "
            f"{_pct(row['test_acc_mean'])} ± {_pct(row['test_acc_ci95'])} | {error:.2f} | {ids} |"
        )
    return lines, summary


def _selected(summary: dict[str, dict[str, str]]) -> tuple[str, dict[str, str]]:
    """Return the strategy with the best mean validation accuracy, picked without test data."""
    name = max(summary, key=lambda strategy: float(summary[strategy]["val_acc_mean"]))
    return name, summary[name]


def _ordering(summary: dict[str, dict[str, str]], names: list[str]) -> str:
    errors = {name: 100 - 100 * float(summary[name]["test_acc_mean"]) for name in names if name in summary}
    ranked = sorted(errors, key=errors.get, reverse=True)
    return " > ".join(f"{name} ({errors[name]:.2f}%)" for name in ranked)


# Srivastava et al. (2014, Table 9), worst first: (strategy, MNIST test error in %).
PAPER_LADDER = [("l2", 1.62), ("max-norm", 1.35), ("dropout-l2", 1.25), ("dropout-max-norm", 1.05)]


def _paired_line(runs: list[dict[str, str]], better: str, worse: str, expected: str | None) -> str:
    """Return one bullet: the paired test-accuracy difference of ``better`` over ``worse``.

    ``expected`` names who expects ``better`` ahead, such as ``"in the paper"``; None states
    no direction.
    """
    from reglab.study.stats import paired_comparison

    def accuracy_by_seed(strategy: str) -> dict[int, float]:
        return {int(run["seed"]): float(run["test_acc"]) for run in runs if run["strategy"] == strategy}

    paired = paired_comparison(accuracy_by_seed(better), accuracy_by_seed(worse)).difference
    verdict = ""
    if expected is not None:
        verdict = f", as {expected}" if paired.mean > 0 else f", unlike {expected}"
    size = "within" if abs(paired.mean) <= paired.half_width else "beyond"
    return (
        f"- `{better}` against `{worse}`: {100 * paired.mean:+.2f} points of test accuracy{verdict}; "
        f"{size} the paired 95% interval of ±{100 * paired.half_width:.2f} points over seeds."
    )


def _underfit_lines(summary: dict[str, dict[str, str]]) -> list[str]:
    """Return a bullet for each strategy whose training accuracy stays below the baseline's validation accuracy."""
    if "baseline" not in summary:
        return []
    reference = float(summary["baseline"]["val_acc_mean"])
    return [
        f"- `{name}` reaches only {_pct(row['train_acc_mean'])}% training accuracy, below the baseline's "
        f"{_pct(reference)}% validation accuracy: it underfits within this epoch budget."
        for name, row in summary.items()
        if "train_acc_mean" in row and float(row["train_acc_mean"]) < reference
    ]


def _ladder_remarks(folder: Path, summary: dict[str, dict[str, str]], names: list[str]) -> list[str]:
    """Return sentences that compare a ladder study with the paper's ordering, from its numbers."""
    lines = ["Test error, highest first: " + _ordering(summary, names) + ".", ""]
    runs = _rows(folder / "results.csv")

    def per_seed(strategy: str) -> list[str]:
        return [run["test_acc"] + run["val_acc"] for run in sorted(runs, key=lambda r: r["seed"]) if run["strategy"] == strategy]

    for name in names[1:]:
        if name in summary and per_seed(name) == per_seed("baseline"):
            lines.append(
                f"- `{name}` equals the baseline in every seed, to the last digit: its constraint never "
                "changed a weight, so this data set and learning rate leave it inactive."
            )
    for (worse, _), (better, _) in zip(PAPER_LADDER, PAPER_LADDER[1:]):
        if worse in summary and better in summary:
            lines.append(_paired_line(runs, better, worse, "in the paper"))
    lines += _underfit_lines(summary)
    lines += [
        "",
        "Why the numbers can differ from the paper's: the paper trained on all 60,000 MNIST",
        "training images with its own networks and settings. This study trains one MLP",
        "784-512-512-10 for a fixed epoch budget (see the study file), tunes only the learning",
        "rate, uses max-norm's c = 3 and L2's 1e-3 without a search, and estimates each",
        "difference from three seeds; on Fashion-MNIST it is another data set as well.",
        "Orderings inside the paired interval are not resolved by this study.",
    ]
    return lines


def _dropconnect_remarks(folder: Path, summary: dict[str, dict[str, str]]) -> list[str]:
    """Return the ordering and the paired differences of a DropConnect study."""
    runs = _rows(folder / "results.csv")
    lines = ["Test error, highest first: " + _ordering(summary, list(summary)) + ".", ""]
    for better, worse in (("dropout", "baseline"), ("dropconnect", "baseline"), ("dropconnect", "dropout")):
        if better in summary and worse in summary:
            lines.append(_paired_line(runs, better, worse, "Wan et al. report" if worse == "baseline" else None))
    return lines


def _mc_remarks(rows: list[dict[str, str]], scaled: float) -> list[str]:
    """Return the smallest T at which each Monte-Carlo mean matches weight scaling's accuracy."""
    lines = []
    for kind in ("arithmetic", "geometric"):
        by_t = {}
        for row in rows:
            if row["mean"] == kind:
                by_t.setdefault(int(row["samples"]), []).append(float(row["test_acc"]))
        reached = [t for t in sorted(by_t) if mean(by_t[t]) >= scaled]
        if reached:
            lines.append(f"- The {kind} mean first matches weight scaling's accuracy at T = {reached[0]}.")
        else:
            lines.append(f"- The {kind} mean stays below weight scaling's accuracy up to T = {max(by_t)}.")
    return lines


# The accuracy targets: a label, the studies whose strategies compete for the pick, the target.
TARGETS = [
    # The refit study trains the recipe that mlp-wide-fashion-mnist picked on validation once
    # more, then refits it on training plus validation data. Its selection runs score about the
    # same on validation, so the row takes that study's pick as the final recipe.
    ("Fashion-MNIST, MLP, best regularization, refitted", ["mlp-refit-fashion-mnist"], 0.905),
    ("Fashion-MNIST, small CNN, `reglab compete --budget 30m`", ["compete-fashion-mnist"], 0.935),
    ("mnist-5k, MLP, best regularization", ["mlp-mnist-5k", "ladder-mnist-5k"], 0.965),
    ("mnist-5k, small CNN", ["cnn-mnist-5k"], 0.98),
]


def _targets(out: Path) -> list[str]:
    """Return the targets table: for each target, the pick on validation among its studies."""
    lines = [
        "## Targets",
        "",
        "Each row picks, among the strategies of the studies named, the one with the best mean",
        "validation accuracy, then reports that strategy's test accuracy (mean over seeds).",
        "",
        "| data set, model | studies | pick on validation | test acc. % | target % | met |",
        "|---|---|---|---|---|---|",
    ]
    for label, names, target in TARGETS:
        candidates = []
        for name in names:
            folder = out / EXPERIMENTS[name].folder
            compete = folder / "compete.json"
            if compete.exists():
                result = json.loads(compete.read_text())
                candidates.append((result["val_acc"], f"{result['recipe']} (run {result['run_id']})", result["test_acc"], name))
            elif (folder / "summary.csv").exists():
                for row in _rows(folder / "summary.csv"):
                    candidates.append((float(row["val_acc_mean"]), row["strategy"], float(row["test_acc_mean"]), name))
        if not candidates:
            lines.append(f"| {label} | {', '.join(names)} | not run yet | | {100 * target:.1f} | |")
            continue
        _, pick, test_acc, name = max(candidates)
        met = "yes" if test_acc >= target else "no"
        lines.append(f"| {label} | {name} | `{pick}` | {_pct(test_acc)} | {100 * target:.1f} | {met} |")
    return lines


def _verdict(out: Path, result: dict) -> str:
    """Return whether the competition run was reproduced, from the store when it was verified later."""
    import sqlite3

    verified = result["verified"]
    if verified is None and (out / "reglab.db").exists():
        with sqlite3.connect(out / "reglab.db") as db:
            row = db.execute(
                "SELECT identical FROM verifications WHERE run_id = ? ORDER BY id DESC LIMIT 1", (result["run_id"],)
            ).fetchone()
        verified = None if row is None else bool(row[0])
        later = " by `reglab reproduce` after the competition"
    else:
        later = " within the budget"
    if verified is None:
        return f"Not reproduced yet: `reglab reproduce {result['run_id']}` verifies it."
    return f"Reproduced{later}: {'identical' if verified else 'mismatch'}."


def _target_line(label: str, value: float, target: float) -> str:
    verdict = "met" if value >= target else "not met"
    return f"{label}: {100 * value:.2f}% against the target {100 * target:.1f}% ({verdict})."


def _validation_runs(out: Path) -> list[str]:
    """Return the section on the runs of scripts/validation_run.py, or nothing when there are none."""
    records = [json.loads(path.read_text()) for path in sorted((out / "validation-runs").glob("*.json"))]
    if not records:
        return []
    lines = [
        "## Validation-only runs behind the recipes",
        "",
        "These runs chose the candidate recipes of `reglab compete` and the settings of the study",
        "files above. `scripts/validation_run.py` trained each on its split's training part and",
        "scored it on the validation part. None opened its test set.",
        "",
        "| run | data set | model | settings | epochs | train acc. % | val acc. % |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in records:
        settings = entry["settings"] + (f", {entry['precision']}" if entry.get("precision", "fp32") != "fp32" else "")
        lines.append(
            f"| {entry['name']} | {entry['dataset']} | `{entry['model']}` | {settings} | {entry['epochs']} | "
            f"{_pct(entry['train_acc'])} | {_pct(entry['val_acc'])} |"
        )
    lines.append("")
    for entry in records:
        note = f" ({entry['note']})" if entry.get("note") else ""
        lines.append(f"- {entry['name']}: `{entry['command']}`{note}; {entry['machine']}; finished {entry['finished']}.")
    return lines + [""]


def page(out: Path) -> str:
    """Render docs/results.md from the outputs under ``out``."""
    record = json.loads((out / "runs.json").read_text()) if (out / "runs.json").exists() else {}
    sections = [
        "# Results",
        "",
        "Every number on this page comes from a command below, run by `scripts/results.py`",
        "(`python scripts/results.py run all && python scripts/results.py page` reruns them and",
        "rewrites this page). Studies select on validation accuracy only; each run's sealed test set",
        "was evaluated once. Intervals are 95% t-intervals over seeds. Run ids refer to the",
        "`reglab.db` in the output folder of the machine that ran the commands; `reglab show ID`",
        "and `reglab reproduce ID` read them there. Each section names the reglab version and",
        "commit it ran with: version 0.2.0 changed how dropout masks are drawn and fused the SGD",
        "step, 0.3.0 made the convolution networks channels-last, sized evaluation batches by",
        "activation size and evaluates batched runs with one shared product, 0.4.0 changed the",
        "order of the batched engine's update and the candidates of `reglab compete`, and 0.5.0",
        "lets `reglab compete` train in bfloat16 mixed precision where the hardware computes it",
        "natively, with a candidate of two convolutions per block. A run reproduces exactly only",
        "with the version that trained it.",
        "",
    ]

    def header(name: str, title: str) -> list[str]:
        info = record.get(name)
        lines = [f"## {title}", ""]
        if info:
            lines += [
                f"Command: `{EXPERIMENTS[name].shown()}`  ",
                f"Machine: {info['machine']}; finished {info['finished']} after {info['seconds'] / 60:.1f} min.",
                "",
            ]
        return lines

    missing = []
    sections += _targets(out) + [""]

    def study_section(name: str, title: str, intro: list[str], after) -> None:
        folder = out / EXPERIMENTS[name].folder
        if not (folder / "summary.csv").exists():
            missing.append(name)
            return
        table, summary = _study_table(folder)
        sections.extend(header(name, title) + intro + [""] + table + [""] + after(summary) + [""])

    ladder = ["baseline", "l2", "max-norm", "dropout-l2", "dropout-max-norm"]
    for dataset in ("mnist-5k", "fashion-mnist"):
        study_section(
            f"ladder-{dataset}",
            f"The regularizer ladder of Srivastava et al. (2014) on {dataset}",
            [
                "Srivastava et al. (2014, Table 9) report MNIST test errors of 1.62% (L2), 1.35%",
                "(max-norm), 1.25% (dropout + L2) and 1.05% (dropout + max-norm). The study below",
                "reruns that ladder with an MLP 784-512-512-10, each strategy picking its SGD",
                "learning rate on validation data.",
            ],
            lambda summary, dataset=dataset: _ladder_remarks(out / f"ladder-{dataset}", summary, ladder),
        )

    targets = {
        "mlp-mnist-5k": 0.965,
        "mlp-fashion-mnist": 0.905,
        "mlp-wide-fashion-mnist": 0.905,
        "mlp-refit-fashion-mnist": 0.905,
        "cnn-mnist-5k": 0.98,
    }
    for name, title in (
        ("mlp-fashion-mnist", "Fashion-MNIST, MLP"),
        ("mlp-wide-fashion-mnist", "Fashion-MNIST, wider MLP"),
        ("mlp-refit-fashion-mnist", "Fashion-MNIST, wider MLP refitted on training plus validation data"),
        ("mlp-mnist-5k", "mnist-5k, MLP"),
        ("cnn-mnist-5k", "mnist-5k, small CNN"),
    ):
        study_section(
            name,
            title,
            [f"Candidate recipes from `{STUDIES / (name + '.yaml')}`; the pick is the best mean validation accuracy."],
            lambda summary, name=name: [
                _target_line(
                    f"Pick on validation: `{_selected(summary)[0]}`, test accuracy",
                    float(_selected(summary)[1]["test_acc_mean"]),
                    targets[name],
                ),
                "",
                *_underfit_lines(summary),
            ],
        )

    study_section(
        "dropconnect-mnist-5k",
        "DropConnect against dropout",
        [
            "Wan et al. (2013) report DropConnect about equal to dropout, both ahead of no",
            "regularization, on MNIST with 800-800 ReLU networks (gaps of a few tenths of a point).",
        ],
        lambda summary: _dropconnect_remarks(out / "dropconnect-mnist-5k", summary),
    )

    compete = out / EXPERIMENTS["compete-fashion-mnist"].folder / "compete.json"
    if compete.exists():
        result = json.loads(compete.read_text())
        sections += header("compete-fashion-mnist", "Fashion-MNIST, `reglab compete --budget 30m`") + [
            f"Recipe picked on validation: `{result['recipe']}` (`{result['model']}`, "
            f"{result.get('precision', 'fp32')}; {result['description']}).",
            f"Run id {result['run_id']}, {result['epochs']} epochs, {result['seconds'] / 60:.1f} min in all. "
            + _verdict(out, result),
            "",
            _target_line("Test accuracy", result["test_acc"], 0.935),
            "",
        ]
    else:
        missing.append("compete-fashion-mnist")

    mc = out / EXPERIMENTS["mc-curve"].folder / "mc_curve.csv"
    if mc.exists():
        rows = _rows(mc)
        scaled = mean(float(row["test_acc"]) for row in rows if row["mean"] == "deterministic")
        lines = ["| T | arithmetic mean acc. % | geometric mean acc. % |", "|---|---|---|"]
        for samples in sorted({int(row["samples"]) for row in rows if row["mean"] != "deterministic"}):
            cells = [
                mean(float(r["test_acc"]) for r in rows if r["mean"] == kind and int(r["samples"]) == samples)
                for kind in ("arithmetic", "geometric")
            ]
            lines.append(f"| {samples} | {_pct(cells[0])} | {_pct(cells[1])} |")
        sections += header("mc-curve", "Monte-Carlo dropout against weight scaling") + [
            "Srivastava et al. (2014, §7.5) report that about 50 samples match weight scaling.",
            f"Weight scaling (one deterministic pass): {_pct(scaled)}%, mean over seeds.",
            "",
            *lines,
            "",
            *_mc_remarks(rows, scaled),
            "",
        ]
    else:
        missing.append("mc-curve")

    lc = out / EXPERIMENTS["learning-curve"].folder / "learning_curve.csv"
    if lc.exists():
        rows = _rows(lc)
        lines = ["| training examples | train acc. % | test acc. % | gap |", "|---|---|---|---|"]
        for size in sorted({int(row["size"]) for row in rows}):
            at = [row for row in rows if int(row["size"]) == size]
            lines.append(
                f"| {size} | {_pct(mean(float(r['train_acc']) for r in at))} | "
                f"{_pct(mean(float(r['test_acc']) for r in at))} | {_pct(mean(float(r['gap']) for r in at))} |"
            )
        sizes = sorted({int(row["size"]) for row in rows})

        def at(size: int, column: str) -> float:
            return mean(float(row[column]) for row in rows if int(row["size"]) == size)

        first, last = sizes[0], sizes[-1]
        trend = (
            f"From {first} to {last} training examples, training accuracy goes from {_pct(at(first, 'train_acc'))}% "
            f"to {_pct(at(last, 'train_acc'))}%, test accuracy from {_pct(at(first, 'test_acc'))}% to "
            f"{_pct(at(last, 'test_acc'))}%, and the gap from {_pct(at(first, 'gap'))} to {_pct(at(last, 'gap'))} points."
        )
        sections += header("learning-curve", "Learning curve of softmax regression on mnist-5k") + [*lines, "", trend, ""]
    else:
        missing.append("learning-curve")

    sections += _validation_runs(out)
    if missing:
        sections += ["## Not run yet", "", "No outputs were found for: " + ", ".join(missing) + ".", ""]
    # Optional parts leave blank lines behind; Markdown needs only one between blocks.
    return re.sub(r"\n{3,}", "\n\n", "\n".join(sections))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("list", "run", "page"))
    parser.add_argument("names", nargs="*", help="experiments to run, or 'all'")
    parser.add_argument("--out", type=Path, default=ROOT / "results-out")
    args = parser.parse_args()
    # The commands run in the repository's root, so a relative folder is resolved here, once.
    args.out = args.out.resolve()

    if args.action == "list":
        for experiment in EXPERIMENTS.values():
            print(f"{experiment.name:24} {experiment.shown()}")
    elif args.action == "run":
        run(args.names or ["all"], args.out)
    else:
        (ROOT / "docs" / "results.md").write_text(page(args.out))
        print("wrote docs/results.md")


if __name__ == "__main__":
    main()
