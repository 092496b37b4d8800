"""Posterior probabilities under the model Viterbi decodes: each word's tag marginals, each span's probability.

A tag sequence y of n words scores start(y_0) + sum_i emit_i(y_i) + sum_i trans(y_i-1, y_i) + end(y_n-1):
`emit` the per-word log-probabilities, `trans`/`start` the IOB2 constraints (-inf where a tag may not
follow) plus a CRF head's learned scores (decode.scores_of). Forward-backward in log space sums over
every valid sequence: alpha_i(t) over the words up to i ending in t, beta_i(t) over the words after i
given t at i, log Z over everything. A word's marginal is exp(alpha + beta - log Z); the probability
that exactly the span X over words a..b-1 is in the sequence (B-X at a, I-X after it, then no I-X) is
one path's sum through it, computed from the same quantities, and a whole tag sequence's probability
is its score less log Z. Sentences of similar length are done together as [sentence, position, label]
arrays, as Viterbi does.

`independent_chain` is the chain of a model without transitions (a softmax head, or argmax decoding):
its posteriors are each word's softmax, and a span's probability that of words tagged on their own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .decode import length_groups


@dataclass
class Posterior:
    """One sentence's forward-backward quantities (log space) and the scores it was computed from."""

    emit: np.ndarray  # [words, labels]
    alpha: np.ndarray  # [words, labels]
    beta: np.ndarray  # [words, labels]
    log_z: float

    def path_probability(self, path: Sequence[int], transition: np.ndarray, start: np.ndarray,
                         final: np.ndarray) -> float:
        """P(the whole tag sequence is `path` | the text)."""
        return float(np.exp(path_log_score(self.emit, path, transition, start, final) - self.log_z))

    @property
    def marginals(self) -> np.ndarray:
        """[words, labels]: P(tag of word i = t | the text); each row sums to 1."""
        return np.exp(self.alpha + self.beta - self.log_z)

    def span_probability(self, begin: int, inside: int, first: int, end: int, transition: np.ndarray,
                         final: np.ndarray) -> float:
        """P(label `begin` at `first`, `inside` at first+1 .. end-1, and no `inside` at `end`)."""
        score, last = float(self.alpha[first, begin]), begin if end == first + 1 else inside
        if end > first + 1:  # the I- words: entered from B- once, then from I-
            score += float(transition[begin, inside] + (end - first - 2) * transition[inside, inside]
                           + self.emit[first + 1 : end, inside].sum())
        if end == len(self.emit):
            score += float(final[last])
        else:  # any next tag but a continuation
            after = transition[last] + self.emit[end] + self.beta[end]
            after[inside] = -np.inf
            score += float(np.logaddexp.reduce(after))
        return float(np.exp(score - self.log_z))


def log_emissions(probs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per sentence, the log of each word's tag probabilities, the emissions Viterbi and the posterior take;
    floored at 1e-12, so that a tag the model gives 0 keeps a finite score."""
    return [np.log(np.maximum(p, 1e-12)) for p in probs]


def posteriors(emit: Sequence[np.ndarray], transition: np.ndarray, start: np.ndarray, final: np.ndarray,
               group: int = 256) -> list[Posterior | None]:
    """Per sentence, its Posterior (None for a sentence without words)."""
    out: list[Posterior | None] = [None] * len(emit)
    for members in length_groups(emit, group):
        for i, posterior in zip(members, _group([emit[i] for i in members], transition, start, final)):
            out[i] = posterior
    return out


def _group(emit: list[np.ndarray], transition: np.ndarray, start: np.ndarray, final: np.ndarray
           ) -> list[Posterior]:
    """Forward-backward over sentences sorted by length, as one [sentence, position, label] array.

    In probability space, each step rescaled to sum 1 (the scales' logs summed give log Z):
    products and sums instead of an exp and a log of every [sentence, label, label] term.
    The sums are einsum's, one sentence's terms at a time, not a BLAS matrix product, whose
    rounding depends on how many sentences share the group: a sentence's scores stay the
    same whatever it is decoded with (tests/test_predict.py checks it).
    """
    lengths = np.array([len(e) for e in emit], dtype=np.int64)
    steps, k, rows = int(lengths[-1]), transition.shape[0], np.arange(len(emit))
    probs = np.ones((len(emit), steps, k))  # past a sentence's end: 1, so no scale there is 0
    for row, e in enumerate(emit):
        probs[row, : len(e)] = np.exp(e)
    moves, first, last = np.exp(transition), np.exp(start), np.exp(final)
    alpha, beta, scale = np.empty_like(probs), np.empty_like(probs), np.empty((len(emit), steps))
    forward = first * probs[:, 0]
    for t in range(steps):
        if t:
            forward = np.einsum("si,ij->sj", forward, moves) * probs[:, t]
        scale[:, t] = forward.sum(axis=1)
        alpha[:, t] = forward = forward / scale[:, t, None]
    backward = np.ones((len(emit), k))
    for t in range(steps - 1, -1, -1):
        ends_here = lengths == t + 1
        if t + 1 < steps:
            backward = np.einsum("sj,ij->si", backward * probs[:, t + 1], moves) / scale[:, t + 1, None]
        backward[ends_here] = last
        beta[:, t] = backward
    with np.errstate(divide="ignore"):
        log_scale = np.cumsum(np.log(scale), axis=1)  # log of the scales up to each position
        finish = np.log((alpha[rows, lengths - 1] * last).sum(axis=1))
        log_alpha, log_beta = np.log(alpha), np.log(beta)
    log_z = log_scale[rows, lengths - 1] + finish
    out = []
    for row, n in enumerate(lengths):
        after = log_scale[row, n - 1] - log_scale[row, :n]  # the scales after each position
        out.append(Posterior(emit[row], log_alpha[row, :n] + log_scale[row, :n, None],
                             log_beta[row, :n] + after[:, None], float(log_z[row])))
    return out


def path_log_score(emit: np.ndarray, path: Sequence[int], transition: np.ndarray, start: np.ndarray,
                   final: np.ndarray) -> float:
    """The unnormalised log score of one tag sequence: start, emissions, transitions and end."""
    tags = np.asarray(path)
    score = start[tags[0]] + final[tags[-1]] + emit[np.arange(len(tags)), tags].sum()
    return float(score + transition[tags[:-1], tags[1:]].sum())


def independent_chain(labels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(transition, start, final) of words tagged independently: every tag may follow every tag, at no cost."""
    return np.zeros((labels, labels)), np.zeros(labels), np.zeros(labels)
