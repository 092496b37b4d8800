"""Span-annotated JSONL, one text per line: doccano's and Prodigy's / spaCy's shapes.

doccano:  {"text": "...", "label": [[start, end, "TYPE"], ...]}
Prodigy:  {"text": "...", "spans": [{"start": s, "end": e, "label": "TYPE"}], "tokens": [{"text", "start", "end"}]}

Offsets are characters into "text". Tokens with offsets are the words;
without them the text is split as predict splits raw text. Prodigy records
answered "reject" or "ignore" are skipped (and counted). Errors name the
file and the record's line.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Sequence

from ...core.errors import InputError
from ...core.progress import Warn
from ..align import (
    CharSpan,
    Tally,
    aligned_sentence,
    char_spans,
    sentence_words,
    tokens_field,
)
from ..sentence import DEFAULT_WORDS, Sentence
from ..sources import split_lines
from ..tags import TYPE_RULE, is_entity_type

if TYPE_CHECKING:
    from . import ReadOptions, Source



def detect(source: "Source") -> bool:
    """JSON objects a line: the first line is one."""
    first_line = source.text.lstrip().split("\n", 1)[0].strip()
    return first_line.startswith("{") and first_line.endswith("}")


def read(source: "Source", options: "ReadOptions") -> list[Sentence]:
    return parse_jsonl(source.text, source.path, options.misaligned, options.warn, options.tally, options.words)


def write(sentences: Sequence[Sentence], scheme: str, warn: Warn) -> str:
    """A doccano record a line (tokens where splitting would give other words)."""
    return "".join(json.dumps(jsonl_record(s), ensure_ascii=False) + "\n" for s in sentences)


def parse_jsonl(text: str, path: str, misaligned: str = "error",
                warn: Warn | None = None, tally: Tally | None = None, words: str = DEFAULT_WORDS) -> list[Sentence]:
    """The sentences of a JSONL file's text.

    `warn` hears what was skipped or changed, `tally` counts it (see align.Tally); `words`: the --words
    rule that splits a record without tokens."""
    tally, sentences = tally if tally is not None else Tally(), []
    for number, line in enumerate(split_lines(text), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except ValueError as err:
            raise InputError(f"{where}: not valid JSON ({getattr(err, 'msg', err)})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise InputError(f'{where}: expected a JSON object with a "text" string')
        if record.get("answer") in ("reject", "ignore"):  # Prodigy: the annotator turned the example down
            tally.rejected += 1
            continue
        sentence = aligned_sentence(record["text"], record.get("tokens"), record_spans(record, where), path,
                                    number, where, misaligned, tally, words)
        if sentence is not None:
            sentences.append(sentence)
    if not sentences:
        raise InputError(f"{path}: no sentences found (no record with a word)")
    tally.report(path, misaligned, warn)
    return sentences


def record_spans(record: dict, where: str) -> list[CharSpan]:
    """The spans a record states, doccano "label" or Prodigy "spans"; both must then agree."""
    doccano = _doccano_spans(record["label"], where) if "label" in record else None
    prodigy = _prodigy_spans(record["spans"], where) if "spans" in record else None
    if doccano is not None and prodigy is not None and \
            {(s.start, s.end, s.label) for s in doccano} != {(s.start, s.end, s.label) for s in prodigy}:
        raise InputError(f'{where}: "label" and "spans" state different spans; keep one of them')
    return prodigy if prodigy is not None else doccano or []


def _doccano_spans(items: Any, where: str) -> list[CharSpan]:
    if not isinstance(items, list):
        raise InputError(f'{where}: "label" must be a list of [start, end, "TYPE"]')
    spans = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 3 and _offset(item[0]) and _offset(item[1])
                and is_entity_type(item[2])):
            raise InputError(f'{where}: label {json.dumps(item)} is not [start, end, "TYPE"] (TYPE {TYPE_RULE})')
        spans.append(CharSpan(item[0], item[1], item[2]))
    return spans


def _prodigy_spans(items: Any, where: str) -> list[CharSpan]:
    if not isinstance(items, list):
        raise InputError(f'{where}: "spans" must be a list of {{"start", "end", "label"}} objects')
    spans = []
    for item in items:
        if not (isinstance(item, dict) and _offset(item.get("start")) and _offset(item.get("end"))
                and is_entity_type(item.get("label")) and isinstance(item.get("text", ""), str)):
            raise InputError(f'{where}: span {json.dumps(item)} needs integer "start" and "end" and a "label" '
                             f"{TYPE_RULE}")
        spans.append(CharSpan(item["start"], item["end"], item["label"], item.get("text")))
    return spans


def _offset(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def jsonl_record(sentence: Sentence) -> dict:
    """A sentence as a doccano record ("tokens" added only where the splitter would give other words)."""
    text, words = sentence_words(sentence)
    record: dict[str, Any] = {"text": text, "label": [list(s) for s in char_spans(words, sentence.tags)]}
    tokens = tokens_field(text, words)
    if tokens is not None:
        record["tokens"] = tokens
    return record


