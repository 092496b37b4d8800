"""Looking at predictions: which sentences went wrong, and which types get confused.

Plain data (no plotting, no terminal styling), shared by `nerctl evaluate
--errors` and `nerctl report`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..data.sentence import Sentence
from ..data.tags import Span, entity_spans, entity_type


@dataclass
class SentenceErrors:
    sentence: Sentence
    pred: list[str]
    gold_spans: list[Span]
    pred_spans: list[Span]

    @property
    def missed(self) -> list[Span]:
        """Gold spans the prediction does not have exactly (type and both ends)."""
        return [s for s in self.gold_spans if s not in set(self.pred_spans)]

    @property
    def spurious(self) -> list[Span]:
        """Predicted spans that are not exactly a gold span."""
        return [s for s in self.pred_spans if s not in set(self.gold_spans)]

    @property
    def errors(self) -> int:
        """Span errors, as strict entity scoring counts them: misses plus false alarms."""
        return len(self.missed) + len(self.spurious)

    def to_dict(self) -> dict:
        words = self.sentence.words

        def spans(items: list[Span]) -> list[dict]:
            return [{"type": t, "text": " ".join(words[a:b]), "start_word": a, "end_word": b} for t, a, b in items]

        return {"source": self.sentence.source, "line": self.sentence.line, "words": list(words),
                "gold": list(self.sentence.tags), "pred": self.pred, "errors": self.errors,
                "missed": spans(self.missed), "spurious": spans(self.spurious)}


def worst_sentences(sentences: Sequence[Sentence], pred: Sequence[Sequence[str]], n: int) -> list[SentenceErrors]:
    """The `n` sentences with the most span errors (ties: the earlier in the file first); none without errors."""
    scored = [SentenceErrors(s, list(p), entity_spans(s.tags), entity_spans(p)) for s, p in zip(sentences, pred)]
    ranked = sorted((e for e in scored if e.errors), key=lambda e: -e.errors)  # stable: file order within ties
    return ranked[:n]


def segments(words: Sequence[str], tags: Sequence[str], other_tags: Sequence[str]
             ) -> list[tuple[str, str | None, bool]]:
    """The sentence cut into (text, span type or None, whether `other_tags` has that exact span).

    For showing gold against predicted spans (and back) in a terminal or a page."""
    others = set(entity_spans(other_tags))
    spans = {a: (kind, b) for kind, a, b in entity_spans(tags)}
    out, i = [], 0
    while i < len(words):
        if i in spans:
            kind, end = spans[i]
            out.append((" ".join(words[i:end]), kind, (kind, i, end) in others))
            i = end
        else:
            out.append((words[i], None, False))
            i += 1
    return out


def type_confusion(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> tuple[list[str], np.ndarray]:
    """Word-level counts of (gold type, predicted type), "O" included; types sorted, "O" last."""
    pairs = [(entity_type(g), entity_type(p)) for gs, ps in zip(gold, pred) for g, p in zip(gs, ps)]
    types = sorted({t for pair in pairs for t in pair} - {"O"}) + ["O"]
    index = {t: i for i, t in enumerate(types)}
    counts = np.zeros((len(types), len(types)), dtype=np.int64)
    for g, p in pairs:
        counts[index[g], index[p]] += 1
    return types, counts


def row_normalised(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its total (rows without words stay 0)."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
