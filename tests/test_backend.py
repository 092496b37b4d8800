"""--backend and --precision: which engine runs a finished run, and the summary that `evaluate` reproduces."""
import json

import pytest
from typer.testing import CliRunner

from nerctl.inference import engines
from nerctl.cli import app
from nerctl.inference.engines import choose_engine
from nerctl.core.errors import InputError
from conftest import train_args

runner = CliRunner()


def engines_of(has_tflite: bool, has_int8: bool) -> set[str]:
    """The engines a run has: keras always (best/), litert with model.tflite, onnx with model.int8.onnx."""
    return {"keras"} | ({"litert"} if has_tflite else set()) | ({"onnx"} if has_int8 else set())


@pytest.mark.parametrize("backend, precision, has_tflite, has_int8, native_bf16, expected", [
    ("auto", "auto", True, True, True, ("onnx", "int8")),
    ("auto", "auto", True, False, True, ("litert", "fp32")),
    ("auto", "fp32", True, True, True, ("litert", "fp32")),
    ("auto", "int8", True, True, False, ("onnx", "int8")),
    ("auto", "bf16", True, True, False, ("keras", "bf16")),
    ("auto", "auto", False, False, False, ("keras", "fp32")),
    ("keras", "auto", True, True, True, ("keras", "bf16")),
    ("keras", "auto", True, True, False, ("keras", "fp32")),
    ("keras", "fp32", True, False, True, ("keras", "fp32")),
    ("litert", "auto", True, True, True, ("litert", "fp32")),
    ("onnx", "auto", True, True, True, ("onnx", "int8")),
])
def test_engine_choice(monkeypatch, backend, precision, has_tflite, has_int8, native_bf16, expected):
    monkeypatch.setattr(engines, "cpu_supports_bf16", lambda: native_bf16)
    engine = choose_engine(backend, precision, engines_of(has_tflite, has_int8))
    assert (engine.backend, engine.precision) == expected
    assert engine.describe().startswith(f"backend {expected[0]} ({expected[1]}): ")


@pytest.mark.parametrize("backend, precision, has_tflite, has_int8, message", [
    ("litert", "bf16", True, True, "runs fp32 only"),
    ("litert", "int8", True, True, "runs fp32 only"),
    ("litert", "auto", False, False, "has no model.tflite"),
    ("onnx", "auto", True, False, "has no model.int8.onnx"),
    ("onnx", "fp32", True, True, "runs int8 only"),
    ("keras", "int8", True, True, "runs fp32 or bf16"),
    ("tvm", "auto", True, True, "unknown backend 'tvm'"),
    ("auto", "fp16", True, True, "unknown precision 'fp16'"),
])
def test_impossible_engine_requests_are_input_errors(backend, precision, has_tflite, has_int8, message):
    with pytest.raises(InputError, match=message):
        choose_engine(backend, precision, engines_of(has_tflite, has_int8))


def test_each_backend_tags_alike_and_evaluate_names_it(trained_run, bio_files):
    tags = {}
    for backend in ("litert", "keras"):
        result = runner.invoke(app, ["predict", "--run", str(trained_run), "--backend", backend, "--precision", "fp32",
                                     "--format", "jsonl", "have you seen titanic", "who directed jaws"])
        assert result.exit_code == 0, result.output
        tags[backend] = [[w["tag"] for w in json.loads(line)["words"]] for line in result.stdout.splitlines()]
        scored = runner.invoke(app, ["evaluate", str(trained_run), "--file", str(bio_files["test"]),
                                     "--backend", backend, "--precision", "fp32", "--json"])
        assert scored.exit_code == 0, scored.output
        assert json.loads(scored.stdout)["engine"] == {"backend": backend, "precision": "fp32"}
    assert tags["litert"] == tags["keras"]


def test_a_bf16_trained_run_summary_is_what_evaluate_reproduces(tiny_model, bio_files, tmp_path):
    """Training scores test on the engine `evaluate` picks by default, whatever precision it trained in."""
    run_dir = tmp_path / "bf16"
    trained = runner.invoke(app, train_args(tiny_model, bio_files, run_dir, "--precision", "bf16", "--epochs", "1",
                                            "--json"))
    assert trained.exit_code == 0, trained.output
    test = json.loads(trained.stdout)["test"]
    assert test["engine"] == {"backend": "litert", "precision": "fp32"}
    scored = runner.invoke(app, ["evaluate", str(run_dir), "--file", str(bio_files["test"]), "--json"])
    assert scored.exit_code == 0, scored.output
    metrics = json.loads(scored.stdout)
    assert {k: v for k, v in metrics.items() if k != "file"} == {k: v for k, v in test.items() if k != "file"}


@pytest.mark.int8
def test_the_int8_model_tags_like_fp32_and_evaluate_names_it(int8_run, bio_files):
    """ONNX Runtime on the int8 model: nearly fp32's tags (int8 weights move a few low-margin words)."""
    tags = {}
    for backend in ("litert", "onnx"):
        result = runner.invoke(app, ["predict", "--run", str(int8_run), "--backend", backend, "--format", "jsonl",
                                     "--file", str(bio_files["test"])])
        assert result.exit_code == 0, result.output
        tags[backend] = [w["tag"] for line in result.stdout.splitlines() for w in json.loads(line)["words"]]
    agreement = sum(a == b for a, b in zip(tags["litert"], tags["onnx"])) / len(tags["litert"])
    assert len(tags["onnx"]) == len(tags["litert"]) and agreement >= 0.95
    scored = runner.invoke(app, ["evaluate", str(int8_run), "--file", str(bio_files["test"]), "--precision", "int8",
                                 "--json"])
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["engine"] == {"backend": "onnx", "precision": "int8"}


@pytest.mark.int8
def test_training_keeps_the_int8_model_only_if_its_dev_f1_holds(gated_run):
    from nerctl.training.finish import DEV_F1_TOLERANCE

    summary = json.loads((gated_run / "summary.json").read_text())
    check = summary["int8"]
    assert check["kept"] == (check["dev_f1_int8"] >= check["dev_f1_fp32"] - DEV_F1_TOLERANCE)
    assert (gated_run / "model.int8.onnx").exists() == check["kept"]
    # test is scored on the engine evaluate picks by default: onnx int8 exactly when the model was kept
    assert summary["test"]["engine"]["backend"] == ("onnx" if check["kept"] else "litert")


@pytest.mark.int8
def test_an_int8_model_that_loses_dev_f1_is_removed_and_the_reason_kept(int8_run, tmp_path, monkeypatch):
    import shutil

    from nerctl.artifacts.rundir import RunDir
    from nerctl.training import finish

    run = RunDir(tmp_path / "run")
    shutil.copytree(int8_run, run.path)
    int8_file = run.int8_onnx.read_bytes()
    def make(r):
        r.int8_onnx.write_bytes(int8_file)
    f1 = {"litert": 0.90, "onnx": 0.90 - 2 * finish.DEV_F1_TOLERANCE}
    monkeypatch.setattr(finish, "evaluate_sentences", lambda tagger, dev: ({"f1": f1[tagger.engine.backend]}, []))
    heard = []
    record = finish.gate_int8(run, [], heard.append, make)
    assert record["kept"] is False and not run.int8_onnx.exists()
    assert "points below" in record["reason"] and "not kept" in heard[0]
    assert choose_engine("auto", "auto", engines.available(run)).backend == "litert"
    f1["onnx"] = 0.90 - finish.DEV_F1_TOLERANCE / 2
    assert finish.gate_int8(run, [], heard.append, make)["kept"] is True and run.int8_onnx.exists()

