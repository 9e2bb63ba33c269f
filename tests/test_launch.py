"""The console script starts without torch and ends quietly on Ctrl-C during start-up."""

import builtins
import signal
import subprocess
import sys

import pytest

from reglab import _launch


def test_launch_module_and_package_import_without_torch():
    code = "import sys, reglab._launch; print('torch' in sys.modules)"

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "False"


def test_launch_exits_130_on_ctrl_c_during_import(monkeypatch, capsys):
    real_import = builtins.__import__
    calls = []

    def import_hit_by_ctrl_c(name, *args, **kwargs):
        if name == "reglab.cli":
            # What the interpreter does when SIGINT arrives: call the installed handler.
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
            calls.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", import_hit_by_ctrl_c)
    before = signal.getsignal(signal.SIGINT)

    with pytest.raises(SystemExit) as exit_info:
        _launch.main()

    assert calls == ["reglab.cli"]
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == "Interrupted while starting; nothing was run.\n"
    assert signal.getsignal(signal.SIGINT) is before


def test_package_exports_load_on_first_use():
    import reglab
    from reglab.early_stopping import EarlyStopping, StopReason

    assert reglab.EarlyStopping is EarlyStopping
    assert reglab.StopReason is StopReason
    with pytest.raises(AttributeError, match="module 'reglab' has no attribute 'Missing'"):
        reglab.Missing


def test_launch_exits_130_on_ctrl_c_before_command(monkeypatch, capsys):
    import reglab.cli

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(reglab.cli, "main", interrupted)

    with pytest.raises(SystemExit) as exit_info:
        _launch.main()

    assert exit_info.value.code == 130
    assert capsys.readouterr().err == "\nInterrupted.\n"


def test_command_ctrl_c_exits_130():
    import typer
    from typer.testing import CliRunner

    from reglab.cli._common import handle_errors

    app = typer.Typer()

    @app.command()
    @handle_errors
    def train() -> None:
        raise KeyboardInterrupt

    result = CliRunner().invoke(app, [])

    assert result.exit_code == 130
    assert result.output.strip() == "Interrupted."
