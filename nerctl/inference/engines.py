"""Inference engines: what runs the network's forward pass, and choosing one.

Every engine is a "forward": (input_ids, attention_mask) int32 [batch, length]
in, float32 tag probabilities [batch, length, labels] out. A `Tagger` takes any.

    keras   the transformers TF model in memory: training's model, or a run's
            best/ loaded back; fp32 or bf16 (Keras mixed_bfloat16)
    litert  the run's model.tflite (exported from best/ at the end of training):
            needs neither TensorFlow nor transformers at run time (start-up in a
            fraction of a second instead of ~6 s), and its XNNPACK kernels gave the
            same probabilities ~1.2x faster than TensorFlow on a 2-core AVX2 CPU
            (benchmarks/); fp32 only
    onnx    the run's model.int8.onnx on ONNX Runtime: int8 weights, made at the
            end of training and kept only if dev F1 held (quantize.py); 1.32x
            LiteRT fp32's sentences/s on a 2-core AVX2 CPU (benchmarks/engines.py)
    auto    onnx int8 where the run kept one, else litert, else keras (see
            choose_engine)
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.choices import BACKENDS, PRECISIONS
from ..core.errors import InputError
from ..modeling.model import SIGNATURE, probabilities_fn
from ..modeling.runtime import cpu_supports_bf16, import_tensorflow, native_stderr_silenced

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


class OnnxForward:
    """Tag probabilities from the run's int8 ONNX model on ONNX Runtime (no TensorFlow import)."""

    def __init__(self, path: str | Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = len(os.sched_getaffinity(0))
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

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray, n_batches: int = 1) -> np.ndarray:
        feeds = {name: input_ids if is_ids else attention_mask for name, is_ids in self._inputs}
        return self._session.run([self._output], feeds)[0]


@dataclass(frozen=True)
class Engine:
    """A resolved choice: which backend, at which precision, and why."""

    backend: str  # "keras" or "litert"
    precision: str  # "fp32" or "bf16"
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"backend": self.backend, "precision": self.precision}

    def describe(self) -> str:
        return f"backend {self.backend} ({self.precision}): {self.reason}"


def choose_engine(backend: str = "auto", precision: str = "auto", has_tflite: bool = True,
                  has_int8: bool = False) -> Engine:
    """Resolve --backend and --precision for a finished run.

    auto picks, for `precision` auto: onnx int8 where the run kept an int8 model
    (its dev F1 held; see quantize.py), else litert fp32, else keras; int8 means
    onnx, bf16 means keras (the only one that runs it). keras with precision auto
    runs bf16 where the CPU computes bfloat16 natively (AVX-512 BF16, AMX).
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    reason = "asked for"
    if backend == "auto":
        backend, reason = _auto_backend(precision, has_tflite, has_int8)
    if backend == "onnx":
        if precision not in ("auto", "int8"):
            raise InputError(f"--backend onnx runs the int8 model only, not {precision}")
        if not has_int8:
            raise InputError("the run has no model.int8.onnx (its int8 model failed the dev-F1 check, see "
                             "summary.json, or an older nerctl trained it); use --backend litert")
        return Engine("onnx", "int8", reason)
    if backend == "litert":
        if precision not in ("auto", "fp32"):
            raise InputError("--backend litert runs fp32 only; use --backend keras for bf16, onnx for int8")
        if not has_tflite:
            raise InputError("the run has no model.tflite (trained by an older nerctl); use --backend keras")
        return Engine("litert", "fp32", reason)
    if precision == "int8":
        raise InputError("--backend keras runs fp32 or bf16; use --backend onnx for int8")
    if precision == "auto":
        native = cpu_supports_bf16()
        return Engine("keras", "bf16" if native else "fp32",
                      reason + ("; bf16: the CPU has native bfloat16" if native else "; fp32: no native bfloat16"))
    return Engine("keras", precision, reason)


def _auto_backend(precision: str, has_tflite: bool, has_int8: bool) -> tuple[str, str]:
    """The backend `auto` means for this precision and run, and why."""
    if precision == "int8":
        return "onnx", "int8 asked for"
    if precision == "bf16":
        return "keras", "bf16 asked for, which only keras runs"
    if precision == "auto" and has_int8:
        return "onnx", "the run's int8 model held its dev F1 (1.32x LiteRT fp32 on a 2-core AVX2 CPU)"
    if has_tflite:
        return "litert", "the fastest fp32 engine measured here, and needs no TensorFlow"
    return "keras", "the run has no model.tflite"
