"""`predict` as a library function: where texts come from, how they are tagged, where results go.

The CLI only parses options and draws the terminal table; every decision a
library user would also need (which reader, in memory or streamed, which sink,
what may be resumed) is made here.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Sequence

from ..core.choices import OUTPUT_FORMATS, RESUME_FORMATS, STREAM_FORMATS
from ..core.errors import InputError
from ..data.formats import INPUT_FORMATS, format_for_suffix
from ..data.sources import is_regular_file
from ..data.texts import count_lines, iter_texts
from .output import log_dropped, open_output, render, stream_to
from .tagger import CHUNK_TEXTS, Doc, Tagger


@dataclass(frozen=True)
class PredictJob:
    """What to tag and where to write it, checked; made by `plan_predict`."""

    texts: tuple[str, ...]  # texts given directly (empty when `source` is set)
    source: str | None  # a file, "-" for stdin, or None
    fmt: str  # one of OUTPUT_FORMATS
    output: Path | None  # None: stdout
    resume: bool
    tagged_input: bool  # `source` is a tagged file: tag its words, keep its gold tags
    data_format: str = "auto"  # a tagged file's format (formats.read_corpus), its scheme and misaligned policy
    scheme: str = "auto"
    misaligned: str = "error"

    @property
    def in_memory(self) -> bool:
        """table, json and tagged input are tagged whole; the stream formats of text go chunk by chunk."""
        return self.tagged_input or self.fmt not in STREAM_FORMATS


def plan_predict(texts: Sequence[str] = (), file: str | Path | None = None, fmt: str | None = None,
                 output: str | Path | None = None, resume: bool = False, input_format: str = "auto",
                 stdout_is_terminal: bool = False, scheme: str = "auto", misaligned: str = "error") -> PredictJob:
    """Check the request and settle its defaults; every refusal is an InputError.

    `texts == ["-"]` reads stdin. `fmt` None is table on a terminal, else jsonl.
    """
    texts = list(texts)
    if input_format not in INPUT_FORMATS:
        raise InputError(f"unknown input format {input_format!r}: choose one of {', '.join(INPUT_FORMATS)}")
    if file is not None and texts:
        raise InputError("give texts or --file, not both")
    source = str(file) if file is not None else ("-" if texts == ["-"] else None)
    if source is None and not texts:
        raise InputError("nothing to tag: give texts, --file FILE, or '-' for stdin")
    tagged = source not in (None, "-") and input_format != "text" and (
        input_format != "auto" or Path(source).is_dir() or format_for_suffix(source) is not None)
    fmt = fmt or ("table" if output is None and stdout_is_terminal else "jsonl")
    if fmt not in OUTPUT_FORMATS:
        raise InputError(f"unknown output format {fmt!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
    output = Path(output) if output is not None else None
    if output is not None and fmt not in STREAM_FORMATS:
        raise InputError(f"--output writes {', '.join(STREAM_FORMATS[:-1])} or {STREAM_FORMATS[-1]}, not {fmt}")
    if output is not None and source not in (None, "-") and output.resolve() == Path(source).resolve():
        raise InputError(f"--output {output} is the input file")
    if resume and (output is None or fmt not in RESUME_FORMATS or tagged):
        raise InputError(f"--resume needs --output FILE, --format {' or '.join(RESUME_FORMATS)} and text input")
    return PredictJob(tuple(texts) if source is None else (), source, fmt, output, resume, tagged,
                      input_format if tagged else "auto", scheme, misaligned)


def tag_corpus_file(tagger: Tagger, job: PredictJob, progress=None) -> list[Doc]:
    """Tag the words of a tagged file, its gold tags kept beside the predicted ones.

    Offsets index the file's own text where it has one (JSONL, Label Studio),
    else the words joined by spaces."""
    from ..data.align import sentence_words
    from ..data.formats import read_corpus

    sentences = read_corpus(job.source, job.data_format, job.scheme, job.misaligned, words=tagger.words)
    joined = [sentence_words(s) for s in sentences]
    return tagger.tag_words([t for t, _ in joined], [w for _, w in joined], gold=[s.tags for s in sentences],
                            progress=progress)


def run_predict(tagger: Tagger, job: PredictJob, reporter=None, stdin: IO | None = None) -> list[Doc] | None:
    """Tag as `job` says. Returns the results for a table (the caller draws it); else writes them, returns None."""
    from ..core.progress import Reporter

    reporter = reporter or Reporter()
    stdin = stdin if stdin is not None else sys.stdin
    if job.tagged_input:
        with reporter.counter("tagging") as progress:
            return _written(tagger, job, tag_corpus_file(tagger, job, progress), reporter)
    lines: Iterator[str] = iter_texts(job.source, stdin) if job.source is not None else iter(job.texts)
    if not job.in_memory:
        # A pipe can be read once only: it is not counted first.
        total = len(job.texts) if not job.source else count_lines(job.source) if is_regular_file(job.source) else None
        # Someone typing lines wants each answered at once, not after 2,048 of them.
        chunk = 1 if job.source == "-" and stdin.isatty() else CHUNK_TEXTS
        stream_to(tagger, lines, job.output, job.fmt, resume=job.resume, chunk_size=chunk, total=total,
                  reporter=reporter)
        return None
    with reporter.counter("tagging") as progress:
        results = tagger.tag_texts(list(lines), progress)
    return _written(tagger, job, results, reporter)


def _written(tagger: Tagger, job: PredictJob, results: list[Doc], reporter) -> list[Doc] | None:
    """The results for a table (the caller draws it); else written in the job's format, None."""
    log_dropped(tagger, sum(d.dropped for d in results), reporter)
    if job.fmt == "table":
        return results
    with open_output(job.output) as out:
        out.write(render(results, job.fmt, tagger))
        out.flush()  # here, where the CLI's error handling sees a closed pipe
    return None
