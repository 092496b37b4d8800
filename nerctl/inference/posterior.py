"""Posterior probabilities under the model Viterbi decodes: each word's tag marginals, each span's probability.

A tag sequence y of n words scores start(y_0) + sum_i emit_i(y_i) + sum_i trans(y_i-1, y_i) + end(y_n-1):
`emit` the per-word log-probabilities, `trans`/`start` the IOB2 constraints (-inf where a tag may not
follow) plus a CRF head's learned scores (decode.scores_of). Forward-backward in log space sums over
every valid sequence: alpha_i(t) over the words up to i ending in t, beta_i(t) over the words after i
given t at i, log Z over everything. A word's marginal is exp(alpha + beta - log Z); the probability
that exactly the span X over words a..b-1 is in the sequence (B-X at a, I-X after it, then no I-X) is
one path's sum through it, computed from the same quantities, and a whole tag sequence's probability
is its score less log Z. Sentences of similar length are done together as [sentence, position, label]
arrays (`Posteriors`), as Viterbi does; `Posterior` is one sentence's view of them.

`independent_chain` is the chain of a model without transitions (a softmax head, or argmax decoding):
its posteriors are each word's softmax, and a span's probability that of words tagged on their own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .decode import GROUP, length_groups, stack

EMISSION_FLOOR = 1e-12  # a tag the model gives 0 keeps a finite score


@dataclass
class Posteriors:
    """Forward-backward quantities (log space) of a group of sentences, [sentence, position, label] arrays
    valid up to each sentence's length, and the emissions they were computed from (0 past the end)."""

    emit: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    log_z: np.ndarray  # [sentence]
    lengths: np.ndarray  # [sentence]

    @classmethod
    def of(cls, emit: np.ndarray, lengths: np.ndarray, transition: np.ndarray, start: np.ndarray,
           final: np.ndarray) -> "Posteriors":
        """Forward-backward over `emit` (see decode.stack), in probability space, each step rescaled to sum 1
        (the scales' logs summed give log Z): products and sums instead of an exp and a log of every
        [sentence, label, label] term. The sums are einsum's, one sentence's terms at a time, not a BLAS
        matrix product, whose rounding depends on how many sentences share the group: a sentence's scores
        stay the same whatever it is decoded with (tests/test_predict.py checks it)."""
        steps, k, rows = emit.shape[1], transition.shape[0], np.arange(len(emit))
        probs = np.exp(emit)  # past a sentence's end: 1, so no scale there is 0
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
            if t + 1 < steps:
                backward = np.einsum("sj,ij->si", backward * probs[:, t + 1], moves) / scale[:, t + 1, None]
            backward[lengths == t + 1] = last
            beta[:, t] = backward
        with np.errstate(divide="ignore"):
            log_scale = np.cumsum(np.log(scale), axis=1)  # log of the scales up to each position
            finish = np.log((alpha[rows, lengths - 1] * last).sum(axis=1))
            log_alpha, log_beta = np.log(alpha), np.log(beta)
        ends = log_scale[rows, lengths - 1]
        after = ends[:, None] - log_scale  # the scales after each position
        return cls(emit, log_alpha + log_scale[:, :, None], log_beta + after[:, :, None], ends + finish, lengths)

    def marginals(self, rows: slice = slice(None)) -> np.ndarray:
        """[sentence, position, label] (the sentences `rows`): P(tag of word i = t | the text); each row sums
        to 1 up to the length."""
        return np.exp(self.alpha[rows] + self.beta[rows] - self.log_z[rows, None, None])

    def path_probabilities(self, paths: np.ndarray, transition: np.ndarray, start: np.ndarray,
                           final: np.ndarray) -> np.ndarray:
        """[sentence]: P(the whole tag sequence is `paths[s, :length]` | the text)."""
        return np.exp(path_log_scores(self.emit, self.lengths, paths, transition, start, final) - self.log_z)

    def span_probabilities(self, rows: np.ndarray, first: np.ndarray, end: np.ndarray, begin: np.ndarray,
                           inside: np.ndarray, transition: np.ndarray, final: np.ndarray) -> np.ndarray:
        """P(label `begin` at `first`, `inside` at first+1 .. end-1, and no `inside` at `end`), one per span
        (the arguments are arrays, a span per index; `rows` the span's sentence)."""
        score = self.alpha[rows, first, begin]
        long = end > first + 1  # the I- words: entered from B- once, then from I-
        steps = np.arange(self.emit.shape[1])
        continued = (steps[None, :] > first[:, None]) & (steps[None, :] < end[:, None])
        inside_emit = np.where(continued, self.emit[rows, :, inside], 0.0).sum(axis=1)
        score = score + np.where(long, transition[begin, inside] + (end - first - 2) * transition[inside, inside]
                                 + inside_emit, 0.0)
        last = np.where(long, inside, begin)
        at_end = end == self.lengths[rows]
        nxt = np.minimum(end, self.emit.shape[1] - 1)  # any next tag but a continuation
        after = transition[last] + self.emit[rows, nxt] + self.beta[rows, nxt]
        after[np.arange(len(rows)), inside] = -np.inf
        peak = after.max(axis=1)
        with np.errstate(invalid="ignore"):
            following = peak + np.log(np.exp(after - peak[:, None]).sum(axis=1))
        score = score + np.where(at_end, final[last], following)
        return np.exp(score - self.log_z[rows])


@dataclass
class Posterior:
    """One sentence's forward-backward quantities: row `row` of a group's `Posteriors`."""

    group: Posteriors
    row: int

    @property
    def log_z(self) -> float:
        return float(self.group.log_z[self.row])

    @property
    def marginals(self) -> np.ndarray:
        """[words, labels]: P(tag of word i = t | the text); each row sums to 1."""
        return self.group.marginals(slice(self.row, self.row + 1))[0, : self.group.lengths[self.row]]

    def path_probability(self, path: Sequence[int], transition: np.ndarray, start: np.ndarray,
                         final: np.ndarray) -> float:
        """P(the whole tag sequence is `path` | the text)."""
        emit = self.group.emit[self.row, : self.group.lengths[self.row]]
        return float(np.exp(path_log_score(emit, path, transition, start, final) - self.log_z))

    def span_probability(self, begin: int, inside: int, first: int, end: int, transition: np.ndarray,
                         final: np.ndarray) -> float:
        """P(label `begin` at `first`, `inside` at first+1 .. end-1, and no `inside` at `end`)."""
        one = [np.array([v]) for v in (self.row, first, end, begin, inside)]
        return float(self.group.span_probabilities(*one, transition, final)[0])


def log_emission(probs: np.ndarray) -> np.ndarray:
    """The log of tag probabilities (any shape), the emissions Viterbi and the posterior take; floored at
    EMISSION_FLOOR."""
    return np.log(np.maximum(probs, EMISSION_FLOOR))


def log_emissions(probs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per sentence, `log_emission` of each word's tag probabilities."""
    return [log_emission(p) for p in probs]


def posteriors(emit: Sequence[np.ndarray], transition: np.ndarray, start: np.ndarray, final: np.ndarray,
               group: int = GROUP) -> list[Posterior | None]:
    """Per sentence, its Posterior (None for a sentence without words)."""
    out: list[Posterior | None] = [None] * len(emit)
    for members in length_groups(emit, group):
        together = Posteriors.of(*stack([emit[i] for i in members]), transition, start, final)
        for row, i in enumerate(members):
            out[i] = Posterior(together, row)
    return out


def path_log_scores(emit: np.ndarray, lengths: np.ndarray, paths: np.ndarray, transition: np.ndarray,
                    start: np.ndarray, final: np.ndarray) -> np.ndarray:
    """[sentence]: the unnormalised log score of each tag sequence `paths[s, :lengths[s]]` (emissions `emit`,
    [sentence, position, label]): start, emissions, transitions and end."""
    rows, steps = np.arange(len(paths)), np.arange(paths.shape[1])
    inside = steps[None, :] < lengths[:, None]
    emitted = np.where(inside, np.take_along_axis(emit, paths[:, :, None], axis=2)[:, :, 0], 0.0)
    moved = np.where(inside[:, 1:], transition[paths[:, :-1], paths[:, 1:]], 0.0)
    return start[paths[:, 0]] + final[paths[rows, lengths - 1]] + emitted.sum(axis=1) + moved.sum(axis=1)


def path_log_score(emit: np.ndarray, path: Sequence[int], transition: np.ndarray, start: np.ndarray,
                   final: np.ndarray) -> float:
    """`path_log_scores` of one sentence's tag sequence; `emit` [words, labels]."""
    tags = np.asarray(path)[None]
    return float(path_log_scores(emit[None], np.array([tags.shape[1]]), tags, transition, start, final)[0])


def independent_chain(labels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(transition, start, final) of words tagged independently: every tag may follow every tag, at no cost."""
    return np.zeros((labels, labels)), np.zeros(labels), np.zeros(labels)
