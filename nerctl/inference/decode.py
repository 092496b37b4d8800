"""From per-word tag probabilities to tags: IOB2-constrained Viterbi decoding."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..data.tags import iob2_transitions

if TYPE_CHECKING:
    from ..modeling.crf import Transitions

GROUP = 256  # sentences decoded together as one [sentence, position, label] array


def viterbi_iob2(log_probs: Sequence[np.ndarray], labels: Sequence[str], group: int = GROUP,
                 learned: "Transitions | None" = None) -> list[list[int]]:
    """Per sentence, the most probable label sequence in which every I-X follows B-X or I-X.

    Argmax per word can emit I-X after O; constrained decoding picks the best
    sequence that is valid IOB2 instead of repairing one afterwards.
    `log_probs[i]` is [words, labels]. Sentences of similar length are decoded
    together, `group` at a time, as arrays (see `stack`): one numpy step per
    word position rather than per word of every sentence. `learned`: a CRF
    head's scores, added to the IOB2 constraints (crf.py).
    """
    chain = chain_scores(labels, learned)
    best: list[list[int]] = [[] for _ in log_probs]
    for members in length_groups(log_probs, group):
        scores, lengths = stack([log_probs[i] for i in members])
        for i, path, n in zip(members, viterbi_paths(scores, lengths, *chain).tolist(), lengths.tolist()):
            best[i] = path[:n]
    return best


def length_groups(rows: Sequence[np.ndarray], group: int = GROUP) -> list[list[int]]:
    """The indices of the non-empty `rows`, by length (stable), `group` at a time: what one array step decodes."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    order = [int(i) for i in np.argsort(lengths, kind="stable") if lengths[i] > 0]
    return [order[g : g + group] for g in range(0, len(order), group)]


def stack(rows: Sequence[np.ndarray], pad: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """([sentence, position, label] array of `rows`, `pad` past each one's end; their lengths)."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.full((len(rows), int(lengths.max()), rows[0].shape[1]), pad, dtype=np.float64)
    for row, values in enumerate(rows):
        out[row, : len(values)] = values
    return out, lengths


def chain_scores(labels: Sequence[str], learned: "Transitions | None" = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(transition, start, end) scores of the tag chain: IOB2's constraints plus a CRF head's learned scores."""
    transition, start = iob2_transitions(tuple(labels))
    if learned is None:
        return transition, start, np.zeros(len(labels))
    return transition + learned.transitions, start + learned.start, learned.end


def viterbi_paths(scores: np.ndarray, lengths: np.ndarray, transition: np.ndarray, start: np.ndarray,
                  end: np.ndarray) -> np.ndarray:
    """[sentence, position] best label ids of the sentences in `scores` ([sentence, position, label] log
    scores, see `stack`), each valid up to its length; the forward pass and the backtrack are one numpy
    step per position for the whole group."""
    rows, steps = np.arange(len(scores)), scores.shape[1]
    total = scores[:, 0] + start
    back = np.zeros(scores.shape, dtype=np.int64)
    last = np.empty_like(total)  # each sentence's scores at its own last word
    incoming = np.ascontiguousarray(transition.T)  # [to, from]: the best predecessor is a contiguous reduction
    for t in range(steps):
        if t:
            candidates = total[:, None, :] + incoming  # [sentence, to, from]
            back[:, t] = best_from = candidates.argmax(axis=2)
            total = np.take_along_axis(candidates, best_from[:, :, None], axis=2)[:, :, 0] + scores[:, t]
        done = lengths == t + 1
        last[done] = total[done] + end
    paths = np.zeros((len(scores), steps), dtype=np.int64)
    best, current = last.argmax(axis=1), np.zeros(len(scores), dtype=np.int64)
    for t in range(steps - 1, -1, -1):
        current = np.where(lengths == t + 1, best, current)  # a sentence's backtrack starts at its last word
        paths[:, t] = current
        if t:
            current = back[rows, t, current]
    return paths
