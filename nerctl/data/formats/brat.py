"""BRAT standoff: a document's text in X.txt, its entity annotations in X.ann.

    T1<TAB>PER 0 5<TAB>John          a text-bound annotation: id, type, [start, end) characters, its text
    T2<TAB>LOC 10 15;20 26<TAB>...   discontinuous: several fragments (an error, or dropped by a policy)

Offsets count characters of the whole .txt. Each line of the text is a
sentence, split into words as predict splits raw text; a span must lie within
a line. Relations, events, attributes, notes and normalisations (R, E, A, M,
N, #, *) do not mark spans and are passed over. A corpus is a folder of
pairs (read in name order, subfolders too) or one pair, named by its .ann.
Problems name the .ann file and line; --misaligned decides as for JSONL.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ...core.errors import InputError
from ...core.progress import Warn
from ..align import CharSpan, Tally, aligned_sentence, char_spans, sentence_words
from ..sentence import DEFAULT_WORDS, Sentence, split_words
from ..sources import read_text, split_lines
from ..tags import TYPE_RULE, is_entity_type

if TYPE_CHECKING:
    from . import ReadOptions, Source

_TEXT_BOUND = re.compile(r"^T\d+\t[^\t ]+ \d+ \d+")
_FRAGMENTS = re.compile(r"^\d+ \d+(;\d+ \d+)*$")
_OTHER_IDS = "REAMN#*"  # annotation lines that mark no span


def detect(source: "Source") -> bool:
    """A folder, an X.ann beside its X.txt, or text whose first line is a text-bound annotation."""
    path = Path(source.path)
    if source.is_dir or (path.suffix.lower() == ".ann" and path.with_suffix(".txt").is_file()):
        return True
    first = next((line for line in split_lines(source.text) if line.strip()), "")
    return bool(_TEXT_BOUND.match(first))


def documents(path: str | Path) -> list[tuple[Path, Path]]:
    """The (.txt, .ann) pairs of a folder (every .ann in it and below, by name) or of one .ann or .txt."""
    path = Path(path)
    if path.is_dir():
        pairs = [(ann.with_suffix(".txt"), ann) for ann in sorted(path.rglob("*.ann"))]
        if not pairs:
            raise InputError(f"{path}: no .ann files in this folder (BRAT standoff needs X.txt and X.ann pairs)")
    else:
        pairs = [(path.with_suffix(".txt"), path.with_suffix(".ann"))]
    for txt, ann in pairs:
        missing = next((p for p in (txt, ann) if not p.is_file()), None)
        if missing is not None:
            raise InputError(f"{missing}: missing (BRAT standoff needs X.txt beside X.ann)")
    return pairs


def read(source: "Source", options: "ReadOptions") -> list[Sentence]:
    """The sentences of every document of a BRAT folder or pair."""
    tally = options.tally if options.tally is not None else Tally()
    sentences = []
    for txt, ann in documents(source.path):
        sentences += read_document(read_text(txt), str(txt), read_text(ann), str(ann), options.misaligned, tally,
                                   options.words)
    if not sentences:
        raise InputError(f"{source.path}: no sentences found (no text line with a word)")
    tally.report(source.path, options.misaligned, options.warn)
    return sentences


def read_document(text: str, txt: str, annotations: str, ann: str, policy: str, tally: Tally,
                  words: str = DEFAULT_WORDS) -> list[Sentence]:
    """One document's sentences: each line of `text` split by the --words rule `words`, with the spans of
    `annotations` that lie in it."""
    starts, at = [], 0
    for line in text.split("\n"):
        starts.append(at)
        at += len(line) + 1
    by_line: dict[int, list[CharSpan]] = defaultdict(list)
    for span in text_bound_spans(annotations, ann, len(text), policy, tally):
        number = _line_of(starts, span.start)
        line_end = starts[number] + len(text.split("\n", number + 1)[number])
        if span.end > line_end:
            _problem(f"{span.where}: {span.describe()} crosses a line end (each line is a sentence)",
                     "crosses a line", policy, tally)
            continue
        offset = starts[number]
        by_line[number].append(CharSpan(span.start - offset, span.end - offset, span.label, span.text, span.where))
    sentences = []
    for number, line in enumerate(text.split("\n")):
        if not line.strip():
            continue
        sentence = aligned_sentence(line, None, by_line.get(number, []), txt, number + 1, f"{txt}:{number + 1}",
                                    policy, tally, words)
        if sentence is not None:
            sentences.append(sentence)
    return sentences


def text_bound_spans(annotations: str, ann: str, length: int, policy: str, tally: Tally) -> list[CharSpan]:
    """The T lines of a .ann file as spans in document offsets; `where` names each one's line."""
    spans = []
    for number, line in enumerate(split_lines(annotations), 1):
        if not line.strip() or line[0] in _OTHER_IDS:
            continue
        where = f"{ann}:{number}"
        fields = line.split("\t")
        if not line.startswith("T") or len(fields) < 2 or " " not in fields[1]:
            raise InputError(f"{where}: expected 'T<id><TAB>TYPE START END<TAB>text' or another BRAT "
                             f"annotation (R, E, A, M, N, #, *), found {line[:60]!r}")
        label, offsets = fields[1].split(" ", 1)
        if not is_entity_type(label):
            raise InputError(f"{where}: entity type {label!r} is not one nerctl can tag: {TYPE_RULE}")
        if not _FRAGMENTS.match(offsets):
            raise InputError(f"{where}: offsets {offsets!r} are not 'START END' (or fragments 'S E;S E')")
        fragments = [tuple(map(int, f.split())) for f in offsets.split(";")]
        stated = fields[2] if len(fields) > 2 else None
        if len(fragments) > 1:
            _problem(f"{where}: the {label} span {offsets!r} is discontinuous ({len(fragments)} fragments); "
                     "nerctl tags contiguous spans", "discontinuous", policy, tally)
            continue
        (start, end), = fragments
        if end > length:
            _problem(f"{where}: span [{start}, {end}) {label} is past the text ({length} characters)",
                     "past the text", policy, tally)
            continue
        spans.append(CharSpan(start, end, label, stated, where))
    return spans


def _line_of(starts: list[int], offset: int) -> int:
    """The index of the line holding character `offset`."""
    low, high = 0, len(starts) - 1
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if starts[middle] <= offset else (low, middle - 1)
    return low


def _problem(message: str, reason: str, policy: str, tally: Tally) -> None:
    """A span the words cannot hold: an error, or dropped and counted by the policy."""
    if policy == "error":
        raise InputError(f"{message}; choose --misaligned drop to read the file without it")
    tally.dropped[reason] += 1


def write(sentences: Sequence[Sentence], scheme: str, warn: Warn) -> dict[str, str]:
    """A pair of files per source document ({stem}.txt, {stem}.ann), a sentence a line.

    BRAT keeps no tokens: `warn` hears how many sentences hold words that
    splitting their line gives back otherwise ("U.S.", "pg-13")."""
    changed = [s for s in sentences if not words_kept(s)]
    if changed:
        first = changed[0]
        warn(f"{len(changed)} sentence(s) will read back as other words (BRAT keeps no tokens; the first: "
             f"{first.source}:{first.line})")
    documents: dict[str, list[Sentence]] = defaultdict(list)
    for sentence in sentences:
        documents[Path(sentence.source).stem or "corpus"].append(sentence)
    files = {}
    for stem, members in documents.items():
        files[f"{stem}.txt"], files[f"{stem}.ann"] = document(members)
    return files


def document(sentences: Sequence[Sentence]) -> tuple[str, str]:
    """(text, annotations) of sentences written a line each; line breaks inside a text become spaces."""
    lines, annotations, at = [], [], 0
    for sentence in sentences:
        text, words = sentence_words(sentence)
        text = text.replace("\r", " ").replace("\n", " ")  # same length: the offsets stay right
        for start, end, kind in char_spans(words, sentence.tags):
            annotations.append(f"T{len(annotations) + 1}\t{kind} {at + start} {at + end}\t{text[start:end]}")
        lines.append(text)
        at += len(text) + 1
    return "\n".join(lines) + "\n", "".join(line + "\n" for line in annotations)


def words_kept(sentence: Sentence) -> bool:
    """Whether splitting the written line gives the sentence's words back (BRAT has no token field)."""
    text, words = sentence_words(sentence)
    return [w.text for w in split_words(text.replace("\n", " "))] == [w.text for w in words]
