"""Reading raw text: one text per line, from a file or stdin, lazily."""
from __future__ import annotations

from pathlib import Path
from typing import IO, Iterable, Iterator

from ..core.errors import InputError
from .sources import check_readable


def iter_texts(path: str | Path, stream: IO | None = None) -> Iterator[str]:
    """One text per line, read lazily from a file, or from `stream` (stdin) when path is '-'.

    UTF-8 with an optional BOM; `\r\n` is one line end. Every line is kept,
    blank ones included, so output line i answers input line i. Invalid UTF-8
    is an InputError naming the file and line. The path is checked at once;
    lines are read one at a time as the iterator is consumed.
    """
    if str(path) == "-":
        # The binary stream under a text one: the rules above, whatever the locale's encoding.
        return _decoded("<stdin>", getattr(stream, "buffer", stream))
    return _decoded(str(path), _binary_lines(check_readable(path)))  # a pipe too: <(cut -f2 data.tsv)


def _binary_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        yield from f


def _decoded(source: str, lines: Iterable[bytes | str]) -> Iterator[str]:
    """Lines without their line end, decoded by the rules of iter_texts (text streams give str already)."""
    for number, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{source}:{number}: not valid UTF-8") from None
        yield line.rstrip("\n").rstrip("\r")


def read_texts(path: str | Path, stream: IO | None = None) -> list[str]:
    """All of `iter_texts` as a list."""
    return list(iter_texts(path, stream))


def count_lines(path: str | Path) -> int:
    """Lines in a file, as iter_texts counts them, from a binary newline count (no decoding)."""
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            count, last = count + block.count(b"\n"), block[-1:]
    return count + (last != b"\n")
