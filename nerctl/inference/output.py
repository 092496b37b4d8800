"""Writing results: records and their text formats, streamed chunk by chunk, and resumed.

A record is `Doc.to_dict()`: the text, its entities (type, text,
character offsets, score) and its words (offsets, tag, score). jsonl writes
one record a line; conll one word a line (gold tag before the predicted one
when the input was tagged); json one array; spans one doccano/Prodigy record
a line (jsonl.spans_record) and labelstudio a list of pre-annotated tasks
(labelstudio.prediction_task), both re-importable into the annotation tool. Streaming keeps memory bounded by
a chunk of texts, and a resumed jsonl output ends byte for byte as an
uninterrupted one. html is one page (html.py) that carries its records a chunk at a time.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
from pathlib import Path
from typing import Callable, ContextManager, Iterable, Iterator, TextIO

from ..core.choices import STREAM_FORMATS
from ..core.errors import InputError
from ..data.formats.labelstudio import FROM_NAME, TO_NAME, result
from .tagger import CHUNK_TEXTS, Doc, Tagger


def render(results: Iterable[Doc], fmt: str, tagger: Tagger | None = None) -> str:
    """Text for stdout in one of OUTPUT_FORMATS ('table' is rendered by the CLI).

    `tagger` names the model in Label Studio's predictions and gives an html page its facts."""
    results = list(results)
    if fmt == "json":
        return json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2) + "\n"
    writer = _Writer(fmt, tagger)
    return writer.start() + writer.chunk(results, 0) + writer.end(len(results))


class _Writer:
    """How a streamed format starts, writes each chunk of records, and ends.

    labelstudio is one JSON list ("[" first, a task a line, "]" once the input ends);
    html one page (its head, a block of records a chunk, the script last); the others
    are only their records."""

    def __init__(self, fmt: str, tagger: Tagger | None):
        if fmt not in STREAM_FORMATS:
            raise InputError(f"format {fmt} cannot be streamed: choose one of {', '.join(STREAM_FORMATS)}")
        self.fmt, self.tagger = fmt, tagger
        self.model_version = tagger.name if tagger is not None else None

    def start(self) -> str:
        if self.fmt == "html":
            from .html import page_head

            facts = self.tagger.facts() if self.tagger is not None else {}
            title = f"nerctl predict: {facts['model']}" if facts.get("model") else "nerctl predict"
            return page_head(title, {"facts": facts, "types": facts.get("types", []),
                                     "min_score": self.tagger.min_score if self.tagger is not None else 0.0})
        return "[\n" if self.fmt == "labelstudio" else ""

    def chunk(self, results: list[Doc], written: int) -> str:
        """The records of `results`, `written` records having gone before them."""
        if self.fmt == "labelstudio":
            return (",\n" if written and results else "") + _task_lines(results, self.model_version)
        if self.fmt == "html":
            from .html import records_block

            return records_block([r.to_dict() for r in results]) if results else ""
        if self.fmt == "conll":
            return "".join("".join("\t".join((w.text, r.gold[i], w.tag) if r.gold is not None else (w.text, w.tag))
                                   + "\n" for i, w in enumerate(r.words)) + "\n" for r in results)
        record = spans_record if self.fmt == "spans" else Doc.to_dict
        return "".join(json.dumps(record(r), ensure_ascii=False) + "\n" for r in results)

    def end(self, written: int) -> str:
        if self.fmt == "html":
            from .html import page_tail

            return page_tail()
        return ("\n" if written else "") + "]\n" if self.fmt == "labelstudio" else ""


def _task_lines(results: list[Doc], model_version: str | None) -> str:
    """Label Studio tasks, one a line, separated by commas (the inside of a JSON list)."""
    return ",\n".join(json.dumps(prediction_task(r, model_version), ensure_ascii=False) for r in results)


def write_stream(tagger: Tagger, texts: Iterable[str], sink: TextIO, fmt: str = "jsonl",
                 chunk_size: int = CHUNK_TEXTS, progress: Callable[[list[Doc]], None] | None = None, done: int = 0) -> int:
    """Tag `texts` and write them to `sink` in `fmt`, one flushed chunk at a time; return how many were written.

    A killed job leaves every finished chunk in `sink` and at most a partial
    last record. `progress(docs)` is called with the records of each chunk written.
    `done`, with the texts from `resume_output`: records already in `sink`.
    """
    writer = _Writer(fmt, tagger)
    sink.write(writer.start())
    written, drop = 0, done % chunk_size  # the already written head of a resumed chunk
    for results in tagger.tag_chunks(texts, chunk_size):
        results, drop = results[drop:], 0
        sink.write(writer.chunk(results, written))
        sink.flush()
        written += len(results)
        if progress:
            progress(results)
    sink.write(writer.end(written))
    return written


def stream_to(tagger: Tagger, texts: Iterable[str], output: str | Path | None, fmt: str = "jsonl", *,
              resume: bool = False, chunk_size: int = CHUNK_TEXTS, total: int | None = None, reporter=None) -> int:
    """Tag `texts` into the file `output` (stdout if None) chunk by chunk; return the records written.

    `resume` continues an interrupted `output` (see `resume_output`; the same
    `chunk_size` must be used by both). `total`, the input's line count when
    known, sizes the progress bar (a `progress.Reporter`'s, on stderr).
    """
    from ..core.progress import Reporter

    if resume and output is None:
        raise InputError("resuming needs an output file")
    reporter = reporter or Reporter()
    done, texts = resume_output(output, texts, chunk_size) if resume else (0, iter(texts))
    if done:
        reporter.log(f"resuming: {done} lines already in {output}")
    remaining = None if total is None else max(total - done, 0)
    dropped = 0
    with open_output(output, append=resume) as out, reporter.task("tagging", remaining, unit="sentences") as bar:
        def advance(docs: list[Doc]) -> None:
            nonlocal dropped
            bar.advance(len(docs))
            dropped += sum(d.dropped for d in docs)

        written = write_stream(tagger, texts, out, fmt, chunk_size, progress=advance, done=done)
    log_dropped(tagger, dropped, reporter)
    return written


def log_dropped(tagger: Tagger, dropped: int, reporter) -> None:
    """Say on stderr how many entities --min-score left out."""
    if tagger.min_score:
        reporter.log(f"{dropped} entit{'y' if dropped == 1 else 'ies'} scored under --min-score "
                     f"{tagger.min_score:g} left out")


def open_output(path: str | Path | None, append: bool = False) -> ContextManager[TextIO]:
    """`path` for writing results (replaced, or appended to after `resume_output`); stdout if None."""
    if path is None:
        return contextlib.nullcontext(sys.stdout)  # not closed on leaving: stdout is the caller's
    return open(path, "a" if append else "w", encoding="utf-8", newline="")  # "\n" stays "\n"


def resume_output(path: str | Path, texts: Iterable[str], chunk_size: int = CHUNK_TEXTS
                  ) -> tuple[int, Iterator[str]]:
    """Prepare a jsonl output for continuing: (records it holds, the texts for `write_stream`).

    Checks that the last record's "text" is the input line of that number (an
    output of another input is an InputError, and left as it was), then cuts
    off a partial last line (a killed job's). The texts returned start at the
    chunk holding the first missing record, which `write_stream(done=...)` tags
    whole again: a text's scores can depend, in their last bits, on the batch it
    shares, and so every record equals an uninterrupted run's byte for byte.
    Reads one line at a time; a missing file holds 0 records.
    """
    texts = iter(texts)
    if not Path(path).exists():
        return 0, texts  # nothing written yet: --resume may be given from the first attempt on
    done, end, last = 0, 0, None
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break  # the partial record of an interrupted write
            done, end, last = done + 1, end + len(line), line
    if last is None:
        os.truncate(path, end)
        return 0, texts
    try:
        record = json.loads(last)["text"]
    except (ValueError, TypeError, KeyError):
        raise InputError(f"{path}:{done}: not a nerctl jsonl record, cannot resume") from None
    start = done - done % chunk_size
    read, text = 0, None
    for read, text in enumerate(itertools.islice(texts, start), 1):
        pass
    head = list(itertools.islice(texts, done - start))  # tagged again with their chunk, not written again
    read, text = read + len(head), head[-1] if head else text
    if read < done:
        raise InputError(f"{path} holds {done} records but the input has only {read} lines: "
                         "it belongs to another input")
    if text != record:
        raise InputError(f"{path}:{done} answers {record!r}, but input line {done} is {text!r}: "
                         "it belongs to another input")
    os.truncate(path, end)  # only now: a refused output is left as it was
    return done, itertools.chain(head, texts)


def spans_record(doc: "Doc") -> dict:
    """A prediction as a record both doccano ("label") and Prodigy ("spans", "tokens") import; scores kept."""
    return {
        "text": doc.text,
        "label": [[e.start, e.end, e.type] for e in doc.entities],
        "spans": [{"start": e.start, "end": e.end, "label": e.type, "text": e.text, "score": round(e.score, 4)}
                  for e in doc.entities],
        "tokens": [{"text": w.text, "start": w.start, "end": w.end, "id": i} for i, w in enumerate(doc.words)],
    }


def prediction_task(doc: "Doc", model_version: str | None) -> dict:
    """A prediction as a Label Studio pre-annotated task: data.text and one prediction."""
    return {"data": {"text": doc.text}, "predictions": [prediction(doc, model_version)]}


def prediction(doc: "Doc", model_version: str | None, from_name: str = FROM_NAME, to_name: str = TO_NAME) -> dict:
    """A Label Studio prediction: a `labels` result with its score per span; the prediction's score is
    1 - the text's uncertainty (Label Studio sorts tasks by it: least certain first, ascending)."""
    results = [result(e.start, e.end, e.text, e.type, round(e.score, 4), from_name, to_name) for e in doc.entities]
    return {"model_version": model_version or "nerctl", "score": round(1.0 - doc.uncertainty, 4), "result": results}
