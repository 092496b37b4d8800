"""Whether scores mean what they say: reliability bins, the expected calibration error, a temperature fit.

`reliability` bins spans by score and compares each bin's mean score with the
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

from ..inference.posterior import posteriors

BINS = 10


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
        if posterior is None:
            continue
        path = np.asarray(tags)
        score = start[path[0]] + final[path[-1]] + e[np.arange(len(path)), path].sum()
        score += transition[path[:-1], path[1:]].sum()
        total += posterior.log_z - score
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
