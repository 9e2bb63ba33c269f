"""The ``reglab`` console script: start the command line, and leave quietly on Ctrl-C.

Importing the command line imports torch, numpy and scipy, which takes a few seconds. A
Ctrl-C that interrupts those imports can leave a library half imported, which then fails
with an unrelated error and a long traceback. So during the import a Ctrl-C is only noted,
and the command exits with status 130 once the import has finished. This module imports
nothing heavy itself, and ``reglab/__init__.py`` loads its exports on first use.
"""

from __future__ import annotations

import signal
import sys

# The exit status of a process ended by SIGINT, as shells report it.
INTERRUPTED = 130


def main() -> None:
    """Import and run the ``reglab`` command line."""
    interrupted = False

    def note_interrupt(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True

    # A process started in the background of a script ignores SIGINT, and keeps ignoring it.
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, note_interrupt)
    try:
        from reglab.cli import main as run
    finally:
        if previous is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)

    if interrupted:
        sys.stderr.write("Interrupted while starting; nothing was run.\n")
        raise SystemExit(INTERRUPTED)
    try:
        run()
    except KeyboardInterrupt:
        # A Ctrl-C after the imports and before a command's own handler, while the
        # command line is assembled.
        sys.stderr.write("\nInterrupted.\n")
        raise SystemExit(INTERRUPTED) from None
