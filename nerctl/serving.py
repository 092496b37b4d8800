"""Running the network: an in-memory Keras model, or the run's exported SavedModel.

Both are "forwards": (input_ids, attention_mask) int32 [batch, length] in,
float32 tag probabilities [batch, length, labels] out. A `Tagger` takes either.

Training scores dev with the Keras model it is training. At the end it exports
the best model as a TensorFlow SavedModel (`saved_model/` in the run), and
`predict`/`evaluate` (and the final test scoring) run that: it loads in well
under a second without transformers or a Keras model build, runs one graph for
every batch shape without tracing, and TF Serving can serve the same folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import InputError
from .model import import_tensorflow

SIGNATURE = "serving_default"
EAGER_MAX_BATCHES = 8  # Keras jobs of at most this many batches run the model without tracing it


def _probabilities_fn(model):
    """The model's forward pass with a float32 softmax on top."""
    tf = import_tensorflow()

    def forward(input_ids, attention_mask):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, training=False).logits
        return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)

    return forward


class KerasForward:
    """Tag probabilities from an in-memory transformers TF model."""

    def __init__(self, model):
        self.model = model
        self._eager = _probabilities_fn(model)
        self._traced = None

    @property
    def num_labels(self) -> int:
        return self.model.config.num_labels

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray, n_batches: int = 1) -> np.ndarray:
        # Tracing costs ~5 s once (MiniLM, 2 cores), running eagerly ~0.3 s more per
        # batch: jobs of a few batches, like one sentence or a tiny dev set, skip the trace.
        if self._traced is None and n_batches <= EAGER_MAX_BATCHES:
            return self._eager(input_ids, attention_mask).numpy()
        if self._traced is None:
            tf = import_tensorflow()
            spec = tf.TensorSpec([None, None], tf.int32)  # one trace for every batch shape
            self._traced = tf.function(self._eager, input_signature=[spec, spec])
        return self._traced(input_ids, attention_mask).numpy()


class SavedModelForward:
    """Tag probabilities from an exported SavedModel (see `export_saved_model`)."""

    def __init__(self, path: str | Path):
        tf = import_tensorflow()
        try:
            loaded = tf.saved_model.load(str(path))
            self._signature = loaded.signatures[SIGNATURE]
        except (OSError, KeyError, ValueError, tf.errors.OpError) as err:
            raise InputError(f"{path}: not a usable nerctl SavedModel ({type(err).__name__})") from None
        self._loaded = loaded  # keeps the variables alive
        self.labels = tuple(label.decode() for label in loaded.labels().numpy())
        self._tf = tf

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray, n_batches: int = 1) -> np.ndarray:
        tf = self._tf
        out = self._signature(input_ids=tf.constant(input_ids), attention_mask=tf.constant(attention_mask))
        return out["probabilities"].numpy()


def export_saved_model(model, labels: Sequence[str], out: Path) -> None:
    """Write `model` as a SavedModel with a serving signature into the folder `out`.

    serving_default: input_ids, attention_mask (int32 [batch, length]) ->
    label_ids (int32 [batch, length]), scores (their probabilities) and
    probabilities (float32 [batch, length, labels]); `labels()` returns the
    label names in id order. Only the variables and this one function are
    saved, not the Keras layers: that is what makes loading fast.
    """
    tf = import_tensorflow()
    forward = _probabilities_fn(model)
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="input_ids"),
                                  tf.TensorSpec([None, None], tf.int32, name="attention_mask")])
    def serve(input_ids, attention_mask):
        probabilities = forward(input_ids, attention_mask)
        return {"label_ids": tf.argmax(probabilities, axis=-1, output_type=tf.int32),
                "scores": tf.reduce_max(probabilities, axis=-1), "probabilities": probabilities}

    label_tensor = tf.constant(list(labels))
    module = tf.Module()
    module.weights = list(model.variables)
    module.serve = serve
    module.labels = tf.function(lambda: label_tensor, input_signature=[])
    tf.saved_model.save(module, str(out), signatures={SIGNATURE: serve})
