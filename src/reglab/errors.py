"""Exceptions that reglab raises for problems a user can fix.

The command line prints these without a traceback. Each message names the value that was
received, what was expected and what to do next.
"""


class ReglabError(Exception):
    """Base class for errors caused by input or settings that a user can correct."""


class ConfigError(ReglabError, ValueError):
    """An argument, model spec, strategy or study setting is invalid."""


class DataError(ReglabError):
    """A data set is missing, corrupt or cannot be split as requested."""


class SealedTestSetError(ReglabError, RuntimeError):
    """The sealed test set was opened a second time without explicit permission."""
