"""The CRF output layer (`--head crf`): learned tag-transition scores on top of the per-word logits.

Training maximises the likelihood of the gold tag sequence under a linear-chain
CRF over each window's labelled positions (the first piece of every word the
window owns), with the transitions IOB2 forbids (O -> I-X, B-X -> I-Y, starting
with I-X) scored `FORBIDDEN`, so the model spreads no probability over paths the
decoder could never return. Prediction adds the learned scores to the IOB2
constraints in `decode.viterbi_iob2`: per-word log-probabilities differ from the
logits by a constant per word, so Viterbi over them finds the CRF's best path.

The scores live in the checkpoint while training and in `crf.json` beside the
best model after (`Transitions`: this module owns that file's format). Nothing
here imports TensorFlow until a function that needs it runs: predict loads
`Transitions` without it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.atomic import atomic_write_json
from ..core.errors import InputError
from ..data.tags import iob2_transitions
from .encoding import IGNORE_INDEX

FILE_NAME = "crf.json"
FORBIDDEN = -1e4  # a forbidden transition's score in training: exp() of it is 0 in float32, without inf - inf
# The scores are SCALE x their variables: one AdamW (moves of ~lr per step) serves the encoder at
# lr 2e-4 and scores that need to reach a few units in ~900 steps.
SCALE = 100.0


@dataclass(frozen=True)
class Transitions:
    """Learned CRF scores: starting with each label, label i followed by j, ending with each label."""

    labels: tuple[str, ...]
    start: np.ndarray  # [labels]
    transitions: np.ndarray  # [labels, labels]: from i (row) to j (column)
    end: np.ndarray  # [labels]

    def save(self, folder: Path) -> None:
        """Write `folder`/crf.json (atomically)."""
        atomic_write_json(folder / FILE_NAME, {"labels": list(self.labels), "start": self.start.tolist(),
                                               "transitions": self.transitions.tolist(), "end": self.end.tolist()})

    @classmethod
    def load(cls, folder: Path, labels: Sequence[str]) -> "Transitions | None":
        """`folder`/crf.json, checked against the run's labels; None where the model has no CRF head."""
        path = folder / FILE_NAME
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            found = cls(tuple(data["labels"]), np.array(data["start"], np.float64),
                        np.array(data["transitions"], np.float64), np.array(data["end"], np.float64))
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(f"{path}: not a CRF scores file ({err})") from None
        k = len(labels)
        if found.labels != tuple(labels) or found.transitions.shape != (k, k) or found.start.shape != (k,) \
                or found.end.shape != (k,):
            raise InputError(f"{path}: its labels or shapes do not match labels.json ({k} labels)")
        return found


def build_crf(labels: Sequence[str], strategy=None):
    """The CRF's variables (zero: no preference at first), in a tf.Module the checkpoint saves."""
    from .runtime import import_tensorflow

    tf = import_tensorflow()
    strategy = strategy or tf.distribute.get_strategy()
    k = len(labels)
    with strategy.scope():
        module = tf.Module(name="crf")
        module.start = tf.Variable(tf.zeros([k]), name="crf/start")
        module.transitions = tf.Variable(tf.zeros([k, k]), name="crf/transitions")
        module.end = tf.Variable(tf.zeros([k]), name="crf/end")
    return module


def assign(module, scores: Transitions) -> None:
    """Set the module's variables to `scores` (a teacher's, to start from)."""
    for name in ("start", "transitions", "end"):
        getattr(module, name).assign((getattr(scores, name) / SCALE).astype(np.float32))


def learned(module, labels: Sequence[str]) -> Transitions:
    """The module's current scores, as prediction uses them."""
    return Transitions(tuple(labels), SCALE * module.start.numpy().astype(np.float64),
                       SCALE * module.transitions.numpy().astype(np.float64),
                       SCALE * module.end.numpy().astype(np.float64))


def crf_loss_fn(module, labels: Sequence[str]):
    """`loss_sum(labels, logits)`: summed CRF negative log-likelihood of the windows in a batch."""
    from .runtime import import_tensorflow

    tf = import_tensorflow()
    allowed, allowed_start = (np.where(np.isfinite(m), 0.0, FORBIDDEN).astype(np.float32)
                              for m in iob2_transitions(tuple(labels)))

    def loss_sum(tags, logits):
        start = SCALE * module.start + allowed_start
        transitions = SCALE * module.transitions + allowed
        return tf.reduce_sum(sequence_nll(tags, tf.cast(logits, tf.float32), start, transitions, SCALE * module.end))
    return loss_sum


def sequence_nll(tags, logits, start, transitions, end):
    """Per window, -log p(gold tags) under the CRF; 0 for a window without labelled positions.

    `tags` [batch, length] holds label ids at labelled positions and IGNORE_INDEX
    elsewhere; `logits` [batch, length, labels] are the emission scores. The
    labelled positions are first moved to the front, in order, so that the chain
    runs over words, not word pieces.
    """
    from .runtime import import_tensorflow

    tf = import_tensorflow()
    labelled = tf.not_equal(tags, IGNORE_INDEX)
    order = tf.argsort(tf.cast(tf.logical_not(labelled), tf.int32), axis=1, stable=True)
    emissions = tf.gather(logits, order, batch_dims=1)
    lengths = tf.reduce_sum(tf.cast(labelled, tf.int32), axis=1)
    steps = tf.sequence_mask(lengths, maxlen=tf.shape(tags)[1])
    tags = tf.where(steps, tf.gather(tags, order, batch_dims=1), 0)
    on = tf.cast(steps, tf.float32)

    gold = tf.gather(start, tags[:, 0]) + tf.reduce_sum(tf.gather(emissions, tags, batch_dims=2) * on, axis=1)
    pairs = tf.gather_nd(transitions, tf.stack([tags[:, :-1], tags[:, 1:]], axis=-1))
    gold += tf.reduce_sum(pairs * on[:, 1:], axis=1)
    gold += tf.gather(end, tf.gather(tags, tf.maximum(lengths - 1, 0), batch_dims=1))

    def forward(alpha, step):  # log of the summed scores of all paths ending in each label
        emission, active = step
        moved = tf.reduce_logsumexp(alpha[:, :, None] + transitions[None], axis=1) + emission
        return tf.where(active[:, None], moved, alpha)

    alpha = tf.foldl(forward, (tf.transpose(emissions[:, 1:], [1, 0, 2]), tf.transpose(steps[:, 1:])),
                     initializer=start + emissions[:, 0])
    log_z = tf.reduce_logsumexp(alpha + end, axis=1)
    return (log_z - gold) * tf.cast(lengths > 0, tf.float32)
