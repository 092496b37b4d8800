"""The CLI end to end on the tiny fixture model: in-process (CliRunner) and as real subprocesses."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nerctl.cli import app
from conftest import train_args

runner = CliRunner()


def nerctl(*args, env=None, input=None, timeout=300):
    """Run the real console entry point in a subprocess."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "nerctl", *map(str, args)], capture_output=True, text=True,
                          env=full_env, input=input, timeout=timeout, cwd=full_env.get("CWD"))


def seqeval_on_conll(text: str) -> dict:
    """Score `word gold pred` lines with seqeval directly (independently of nerctl)."""
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    gold, pred, g, p = [], [], [], []
    for line in text.splitlines() + [""]:
        if not line:
            if g:
                gold.append(g), pred.append(p)
            g, p = [], []
            continue
        _, gold_tag, pred_tag = line.split("\t")
        g.append(gold_tag), p.append(pred_tag)
    kw = dict(mode="strict", scheme=IOB2)
    return {"precision": precision_score(gold, pred, **kw), "recall": recall_score(gold, pred, **kw),
            "f1": f1_score(gold, pred, **kw), "sentences": len(gold)}


def test_train_writes_a_complete_run_directory(tiny_model, bio_files, tmp_path):
    run_dir = tmp_path / "runs" / "cli"
    result = runner.invoke(app, train_args(tiny_model, bio_files, run_dir, "--json"))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 2 and 1 <= summary["best_epoch"] <= 2
    assert summary["test"]["f1"] > 0.5  # the fixture is learnable: a random tagger scores ~0
    for name in ("config.json", "labels.json", "tokenizer/tokenizer.json", "best/config.json",
                 "saved_model/saved_model.pb", "model.tflite",
                 "checkpoints/checkpoint", "metrics.jsonl", "summary.json"):
        assert (run_dir / name).exists(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["epochs"] == 2 and config["model"] == str(tiny_model) and "tensorflow" in config["versions"]
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    best = max(metrics, key=lambda m: m["dev_f1"])
    assert summary["best_epoch"] == best["epoch"] and summary["best_dev_f1"] == best["dev_f1"]
    assert (run_dir.parent / "latest").resolve() == run_dir.resolve()


def test_best_model_loads_with_transformers_and_label_names(trained_run):
    from transformers import TFAutoModelForTokenClassification

    model = TFAutoModelForTokenClassification.from_pretrained(str(trained_run / "best"))
    labels = json.loads((trained_run / "labels.json").read_text())["labels"]
    assert [model.config.id2label[i] for i in range(len(labels))] == labels
    assert labels[0] == "O" and labels[1:] == sorted(labels[1:])


def test_evaluate_agrees_with_training_summary_and_with_seqeval_on_predict_output(trained_run, bio_files):
    result = runner.invoke(app, ["evaluate", str(trained_run), "--file", str(bio_files["test"]), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    summary = json.loads((trained_run / "summary.json").read_text())
    for key in ("precision", "recall", "f1", "token_accuracy"):
        assert metrics[key] == summary["test"][key]
    assert set(metrics["per_type"]) == {"ACTOR", "DIRECTOR", "GENRE", "TITLE", "YEAR"}

    conll = runner.invoke(app, ["predict", "--run", str(trained_run), "--file", str(bio_files["test"]),
                                "--format", "conll"])
    assert conll.exit_code == 0, conll.output
    independent = seqeval_on_conll(conll.stdout)
    assert independent["sentences"] == metrics["sentences"] == 40
    for key in ("precision", "recall", "f1"):
        assert independent[key] == metrics[key]


def test_evaluate_table_and_unseen_labels(trained_run, bio_files, tmp_path):
    long = tmp_path / ("a-folder-name-long-enough-to-be-wider-than-the-table-of-scores-" * 2) / "test.bio"
    long.parent.mkdir()
    long.write_bytes(bio_files["test"].read_bytes())
    table = runner.invoke(app, ["evaluate", str(trained_run), "--file", str(long)])
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0] == f"{long} (litert fp32)"  # piped: the title is not wrapped
    assert "all (micro)" in table.stdout
    table = runner.invoke(app, ["evaluate", str(trained_run), "--file", str(Path(trained_run) / "..")])
    assert table.exit_code == 2 and "no .ann files in this folder" in table.stderr  # a folder is read as BRAT
    bad = tmp_path / "unseen.bio"
    bad.write_text("B-SONG\tyesterday\nO\tplease\n\nB-PLACE\tparis\n")
    result = runner.invoke(app, ["evaluate", str(trained_run), "--file", str(bad)])
    assert result.exit_code == 2
    assert "2 tag(s) the model was not trained on: B-PLACE, B-SONG" in result.stderr


def test_predict_formats(trained_run):
    text = "Have you seen The Dark Knight?"
    jsonl = runner.invoke(app, ["predict", "--run", str(trained_run), text, "who directed jaws"])
    assert jsonl.exit_code == 0, jsonl.output
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]  # not a terminal: JSON lines
    assert [r["text"] for r in rows] == [text, "who directed jaws"]
    assert [w["word"] for w in rows[0]["words"]] == ["Have", "you", "seen", "The", "Dark", "Knight", "?"]
    for entity in rows[0]["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]
    table = runner.invoke(app, ["predict", "--run", str(trained_run), "--format", "table", text])
    assert table.exit_code == 0 and text in table.stdout
    conll = runner.invoke(app, ["predict", "--run", str(trained_run), "--format", "conll", "who directed jaws"])
    assert [line.split("\t")[0] for line in conll.stdout.splitlines() if line] == ["who", "directed", "jaws"]
    stdin = runner.invoke(app, ["predict", "--run", str(trained_run), "--format", "json", "-"],
                          input="one\r\n\ntwo words\n")
    assert [r["text"] for r in json.loads(stdin.stdout)] == ["one", "", "two words"]


@pytest.mark.subprocess
def test_subprocess_train_predict_and_clean_streams(tiny_model, bio_files, tmp_path):
    run_dir = tmp_path / "runs" / "sub"
    trained = nerctl(*train_args(tiny_model, bio_files, run_dir))
    assert trained.returncode == 0, trained.stderr
    assert "epoch 2/2" in trained.stderr and "all (micro)" in trained.stdout  # logs on stderr, metrics table on stdout
    # TensorFlow's C++ start-up lines (CUDA probing, absl) are kept out of the log
    assert "cuda" not in trained.stderr.lower() and "absl" not in trained.stderr, trained.stderr
    predicted = nerctl("predict", "--run", run_dir, "have you seen the dark knight", "-f", "/dev/null",
                       env={"CWD": str(tmp_path)})
    assert predicted.returncode == 2 and predicted.stderr.count("\n") == 1  # texts and --file: one-line error
    predicted = nerctl("predict", "have you seen the dark knight", env={"CWD": str(tmp_path)})
    assert predicted.returncode == 0, predicted.stderr  # default run: runs/latest under the working dir
    assert predicted.stderr == ""  # nothing from LiteRT (its XNNPACK notice) or anyone else
    (row,) = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert len(row["words"]) == 6


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--epochs", "0"], "invalid config: epochs must be at least 1"),
        (["train", "--batch-size", "0"], "invalid config: batch_size must be at least 1"),
        (["train", "--early-stopping", "-1"], "invalid config: early_stopping must not be negative"),
        (["train", "--run-dir", "r", "--run-name", "x"], "give --run-dir, or --runs-root and --run-name, not both"),
        (["predict", "--backend", "litert", "--precision", "bf16", "hi"], "--backend litert runs fp32 only"),
        (["train", "--lr", "-1e-4"], "invalid config: lr must be positive"),
        (["train", "--layer-lr-decay", "1.5"], "invalid config: layer_lr_decay must be in (0, 1]"),
        (["train", "--dropout", "1"], "invalid config: dropout must be in [0, 1)"),
        (["train", "--bogus"], "No such option: --bogus"),
        (["predict", "--run", "/nonexistent/run", "hi"], "/nonexistent/run: no such run directory"),
        (["predict", "hi"], "runs/latest does not exist"),
        (["evaluate", "--run-typo"], "No such option"),
        (["download", "nosuchset"], "unknown dataset 'nosuchset'"),
        (["train", "--config", "/nonexistent.toml"], "no such config file"),
    ],
)
def test_usage_and_input_errors_exit_2_with_one_line(args, message, tmp_path):
    result = nerctl(*args, env={"CWD": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("nerctl: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr


def test_env_var_sets_an_option(tmp_path):
    result = nerctl("train", "--train-file", tmp_path / "missing.bio", env={"NERCTL_EPOCHS": "zero"})
    assert result.returncode == 2 and "NERCTL_EPOCHS: epochs must be int" in result.stderr


def test_help_and_argument_errors_do_not_import_tensorflow():
    code = ("import sys; from nerctl.cli import app; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(app, ['train', '--help']); assert r.exit_code == 0; "
            "print('tensorflow' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr
