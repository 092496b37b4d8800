"""Your own data end to end: convert, train on span formats, check, predict for re-import, pipes as input."""
import json
import os
import shlex
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from nerctl.cli import app
from nerctl.data.formats import read_corpus
from nerctl.data.tags import entity_spans
from conftest import SHARED_DATA, train_args
from test_cli import nerctl

runner = CliRunner()
TIMING = ("train_seconds", "train_sentences_per_second")


def metrics(run_dir) -> list[dict]:
    """metrics.jsonl without the fields that measure time."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def convert_all(files: dict, folder, to: str, suffix: str) -> dict:
    out = {}
    for split, path in files.items():
        out[split] = folder / f"{split}{suffix}"
        result = runner.invoke(app, ["convert", str(path), str(out[split]), "--to", to])
        assert result.exit_code == 0, result.output
    return out


def train(tiny_model, files, run_dir, *extra):
    result = runner.invoke(app, train_args(tiny_model, files, run_dir, *extra))
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.mark.parametrize("to, suffix", [("jsonl", ".jsonl"), ("labelstudio", ".json"), ("brat", "")])
def test_training_on_a_converted_corpus_gives_the_metrics_of_the_bio_file(trained_run, tiny_model, bio_files,
                                                                         tmp_path, to, suffix):
    converted = convert_all(bio_files, tmp_path, to, suffix)
    if to == "jsonl":  # plain doccano: words come from splitting the text, as predict splits it
        assert all("tokens" not in json.loads(line) for line in converted["train"].read_text().splitlines())
    run = train(tiny_model, converted, tmp_path / "run")
    assert json.loads((run / "config.json").read_text())["format"] == "auto"
    assert metrics(run) == metrics(trained_run)  # trained_run: the same config on the BIO files


@pytest.mark.slow
def test_mit_movie_as_doccano_and_label_studio_trains_like_the_bio_files(tiny_model, tmp_path):
    if not (SHARED_DATA / "engtrain.bio").exists():
        pytest.skip("no MIT Movie mirror")
    files = {"train": SHARED_DATA / "engtrain.bio", "dev": SHARED_DATA / "engtest.bio",
             "test": SHARED_DATA / "engtest.bio"}
    one_epoch = ("--epochs", "1", "--batch-size", "64")
    reference = metrics(train(tiny_model, files, tmp_path / "bio", *one_epoch))
    for to, suffix in (("jsonl", ".jsonl"), ("labelstudio", ".json")):
        converted = convert_all(files, tmp_path, to, suffix)
        assert [(s.words, s.tags) for s in read_corpus(converted["train"])] == \
            [(s.words, s.tags) for s in read_corpus(files["train"])]
        assert metrics(train(tiny_model, converted, tmp_path / to, *one_epoch)) == reference


def test_predict_spans_and_labelstudio_reimport(trained_run, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("who directed the dark knight\nshow me films with bruce willis from the 1980s\n\n")
    spans = runner.invoke(app, ["predict", "--run", str(trained_run), "--file", str(texts), "--format", "spans"])
    assert spans.exit_code == 0, spans.output
    jsonl = runner.invoke(app, ["predict", "--run", str(trained_run), "--file", str(texts), "--format", "jsonl"])
    records = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert any(r["entities"] for r in records)  # something to re-import
    # Re-imported as doccano/Prodigy data, the predictions are the entities predict found.
    (tmp_path / "pred.jsonl").write_text(spans.stdout)
    back = read_corpus(tmp_path / "pred.jsonl")
    found = [[(e["start"], e["end"], e["type"]) for e in r["entities"]] for r in records if r["words"]]
    assert [[(s.offsets[a][0], s.offsets[b - 1][1], kind) for kind, a, b in entity_spans(s.tags)] for s in back] == found

    ls = runner.invoke(app, ["predict", "--run", str(trained_run), "--file", str(texts), "--format", "labelstudio"])
    assert ls.exit_code == 0, ls.output
    tasks = json.loads(ls.stdout)
    assert [t["data"]["text"] for t in tasks] == [r["text"] for r in records]
    for task, record in zip(tasks, records):
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == trained_run.name
        values = [(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0], r["score"])
                  for r in prediction["result"]]
        assert values == [(e["start"], e["end"], e["type"], e["score"]) for e in record["entities"]]
        assert all(r["value"]["text"] == record["text"][r["value"]["start"]:r["value"]["end"]]
                   for r in prediction["result"])


def test_label_studio_round_trip_export_predict_and_tagged_input(trained_run, bio_files, tmp_path):
    export = tmp_path / "export.json"
    assert runner.invoke(app, ["convert", str(bio_files["test"]), str(export)]).exit_code == 0
    evaluated = runner.invoke(app, ["evaluate", str(trained_run), "--file", str(export), "--json"])
    reference = runner.invoke(app, ["evaluate", str(trained_run), "--file", str(bio_files["test"]), "--json"])
    assert {k: v for k, v in json.loads(evaluated.stdout).items() if k != "file"} == \
        {k: v for k, v in json.loads(reference.stdout).items() if k != "file"}
    # predict on the export: offsets index each task's text; the gold tags ride along in conll
    tasks = runner.invoke(app, ["predict", "--run", str(trained_run), "--file", str(export), "--format",
                                "labelstudio"])
    assert tasks.exit_code == 0, tasks.output
    texts = [t["data"]["text"] for t in json.loads(export.read_text())]
    assert [t["data"]["text"] for t in json.loads(tasks.stdout)] == texts


def test_check_reports_the_figures_and_the_overlap(tiny_model, bio_files, tmp_path):
    train_sentences = read_corpus(bio_files["train"])
    test = tmp_path / "test.bio"
    test.write_text(bio_files["test"].read_text() + "\n" + "".join(
        "".join(f"{t}\t{w}\n" for w, t in zip(s.words, s.tags)) + "\n" for s in train_sentences[:3]))
    result = runner.invoke(app, ["check", str(bio_files["train"]), str(test), "--model", str(tiny_model),
                                 "--max-len", "8", "--json"])
    assert result.exit_code == 0, result.output
    train_report, test_report = json.loads(result.stdout)["files"]
    test_sentences = read_corpus(test)
    assert train_report["format"] == "mit" and train_report["sentences"] == len(train_sentences)
    assert train_report["words"] == sum(len(s) for s in train_sentences)
    assert sum(train_report["entities"].values()) == sum(t.startswith("B-") for s in train_sentences for t in s.tags)
    assert train_report["longer_than_window"] == sum(len(s) > 6 for s in train_sentences)  # 1 piece a word here
    train_words = {s.words for s in train_sentences}
    assert test_report["shared_with_train"] == sum(s.words in train_words for s in test_sentences) >= 3
    assert test_report["unseen_labels"] == []


def test_check_exits_2_when_training_would_fail(tiny_model, bio_files, tmp_path):
    test = tmp_path / "test.jsonl"
    test.write_text(json.dumps({"text": "play yesterday", "label": [[5, 14, "SONG"]]}) + "\n")
    result = runner.invoke(app, ["check", str(bio_files["train"]), str(test), "--model", str(tiny_model)])
    assert result.exit_code == 2
    assert "labels not in train SONG" in result.stdout
    assert result.stderr.count("\n") == 1 and "test.jsonl: label(s) SONG never occur in" in result.stderr
    test.write_text(json.dumps({"text": "play yesterday", "label": [[5, 14, "TITLE"], [0, 2, "TITLE"]]}) + "\n")
    result = runner.invoke(app, ["check", str(bio_files["train"]), str(test), "--model", str(tiny_model), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["files"][1]["dropped_spans"] == {"cut a word": 1}  # measured as if dropped
    assert result.stderr.count("\n") == 1 and "test.jsonl:1: span [0, 2) TITLE 'pl' has a boundary" in result.stderr
    expanded = runner.invoke(app, ["check", str(bio_files["train"]), str(test), "--model", str(tiny_model),
                                   "--misaligned", "expand", "--json"])
    assert expanded.exit_code == 0, expanded.output
    assert json.loads(expanded.stdout)["files"][1]["widened_spans"] == 1


@pytest.mark.subprocess
def test_pipes_process_substitution_and_stdin_are_files(trained_run, bio_files, tmp_path):
    run = str(trained_run)
    script = (f'{shlex.quote(sys.executable)} -m nerctl predict --run {shlex.quote(run)} '
              '--file <(printf "who directed jaws\\nhave you seen titanic\\n")')  # bash's process substitution
    predicted = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300,
                               env={**os.environ, "NO_COLOR": "1"})
    assert predicted.returncode == 0, predicted.stderr
    assert [json.loads(line)["text"] for line in predicted.stdout.splitlines()] == ["who directed jaws",
                                                                                    "have you seen titanic"]
    scored = nerctl("evaluate", run, "--file", "/dev/stdin", "--json", input=bio_files["test"].read_text())
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["sentences"] == len(read_corpus(bio_files["test"]))


@pytest.mark.subprocess
def test_training_reads_its_file_from_a_pipe(trained_run, tiny_model, bio_files, tmp_path):
    piped = f"<(cat {shlex.quote(str(bio_files['train']))})"  # bash's process substitution: left unquoted
    args = train_args(tiny_model, {**bio_files, "train": piped}, tmp_path / "run")
    script = f"{shlex.quote(sys.executable)} -m nerctl " + " ".join(a if a == piped else shlex.quote(a) for a in args)
    trained = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=600,
                             env={**os.environ, "NO_COLOR": "1"})
    assert trained.returncode == 0, trained.stderr
    assert metrics(tmp_path / "run") == metrics(trained_run)
