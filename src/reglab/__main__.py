"""Run the command line as ``python -m reglab``."""

from reglab.cli import main

main()
