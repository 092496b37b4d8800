"""The int8 model: the SavedModel converted to ONNX, its weights quantized, kept only if dev F1 holds.

On a 2-core AMD EPYC with AVX2 only (no VNNI, no AVX-512), ONNX Runtime ran
MiniLM's dynamically quantized int8 model 1.32x as fast as LiteRT fp32 on all
of engtest, forward and decode (benchmarks/engines.py; 1.36-1.47x for similar
recipes in two earlier runs), engtest F1 0.8808 against 0.8819; LiteRT's own
int8 (0.97-1.09x) and OpenVINO's (NNCF, 0.65-0.77x) were not worth it there. Quantizing can
cost accuracy, so the model is kept only where its dev F1 is within
`DEV_F1_TOLERANCE` of the fp32 model's; otherwise the file is removed and the
reason recorded.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .bio import Sentence
from .errors import NerctlError
from .rundir import RunDir

DEV_F1_TOLERANCE = 0.002  # 0.2 points of strict entity F1: below that the int8 model is not used
OPSET = 17
# Chosen on the default run's dev split (fp32 0.8870; AMD EPYC, AVX2): a scale per output
# channel 0.8852; one scale per matrix 0.8840; 7-bit weights (reduce_range) 0.8709; MatMul
# only, classifier in fp32 0.8850. Speeds were alike within this VM's noise (~1.3-1.5x fp32).
QUANTIZE_OPTIONS = {"per_channel": True}


def convert_to_onnx(saved_model: Path, out: Path) -> None:
    """tf2onnx's conversion of the SavedModel's serving signature, written to `out`.

    TensorFlow's exact GELU becomes an `Erfc` node, which ONNX has no operator for:
    each is rewritten as 1 - Erf(x).
    """
    import onnx
    from onnx import helper, numpy_helper

    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        raw = Path(tmp) / "raw.onnx"
        done = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved_model),
                               "--output", str(raw), "--opset", str(OPSET)], capture_output=True, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if done.returncode != 0:
            raise NerctlError(f"converting {saved_model} to ONNX failed: {done.stderr.strip().splitlines()[-1:]}")
        model = onnx.load(str(raw))
    nodes = []
    for node in model.graph.node:
        if node.op_type != "Erfc":
            nodes.append(node)
            continue
        one, erf = node.name + "/one", node.name + "/erf"
        model.graph.initializer.append(numpy_helper.from_array(np.array(1.0, np.float32), one))
        nodes += [helper.make_node("Erf", list(node.input), [erf], name=erf),
                  helper.make_node("Sub", [one, erf], list(node.output), name=node.name + "/sub")]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(out))


def write_int8_model(run: RunDir) -> None:
    """Write the run's model.int8.onnx from its SavedModel (atomically)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = run.path / ".model.onnx.tmp"
    tmp = run.path / ".model.int8.onnx.tmp"
    try:
        convert_to_onnx(run.saved_model, fp32)
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, **QUANTIZE_OPTIONS)
        os.replace(tmp, run.int8_onnx)
    finally:
        for path in (fp32, tmp):
            path.unlink(missing_ok=True)


def gate_int8(run: RunDir, dev: Sequence[Sentence], log: Callable[[str], None]) -> dict[str, Any]:
    """Make the int8 model and keep it only if its dev F1 is within DEV_F1_TOLERANCE of fp32's.

    Returns what was measured and decided, for summary.json.
    """
    from .scoring import evaluate_sentences
    from .tagger import Tagger

    write_int8_model(run)
    fp32, _ = evaluate_sentences(Tagger.from_run(run, backend="litert"), dev)
    int8, _ = evaluate_sentences(Tagger.from_run(run, backend="onnx"), dev)
    kept = int8["f1"] >= fp32["f1"] - DEV_F1_TOLERANCE
    record = {"dev_f1_fp32": fp32["f1"], "dev_f1_int8": int8["f1"], "tolerance": DEV_F1_TOLERANCE, "kept": kept}
    if kept:
        log(f"int8 model kept: dev F1 {int8['f1']:.4f} against fp32's {fp32['f1']:.4f}")
    else:
        run.int8_onnx.unlink()
        record["reason"] = (f"dev F1 {int8['f1']:.4f} is more than {DEV_F1_TOLERANCE * 100:.1f} points below "
                            f"fp32's {fp32['f1']:.4f}: predict runs fp32")
        log(f"int8 model not kept: {record['reason']}")
    return record
