"""Scoring: seqeval entity precision/recall/F1 (micro, strict IOB2) and token accuracy."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..data.sentence import Sentence
from ..inference.tagger import Progress, Tagger
from .calibration import score_calibration


def score(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Entity-level micro P/R/F1 (strict IOB2), per type, and token accuracy over real words.

    Token accuracy counts each word once (never padding or extra word pieces);
    it is reported for comparison with the tutorial, not as the headline.
    """
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    gold, pred = [list(g) for g in gold], [list(p) for p in pred]
    report = classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    words = sum(len(g) for g in gold)
    correct = sum(a == b for g, p in zip(gold, pred) for a, b in zip(g, p))
    overall = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
    per_type = {
        name: {"precision": r["precision"], "recall": r["recall"], "f1": r["f1-score"], "support": int(r["support"])}
        for name, r in sorted(report.items())
        if not name.endswith(" avg")
    }
    return {
        "precision": float(overall["precision"]),
        "recall": float(overall["recall"]),
        "f1": float(overall["f1-score"]),
        "token_accuracy": correct / words if words else 0.0,
        "sentences": len(gold),
        "entities": int(overall["support"]),
        "per_type": per_type,
    }


def evaluate_sentences(tagger: Tagger, sentences: Sequence[Sentence], progress: Progress | None = None) -> tuple[dict, list[list[str]]]:
    """Tag `sentences` and score them against their gold tags; also return the tags.

    Besides `score`'s figures, "calibration": how well the span scores match
    how often spans are right, and precision/recall at a few min scores
    (calibration.score_calibration)."""
    decoded = tagger.decode(tagger.word_probabilities([s.words for s in sentences], progress))
    gold, pred = [s.tags for s in sentences], [d.tags for d in decoded]
    return {**score(gold, pred), "calibration": score_calibration(gold, decoded)}, pred


def tag_and_score_file(tagger: Tagger, path: str | Path, fmt: str = "auto", progress: Progress | None = None,
                       scheme: str = "auto", misaligned: str = "error") -> tuple[list[Sentence], list[list[str]], dict]:
    """Read a tagged file (any format, see `formats.read_corpus`; texts without tokens split by the
    tagger's --words rule), check its tags against the run's label map, tag and score it.

    Returns the gold sentences, the predicted tags and the metrics."""
    from ..data.formats import read_corpus

    sentences = read_corpus(path, fmt, scheme, misaligned, words=tagger.words)
    tagger.label_map.check(sentences, path)
    metrics, pred = evaluate_sentences(tagger, sentences, progress)
    return sentences, pred, metrics


def evaluate_file(tagger: Tagger, path: str | Path, fmt: str = "auto", progress: Progress | None = None,
                  worst: int = 0, scheme: str = "auto", misaligned: str = "error") -> dict:
    """Score a tagged file (see `tag_and_score_file`).

    With `worst` > 0, "worst" lists that many sentences with the most span errors
    (see `analysis.SentenceErrors.to_dict`)."""
    sentences, pred, metrics = tag_and_score_file(tagger, path, fmt, progress, scheme, misaligned)
    out = {"file": str(path), **metrics}
    if tagger.engine is not None:  # which engine produced these scores (see Tagger.from_run)
        out["engine"] = tagger.engine.to_dict()
    if worst:
        from .analysis import worst_sentences

        out["worst"] = [e.to_dict() for e in worst_sentences(sentences, pred, worst)]
    return out
