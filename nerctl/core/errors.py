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
    """The work was stopped: Ctrl-C (exit code 130, as for any SIGINT) or SIGTERM (143)."""

    exit_code = 130

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code
