"""Activation smoothing before int8 (SmoothQuant): outlier channels moved from activations into weights.

ONNX Runtime's dynamic quantization gives each MatMul's input ONE int8 scale per
call, for the whole batch. A transformer's LayerNorm outputs carry a few
channels far larger than the rest, so that one scale leaves the ordinary
channels a handful of levels. For a MatMul `X @ W` with W constant,
`(X / s) @ (s * W)` is the same product; with `s_k = max|X_k|^a / max|W_k|^(1-a)`
(per input channel k, a = `alpha`, the activation maxima measured on
calibration batches) the activations' channels come out even and the weights,
quantized per output channel, take the difference (Xiao et al., 2023).

The division is one `Mul` per distinct input (Q, K and V share theirs, so they
share one `s`): a few elementwise products against the MatMuls it serves.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

FLOOR = 1e-5  # no channel divided by (almost) zero: a dead channel keeps s = 1
CALIBRATION_BATCHES = 16  # x 16 windows: 256 training windows, a few seconds of forward passes
CALIBRATION_SENTENCES = 2000  # the windows are drawn from the first of the training sentences


def calibration_batches(encoder, sentences: Sequence[Sequence[str]], count: int = CALIBRATION_BATCHES,
                        size: int = 16) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` batches of `size` windows of these (training) sentences, drawn with a fixed seed and padded as
    the tagger pads them: what the activation maxima are measured on."""
    from ..modeling.encoding import collate, tagging_plan

    windows = encoder.encode(sentences[:CALIBRATION_SENTENCES])
    plan = tagging_plan(windows, size)
    picks = np.random.default_rng(0).choice(len(plan), size=min(count, len(plan)), replace=False)
    batches = [collate(windows, plan[i][1], encoder.pad_id, plan[i][0]) for i in sorted(picks)]
    return [(b.input_ids, b.attention_mask) for b in batches]


def _weight_matmuls(graph) -> dict[str, list]:
    """MatMuls whose second input is a constant 2-D weight, grouped by their (activation) first input."""
    weights = {i.name: i for i in graph.initializer if len(i.dims) == 2}
    groups: dict[str, list] = defaultdict(list)
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in weights and node.input[0] not in weights:
            groups[node.input[0]].append(node)
    return groups


def activation_maxima(model, inputs: list[str], batches: Iterable[tuple[np.ndarray, np.ndarray]]
                      ) -> dict[str, np.ndarray]:
    """max |x| per last-axis channel of each tensor in `inputs`, over the calibration batches, for an ONNX
    model (a ModelProto, left as it is: the tensors are added as outputs of a copy)."""
    import onnx
    import onnxruntime

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.ValueInfoProto(name=name) for name in inputs if name not in known)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = [(i.name, "input_ids" in i.name) for i in session.get_inputs()]
    maxima: dict[str, np.ndarray] = {}
    for ids, mask in batches:
        values = session.run(inputs, {name: ids if is_ids else mask for name, is_ids in feeds})
        for name, value in zip(inputs, values):
            channel_max = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            maxima[name] = np.maximum(maxima[name], channel_max) if name in maxima else channel_max
    return maxima


def smooth(model_path: Path, out: Path, batches: Iterable[tuple[np.ndarray, np.ndarray]], alpha: float) -> int:
    """Write `model_path` with every weight MatMul's input smoothed (same outputs, evener activations) to
    `out`; the number of inputs smoothed."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(model_path))
    graph = model.graph
    groups = _weight_matmuls(graph)
    maxima = activation_maxima(model, list(groups), batches)
    weights = {i.name: i for i in graph.initializer}
    muls = {}  # source tensor -> the Mul that divides it
    for n, (source, nodes) in enumerate(groups.items()):
        arrays = {node.input[1]: numpy_helper.to_array(weights[node.input[1]]) for node in nodes}
        weight_max = np.max([np.abs(w).max(axis=1) for w in arrays.values()], axis=0)
        scale = np.power(np.maximum(maxima[source], FLOOR), alpha) / np.power(np.maximum(weight_max, FLOOR), 1 - alpha)
        scale = np.where((maxima[source] > FLOOR) & (weight_max > FLOOR), scale, 1.0).astype(np.float32)
        for name, array in arrays.items():
            weights[name].CopyFrom(numpy_helper.from_array((array * scale[:, None]).astype(np.float32), name))
        inverse = numpy_helper.from_array((1.0 / scale).astype(np.float32), f"smooth_{n}_inverse_scale")
        graph.initializer.append(inverse)
        muls[source] = helper.make_node("Mul", [source, inverse.name], [f"{source}_smoothed"], name=f"smooth_{n}")
        for node in nodes:
            node.input[0] = muls[source].output[0]
    _insert_after_producers(graph, muls)
    onnx.save(model, str(out))
    return len(groups)


def _insert_after_producers(graph, muls: dict) -> None:
    """Put each Mul right after the node that makes its input (first, for a graph input): ONNX wants the
    nodes in dependency order, and the MatMuls it feeds all come later."""
    import onnx

    ordered = [muls[i.name] for i in graph.input if i.name in muls]
    for node in graph.node:
        ordered.append(node)
        ordered.extend(muls[name] for name in node.output if name in muls)
    copies = [onnx.NodeProto() for _ in ordered]
    for copy, node in zip(copies, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)
