"""Whether scores mean what they say: reliability bins, the expected calibration error, a temperature fit.

A predicted span is right when the gold tags hold exactly it (type, first and
last word), as strict entity F1 counts it. `reliability` bins spans by score and compares each bin's mean score with the
share of its spans that were right; the ECE weighs those gaps by the bins'
span counts. `fit_temperature` finds the single temperature T that, dividing
the word log-probabilities before forward-backward (posterior.py), gives the
gold tag sequences of a held-out split their highest likelihood: T > 1 softens
over-confident scores, T < 1 sharpens under-confident ones. Viterbi's tags do
not depend on it when it is applied to the posteriors only.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..data.sentence import Sentence
from ..data.tags import entity_spans
from ..inference.posterior import log_emissions, path_log_score, posteriors
from ..inference.tagger import Decoded, Tagger

BINS = 10
THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95)  # the min scores `evaluate` shows precision and recall at


def span_outcomes(gold: Sequence[Sequence[str]], decoded: Sequence[Decoded]) -> tuple[list[float], list[bool], int]:
    """Every predicted span's score and whether it is right, and the number of gold spans."""
    scores, right, total = [], [], 0
    for tags, d in zip(gold, decoded):
        truth = set(entity_spans(tags))
        total += len(truth)
        for span, score in zip(entity_spans(d.tags), d.span_scores):
            scores.append(score)
            right.append(span in truth)
    return scores, right, total


def at_thresholds(scores: Sequence[float], right: Sequence[bool], gold_spans: int,
                  thresholds: Sequence[float] = THRESHOLDS) -> list[dict]:
    """Precision and recall of the spans scored at least each threshold (`--min-score`'s effect)."""
    scores_a, right_a = np.asarray(scores, dtype=float), np.asarray(right, dtype=bool)
    rows = []
    for cut in thresholds:
        kept = scores_a >= cut
        hits = int((kept & right_a).sum())
        rows.append({"min_score": cut, "spans": int(kept.sum()),
                     "precision": hits / int(kept.sum()) if kept.any() else 0.0,
                     "recall": hits / gold_spans if gold_spans else 0.0})
    return rows


def score_calibration(gold: Sequence[Sequence[str]], decoded: Sequence[Decoded]) -> dict:
    """The spans' ECE and reliability bins, and precision/recall at THRESHOLDS: what `evaluate` adds."""
    scores, right, total = span_outcomes(gold, decoded)
    bins, ece = reliability(scores, right)
    return {"ece": round(ece, 4), "spans": len(scores), "bins": bins,
            "thresholds": at_thresholds(scores, right, total)}


def reliability(scores: Sequence[float], right: Sequence[bool], bins: int = BINS) -> tuple[list[dict], float]:
    """Per equal-width score bin with spans: their number, mean score and share right; and the ECE."""
    scores_a, right_a = np.asarray(scores, dtype=float), np.asarray(right, dtype=float)
    which = np.minimum((scores_a * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            mean, share = float(scores_a[inside].mean()), float(right_a[inside].mean())
            rows.append({"bin": [b / bins, (b + 1) / bins], "spans": int(inside.sum()),
                         "mean_score": round(mean, 4), "precision": round(share, 4)})
            ece += inside.sum() / len(scores_a) * abs(mean - share)
    return rows, float(ece)


def sequence_nll(emit: Sequence[np.ndarray], gold: Sequence[Sequence[int]], transition: np.ndarray,
                 start: np.ndarray, final: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the gold tag sequences with the emissions divided by `temperature`."""
    scaled = [e / temperature for e in emit]
    total = 0.0
    for e, tags, posterior in zip(scaled, gold, posteriors(scaled, transition, start, final)):
        if posterior is not None:
            total += posterior.log_z - path_log_score(e, tags, transition, start, final)
    return total / max(1, sum(len(t) > 0 for t in gold))


def fit_temperature(emit: Sequence[np.ndarray], gold: Sequence[Sequence[int]], transition: np.ndarray,
                    start: np.ndarray, final: np.ndarray, low: float = 0.25, high: float = 4.0,
                    steps: int = 30) -> float:
    """The temperature in [low, high] with the lowest `sequence_nll`: golden-section search on log T."""
    def loss(log_t: float) -> float:
        return sequence_nll(emit, gold, transition, start, final, math.exp(log_t))

    ratio = (math.sqrt(5) - 1) / 2
    a, b = math.log(low), math.log(high)
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    loss_c, loss_d = loss(c), loss(d)
    for _ in range(steps):
        if loss_c < loss_d:
            b, d, loss_d = d, c, loss_c
            c = b - ratio * (b - a)
            loss_c = loss(c)
        else:
            a, c, loss_c = c, d, loss_d
            d = a + ratio * (b - a)
            loss_d = loss(d)
    return math.exp((a + b) / 2)


def calibrate(tagger: Tagger, sentences: Sequence[Sentence]) -> dict:
    """Fit the temperature of `tagger`'s scores on tagged `sentences` (a run's dev split).

    Returns calibration.json's record: the temperature, and the sentences' NLL
    and span ECE at temperature 1 and at the fitted one. Sentences whose gold
    tags the chain forbids (none, for valid IOB2) are left out of the fit."""
    ids_of, chain = tagger.label_map.label2id, tagger.score_chain()
    probs = tagger.word_probabilities([s.words for s in sentences])
    emit = log_emissions(probs)
    gold = [[ids_of[t] for t in s.tags] for s in sentences]
    usable = [i for i, (e, g) in enumerate(zip(emit, gold))
              if g and np.isfinite(path_log_score(e, g, *chain))]
    emit, gold = [emit[i] for i in usable], [gold[i] for i in usable]
    temperature = round(fit_temperature(emit, gold, *chain), 4)
    record: dict = {"temperature": temperature, "fitted_on": len(usable)}
    for name, t in (("before", 1.0), ("after", temperature)):
        decoded = tagger.with_scoring(temperature=t, min_score=0.0).decode(probs)
        _, ece = reliability(*span_outcomes([s.tags for s in sentences], decoded)[:2])
        record[f"nll_{name}"] = round(sequence_nll(emit, gold, *chain, temperature=t), 4)
        record[f"ece_{name}"] = round(ece, 4)
    return record
