"""Reading BIO-tagged files: MIT Movie's `TAG<TAB>word` and CoNLL's `word ... TAG` (CoNLL-2003 too).

Tags may be in any scheme of schemes.py (detected per file, or chosen) and
are IOB2 once read. Every error names the file and the 1-based line, so a user
can jump straight to it.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ...core.choices import SCHEMES
from ...core.errors import InputError
from ...core.progress import Warn, warn_on_stderr
from ..schemes import SchemeError, detect_scheme, from_iob2, to_iob2
from ..sentence import Sentence
from ..sources import read_text, split_lines
from ..tags import is_tag, repair_bio

# How many non-blank lines `auto` inspects to pick a format.
_DETECT_LINES = 200
BIO_COLUMNS = ("mit", "conll")  # the layouts this module reads (formats' `mit` and `conll`)


if TYPE_CHECKING:
    from . import ReadOptions, Source


def reader(layout: str) -> Callable[["Source", "ReadOptions"], list[Sentence]]:
    """The registry's reader for a layout (mit or conll)."""
    return lambda source, options: parse_bio(source.text, source.path, layout, options.warn, options.scheme)


def writer(layout: str) -> Callable[[Sequence[Sentence], str, Warn], str]:
    """The registry's writer for a layout: a word a line, tags in the chosen scheme, a blank line after a sentence."""
    def write(sentences: Sequence[Sentence], scheme: str, warn: Warn) -> str:
        lines = []
        for s in sentences:
            for word, tag in zip(s.words, from_iob2(s.tags, scheme)):
                lines.append(f"{tag}\t{word}" if layout == "mit" else f"{word} {tag}")
            lines.append("")
        return "\n".join(lines) + "\n" if lines else ""
    return write


def detect_columns(lines: list[str], path: str) -> str:
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


def read_bio(path: str | Path, fmt: str = "auto", warn: Warn | None = None, scheme: str = "auto") -> list[Sentence]:
    """Read a BIO file (see `parse_bio`)."""
    return parse_bio(read_text(path), str(path), fmt, warn, scheme)


def parse_bio(text: str, path: str, fmt: str = "auto", warn: Warn | None = None,
              scheme: str = "auto") -> list[Sentence]:
    """Sentences of BIO text read from `path`. Blank lines separate sentences, -DOCSTART- lines are skipped.

    `scheme` auto detects it from the tag prefixes; B-/I- tags then read as
    IOB2 with any I-X that does not continue an X span read as B-X (IOB1 or
    hand-edited files), and `warn` (default: a line on stderr) hears how many.
    """
    if fmt not in ("auto",) + BIO_COLUMNS:
        raise InputError(f"{path}: format {fmt!r} is not a BIO format: choose one of auto, {', '.join(BIO_COLUMNS)}")
    if scheme not in SCHEMES:
        raise InputError(f"unknown scheme {scheme!r}: choose one of {', '.join(SCHEMES)}")
    lines = split_lines(text)
    raw = _raw_sentences(lines, path, detect_columns(lines, path) if fmt == "auto" else fmt)
    if not raw:
        raise InputError(f"{path}: no sentences found (the file is empty or blank)")
    lenient = scheme == "auto"
    if lenient:
        try:
            scheme = detect_scheme({tag[0] for _, tags, _ in raw for tag in tags if tag != "O"}, path)
        except SchemeError as err:
            raise InputError(str(err)) from None
    sentences, repaired, first_repaired = [], 0, 0
    for words, tags, numbers in raw:
        repairing = lenient and scheme == "iob2"
        try:
            valid = repair_bio(tags) if repairing else to_iob2(tags, scheme)
        except SchemeError as err:
            raise InputError(f"{path}:{numbers[err.index]}: {err}") from None
        fixed = sum(a != b for a, b in zip(tags, valid)) if repairing else 0
        if fixed and not repaired:
            first_repaired = numbers[0]
        repaired += fixed
        sentences.append(Sentence(tuple(words), tuple(valid), path, numbers[0]))
    if repaired:
        message = (f"{path}: read {repaired} I- tag(s) that start a span as B- "
                   f"(IOB2; the first in the sentence at line {first_repaired})")
        (warn or warn_on_stderr)(message)
    return sentences


def _raw_sentences(lines: list[str], path: str, fmt: str) -> list[tuple[list[str], list[str], list[int]]]:
    """(words, tags as written, line numbers) per sentence; tags are checked for shape only."""
    out: list[tuple[list[str], list[str], list[int]]] = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if out and out[-1][0]:
                out.append(([], [], []))
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
        if not out:
            out.append(([], [], []))
        out[-1][0].append(word), out[-1][1].append(tag), out[-1][2].append(number)
    return [s for s in out if s[0]]


