"""Reading BIO-tagged files: MIT Movie's `TAG<TAB>word` and CoNLL's `word ... TAG`.

Every error names the file and the 1-based line, so a user can jump straight to it.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .choices import BIO_FORMATS
from .errors import InputError
from .tags import is_tag, repair_bio

# How many non-blank lines `auto` inspects to pick a format.
_DETECT_LINES = 200


@dataclass(frozen=True)
class Sentence:
    """One tagged sentence and where it came from (for error messages)."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    source: str = ""
    line: int = 0  # line of the first word

    def __len__(self) -> int:
        return len(self.words)


def _decode(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise InputError(f"{path}:{line}: NUL byte: this looks like a binary file, not a BIO text file")
    try:
        return data.decode("utf-8-sig")  # tolerates a BOM
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not valid UTF-8 ({err.reason} at byte {err.start})") from None


def _lines(text: str) -> list[str]:
    # split("\n") rather than splitlines(): the latter also breaks on \x0b, \x1c,
    # U+2028 ..., which would shift every line number after them.
    return [line.rstrip("\r") for line in text.split("\n")]


def _detect_format(lines: list[str], path: Path) -> str:
    """MIT if the first column holds the tags, CoNLL if the last one does.

    A vote over the first lines, so that one bad line does not hide the format:
    the parser then reports that line with its number.
    """
    first = last = seen = 0
    for line in lines:
        fields = line.split()
        # Blank and one-field lines say nothing of the format (the latter are
        # reported, with their line, by the parser).
        if len(fields) < 2 or fields[0] == "-DOCSTART-":
            continue
        first += is_tag(fields[0])
        last += is_tag(fields[-1])
        seen += 1
        if seen >= _DETECT_LINES:
            break
    if first >= last and (first or not seen):  # nothing seen: the parser says what is wrong
        return "mit"
    if last > first:
        return "conll"
    raise InputError(
        f"{path}: cannot tell the format: expected 'TAG<TAB>word' (mit) or 'word ... TAG' (conll) "
        "on every line; choose one with --format"
    )


def read_bio(path: str | Path, fmt: str = "auto", warn: Callable[[str], None] | None = None) -> list[Sentence]:
    """Read a BIO file into sentences. Blank lines separate sentences.

    An I-X that does not continue an X span is read as B-X; `warn` (default:
    a line on stderr) hears how many such tags a file had.
    """
    path = Path(path)
    if fmt not in BIO_FORMATS:
        raise InputError(f"unknown format {fmt!r}: choose one of {', '.join(BIO_FORMATS)}")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a BIO file")
    lines = _lines(_decode(path))
    if fmt == "auto":
        fmt = _detect_format(lines, path)

    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    start = repaired = first_repaired = 0

    def end_sentence() -> None:
        nonlocal repaired, first_repaired
        valid = repair_bio(tags)
        fixed = sum(a != b for a, b in zip(tags, valid))
        if fixed and not repaired:
            first_repaired = start
        repaired += fixed
        sentences.append(Sentence(tuple(words), tuple(valid), str(path), start))

    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if words:
                end_sentence()
                words, tags = [], []
            continue
        if len(fields) < 2:
            raise InputError(f"{path}:{number}: expected a word and a tag, found one field {line.strip()!r}")
        if fmt == "mit":
            # MIT lines are TAG<TAB>word; a word never holds a tab, but keep any
            # spaces inside it rather than dropping them.
            tag, word = fields[0], line.split(None, 1)[1].strip()
        else:
            tag, word = fields[-1], fields[0]
        if not is_tag(tag):
            hint = f"; tags are upper-case: {tag.upper()}" if is_tag(tag.upper()) else ""
            raise InputError(f"{path}:{number}: {tag!r} is not a tag (expected O, B-TYPE or I-TYPE{hint})")
        if not words:
            start = number
        words.append(word)
        tags.append(tag)
    if words:
        end_sentence()
    if not sentences:
        raise InputError(f"{path}: no sentences found (the file is empty or blank)")
    if repaired:
        message = (f"{path}: read {repaired} I- tag(s) that start a span as B- "
                   f"(IOB2; the first in the sentence at line {first_repaired})")
        (warn or _warn_on_stderr)(message)
    return sentences


def _warn_on_stderr(message: str) -> None:
    print(f"nerctl: warning: {message}", file=sys.stderr)

