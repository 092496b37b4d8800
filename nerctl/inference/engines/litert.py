"""The litert engine: the run's model.tflite, exported from best/ at the end of training.

Needs neither TensorFlow nor transformers at run time; fp32 only.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from ...artifacts.export import SIGNATURE
from ...core.errors import InputError
from ...modeling.runtime import native_stderr_silenced
from . import compute_threads


class LiteForward:
    """Tag probabilities from the exported LiteRT model (no TensorFlow import)."""

    def __init__(self, path: str | Path):
        from ai_edge_litert.interpreter import Interpreter

        try:
            with native_stderr_silenced():
                self._interpreter = Interpreter(model_path=str(path), num_threads=compute_threads())
                self._run = self._interpreter.get_signature_runner(SIGNATURE)
        except (ValueError, RuntimeError) as err:
            raise InputError(f"{path}: not a usable nerctl model ({err})") from None
        outputs = self._interpreter.get_signature_list()[SIGNATURE]["outputs"]
        if "probabilities" not in outputs:
            raise InputError(f"{path}: not a nerctl model (no probabilities output)")
        probs = self._run.get_output_details()["probabilities"]
        self.num_labels = int(probs["shape_signature"][-1])
        self.label_names = None  # a LiteRT flatbuffer holds the labels' number, not their names
        self._first_call = True

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray, n_batches: int = 1) -> np.ndarray:
        # The runner resizes the inputs to each batch's shape; no tracing, no recompiling.
        # LiteRT announces its XNNPACK delegate on fd 2 when it first runs.
        quiet = native_stderr_silenced() if self._first_call else contextlib.nullcontext()
        self._first_call = False
        with quiet:
            return self._run(input_ids=input_ids, attention_mask=attention_mask)["probabilities"]


def open_forward(path: Path, precision: str) -> LiteForward:
    return LiteForward(path)
