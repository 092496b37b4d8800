"""`nerctl check`: what a corpus holds and whether training on it would work (spaCy's debug data, for NER).

The first file is the training file, the others held-out (dev or test)
files. Per file: the format detected, sentences, words, entities per type,
span lengths, sentences longer than the model window, spans the --misaligned
policy had to change, duplicate sentences; for held-out files also the
labels training never sees and the sentences shared with the training file
(leakage). Problems that would make training fail are `fatal`.
"""
from __future__ import annotations

import collections
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..core.errors import InputError
from .align import Tally
from .sentence import DEFAULT_WORDS, Sentence
from .tags import entity_spans, entity_type


@dataclass
class FileReport:
    """The figures of one file (see the module doc)."""

    file: str
    role: str  # train or held-out
    format: str = ""
    sentences: int = 0
    words: int = 0
    entities: dict[str, int] = field(default_factory=dict)
    span_words: dict[str, float] = field(default_factory=dict)  # min, mean, max words per span
    longer_than_window: int = 0  # sentences split into windows of the model's max_len pieces
    widened_spans: int = 0
    dropped_spans: dict[str, int] = field(default_factory=dict)  # reason -> count
    skipped_texts: int = 0  # texts without a word, tasks without an annotation, rejected records
    duplicates: int = 0  # sentences that repeat an earlier one of the file (words and tags)
    conflicting_duplicates: int = 0  # ... with the same words but other tags
    unseen_labels: list[str] = field(default_factory=list)  # held-out: types train never has
    shared_with_train: int = 0  # held-out: sentences whose words are a training sentence's
    error: str | None = None  # why the file cannot be used as it is


def file_report(path: str, role: str, fmt: str, sentences: Sequence[Sentence], tally: Tally,
                pieces: Callable[[Sequence[Sequence[str]]], list[int]], budget: int) -> FileReport:
    """The figures of one read file; `pieces` counts each sentence's word pieces, `budget` fits a window."""
    spans = [(kind, last - first) for s in sentences for kind, first, last in entity_spans(s.tags)]
    lengths = [n for _, n in spans]
    seen: dict[tuple[str, ...], tuple[str, ...]] = {}
    duplicates = conflicts = 0
    for s in sentences:
        if s.words in seen:
            duplicates += seen[s.words] == s.tags
            conflicts += seen[s.words] != s.tags
        else:
            seen[s.words] = s.tags
    return FileReport(
        path, role, fmt, len(sentences), sum(len(s) for s in sentences),
        dict(sorted(collections.Counter(kind for kind, _ in spans).items())),
        {"min": min(lengths), "mean": round(statistics.fmean(lengths), 2), "max": max(lengths)} if lengths else {},
        sum(n > budget for n in pieces([s.words for s in sentences])),
        tally.widened, dict(sorted(tally.dropped.items())), tally.empty + tally.unannotated + tally.rejected, duplicates, conflicts)


def compare_to_train(report: FileReport, sentences: Sequence[Sentence], train: Sequence[Sentence]) -> None:
    """Fill a held-out file's unseen labels and its sentences shared with training."""
    train_types = {entity_type(t) for s in train for t in s.tags}
    report.unseen_labels = sorted({entity_type(t) for s in sentences for t in s.tags} - train_types)
    train_words = {s.words for s in train}
    report.shared_with_train = sum(s.words in train_words for s in sentences)


def fatal_problems(reports: Sequence[FileReport]) -> list[str]:
    """Why training on these files would fail (empty when it would not)."""
    problems = [r.error for r in reports if r.error]
    train = reports[0]
    if not train.error and not train.entities:
        problems.append(f"{train.file}: no entity spans: there is nothing to learn")
    problems += [f"{r.file}: label(s) {', '.join(r.unseen_labels)} never occur in {train.file}: a model "
                 "trained on it cannot predict them (and training with this test file stops)"
                 for r in reports[1:] if r.unseen_labels]
    return problems


def check_files(paths: Sequence[str | Path], fmt: str, scheme: str, misaligned: str,
                pieces: Callable[[Sequence[Sequence[str]]], list[int]], budget: int, words: str = DEFAULT_WORDS
                ) -> dict[str, Any]:
    """Read and measure every file (texts without tokens split by the --words rule `words`);
    {"files": [FileReport dicts], "fatal": [reasons]}.

    A file the --misaligned policy cannot read is measured as read with drop,
    its first error kept as the reason training would fail."""
    from .formats import read_with_format

    reports, train = [], None
    for number, path in enumerate(paths):
        role, tally, error = "train" if number == 0 else "held-out", Tally(), None
        try:
            found, sentences = read_with_format(path, fmt, scheme, misaligned, lambda message: None, tally, words)
        except InputError as err:
            error, tally = str(err), Tally()
            try:  # the figures as far as they go: spans a policy could mend, dropped and counted
                found, sentences = read_with_format(path, fmt, scheme, "drop", lambda message: None, tally, words)
            except InputError:
                reports.append(FileReport(str(path), role, error=error))
                continue
        report = file_report(str(path), role, found, sentences, tally, pieces, budget)
        report.error = error
        if train is None and number == 0:
            train = sentences
        elif train is not None:
            compare_to_train(report, sentences, train)
        reports.append(report)
    return {"files": [asdict(r) for r in reports], "fatal": fatal_problems(reports)}


def render_check(result: dict[str, Any], max_len: int) -> str:
    """The report as text, a block per file, then the verdict."""
    lines = []
    for r in result["files"]:
        lines.append(f"{r['file']} ({r['role']})")
        rows = []
        if r["format"]:
            spans, dropped = r["span_words"], r["dropped_spans"]
            rows += [("format", r["format"]), ("sentences, words", f"{r['sentences']}, {r['words']}"),
                     ("entities", f"{sum(r['entities'].values())}: "
                      + ", ".join(f"{k} {v}" for k, v in r["entities"].items())),
                     ("words per span", f"min {spans['min']}, mean {spans['mean']}, max {spans['max']}" if spans else "-"),
                     (f"over {max_len} pieces", f"{r['longer_than_window']} sentences (windowed, not cut)"),
                     ("duplicates", f"{r['duplicates']} with the same tags, {r['conflicting_duplicates']} with other tags"),
                     ("spans changed", f"{r['widened_spans']} widened, {sum(dropped.values())} dropped"
                      + "".join(f", {n} {k}" for k, n in dropped.items())),
                     ("skipped", f"{r['skipped_texts']} texts (no word, no annotation, or rejected)")]
            if r["role"] == "held-out":
                rows += [("shared with train", f"{r['shared_with_train']} sentences (leakage)"),
                         ("labels not in train", ", ".join(r["unseen_labels"]) or "-")]
        if r["error"]:
            rows.append(("error", r["error"]))
        lines += [f"  {name:<20}{value}" for name, value in rows]
    lines.append("usable for training" if not result["fatal"] else f"not usable: {len(result['fatal'])} problem(s)")
    return "\n".join(lines) + "\n"
