"""Tagging: words or raw text in, one tag per word and well-formed entity spans out.

The `Tagger` is shared by training (dev scoring), `evaluate` and `predict`, so
all three see exactly the same windows, batches and decoding.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, ContextManager, Iterable, Iterator, Sequence, TextIO

import numpy as np

from .bio import repair_bio
from .errors import InputError
from .preprocess import Encoder, LabelMap, PieceTokenizer, Word, batch_plan, collate, merge_windows, split_words
from .rundir import RunDir

OUTPUT_FORMATS = ("table", "json", "jsonl", "conll")
DECODERS = ("viterbi", "argmax")
Progress = Callable[[int, int], None]  # (windows just done, total windows)


@dataclass
class Entity:
    type: str
    text: str
    start: int  # character offsets into the original text
    end: int
    score: float  # mean probability of the span's word tags


@dataclass
class TaggedText:
    text: str
    words: list[Word]
    tags: list[str]
    scores: list[float]
    entities: list[Entity] = field(default_factory=list)
    gold: list[str] | None = None  # gold tags, when the input was a tagged file

    def to_dict(self) -> dict:
        out = {
            "text": self.text,
            "entities": [{"type": e.type, "text": e.text, "start": e.start, "end": e.end, "score": round(e.score, 4)}
                         for e in self.entities],
            "words": [
                {"word": w.text, "start": w.start, "end": w.end, "tag": t, "score": round(s, 4)}
                for w, t, s in zip(self.words, self.tags, self.scores)
            ],
        }
        if self.gold is not None:
            for word, gold in zip(out["words"], self.gold):
                word["gold"] = gold
        return out


@functools.lru_cache(maxsize=8)
def _iob2_scores(labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(transition, start): 0 where IOB2 allows a label (after another / first), else -inf."""
    k = len(labels)
    inside = [label.startswith("I-") for label in labels]
    # allowed[i, j]: label j may follow label i
    allowed = np.array([[not inside[j] or (labels[i] != "O" and labels[i][2:] == labels[j][2:])
                         for j in range(k)] for i in range(k)])
    return np.where(allowed, 0.0, -np.inf), np.where(inside, -np.inf, 0.0)


def viterbi_iob2(log_probs: Sequence[np.ndarray], labels: Sequence[str], group: int = 256) -> list[list[int]]:
    """Per sentence, the most probable label sequence in which every I-X follows B-X or I-X.

    Argmax per word can emit I-X after O; constrained decoding picks the best
    sequence that is valid IOB2 instead of repairing one afterwards.
    `log_probs[i]` is [words, labels]. Sentences of similar length are decoded
    together, `group` at a time, as arrays: one numpy step per word position
    rather than per word of every sentence.
    """
    transition, start = _iob2_scores(tuple(labels))
    lengths = np.array([len(p) for p in log_probs], dtype=np.int64)
    best: list[list[int]] = [[] for _ in log_probs]
    order = [i for i in np.argsort(lengths, kind="stable") if lengths[i] > 0]
    for g in range(0, len(order), group):
        members = order[g : g + group]
        steps = int(lengths[members[-1]])  # the longest of the group (sorted by length)
        scores = np.zeros((len(members), steps, len(labels)))
        for row, i in enumerate(members):
            scores[row, : lengths[i]] = log_probs[i]
        total = scores[:, 0] + start
        back = np.zeros((len(members), steps, len(labels)), dtype=np.int64)
        last = np.empty_like(total)  # each sentence's scores at its own last word
        ends = lengths[members]
        for t in range(steps):
            if t:
                candidates = total[:, :, None] + transition  # [sentence, from, to]
                back[:, t] = candidates.argmax(axis=1)
                total = candidates.max(axis=1) + scores[:, t]
            done = ends == t + 1
            last[done] = total[done]
        for row, i in enumerate(members):
            path = [int(last[row].argmax())]
            for t in range(int(ends[row]) - 1, 0, -1):
                path.append(int(back[row, t, path[-1]]))
            best[i] = path[::-1]
    return best


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first word, last word + 1) for each span of a valid IOB2 sequence."""
    spans: list[tuple[str, int, int]] = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-"):
            spans.append((tag[2:], i, i + 1))
        elif tag.startswith("I-") and spans and spans[-1][2] == i and spans[-1][0] == tag[2:]:
            spans[-1] = (tag[2:], spans[-1][1], i + 1)
    return spans


def words_from_tokens(tokens: Sequence[str]) -> tuple[str, list[Word]]:
    """Join pre-split words with spaces, keeping each word's offsets in the result."""
    words, pos = [], 0
    for token in tokens:
        words.append(Word(token, pos, pos + len(token)))
        pos += len(token) + 1
    return " ".join(tokens), words


class Tagger:
    """A network with its tokenizer and label map, ready to tag.

    `forward` is a `serving.KerasForward` (training's model) or a
    `serving.LiteForward` (a finished run's export).
    """

    def __init__(self, forward, tokenizer: PieceTokenizer, label_map: LabelMap, max_len: int,
                 batch_size: int = 64, decoder: str = "viterbi"):
        if decoder not in DECODERS:
            raise InputError(f"unknown decoder {decoder!r}: choose one of {', '.join(DECODERS)}")
        if forward.num_labels != len(label_map.labels):
            raise InputError(f"the model has {forward.num_labels} labels, the label map {len(label_map.labels)}")
        self.decoder = decoder
        self.forward = forward
        self.label_map = label_map
        self.encoder = Encoder(tokenizer, max_len, label_map)
        self.batch_size = batch_size

    @classmethod
    def from_run(cls, run: RunDir, batch_size: int | None = None, precision: str = "auto") -> "Tagger":
        """The run's exported LiteRT model (fp32), or its best/ model built with Keras.

        Keras serves `precision="bf16"` (LiteRT runs fp32) and runs exported by
        nerctl versions before model.tflite existed.
        """
        config = json.loads(run.config.read_text(encoding="utf-8"))
        label_map = LabelMap.load(run.labels)
        if precision != "bf16" and run.tflite.is_file():
            from .serving import LiteForward

            forward, source = LiteForward(run.tflite), run.tflite.name
            matches = forward.num_labels == len(label_map.labels)  # the flatbuffer holds no label names
        else:
            from .model import load_trained_model, resolve_precision
            from .serving import KerasForward

            model = load_trained_model(run.best, resolve_precision(precision))
            forward, source = KerasForward(model), run.best.name + "/"
            matches = tuple(model.config.id2label[i] for i in range(model.config.num_labels)) == label_map.labels
        if not matches:
            raise InputError(f"{run.path}: labels.json ({len(label_map.labels)} labels) does not match "
                             f"the model in {source} ({forward.num_labels} labels)")
        tokenizer = PieceTokenizer.from_folder(run.tokenizer)
        return cls(forward, tokenizer, label_map, config["max_len"], batch_size or config.get("eval_batch_size", 64))

    def word_probabilities(self, sentences: Sequence[Sequence[str]], progress: Progress | None = None
                           ) -> list[np.ndarray]:
        """Per sentence, a [words, labels] array of tag probabilities.

        `progress(done, total)` is called after each batch with the sentences it
        finished (a long sentence's windows may sit in several batches) and the
        number of sentences.
        """
        windows = self.encoder.encode(sentences)
        plan = batch_plan(windows, self.batch_size)
        outputs: list[np.ndarray | None] = [None] * len(windows)
        windows_left = collections.Counter(w.sentence for w in windows)
        for indices in plan:
            batch = collate(windows, indices, self.encoder.pad_id)
            probs = self.forward(batch.input_ids, batch.attention_mask, len(plan))
            finished = 0
            for row, k in enumerate(batch.windows):
                outputs[k] = probs[row, : len(windows[k].input_ids)]
                windows_left[windows[k].sentence] -= 1
                finished += windows_left[windows[k].sentence] == 0
            if progress:
                progress(finished, len(windows_left))
        return merge_windows(windows, outputs, [len(s) for s in sentences])

    def decode(self, probs: Sequence[np.ndarray]) -> list[tuple[list[str], list[float]]]:
        """Per sentence, tags and their probabilities: the best valid IOB2 sequence."""
        if self.decoder == "viterbi":
            ids = viterbi_iob2([np.log(np.maximum(p, 1e-12)) for p in probs], self.label_map.labels)
        else:
            ids = [p.argmax(axis=-1).tolist() for p in probs]
        labels = self.label_map.labels
        return [(repair_bio([labels[i] for i in row]), [float(p[w, i]) for w, i in enumerate(row)])
                for p, row in zip(probs, ids)]

    def predict_words(self, sentences: Sequence[Sequence[str]], progress: Progress | None = None
                      ) -> list[tuple[list[str], list[float]]]:
        """Tags (valid IOB2) and their probabilities for each sentence's words."""
        return self.decode(self.word_probabilities(sentences, progress))

    def tag_words(self, texts: Sequence[str], word_lists: Sequence[list[Word]], gold=None,
                  progress: Progress | None = None) -> list[TaggedText]:
        predictions = self.predict_words([[w.text for w in words] for words in word_lists], progress)
        out = []
        for i, (text, words, (tags, scores)) in enumerate(zip(texts, word_lists, predictions)):
            entities = [
                Entity(kind, text[words[a].start : words[b - 1].end], words[a].start, words[b - 1].end,
                       float(np.mean(scores[a:b])))
                for kind, a, b in entity_spans(tags)
            ]
            out.append(TaggedText(text, words, tags, scores, entities, gold[i] if gold else None))
        return out

    def tag_texts(self, texts: Sequence[str], progress: Progress | None = None) -> list[TaggedText]:
        """Tag raw strings; offsets refer to each original string."""
        return self.tag_words(texts, [split_words(t) for t in texts], progress=progress)


# ---------------------------------------------------------------- output


def render(results: Iterable[TaggedText], fmt: str) -> str:
    """Text for stdout in one of OUTPUT_FORMATS ('table' is rendered by the CLI)."""
    results = list(results)
    if fmt == "jsonl":
        return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in results)
    if fmt == "json":
        return json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2) + "\n"
    if fmt == "conll":
        lines = []
        for r in results:
            for i, (w, t) in enumerate(zip(r.words, r.tags)):
                lines.append("\t".join((w.text, r.gold[i], t) if r.gold is not None else (w.text, t)))
            lines.append("")
        return "\n".join(lines) + ("\n" if lines else "")
    raise ValueError(f"unknown format {fmt}")


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
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: {'is a directory' if p.is_dir() else 'no such file'}")
    return _decoded(str(path), _binary_lines(p))


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


# ---------------------------------------------------------------- streaming

CHUNK_TEXTS = 2048  # texts tagged together: 32 length-sorted batches of 64, a few MB of results
STREAM_FORMATS = ("jsonl", "conll")  # one record after another: written chunk by chunk
RESUME_FORMATS = ("jsonl",)  # each record names its text, so a resume can check it


def tag_stream(tagger: Tagger, texts: Iterable[str], chunk_size: int = CHUNK_TEXTS
               ) -> Iterator[list[TaggedText]]:
    """Tag `texts` (any iterable, read lazily) `chunk_size` at a time; yield each chunk's results in order.

    Memory is bounded by the chunk, not the input. Within a chunk `Tagger`
    sorts texts by length into batches, so chunks should hold many batches.
    Chain the chunks (itertools.chain.from_iterable) for one result at a time.
    """
    texts = iter(texts)
    while chunk := list(itertools.islice(texts, chunk_size)):
        yield tagger.tag_texts(chunk)


def write_stream(tagger: Tagger, texts: Iterable[str], sink: TextIO, fmt: str = "jsonl",
                 chunk_size: int = CHUNK_TEXTS, progress: Callable[[int], None] | None = None, done: int = 0) -> int:
    """Tag `texts` and write them to `sink` in `fmt`, one flushed chunk at a time; return how many were written.

    A killed job leaves every finished chunk in `sink` and at most a partial
    last record. `progress(n)` is called with the records of each chunk written.
    `done`, with the texts from `resume_output`: records already in `sink`.
    """
    if fmt not in STREAM_FORMATS:
        raise InputError(f"format {fmt} cannot be streamed: choose one of {', '.join(STREAM_FORMATS)}")
    written, drop = 0, done % chunk_size  # the already written head of a resumed chunk
    for results in tag_stream(tagger, texts, chunk_size):
        results, drop = results[drop:], 0
        sink.write(render(results, fmt))
        sink.flush()
        written += len(results)
        if progress:
            progress(len(results))
    return written


def stream_to(tagger: Tagger, texts: Iterable[str], output: str | Path | None, fmt: str = "jsonl", *,
              resume: bool = False, chunk_size: int = CHUNK_TEXTS, total: int | None = None, reporter=None) -> int:
    """Tag `texts` into the file `output` (stdout if None) chunk by chunk; return the records written.

    `resume` continues an interrupted `output` (see `resume_output`; the same
    `chunk_size` must be used by both). `total`, the input's line count when
    known, sizes the progress bar (a `progress.Reporter`'s, on stderr).
    """
    from .progress import Reporter

    if resume and output is None:
        raise InputError("resuming needs an output file")
    reporter = reporter or Reporter()
    done, texts = resume_output(output, texts, chunk_size) if resume else (0, iter(texts))
    if done:
        reporter.log(f"resuming: {done} lines already in {output}")
    remaining = None if total is None else max(total - done, 0)
    with open_output(output, append=resume) as out, reporter.task("tagging", remaining, unit="sentences") as bar:
        return write_stream(tagger, texts, out, fmt, chunk_size, progress=bar.advance, done=done)


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
