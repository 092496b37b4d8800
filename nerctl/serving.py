"""Running the network: the in-memory Keras model, or the run's exported model.

Both are "forwards": (input_ids, attention_mask) int32 [batch, length] in,
float32 tag probabilities [batch, length, labels] out. A `Tagger` takes either.

Training scores dev with the Keras model it is training. At the end it exports
the best model twice: a TensorFlow SavedModel (`saved_model/`, for TF Serving
and `tf.saved_model.load`) and, converted from it, a LiteRT flatbuffer
(`model.tflite`). `predict` and `evaluate` run the LiteRT one: it needs neither
TensorFlow nor transformers at run time (start-up in a fraction of a second
instead of ~6 s), loads without building or tracing anything, and LiteRT's
XNNPACK kernels gave the same probabilities ~1.2x faster than TensorFlow on a
2-core AVX2 CPU (benchmarks/).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import InputError
from .model import import_tensorflow, native_stderr_silenced

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


class LiteForward:
    """Tag probabilities from the exported LiteRT model (no TensorFlow import)."""

    def __init__(self, path: str | Path):
        from ai_edge_litert.interpreter import Interpreter

        try:
            with native_stderr_silenced():
                self._interpreter = Interpreter(model_path=str(path), num_threads=len(os.sched_getaffinity(0)))
                self._run = self._interpreter.get_signature_runner(SIGNATURE)
        except (ValueError, RuntimeError) as err:
            raise InputError(f"{path}: not a usable nerctl model ({err})") from None
        outputs = self._interpreter.get_signature_list()[SIGNATURE]["outputs"]
        if "probabilities" not in outputs:
            raise InputError(f"{path}: not a nerctl model (no probabilities output)")
        probs = self._run.get_output_details()["probabilities"]
        self.num_labels = int(probs["shape_signature"][-1])
        self._first_call = True

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray, n_batches: int = 1) -> np.ndarray:
        # The runner resizes the inputs to each batch's shape; no tracing, no recompiling.
        # LiteRT announces its XNNPACK delegate on fd 2 when it first runs.
        quiet = native_stderr_silenced() if self._first_call else contextlib.nullcontext()
        self._first_call = False
        with quiet:
            return self._run(input_ids=input_ids, attention_mask=attention_mask)["probabilities"]


def export_model(model, labels: Sequence[str], saved_model: Path, tflite: Path) -> None:
    """Write `model` as a SavedModel (folder) and as a LiteRT flatbuffer (file).

    SavedModel signature serving_default: input_ids, attention_mask (int32
    [batch, length]) -> label_ids (int32 [batch, length]), scores (their
    probabilities) and probabilities (float32 [batch, length, labels]);
    `labels()` returns the label names in id order. Only the variables and these
    functions are saved, not the Keras layers, which keeps loading fast. The
    LiteRT file is converted from the SavedModel: same signature, float32.
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
    tf.saved_model.save(module, str(saved_model), signatures={SIGNATURE: serve})
    with native_stderr_silenced():  # the converter logs MLIR pass details on fd 2
        converted = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=[SIGNATURE]).convert()
    tflite.write_bytes(converted)
