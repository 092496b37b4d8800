"""Exceptions that the CLI turns into one line on stderr and an exit code."""
import os


def debug_enabled() -> bool:
    """--debug / NERCTL_DEBUG=1: show tracebacks and TensorFlow's own start-up log."""
    return os.environ.get("NERCTL_DEBUG", "") not in ("", "0")


class NerctlError(Exception):
    """A runtime failure (exit code 1): the input was fine, the work failed."""

    exit_code = 1


class InputError(NerctlError):
    """A usage or input error (exit code 2): a bad file, option or config value."""

    exit_code = 2


class Interrupted(NerctlError):
    """The user stopped the work (Ctrl-C); exit code 130 as for any SIGINT."""

    exit_code = 130
