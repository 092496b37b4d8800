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

ALPHA = 0.5  # the paper's default: the difficulty split evenly between activations and weights
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


def activation_maxima(model_path: Path, inputs: list[str], batches: Iterable[tuple[np.ndarray, np.ndarray]]
                      ) -> dict[str, np.ndarray]:
    """max |x| per last-axis channel of each tensor in `inputs`, over the calibration batches."""
    import onnx
    import onnxruntime

    model = onnx.load(str(model_path))
    known = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in inputs if name not in known)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = [(i.name, "input_ids" in i.name) for i in session.get_inputs()]
    maxima: dict[str, np.ndarray] = {}
    for ids, mask in batches:
        values = session.run(inputs, {name: ids if is_ids else mask for name, is_ids in feeds})
        for name, value in zip(inputs, values):
            channel_max = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            maxima[name] = np.maximum(maxima[name], channel_max) if name in maxima else channel_max
    return maxima


def smooth(model_path: Path, out: Path, batches: Iterable[tuple[np.ndarray, np.ndarray]],
           alpha: float = ALPHA) -> int:
    """Write `model_path` with every weight MatMul's input smoothed (same outputs, evener activations) to
    `out`; the number of inputs smoothed."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(model_path))
    graph = model.graph
    groups = _weight_matmuls(graph)
    maxima = activation_maxima(model_path, list(groups), batches)
    weights = {i.name: i for i in graph.initializer}
    for n, (source, nodes) in enumerate(groups.items()):
        arrays = {node.input[1]: numpy_helper.to_array(weights[node.input[1]]) for node in nodes}
        weight_max = np.max([np.abs(w).max(axis=1) for w in arrays.values()], axis=0)
        scale = np.power(np.maximum(maxima[source], FLOOR), alpha) / np.power(np.maximum(weight_max, FLOOR), 1 - alpha)
        scale = np.where((maxima[source] > FLOOR) & (weight_max > FLOOR), scale, 1.0).astype(np.float32)
        for name, array in arrays.items():
            weights[name].CopyFrom(numpy_helper.from_array((array * scale[:, None]).astype(np.float32), name))
        inverse = numpy_helper.from_array((1.0 / scale).astype(np.float32), f"smooth_{n}_inverse_scale")
        graph.initializer.append(inverse)
        smoothed = f"{source}_smoothed"
        graph.node.append(helper.make_node("Mul", [source, inverse.name], [smoothed], name=f"smooth_{n}"))
        for node in nodes:
            node.input[0] = smoothed
    _sort_topologically(graph)
    onnx.save(model, str(out))
    return len(groups)


def _sort_topologically(graph) -> None:
    """ONNX wants nodes in dependency order; the Muls were appended at the end."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        left = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                left.append(node)
        if len(left) == len(pending):
            raise ValueError("the graph has a cycle or an undefined input")
        pending = left
    copies = [type(node)() for node in ordered]
    for copy, node in zip(copies, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)
