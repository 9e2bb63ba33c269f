"""Commented example study files for the analysis commands, written by ``reglab init --analysis NAME``."""

from __future__ import annotations

_SHARED = """\
# Settings shared with 'reglab compare'. A command-line option overrides the file's value,
# e.g.  reglab {command} {path} --seeds 1
# An analysis rejects the settings it cannot apply (backend, lr: auto, strategies with
# their own settings, ...), so that no value in this file is silently ignored.

# Study name: results go to reglab-runs/analyses/<name>/{command} unless --out is given.
name: {name}
"""

_TRAINING = """\
dataset: {dataset}       # mnist-5k, digits, fashion-mnist, mnist, moons, circles, csv:PATH, npz:PATH
{model}lr: 0.05           # SGD with momentum 0.9; a number (the lr search of compare is not available)
epochs: {epochs}
batch_size: {batch_size}
seeds: 3            # a count (0, 1, 2) or a list such as [0, 1, 2]
"""

_SECTIONS = {
    "learning-curve": """\
device: cpu

# The settings of 'reglab learning-curve'.
learning_curve:
  strategy: l2              # one built-in strategy: baseline, l2, l1, dropout, early-stopping, augment, combined
  sizes: [100, 300, 0.5, 1.0]  # integers count examples; numbers with a point are fractions of the training split
  match_steps: true         # train small subsets for more epochs, so every run takes about the same steps
""",
    "validation-curve": """\
device: cpu

# The settings of 'reglab validation-curve': one strength, listed or on a grid.
validation_curve:
  param: l2                 # l2, l1, dropout or max-norm
  grid: log                 # log or linear spacing from min to max; or list them: values: [0, 1.0e-4, 1.0e-3]
  min: 1.0e-5
  max: 0.1
  num: 5
""",
    "bias-variance": """\
device: cpu
strategies: [baseline, l2, dropout]   # built-in strategies only, without settings

# The settings of 'reglab bias-variance'.
bias_variance:
  bootstraps: 5             # bootstrap samples of the training split
  bootstrap_seed: 0
""",
    "boundaries": """\

# The settings of 'reglab boundaries': one row of L2 strengths, one row of drop probabilities.
boundaries:
  l2: [0, 1.0e-3, 1.0e-2, 1.0e-1]
  dropout: [0, 0.2, 0.5]
  samples: 200              # points drawn for moons and circles
  noise: 0.3
  grid: 100                 # grid points per axis
  dpi: 110
""",
    "geometry": """\
seeds: 3                    # synthetic data sets, one per seed

# The settings of 'reglab geometry'. It fits two-feature linear regressions, so it uses no
# data set, model or optimizer.
geometry:
  samples: 200
  correlation: 0.7          # of the two features, in (-1, 1)
  noise: 1.0
  strengths: 40             # penalty strengths on each solution path
  # strength: 0.5           # the strength to highlight; default: where L1 first zeroes a weight
  dpi: 110
""",
    "mc-curve": """\

# The settings of 'reglab mc-curve'.
mc_curve:
  dropout: 0.5              # drop probability after each hidden layer, in (0, 1)
  input_dropout: 0.0
  samples: [1, 2, 5, 10, 20, 50]   # numbers of stochastic passes T
  threads: 1
  dpi: 110
""",
    "capacity": """\

# The settings of 'reglab capacity'. Its MLPs come from widths and depths, so it takes no model.
capacity:
  widths: [16, 64, 256]
  depths: [1, 2]
  threads: 1
  dpi: 110
""",
}

# Data set, model line, epochs and batch size of each training analysis's example.
_TRAINING_VALUES = {
    "learning-curve": ("digits", "softmax", 10, 64),
    "validation-curve": ("digits", "mlp:64", 10, 64),
    "bias-variance": ("digits", "mlp:64", 10, 64),
    "boundaries": ("moons", "mlp:32,32", 100, 32),
    "mc-curve": ("digits", "mlp:128", 10, 64),
    "capacity": ("digits", None, 10, 64),
}


def example_analysis_file(command: str, path: str = "study.yaml") -> str:
    """Return the commented example study file of analysis ``command``.

    Raises:
        KeyError: ``command`` is not an analysis that reads study files.
    """
    text = _SHARED.format(command=command, path=path, name=f"{command}-example")
    if command in _TRAINING_VALUES:
        dataset, model, epochs, batch_size = _TRAINING_VALUES[command]
        model_line = f"model: {model}\n" if model is not None else ""
        text += _TRAINING.format(dataset=dataset, model=model_line, epochs=epochs, batch_size=batch_size)
    return text + _SECTIONS[command]
