"""From per-word tag probabilities to tags: IOB2-constrained Viterbi decoding."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..data.tags import iob2_transitions

if TYPE_CHECKING:
    from ..modeling.crf import Transitions


def viterbi_iob2(log_probs: Sequence[np.ndarray], labels: Sequence[str], group: int = 256,
                 learned: "Transitions | None" = None) -> list[list[int]]:
    """Per sentence, the most probable label sequence in which every I-X follows B-X or I-X.

    Argmax per word can emit I-X after O; constrained decoding picks the best
    sequence that is valid IOB2 instead of repairing one afterwards.
    `log_probs[i]` is [words, labels]. Sentences of similar length are decoded
    together, `group` at a time, as arrays: one numpy step per word position
    rather than per word of every sentence. `learned`: a CRF head's scores,
    added to the IOB2 constraints (crf.py).
    """
    transition, start, end = chain_scores(labels, learned)
    best: list[list[int]] = [[] for _ in log_probs]
    for members in length_groups(log_probs, group):
        for i, path in zip(members, _decode_group([log_probs[i] for i in members], transition, start, end)):
            best[i] = path
    return best


def length_groups(rows: Sequence[np.ndarray], group: int) -> list[list[int]]:
    """The indices of the non-empty `rows`, by length (stable), `group` at a time: what one array step decodes."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    order = [int(i) for i in np.argsort(lengths, kind="stable") if lengths[i] > 0]
    return [order[g : g + group] for g in range(0, len(order), group)]


def chain_scores(labels: Sequence[str], learned: "Transitions | None" = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(transition, start, end) scores of the tag chain: IOB2's constraints plus a CRF head's learned scores."""
    transition, start = iob2_transitions(tuple(labels))
    if learned is None:
        return transition, start, np.zeros(len(labels))
    return transition + learned.transitions, start + learned.start, learned.end


def _decode_group(log_probs: list[np.ndarray], transition: np.ndarray, start: np.ndarray,
                  end: np.ndarray) -> list[list[int]]:
    """Viterbi over sentences sorted by length, as one [sentence, position, label] array."""
    ends = np.array([len(p) for p in log_probs], dtype=np.int64)
    steps, n_labels = int(ends[-1]), transition.shape[0]  # the longest of the group
    scores = np.zeros((len(log_probs), steps, n_labels))
    for row, p in enumerate(log_probs):
        scores[row, : len(p)] = p
    total = scores[:, 0] + start
    back = np.zeros((len(log_probs), steps, n_labels), dtype=np.int64)
    last = np.empty_like(total)  # each sentence's scores at its own last word
    for t in range(steps):
        if t:
            candidates = total[:, :, None] + transition  # [sentence, from, to]
            back[:, t] = candidates.argmax(axis=1)
            total = candidates.max(axis=1) + scores[:, t]
        done = ends == t + 1
        last[done] = total[done] + end
    paths = []
    for row in range(len(log_probs)):
        path = [int(last[row].argmax())]
        for t in range(int(ends[row]) - 1, 0, -1):
            path.append(int(back[row, t, path[-1]]))
        paths.append(path[::-1])
    return paths
