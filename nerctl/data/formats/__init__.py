"""Every tagged-data format in one place: detecting it from the content, reading it, writing it.

Readers return the same `Sentence`s (words, IOB2 tags, source, line) whatever
the format, so training, scoring, `check` and `convert` never ask which one it
was. `auto` looks at the content, not the name (a pipe has none): a JSON list
is a Label Studio export, JSON objects a line are JSONL, anything else BIO.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterable

from ..align import Tally
from ...core.atomic import atomic_write_text
from ..sentence import Sentence
from ...core.progress import Warn, warn_on_stderr
from .bio import detect_columns, parse_bio
from ...core.choices import CONVERT_FORMATS, DATA_FORMATS, MISALIGNED, OUTPUT_SCHEMES, SCHEMES
from ...core.errors import InputError
from .jsonl import jsonl_record, parse_jsonl
from .labelstudio import parse_labelstudio, task
from ..schemes import from_iob2
from ..sources import read_text, split_lines


def detect_format(text: str) -> str:
    """jsonl, labelstudio, or auto for a BIO file (bio.detect_columns tells mit from conll)."""
    head = text.lstrip()
    first_line = head.split("\n", 1)[0].strip()
    # A CoNLL word may be "[" or "{" too, but then a tag follows, not JSON.
    if head.startswith("[") and head[1:].lstrip()[:1] in ("{", "]"):
        return "labelstudio"
    if first_line.startswith("{") and first_line.endswith("}"):
        return "jsonl"
    return "auto"


def read_corpus(path: str | Path, fmt: str = "auto", scheme: str = "auto", misaligned: str = "error",
                warn: Warn | None = None) -> list[Sentence]:
    """Read a tagged file of any format (see `read_with_format`)."""
    return read_with_format(path, fmt, scheme, misaligned, warn)[1]


def read_with_format(path: str | Path, fmt: str = "auto", scheme: str = "auto", misaligned: str = "error",
                     warn: Warn | None = None, tally: Tally | None = None) -> tuple[str, list[Sentence]]:
    """(the format read, the sentences) of `path`: a file, a pipe or /dev/stdin, read once.

    `scheme` applies to BIO files, `misaligned` to span formats (see align.py);
    `warn` (default: stderr) hears what was repaired, skipped or changed;
    `tally`, when given, counts what the span formats skipped or changed.
    """
    for name, value, allowed in (("format", fmt, DATA_FORMATS), ("scheme", scheme, SCHEMES),
                                 ("misaligned", misaligned, MISALIGNED)):
        if value not in allowed:
            raise InputError(f"unknown {name} {value!r}: choose one of {', '.join(allowed)}")
    warn = warn or warn_on_stderr
    text, source = read_text(path), str(path)
    if fmt == "auto":
        fmt = detect_format(text)
    if fmt == "jsonl":
        return fmt, parse_jsonl(text, source, misaligned, warn, tally)
    if fmt == "labelstudio":
        return fmt, parse_labelstudio(text, source, misaligned, warn, tally)
    if fmt == "auto":
        fmt = detect_columns(split_lines(text), source)
    return fmt, parse_bio(text, source, fmt, warn, scheme)


def render_corpus(sentences: Iterable[Sentence], fmt: str, scheme: str = "iob2") -> str:
    """Sentences as the text of a file in one of CONVERT_FORMATS; BIO and CoNLL tags written in `scheme`."""
    if fmt not in CONVERT_FORMATS:
        raise InputError(f"unknown output format {fmt!r}: choose one of {', '.join(CONVERT_FORMATS)}")
    if fmt == "jsonl":
        return "".join(json.dumps(jsonl_record(s), ensure_ascii=False) + "\n" for s in sentences)
    if fmt == "labelstudio":
        # One task a line: a valid JSON list that still diffs and greps line by line.
        tasks = [json.dumps(task(s, i), ensure_ascii=False) for i, s in enumerate(sentences, 1)]
        return "[\n" + ",\n".join(tasks) + "\n]\n"
    lines = []
    for s in sentences:
        for word, tag in zip(s.words, from_iob2(s.tags, scheme)):
            lines.append(f"{tag}\t{word}" if fmt == "bio" else f"{word} {tag}")
        lines.append("")
    return "\n".join(lines) + "\n" if lines else ""


# convert --to by the output's suffix (anything else: bio).
_SUFFIX_FORMATS = {".jsonl": "jsonl", ".json": "labelstudio", ".conll": "conll"}


def convert(source: str | Path, target: str | Path, from_format: str = "auto", to_format: str | None = None,
            scheme: str = "auto", to_scheme: str = "iob2", misaligned: str = "error",
            warn: Warn | None = None) -> tuple[str, str, int]:
    """Read `source` in any format, write it to `target` ('-': stdout) in `to_format`; (from, to, sentences).

    Words and tags survive every round trip: text and word offsets are kept
    where both formats have them, and JSONL / Label Studio records carry tokens
    where splitting the text would give other words (see align.tokens_field).
    """
    if str(target) != "-" and Path(target).exists() and Path(target).resolve() == Path(source).resolve():
        raise InputError(f"{target}: the output is the input file")
    to_format = to_format or _SUFFIX_FORMATS.get(Path(target).suffix.lower(), "bio")
    if to_scheme not in OUTPUT_SCHEMES:
        raise InputError(f"unknown output scheme {to_scheme!r}: choose one of {', '.join(OUTPUT_SCHEMES)}")
    read, sentences = read_with_format(source, from_format, scheme, misaligned, warn)
    text = render_corpus(sentences, to_format, to_scheme)
    if str(target) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write_text(Path(target), text)
    return read, to_format, len(sentences)
