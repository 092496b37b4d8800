#!/usr/bin/env python3
"""Inference engines side by side: the same trained run's forward + decode on all of engtest.

    .venv/bin/python benchmarks/engines.py --run RUN [RUN ...] [--only NAME ...] [--repeats 3] [--suffix -x]

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
  MatMul nodes only), and nerctl (quantize.QUANTIZE_OPTIONS alone: the recipe before
  smoothing); all from quantize.convert_to_onnx's conversion;
- onnxruntime-int8-smooth-A: activations smoothed at alpha A (artifacts/smoothing.py),
  then per channel (A = quantize.SMOOTHING_ALPHA is what training makes);
- onnxruntime-int8-static-*: ONNX Runtime's static (calibrated) activation scales, QDQ;
- onnxruntime-int8-fp32-ROLE / -fp32-layer-N: per channel, with one role's MatMuls in
  every layer, or one layer's, left in fp32.

Calibration, where a candidate needs it: smoothing.calibration_batches of the run's
training split, as training draws them. `--repeats 0` measures dev only, with the
dev words each engine tags otherwise than LiteRT fp32.

Writes benchmarks/results/<date>-<host>-engines.json with the CPU's flags.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from _common import cpu_flags, cpu_model, new_result, save_result
from nerctl.artifacts.quantize import QUANTIZE_OPTIONS
from nerctl.artifacts.smoothing import calibration_batches

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


def _smoothed_file(run, work: Path, calibration, alpha: float) -> Path:
    """The run's ONNX model with its activations smoothed at `alpha` (artifacts/smoothing.py), made once."""
    from nerctl.artifacts.smoothing import smooth

    path = work / f"model-smoothed-{alpha}.onnx"
    if not path.exists():
        smooth(_onnx_file(run, work), path, calibration, alpha)
    return path


def _onnxruntime_int8_smoothed(alpha: float, **options):
    """Activation smoothing (SmoothQuant) on engtrain windows, then dynamic int8 (what training makes at
    quantize.SMOOTHING_ALPHA with QUANTIZE_OPTIONS)."""
    def build(run, work: Path, calibration):
        from nerctl.artifacts.quantize import quantize_int8
        from nerctl.inference.engines.onnx import OnnxForward

        path = work / f"model-int8-{len(list(work.glob('model-int8-*')))}.onnx"
        quantize_int8(_smoothed_file(run, work, calibration, alpha), path, **options)
        return OnnxForward(path)
    return build


def _onnxruntime_int8_static(method: str, smoothed: float | None = None):
    """ONNX Runtime's static quantization (QDQ, MatMuls only): activation scales calibrated on engtrain windows
    by `method` (MinMax, Percentile, Entropy), optionally after smoothing with alpha `smoothed`."""
    def build(run, work: Path, calibration):
        import onnx
        from onnx import TensorProto
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                              quantize_static)
        from nerctl.inference.engines.onnx import OnnxForward

        source = _onnx_file(run, work) if smoothed is None else _smoothed_file(run, work, calibration, smoothed)
        names = [i.name for i in onnx.load(str(source)).graph.input]

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.items = iter([{n: (ids if "input_ids" in n else mask) for n in names} for ids, mask in calibration])

            def get_next(self):
                return next(self.items, None)

        path = work / f"model-int8-{len(list(work.glob('model-int8-*')))}.onnx"
        quantize_static(str(source), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                        calibrate_method=getattr(CalibrationMethod, method),
                        extra_options={"DefaultTensorType": TensorProto.FLOAT, "MatMulConstBOnly": True})
        return OnnxForward(path)
    return build


# Kept in fp32 (nodes_to_exclude): the MatMuls of one role in every layer, or every MatMul of one layer: which
# of them the int8 error comes from (names as tf2onnx writes them from the LiteRT model).
ROLES = {"qkv": r"attention/self/(query|key|value)/", "attention-output": r"attention/output/dense",
         "ffn-in": r"intermediate/dense", "ffn-out": r"layer_\._\d+/output/dense", "classifier": r"classifier/"}


def _onnxruntime_int8_keeping(pattern: str, **options):
    """Dynamic int8 with every MatMul whose name matches the regex `pattern` left in fp32."""
    def build(run, work: Path, calibration):
        import onnx

        names = [n.name for n in onnx.load(str(_onnx_file(run, work))).graph.node
                 if n.op_type == "MatMul" and re.search(pattern, n.name)]
        return _onnxruntime_int8(nodes_to_exclude=names, **options)(run, work, calibration)
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
    **{f"onnxruntime-int8-smooth-{alpha}": _onnxruntime_int8_smoothed(alpha, per_channel=True)
       for alpha in (0.5, 0.65, 0.8, 0.9)},
    "onnxruntime-int8-static-minmax": _onnxruntime_int8_static("MinMax"),
    "onnxruntime-int8-static-percentile": _onnxruntime_int8_static("Percentile"),
    "onnxruntime-int8-static-smooth-0.5": _onnxruntime_int8_static("MinMax", smoothed=0.5),
    **{f"onnxruntime-int8-fp32-{role}": _onnxruntime_int8_keeping(pattern, per_channel=True)
       for role, pattern in ROLES.items()},
    **{f"onnxruntime-int8-fp32-layer-{i}": _onnxruntime_int8_keeping(rf"layer_\._{i}/", per_channel=True)
       for i in range(6)},
}


def measure(tagger, sentences, gold, reference, repeats: int, dev, dev_reference) -> tuple[dict, list | None, list]:
    """Dev F1 and the dev words tagged otherwise than `dev_reference` (LiteRT fp32's dev tags: a steadier
    view of an engine's error than F1, where a few flipped entities move the figure); with `repeats`,
    engtest sentences/s (best of them), F1 and agreement with `reference` too. Also the dev tags."""
    from nerctl.evaluation.scoring import score

    dev_tags = [t for t, _ in tagger.tags_and_scores([s.words for s in dev])]
    dev_f1 = score([list(s.tags) for s in dev], dev_tags)["f1"]
    dev_flat = [t for tags in dev_tags for t in tags]
    record = {"dev_f1": round(dev_f1, 4), "dev_words_tagged_unlike_litert_fp32": None if dev_reference is None
              else sum(a != b for a, b in zip(dev_flat, dev_reference))}
    if not repeats:
        return record, None, dev_flat
    words = [s.words for s in sentences]
    tagger.tags_and_scores(words[:256])  # warm-up: first shapes, lazy set-up
    best, predicted = float("inf"), []
    for _ in range(repeats):
        start = time.perf_counter()
        predicted = [tags for tags, _ in tagger.tags_and_scores(words)]
        best = min(best, time.perf_counter() - start)
    flat = [t for tags in predicted for t in tags]
    agreement = None if reference is None else float(np.mean([a == b for a, b in zip(flat, reference)]))
    return {**record, "sentences_per_s": round(len(words) / best, 1), "seconds": round(best, 3),
            "f1": round(score(gold, predicted)["f1"], 4),
            "tag_agreement_with_litert_fp32": None if agreement is None else round(agreement, 5)}, flat, dev_flat


def measure_run(run_path: str, names: list[str], repeats: int) -> dict:
    """Each candidate engine on one run: its record (or the error that stopped it), by name."""
    from nerctl.data.formats.bio import read_bio
    from nerctl.training.corpus import load_data
    from nerctl.artifacts.rundir import RunDir
    from nerctl.inference.tagger import Tagger

    run = RunDir(Path(run_path))
    config = run.read_config().config
    mirror = next(str(d) for d in DATA if (d / "engtest.bio").is_file())
    data = load_data(config, mirror)  # the run's own dev split: choices are made on dev, engtest only reported
    test = data.test or read_bio(Path(mirror) / "engtest.bio")
    gold = [list(s.tags) for s in test]
    base = Tagger.from_run(run, backend="litert")
    calibration = calibration_batches(base.encoder, [s.words for s in data.train])
    engines, reference, dev_reference = {}, None, None
    work = Path(tempfile.mkdtemp(prefix="nerctl-engines-"))
    for name in ["litert-fp32"] + [n for n in names if n != "litert-fp32"]:
        print(f"[engines] {run_path}: {name}", file=sys.stderr, flush=True)
        try:
            started = time.perf_counter()
            forward = CANDIDATES[name](run, work, calibration)
            set_up_s = time.perf_counter() - started
            if not hasattr(forward, "num_labels"):
                forward = ArrayForward(lambda ids, mask, f=forward: f(ids, mask), len(base.label_map.labels))
            tagger = Tagger(forward, base.encoder.tokenizer, base.label_map, base.encoder.max_len, base.batch_size,
                            transitions=base.transitions)
            record, flat, dev_flat = measure(tagger, test, gold, reference, repeats, data.dev, dev_reference)
            record["set_up_s"] = round(set_up_s, 1)
            if name == "litert-fp32":
                dev_reference, record["dev_words_tagged_unlike_litert_fp32"] = dev_flat, 0
                if flat is not None:
                    reference, record["tag_agreement_with_litert_fp32"] = flat, 1.0
        except Exception as err:  # noqa: BLE001 - a candidate that cannot run is a finding, not a crash
            traceback.print_exc()
            record = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
        engines[name] = record
        print(f"[engines] {name}: {record}", file=sys.stderr, flush=True)
    return engines


def run_table(engines: dict) -> str:
    fp32 = engines.get("litert-fp32", {})
    rows = ["| engine | sentences/s | vs LiteRT fp32 | dev F1 | dev F1 - fp32 (points) | engtest F1 | "
            "tags equal to LiteRT fp32 |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in engines.items():
        if "error" in r:
            rows.append(f"| {name} | - | - | - | - | - | {r['error'][:80]} |")
            continue
        speed = r.get("sentences_per_s")
        ratio = f"{speed / fp32['sentences_per_s']:.2f}x" if speed and fp32.get("sentences_per_s") else "-"
        delta = f"{(r['dev_f1'] - fp32['dev_f1']) * 100:+.2f}" if "dev_f1" in fp32 else "-"
        rows.append(f"| {name} | {speed or '-'} | {ratio} | {r['dev_f1']} | {delta} | {r.get('f1', '-')} | "
                    f"{r.get('tag_agreement_with_litert_fp32', '-')} |")
    return "\n".join(rows)


def deltas_table(runs: dict[str, dict]) -> str:
    """Dev F1 of each candidate minus LiteRT fp32's, in points, per run: the int8 rule's view (in brackets, the
    dev words it tags otherwise than fp32)."""
    names = list(dict.fromkeys(n for engines in runs.values() for n in engines if n != "litert-fp32"))
    rows = ["| engine | " + " | ".join(Path(r).name for r in runs) + " | worst |",
            "| --- |" + " --- |" * (len(runs) + 1)]
    for name in names:
        cells = [(e[name]["dev_f1"] - e["litert-fp32"]["dev_f1"]) * 100 if "dev_f1" in e.get(name, {}) else None
                 for e in runs.values()]
        known = [c for c in cells if c is not None]
        words = [e.get(name, {}).get("dev_words_tagged_unlike_litert_fp32") for e in runs.values()]
        cells = ["-" if c is None else f"{c:+.2f}" + ("" if w is None else f" ({w})") for c, w in zip(cells, words)]
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {min(known):+.2f} |" if known else
                    f"| {name} | " + " | ".join(cells) + " | - |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", nargs="+", default=[str(REPO / "runs" / "latest")])
    parser.add_argument("--only", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over engtest (0: dev F1 only)")
    parser.add_argument("--suffix", default="", help="added to the results file's name")
    args = parser.parse_args()

    result = new_result(cpu=cpu_model(), cpu_flags=cpu_flags(), threads=THREADS, runs={})
    for run_path in args.run:
        result["runs"][run_path] = measure_run(run_path, args.only, args.repeats)
    result["tables"] = {run: run_table(engines) for run, engines in result["runs"].items()}
    result["dev_f1_deltas"] = deltas_table(result["runs"])
    print(save_result(result, REPO / "benchmarks" / "results", f"-engines{args.suffix}"), file=sys.stderr)
    print("\n\n".join([*result["tables"].values(), result["dev_f1_deltas"]]))


if __name__ == "__main__":
    main()
