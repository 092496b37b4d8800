#!/usr/bin/env python3
"""Inference engines side by side: the same trained run's forward + decode on all of engtest.

    .venv/bin/python benchmarks/engines.py --run RUN [--only NAME ...] [--repeats 3]

In one process and one run, each candidate engine tags MIT Movie engtest
through the same `Tagger` (tokenizing, windows, `tagging_plan` batches,
Viterbi), so only the forward pass differs. Per engine: sentences/s of
`Tagger.tags_and_scores` (best of --repeats, after a warm-up), strict entity F1
on the run's dev split (where choices are made) and on engtest, and the share of words whose tag equals LiteRT fp32's.

Candidates (an engine whose package is missing or whose conversion fails is
recorded with the reason, not fatal):
- litert-fp32: the run's model.tflite (what predict runs today);
- litert-int8-dynamic: the SavedModel converted with dynamic-range int8 weights;
- keras-fp32, keras-bf16: the best checkpoint in TensorFlow (bf16 where the CPU has it);
- openvino-fp32, openvino-bf16: OpenVINO reading model.tflite, INFERENCE_PRECISION_HINT f32/bf16;
- openvino-int8: the OpenVINO model quantized by NNCF (calibrated on engtrain windows);
- onnxruntime-fp32 and int8 by dynamic quantization: plain (one scale per matrix),
  reduce-range (7-bit weights), per-channel-reduce-range, matmul-only (per channel,
  MatMul nodes only), and nerctl (quantize.QUANTIZE_OPTIONS: what training keeps
  when its dev F1 holds); all from quantize.convert_to_onnx's conversion.

Writes benchmarks/results/<date>-<host>-engines.json with the CPU's flags.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from _common import cpu_flags, cpu_model, new_result, save_result
from nerctl.artifacts.quantize import QUANTIZE_OPTIONS

REPO = Path(__file__).resolve().parent.parent
DATA = [Path.home() / ".cache" / "nerctl" / "mitmovie", REPO.parent / "shared" / "data" / "mitmovie"]
THREADS = len(os.sched_getaffinity(0))


class ArrayForward:
    """A forward from any `run(input_ids, attention_mask) -> probabilities` function."""

    def __init__(self, run, num_labels: int):
        self.run, self.num_labels = run, num_labels

    def __call__(self, input_ids, attention_mask, n_batches: int = 1):
        return np.asarray(self.run(input_ids, attention_mask), dtype=np.float32)


def litert_fp32(run, work: Path, calibration):
    from nerctl.inference.engines.litert import LiteForward

    return LiteForward(run.tflite)


def litert_int8_dynamic(run, work: Path, calibration):
    from nerctl.inference.engines.litert import LiteForward
    from nerctl.artifacts.export import SIGNATURE
    from nerctl.modeling.runtime import import_tensorflow

    tf = import_tensorflow()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(run.path / "saved_model"), signature_keys=[SIGNATURE])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    path = work / "int8-dynamic.tflite"
    path.write_bytes(converter.convert())
    return LiteForward(path)


def _keras(precision: str):
    def build(run, work: Path, calibration):
        from nerctl.inference.engines.keras import KerasForward
        from nerctl.modeling.runtime import cpu_supports_bf16
        from nerctl.modeling.model import load_trained_model

        if precision == "bf16" and not cpu_supports_bf16():
            raise RuntimeError("the CPU has no native bfloat16")
        forward = KerasForward(load_trained_model(run.best, precision))
        return lambda ids, mask, n=1: forward(ids, mask, 10**6)  # always traced: a whole file's rate
    return build


def _openvino_model(run):
    import openvino as ov

    core = ov.Core()
    return core, core.read_model(str(run.tflite))


def _openvino_forward(compiled, num_labels: int) -> ArrayForward:
    request = compiled.create_infer_request()
    output = next(o for o in compiled.outputs if o.get_partial_shape().rank.get_length() == 3)  # probabilities
    names = [i.get_any_name() for i in compiled.inputs]

    def run(ids, mask):
        feeds = {name: (ids if "input_ids" in name else mask) for name in names}
        return request.infer(feeds)[output]
    return ArrayForward(run, num_labels)


def _openvino(hint: str):
    def build(run, work: Path, calibration):
        core, model = _openvino_model(run)
        config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": THREADS, "PERFORMANCE_HINT": "LATENCY"}
        return _openvino_forward(core.compile_model(model, "CPU", config), len(run.read_labels().labels))
    return build


def openvino_int8(run, work: Path, calibration):
    import nncf

    core, model = _openvino_model(run)
    names = [i.get_any_name() for i in model.inputs]
    items = [{name: (ids if "input_ids" in name else mask) for name in names} for ids, mask in calibration]
    quantized = nncf.quantize(model, nncf.Dataset(items), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(items))
    config = {"INFERENCE_NUM_THREADS": THREADS, "PERFORMANCE_HINT": "LATENCY"}
    return _openvino_forward(core.compile_model(quantized, "CPU", config), len(run.read_labels().labels))


def _onnx_file(run, work: Path) -> Path:
    """The LiteRT model in ONNX, converted as nerctl converts it (quantize.convert_to_onnx)."""
    from nerctl.artifacts.quantize import convert_to_onnx

    path = work / "model.onnx"
    if not path.exists():
        convert_to_onnx(run.tflite, path)
    return path


def onnxruntime_fp32(run, work: Path, calibration):
    from nerctl.inference.engines.onnx import OnnxForward

    return OnnxForward(_onnx_file(run, work))


def _onnxruntime_int8(**options):
    """ONNX Runtime's dynamic quantization with `options`: int8 weights, activations quantized per call."""
    def build(run, work: Path, calibration):
        from nerctl.artifacts.quantize import quantize_int8

        path = work / f"model-int8-{len(list(work.glob('model-int8-*')))}.onnx"
        quantize_int8(_onnx_file(run, work), path, **options)
        from nerctl.inference.engines.onnx import OnnxForward

        return OnnxForward(path)
    return build


CANDIDATES = {
    "litert-fp32": litert_fp32,
    "litert-int8-dynamic": litert_int8_dynamic,
    "keras-fp32": _keras("fp32"),
    "keras-bf16": _keras("bf16"),
    "openvino-fp32": _openvino("f32"),
    "openvino-bf16": _openvino("bf16"),
    "openvino-int8": openvino_int8,
    "onnxruntime-fp32": onnxruntime_fp32,
    "onnxruntime-int8": _onnxruntime_int8(),
    "onnxruntime-int8-reduce-range": _onnxruntime_int8(reduce_range=True),
    "onnxruntime-int8-per-channel-reduce-range": _onnxruntime_int8(per_channel=True, reduce_range=True),
    "onnxruntime-int8-matmul-only": _onnxruntime_int8(per_channel=True, op_types_to_quantize=["MatMul"]),
    "onnxruntime-int8-nerctl": _onnxruntime_int8(**QUANTIZE_OPTIONS),
}


def calibration_batches(tagger, sentences, count: int = 16, size: int = 16) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches of engtrain windows, as the tagger builds them, for int8 calibration."""
    from nerctl.modeling.encoding import collate, tagging_plan

    windows = tagger.encoder.encode([s.words for s in sentences])
    plan = tagging_plan(windows, size)
    picks = np.random.default_rng(0).choice(len(plan), size=min(count, len(plan)), replace=False)
    batches = [collate(windows, plan[i][1], tagger.encoder.pad_id, plan[i][0]) for i in sorted(picks)]
    return [(b.input_ids, b.attention_mask) for b in batches]


def measure(tagger, sentences, gold, reference, repeats: int, dev) -> dict:
    from nerctl.evaluation.scoring import score

    words = [s.words for s in sentences]
    dev_f1 = score([list(s.tags) for s in dev], [t for t, _ in tagger.tags_and_scores([s.words for s in dev])])["f1"]
    tagger.tags_and_scores(words[:256])  # warm-up: first shapes, lazy set-up
    best, predicted = float("inf"), []
    for _ in range(repeats):
        start = time.perf_counter()
        predicted = [tags for tags, _ in tagger.tags_and_scores(words)]
        best = min(best, time.perf_counter() - start)
    flat = [t for tags in predicted for t in tags]
    agreement = None if reference is None else float(np.mean([a == b for a, b in zip(flat, reference)]))
    return {"sentences_per_s": round(len(words) / best, 1), "seconds": round(best, 3),
            "dev_f1": round(dev_f1, 4), "f1": round(score(gold, predicted)["f1"], 4),
            "tag_agreement_with_litert_fp32": None if agreement is None else round(agreement, 5)}, flat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default=str(REPO / "runs" / "latest"))
    parser.add_argument("--only", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from nerctl.data.formats.bio import read_bio
    from nerctl.training.corpus import load_data
    from nerctl.artifacts.rundir import RunDir
    from nerctl.inference.tagger import Tagger

    run = RunDir(Path(args.run))
    config = run.read_config().config
    mirror = next(str(d) for d in DATA if (d / "engtest.bio").is_file())
    data = load_data(config, mirror)  # the run's own dev split: choices are made on dev, engtest only reported
    test = data.test or read_bio(Path(mirror) / "engtest.bio")
    gold = [list(s.tags) for s in test]
    base = Tagger.from_run(run, backend="litert")
    calibration = calibration_batches(base, data.train[:2000])
    result = new_result(cpu=cpu_model(), cpu_flags=cpu_flags(), threads=THREADS, run=args.run,
                        sentences=len(test), engines={})
    reference = None
    work = Path(tempfile.mkdtemp(prefix="nerctl-engines-"))
    names = ["litert-fp32"] + [n for n in args.only if n != "litert-fp32"]
    for name in names:
        print(f"[engines] {name}", file=sys.stderr, flush=True)
        try:
            started = time.perf_counter()
            forward = CANDIDATES[name](run, work, calibration)
            set_up_s = time.perf_counter() - started
            if not hasattr(forward, "num_labels"):
                forward = ArrayForward(lambda ids, mask, f=forward: f(ids, mask), len(base.label_map.labels))
            tagger = Tagger(forward, base.encoder.tokenizer, base.label_map, base.encoder.max_len, base.batch_size,
                            transitions=base.transitions)
            record, flat = measure(tagger, test, gold, reference, args.repeats, data.dev)
            record["set_up_s"] = round(set_up_s, 1)
            if name == "litert-fp32":
                reference, record["tag_agreement_with_litert_fp32"] = flat, 1.0
        except Exception as err:  # noqa: BLE001 - a candidate that cannot run is a finding, not a crash
            traceback.print_exc()
            record = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
        result["engines"][name] = record
        print(f"[engines] {name}: {record}", file=sys.stderr, flush=True)
    fp32 = result["engines"].get("litert-fp32", {}).get("sentences_per_s")
    rows = ["| engine | sentences/s | vs LiteRT fp32 | dev F1 | engtest F1 | tags equal to LiteRT fp32 |",
            "| --- | --- | --- | --- | --- | --- |"]
    for name, r in result["engines"].items():
        if "error" in r:
            rows.append(f"| {name} | - | - | - | - | {r['error'][:80]} |")
        else:
            ratio = f"{r['sentences_per_s'] / fp32:.2f}x" if fp32 else "-"
            rows.append(f"| {name} | {r['sentences_per_s']} | {ratio} | {r['dev_f1']} | {r['f1']} | "
                        f"{r['tag_agreement_with_litert_fp32']} |")
    result["table"] = "\n".join(rows)
    print(save_result(result, REPO / "benchmarks" / "results", "-engines"), file=sys.stderr)
    print(result["table"])


if __name__ == "__main__":
    main()
