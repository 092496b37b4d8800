"""The int8 model: the LiteRT model converted to ONNX, its activations smoothed, its weights quantized,
kept only if dev F1 holds.

On a 2-core AMD EPYC with AVX2 only (no VNNI, no AVX-512), ONNX Runtime ran
MiniLM's dynamically quantized int8 model 1.32x as fast as LiteRT fp32 on all
of engtest, forward and decode; LiteRT's own int8 (0.97x) and OpenVINO's
(NNCF, 0.77x) were not worth it there (benchmarks/engines.py,
benchmarks/results/2026-12-01-vm-engines.json). Plain dynamic quantization
lost up to 0.32 points of dev F1, so the activations are smoothed first
(smoothing.py, SMOOTHING_ALPHA); the model is kept only where its dev F1 is
within `DEV_F1_TOLERANCE` of the fp32 model's; otherwise the file is removed
and the reason recorded.

The conversion starts from model.tflite, not the SavedModel: tf2onnx reading
the SavedModel (loading and freezing it, then its graph optimizers) took
training's peak RSS to 4,654 MiB (benchmarks/results/2026-12-01-vm.json); the
LiteRT file, with those optimizers left to ONNX Runtime (quant_pre_process),
stays below training's own peak (1,811 MiB for the whole training, conversion
included: benchmarks/results/2026-12-01-vm-run4.json) and converts much faster.
It runs in a child process (`python -m nerctl.artifacts.quantize TFLITE OUT`)
so that tf2onnx's TensorFlow graph state and memory go when it ends.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from ..core.errors import NerctlError
from .rundir import RunDir

OPSET = 17
# Chosen on the default run's dev split (fp32 0.8870; AMD EPYC, AVX2), on the conversion from the
# SavedModel (benchmarks/results/2026-12-01-vm-engines.json): a scale per output channel 0.8852; one
# scale per matrix 0.8840; 7-bit weights (reduce_range) 0.8709; MatMul only, classifier in fp32 0.8850.
# Speeds were alike within this VM's noise (1.16-1.34x LiteRT fp32 there). From the LiteRT file, per
# channel held dev F1 too.
QUANTIZE_OPTIONS = {"per_channel": True}
# Activation smoothing before quantizing (smoothing.py), alpha chosen on dev over the default recipe's
# seeds and the 3-epoch benchmark model (benchmarks/engines.py; the -int8-* results of 2026-12-02):
# without it the int8 model lost up to 0.32 points of dev F1 there, with alpha 0.8 it stayed within 0.1.
SMOOTHING_ALPHA = 0.8


def _gelu_as_contrib_op(ctx, node, name, args) -> None:
    """tf2onnx handler for LiteRT's fused GELU: ONNX Runtime's own Gelu / FastGelu (tanh) kernels."""
    node.type = "FastGelu" if node.get_attr_value("approximate", False) else "Gelu"
    node.domain = "com.microsoft"
    for attr in [a for a in node.attr if a != "_output_shapes"]:
        del node.attr[attr]


def _convert(tflite: Path, out: Path) -> None:
    """tf2onnx's graph of the LiteRT model, unoptimized, written to `out` (run in the child)."""
    from onnx import helper
    from tf2onnx import convert

    convert._convert_common(  # from_tflite() without tf2onnx's optimizers, which multiplied its peak memory
        None, tflite_path=str(tflite), name=tflite.stem, opset=OPSET, output_path=str(out), optimizers={},
        custom_op_handlers={"TFL_GELU": (_gelu_as_contrib_op, [])},
        extra_opset=[helper.make_opsetid("com.microsoft", 1)])


def convert_to_onnx(tflite: Path, out: Path) -> None:
    """The LiteRT model in ONNX, constants folded by ONNX Runtime's basic graph optimizations, at `out`."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        raw = Path(tmp) / "raw.onnx"
        done = subprocess.run([sys.executable, "-m", "nerctl.artifacts.quantize", str(tflite), str(raw)],
                              capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if done.returncode != 0:
            raise NerctlError(f"converting {tflite} to ONNX failed: {done.stderr.strip().splitlines()[-1:]}")
        # Folds LiteRT's transposed weights into constants, so that quantization finds MatMul weights;
        # symbolic shape inference does not know every op tf2onnx writes, and is not needed here.
        quant_pre_process(str(raw), str(out), skip_symbolic_shape=True)


def quantize_int8(fp32: Path, out: Path, **options: Any) -> None:
    """ONNX Runtime's dynamic int8 quantization of `fp32` (convert_to_onnx's output) into `out`.

    `options` are quantize_dynamic's (QUANTIZE_OPTIONS: what training keeps).
    """
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Gelu is an ONNX Runtime op the quantizer's type inference does not know: its output is float.
    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": TensorProto.FLOAT}, **options)


def write_int8_model(run: RunDir, encoder, sentences: Sequence[Sequence[str]]) -> None:
    """Write the run's model.int8.onnx from its model.tflite (atomically): converted, its activations
    smoothed (smoothing.py, maxima measured on windows of these training `sentences`, encoded by `encoder`),
    then quantized."""
    from .smoothing import calibration_batches, smooth

    fp32 = run.path / ".model.onnx.tmp"
    smoothed = run.path / ".model.smoothed.onnx.tmp"
    tmp = run.path / ".model.int8.onnx.tmp"
    try:
        convert_to_onnx(run.tflite, fp32)
        smooth(fp32, smoothed, calibration_batches(encoder, sentences), SMOOTHING_ALPHA)
        quantize_int8(smoothed, tmp, **QUANTIZE_OPTIONS)
        os.replace(tmp, run.int8_onnx)
    finally:
        for path in (fp32, smoothed, tmp):
            path.unlink(missing_ok=True)


if __name__ == "__main__":  # the child convert_to_onnx runs: python -m nerctl.artifacts.quantize TFLITE OUT
    _convert(Path(sys.argv[1]), Path(sys.argv[2]))
