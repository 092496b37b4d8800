"""Opening an input path: regular files, FIFOs, /dev/stdin and process substitution alike.

A pipe can be read only once, so nothing here looks at a file twice: the
checks use `stat`, and `read_text` reads every byte in one go.
"""
from __future__ import annotations

import stat
from pathlib import Path

from ..core.errors import InputError


def check_readable(path: str | Path) -> Path:
    """`path` as a Path if it can be read as data (a file, a pipe, a character device), else an InputError.

    `Path.is_file()` is False for a pipe: `<(cut -f2 data.tsv)` is a /dev/fd/N
    pipe and must be accepted, so the kind of file is asked of `stat` instead.
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{path}: is a directory, expected a data file")
    return p


def is_regular_file(path: str | Path) -> bool:
    """A file that may be read twice (counted, then read); False for pipes and stdin."""
    try:
        return stat.S_ISREG(Path(path).stat().st_mode)
    except OSError:
        return False


def read_text(path: str | Path) -> str:
    """The whole of `path` as UTF-8 text (a BOM dropped); NUL bytes and invalid UTF-8 are errors with the line."""
    data = check_readable(path).read_bytes()
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise InputError(f"{path}:{line}: NUL byte: this looks like a binary file, not a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not valid UTF-8 ({err.reason} at byte {err.start})") from None


def split_lines(text: str) -> list[str]:
    """Lines without their ends; `\\r\\n` is one end.

    split("\\n") rather than splitlines(): the latter also breaks on \\x0b, \\x1c,
    U+2028 ..., which would shift every line number after them.
    """
    return [line.rstrip("\r") for line in text.split("\n")]
