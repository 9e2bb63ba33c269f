"""Run the command line as ``python -m reglab``."""

from reglab._launch import main

main()
