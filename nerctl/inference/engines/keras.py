"""The keras engine: the transformers TF model in memory (training's model, or a run's best/ loaded back).

fp32 or bf16 (Keras mixed_bfloat16). The only engine that imports TensorFlow.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...modeling.model import load_trained_model, probabilities_fn
from ...modeling.runtime import import_tensorflow

EAGER_MAX_BATCHES = 8  # Keras jobs of at most this many batches run the model without tracing it


class KerasForward:
    """Tag probabilities from an in-memory transformers TF model."""

    def __init__(self, model):
        self.model = model
        self._eager = probabilities_fn(model)
        self._traced = None

    @property
    def num_labels(self) -> int:
        return self.model.config.num_labels

    @property
    def label_names(self) -> tuple[str, ...]:
        """The labels the model names (its id2label), in id order."""
        config = self.model.config
        return tuple(config.id2label[i] for i in range(config.num_labels))

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray, n_batches: int = 1) -> np.ndarray:
        # Tracing costs seconds once, running eagerly a little more per batch: jobs of
        # a few batches, like one sentence or a tiny dev set, skip the trace.
        if self._traced is None and n_batches <= EAGER_MAX_BATCHES:
            return self._eager(input_ids, attention_mask).numpy()
        if self._traced is None:
            tf = import_tensorflow()
            spec = tf.TensorSpec([None, None], tf.int32)  # one trace for every batch shape
            self._traced = tf.function(self._eager, input_signature=[spec, spec])
        return self._traced(input_ids, attention_mask).numpy()


def open_forward(path: Path, precision: str) -> KerasForward:
    """A run's best/ folder in TensorFlow at `precision`."""
    return KerasForward(load_trained_model(path, precision))
