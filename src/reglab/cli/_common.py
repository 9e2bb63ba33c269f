"""Pieces shared by the subcommands: the console, error handling and options."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.highlighter import Highlighter
from rich.markup import escape
from rich.text import Text
from typer.models import ParameterInfo

from reglab._launch import INTERRUPTED
from reglab._paths import prepare_writable_folder
from reglab.errors import ConfigError, ReglabError

# Output that goes to a file or a pipe has no terminal width, and rich would assume 80
# columns and cut the numbers of the wider tables; 160 columns keeps every value whole.
_PIPE_WIDTH = 160

console = Console()
if not console.is_terminal:
    console.width = _PIPE_WIDTH
error_console = Console(stderr=True)


def abort(message: str, code: int = 2) -> None:
    """Print ``message`` as an error and exit with ``code``."""
    # The message is plain text: escaping keeps brackets such as 'reglab[tune]' from being read as markup.
    error_console.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


Command = TypeVar("Command", bound=Callable[..., Any])


def handle_errors(command: Command) -> Command:
    """Wrap a subcommand so that errors a user can fix print one message and exit with status 2.

    A Ctrl-C prints one line and exits with status 130, the status of a process ended by
    SIGINT. Commands that keep finished work print where it is, in their own handler.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ReglabError as error:
            abort(str(error))
        except KeyboardInterrupt:
            error_console.print("\nInterrupted.", highlight=False)
            raise typer.Exit(INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]


def _join_wrapped_lines(text: str) -> str:
    """Join the lines of each paragraph of a docstring, so the terminal wraps them, keeping list items on their own lines."""
    return re.sub(r"(?<!\n)\n(?!\n|\s*[-*] )", " ", text)


def escape_help_texts(app: typer.Typer) -> None:
    """Escape the square brackets of every command's help, so rich prints them as written.

    Typer reads help texts as rich markup, where ``[ray]`` in ``pip install 'reglab[ray]'``
    is a style tag and vanishes. Options shared by several commands are escaped once. The
    lines of each docstring paragraph are joined, so that the terminal wraps them.
    """
    escaped: set[int] = set()
    for command in app.registered_commands:
        callback = command.callback
        if command.help is None and callback is not None and callback.__doc__:
            command.help = escape(_join_wrapped_lines(inspect.getdoc(callback) or ""))
        for parameter in inspect.signature(callback).parameters.values() if callback else ():
            info = parameter.default
            if isinstance(info, ParameterInfo) and info.help and id(info) not in escaped:
                escaped.add(id(info))
                info.help = escape(info.help)


class _Folding(Highlighter):
    """A rich highlighter that also lets its text fold a word wider than the column."""

    def __init__(self, inner: Highlighter) -> None:
        self.inner = inner

    def __call__(self, text: str | Text) -> Text:
        result = self.inner(text)
        result.overflow = "fold"
        return result

    def highlight(self, text: Text) -> None:
        self.inner.highlight(text)


def fold_long_help_words() -> None:
    """Fold a word of ``--help`` wider than its column instead of cutting it with '…'.

    At 80 columns the help column of ``compare`` is about 18 characters wide, narrower
    than a model spec such as ``cnn[:C1,C2[,C3][:bn,fc=N,convs=N]]`` or a default folder, and
    the table also narrows the option names below ``--bias-variance-bootstraps``. Typer builds
    the option names and the help of the table with its module's highlighters and joins a
    help's parts in a rich ``Columns``; this wraps the highlighters so their text folds, and
    joins the parts into one folding ``Text``.
    """
    from typer import rich_utils

    if isinstance(rich_utils.highlighter, _Folding):
        return
    for name in ("highlighter", "negative_highlighter"):
        setattr(rich_utils, name, _Folding(getattr(rich_utils, name)))
    original = rich_utils._get_parameter_help

    @functools.wraps(original)
    def parameter_help(**kwargs: Any) -> Any:
        columns = original(**kwargs)
        items = getattr(columns, "renderables", None)
        if not items or not all(isinstance(item, Text) for item in items):
            return columns
        text = Text(" ").join(items)
        text.overflow = "fold"
        return text

    rich_utils._get_parameter_help = parameter_help


def given_on_command_line(ctx: typer.Context, parameter: str) -> bool:
    """Return whether option ``parameter`` (the function argument's name) was given on the command line or by environment."""
    # Compared by name: typer 0.29 vendors its own click, whose ParameterSource is
    # not the installed click's enum.
    source = ctx.get_parameter_source(parameter)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def prepare_output_folder(out: Path, option: str = "--out") -> Path:
    """Create the output folder and check that reglab can write to it, or raise ConfigError naming ``option``."""
    return prepare_writable_folder(out, option)


def parse_csv_list(option: str, text: str, example: str) -> list[str]:
    """Split comma-separated items, rejecting an empty list or an empty item.

    Args:
        option: the option's name for the error, e.g. ``"--strategies"``.
        text: what the user gave.
        example: a valid value for the error, e.g. ``"l2,dropout"``.

    Raises:
        ConfigError: ``text`` is empty, or two commas (or a comma at an end) leave an empty item.
    """
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise ConfigError(f"{option} must name at least one item, got {text!r}; leave the option out for the default.")
    if not all(items):
        raise ConfigError(
            f"{option} has an empty item at position {items.index('') + 1}, got {text!r}; "
            f"separate the items with single commas, for example {example!r}."
        )
    return items


def parse_name_list(option: str, text: str) -> list[str]:
    """Parse comma-separated names such as ``l2,dropout``; see :func:`parse_csv_list`."""
    return parse_csv_list(option, text, "l2,dropout")


def _parse_typed_list(option: str, text: str, kind: type, what: str, example: str) -> list[Any]:
    """Parse comma-separated values of ``kind``, raising ConfigError that names the option."""
    values = []
    for item in parse_csv_list(option, text, example):
        try:
            values.append(kind(item))
        except ValueError:
            raise ConfigError(f"{option} must be comma-separated {what}, got {text!r}.") from None
    return values


def parse_number_list(option: str, text: str) -> list[float]:
    """Parse comma-separated numbers such as ``0,1e-3,0.1``, raising ConfigError that names the option."""
    return _parse_typed_list(option, text, float, "numbers", "0,1e-3,0.1")


def parse_int_list(option: str, text: str) -> list[int]:
    """Parse comma-separated integers such as ``16,64,256``, raising ConfigError that names the option."""
    return _parse_typed_list(option, text, int, "integers", "16,64,256")


DatasetOption = typer.Option(
    "mnist-5k", "--dataset", "-d", help="Data set: mnist-5k, digits, fashion-mnist, mnist, moons, circles, csv:PATH, npz:PATH."
)
MODEL_HELP = (
    "Model spec: 'softmax', 'mlp:W1,W2,...' (hidden-layer widths), 'cnn[:C1,C2[,C3][:bn,fc=N,convs=N]]' "
    "(conv blocks with C channels, default 32,64; bn = BatchNorm, fc = classifier width, default 128, "
    "convs = convolutions per block, default 1), "
    "'lenet', or 'module:package.path:factory' (your factory(input_shape, num_classes) returning an nn.Module)."
)
ModelOption = typer.Option("mlp:512,512", "--model", "-m", help=MODEL_HELP)
DataDirOption = typer.Option(
    None, "--data-dir", help="Folder with the IDX files of fashion-mnist or mnist (also read from $REGLAB_DATA)."
)
DownloadOption = typer.Option(False, "--download", help="Download fashion-mnist or mnist with torchvision if not found.")
DeviceOption = typer.Option("cpu", "--device", help="Torch device to train on, e.g. cpu or cuda.")
OutOption = typer.Option(Path("reglab-runs"), "--out", "-o", help="Output folder for reports and the run database.")
QuietOption = typer.Option(False, "--quiet", "-q", help="Print only the final results, no progress bars.")
StrategyOption = typer.Option(
    "baseline", "--strategy", "-s", help="One built-in strategy, as listed by 'reglab compare --help'."
)
LrOption = typer.Option(0.05, "--lr", help="Learning rate of SGD (momentum 0.9).")
ScheduleOption = typer.Option(
    "none",
    "--schedule",
    help=(
        "Learning-rate schedule over the epoch budget, stepped after every minibatch: none (constant), cosine "
        "(annealing to 0), step (x0.1 every 10 epochs; set step_size and gamma in a study file) or one-cycle "
        "(up to the learning rate over 30% of the steps, then down)."
    ),
)
WarmupOption = typer.Option(
    0, "--warmup-epochs", min=0, help="Epochs of linear learning-rate warm-up before the --schedule."
)
PrecisionOption = typer.Option(
    "fp32",
    "--precision",
    help=(
        "fp32, or bf16 to run the forward passes in bfloat16 with float32 weights (mixed precision). A training "
        "step took 1.6 to 2.4 times less time on a CPU with AMX; bf16 is emulated, and slower, on CPUs without "
        "AMX or AVX-512 BF16."
    ),
)


def batch_size_option(default: int = 128) -> Any:
    """Return the ``--batch-size`` option with ``default`` examples per minibatch."""
    return typer.Option(default, "--batch-size", min=1, help="Minibatch size.")


def open_existing_store(out: Path, *, read_only: bool = True) -> Any:
    """Open ``out/reglab.db``, or raise ConfigError when there is none.

    Commands that only list or export runs pass ``read_only``, so a read-only file or folder
    is read as it is. Without it, opening fails unless the store can be written.
    """
    from reglab.study.store import RunStore, missing_database_error

    database = out / "reglab.db"
    # A read-only store checks this itself; a writable one would create the file.
    if not read_only and not database.exists() and not database.is_symlink():
        raise missing_database_error(database)
    return RunStore(database, read_only=read_only)


def percent(value: float | None, digits: int = 2) -> str:
    """Format a fraction as a percentage, or a dash for a missing value."""
    return "–" if value is None else f"{value * 100:.{digits}f}"


