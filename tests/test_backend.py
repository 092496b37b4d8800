"""--backend and --precision: which engine runs a finished run, and the summary that `evaluate` reproduces."""
import json

import pytest
from typer.testing import CliRunner

from nerctl import engines
from nerctl.cli import app
from nerctl.engines import choose_engine
from nerctl.errors import InputError
from test_cli import train_args

runner = CliRunner()


@pytest.mark.parametrize("backend, precision, has_tflite, native_bf16, expected", [
    ("auto", "auto", True, True, ("litert", "fp32")),
    ("auto", "fp32", True, True, ("litert", "fp32")),
    ("auto", "bf16", True, False, ("keras", "bf16")),
    ("auto", "auto", False, False, ("keras", "fp32")),
    ("keras", "auto", True, True, ("keras", "bf16")),
    ("keras", "auto", True, False, ("keras", "fp32")),
    ("keras", "fp32", True, True, ("keras", "fp32")),
    ("litert", "auto", True, True, ("litert", "fp32")),
])
def test_engine_choice(monkeypatch, backend, precision, has_tflite, native_bf16, expected):
    monkeypatch.setattr(engines, "cpu_supports_bf16", lambda: native_bf16)
    engine = choose_engine(backend, precision, has_tflite)
    assert (engine.backend, engine.precision) == expected
    assert engine.describe().startswith(f"backend {expected[0]} ({expected[1]}): ")


@pytest.mark.parametrize("backend, precision, has_tflite, message", [
    ("litert", "bf16", True, "runs fp32 only"),
    ("litert", "auto", False, "has no model.tflite"),
    ("onnx", "auto", True, "unknown backend 'onnx'"),
    ("auto", "fp16", True, "unknown precision 'fp16'"),
])
def test_impossible_engine_requests_are_input_errors(backend, precision, has_tflite, message):
    with pytest.raises(InputError, match=message):
        choose_engine(backend, precision, has_tflite)


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
