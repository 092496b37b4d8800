"""The int8 recipe (artifacts/smoothing.py + quantize.py): smoothing leaves the model's outputs as they were,
evens its activations' channels, and is what training's int8 model is made of."""

import numpy as np
import pytest

pytestmark = pytest.mark.int8


@pytest.fixture(scope="module")
def onnx_model(trained_run, bio_files, tmp_path_factory):
    """The tiny run's LiteRT model in ONNX, and calibration batches of its training windows."""
    from nerctl.artifacts.quantize import convert_to_onnx
    from nerctl.artifacts.rundir import RunDir
    from nerctl.artifacts.smoothing import calibration_batches
    from nerctl.data.formats.bio import read_bio
    from nerctl.inference.tagger import Tagger

    run = RunDir(trained_run)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    convert_to_onnx(run.tflite, path)
    batches = calibration_batches(Tagger.from_run(run).encoder, [s.words for s in read_bio(bio_files["train"])])
    return path, batches


def test_smoothing_leaves_the_outputs_and_evens_the_channels(onnx_model, tmp_path):
    from nerctl.artifacts.smoothing import _weight_matmuls, activation_maxima, smooth
    from nerctl.inference.engines.onnx import OnnxForward
    import onnx

    path, batches = onnx_model
    smoothed = tmp_path / "smoothed.onnx"
    inputs = smooth(path, smoothed, batches, alpha=0.8)
    groups = _weight_matmuls(onnx.load(str(path)).graph)
    assert inputs == len(groups) > 0
    before, after = OnnxForward(path), OnnxForward(smoothed)
    for ids, mask in batches[:3]:
        np.testing.assert_allclose(after(ids, mask), before(ids, mask), atol=2e-5)
    # Each smoothed input's channel maxima are closer together than the raw ones (max/median).
    graph = onnx.load(str(smoothed)).graph
    feeds = {node.output[0]: node.input[0] for node in graph.node if node.name.startswith("smooth_")}
    raw = activation_maxima(onnx.load(str(path)), list(feeds.values()), batches)
    even = activation_maxima(onnx.load(str(smoothed)), list(feeds), batches)
    spread = lambda m: m.max() / np.median(m)  # noqa: E731
    assert np.mean([spread(even[out]) < spread(raw[source]) for out, source in feeds.items()]) > 0.5


def test_the_int8_model_training_writes_is_the_smoothed_one(gated_run, int8_run):
    """model.int8.onnx as training (and the int8_run fixture) writes it: a smoothing Mul before each weight
    MatMul's input, every weight MatMul quantized, the attention products left in fp32."""
    import onnx

    from nerctl.artifacts.rundir import RunDir

    graph = onnx.load(str(RunDir(int8_run).int8_onnx)).graph
    kinds = [node.op_type for node in graph.node]
    smoothing = [node for node in graph.node if node.name.startswith("smooth_")]
    assert smoothing and all(node.op_type == "Mul" for node in smoothing)
    assert kinds.count("MatMulInteger") == 2 * 6 + 1  # the tiny BERT's 2 layers x 6 weight MatMuls + classifier
    assert all("attention/self/MatMul" in node.name for node in graph.node if node.op_type == "MatMul")
    summary = RunDir(gated_run).read_summary()
    assert {"dev_f1_fp32", "dev_f1_int8", "kept"} <= set(summary["int8"])
