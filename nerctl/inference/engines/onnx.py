"""The onnx engine: the run's model.int8.onnx on ONNX Runtime.

int8 weights, made at the end of training and kept only if dev F1 held
(training/finish.py); no TensorFlow import.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.errors import InputError
from . import compute_threads


class OnnxForward:
    """Tag probabilities from the run's int8 ONNX model on ONNX Runtime (no TensorFlow import)."""

    def __init__(self, path: str | Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = compute_threads()
        options.log_severity_level = 3  # errors only: its warnings go to fd 2 unasked
        try:
            self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise InputError(f"{path}: not a usable nerctl model ({type(err).__name__})") from None
        self._inputs = [(i.name, "input_ids" in i.name) for i in self._session.get_inputs()]
        probs = [o for o in self._session.get_outputs() if len(o.shape) == 3]
        if len(probs) != 1:
            raise InputError(f"{path}: not a nerctl model (no probabilities output)")
        self._output, self.num_labels = probs[0].name, int(probs[0].shape[-1])
        self.label_names = None  # the ONNX graph holds the labels' number only

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray, n_batches: int = 1) -> np.ndarray:
        feeds = {name: input_ids if is_ids else attention_mask for name, is_ids in self._inputs}
        return self._session.run([self._output], feeds)[0]


def open_forward(path: Path, precision: str) -> OnnxForward:
    return OnnxForward(path)
