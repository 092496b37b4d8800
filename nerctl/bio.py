"""Reading BIO-tagged files: MIT Movie's `TAG<TAB>word` and CoNLL's `word ... TAG`.

Every error names the file and the 1-based line, so a user can jump straight to it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

FORMATS = ("auto", "mit", "conll")
# IOB2 tags as the corpus writes them: O, or B-/I- and an entity type.
TAG_PATTERN = re.compile(r"^(O|[BI]-[A-Za-z0-9_.$&-]+)$")
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


def is_tag(field: str) -> bool:
    return TAG_PATTERN.match(field) is not None


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
    """MIT if the first column is always a tag, CoNLL if the last one is."""
    first_ok = last_ok = True
    seen = 0
    for line in lines:
        fields = line.split()
        # Blank and one-field lines say nothing of the format (the latter are
        # reported, with their line, by the parser).
        if len(fields) < 2 or fields[0] == "-DOCSTART-":
            continue
        first_ok &= is_tag(fields[0])
        last_ok &= is_tag(fields[-1])
        seen += 1
        if seen >= _DETECT_LINES or not (first_ok or last_ok):
            break
    if first_ok:  # also when nothing was seen: the parser then says what is wrong
        return "mit"
    if last_ok:
        return "conll"
    raise InputError(
        f"{path}: cannot tell the format: expected 'TAG<TAB>word' (mit) or 'word ... TAG' (conll) "
        "on every line; choose one with --format"
    )


def read_bio(path: str | Path, fmt: str = "auto") -> list[Sentence]:
    """Read a BIO file into sentences. Blank lines separate sentences."""
    path = Path(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
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
    start = 0
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if words:
                sentences.append(Sentence(tuple(words), tuple(tags), str(path), start))
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
            raise InputError(f"{path}:{number}: {tag!r} is not a tag (expected O, B-TYPE or I-TYPE)")
        if not words:
            start = number
        words.append(word)
        tags.append(tag)
    if words:
        sentences.append(Sentence(tuple(words), tuple(tags), str(path), start))
    if not sentences:
        raise InputError(f"{path}: no sentences found (the file is empty or blank)")
    return sentences

