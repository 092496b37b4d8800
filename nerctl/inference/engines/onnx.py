"""The onnx engine: the run's model.int8.onnx on ONNX Runtime.

int8 weights, made at the end of training and kept only if dev F1 held
(training/finish.py); no TensorFlow import.
"""
from __future__ import annotations

import functools
import threading
from pathlib import Path

import numpy as np

from ...core.errors import InputError
from . import compute_threads


class OnnxForward:
    """Tag probabilities from the run's int8 ONNX model on ONNX Runtime (no TensorFlow import).

    The session is built on a thread: ONNX Runtime releases the GIL while it builds one (the
    largest part of the engine's start-up), so the caller's own loading (Tagger.from_run: labels,
    config, tokenizer) runs meanwhile. The first use of the forward waits for it and raises its error."""

    def __init__(self, path: str | Path):
        import onnxruntime

        self._path = Path(path)
        self._built: dict = {}
        self._thread = threading.Thread(target=self._build, args=(onnxruntime,), name="onnx-session", daemon=True)
        self._thread.start()
        self.label_names = None  # the ONNX graph holds the labels' number only

    def _build(self, onnxruntime) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = compute_threads()
        options.log_severity_level = 3  # errors only: its warnings go to fd 2 unasked
        try:
            session = onnxruntime.InferenceSession(str(self._path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            self._built["error"] = InputError(f"{self._path}: not a usable nerctl model ({type(err).__name__})")
            return
        probs = [o for o in session.get_outputs() if len(o.shape) == 3]
        if len(probs) != 1:
            self._built["error"] = InputError(f"{self._path}: not a nerctl model (no probabilities output)")
            return
        self._built |= {"session": session, "output": probs[0].name, "num_labels": int(probs[0].shape[-1]),
                        "inputs": [(i.name, "input_ids" in i.name) for i in session.get_inputs()]}

    @functools.cached_property
    def _ready(self) -> dict:
        """The built session and what it says of its inputs and outputs (waits for the thread)."""
        self._thread.join()
        if "error" in self._built:
            raise self._built["error"]
        return self._built

    @property
    def num_labels(self) -> int:
        return self._ready["num_labels"]

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray, n_batches: int = 1) -> np.ndarray:
        ready = self._ready
        feeds = {name: input_ids if is_ids else attention_mask for name, is_ids in ready["inputs"]}
        return ready["session"].run([ready["output"]], feeds)[0]


def open_forward(path: Path, precision: str) -> OnnxForward:
    return OnnxForward(path)
