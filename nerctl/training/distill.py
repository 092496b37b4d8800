"""Distillation (`--teacher RUN`): a smaller model taught by a finished run.

The student starts from the teacher's own trained weights, cut to its lowest
`--layers` layers (transformers loads those and leaves the rest out), with the
teacher's tokenizer, labels and CRF scores, so training refines a model that
already tags rather than starting from a pre-trained encoder. Each step adds
to the gold tags' loss the cross-entropy between the teacher's tag
distribution at each labelled position (the softmax of its per-word scores at
`TEMPERATURE`, its CRF's emissions for a CRF head) and the student's at the
same temperature, times TEMPERATURE^2 so that its gradients keep their scale
(Hinton et al., 2015). The teacher runs forward in the step, on the same
windows, with its weights fixed: no targets to store or keep aligned.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..artifacts.rundir import RunDir
from ..core.errors import InputError
from ..data.tags import LabelMap
from ..modeling.encoding import IGNORE_INDEX
from ..modeling.runtime import import_tensorflow

TEMPERATURE = 2.0  # softens the teacher's distribution: its second choices carry signal too


@dataclass(frozen=True)
class TeacherRun:
    """A finished run to distil from: where its weights, tokenizer and labels are."""

    path: Path
    weights: Path  # its best/ folder: a Hugging Face model folder (and crf.json for a CRF head)
    tokenizer: Path
    label_map: LabelMap

    @classmethod
    def open(cls, teacher: str) -> "TeacherRun":
        run = RunDir(Path(teacher).expanduser())
        if not (run.best / "config.json").is_file() or not run.tokenizer.is_dir():
            raise InputError(f"--teacher {teacher}: not a finished run (no best/ model or tokenizer/)")
        return cls(run.path, run.best, run.tokenizer, run.read_labels())


def load_teacher_model(teacher: TeacherRun):
    """The teacher's network, its weights fixed (fp32: its targets are not rounded)."""
    from ..modeling.model import load_trained_model

    model = load_trained_model(teacher.weights, "fp32")
    model.trainable = False
    return model


def distill_loss_fn(teacher_model, weight: float) -> Callable[[Any, Any, Any, Any], Any]:
    """`distill_sum(ids, mask, labels, logits)`: the summed soft cross-entropy against the teacher over the
    batch's labelled positions, times `weight` (added to the head's summed loss in the train step)."""
    tf = import_tensorflow()

    def distill_sum(ids, mask, labels, logits):
        taught = teacher_model(input_ids=ids, attention_mask=mask, training=False).logits
        target = tf.nn.softmax(tf.stop_gradient(tf.cast(taught, tf.float32)) / TEMPERATURE, axis=-1)
        log_student = tf.nn.log_softmax(tf.cast(logits, tf.float32) / TEMPERATURE, axis=-1)
        positions = tf.cast(tf.not_equal(labels, IGNORE_INDEX), tf.float32)
        cross_entropy = -tf.reduce_sum(target * log_student, axis=-1)
        return weight * TEMPERATURE**2 * tf.reduce_sum(cross_entropy * positions)
    return distill_sum
