"""The Python API (`import nerctl`): each public name on the tiny fixture model, against the CLI."""
import itertools
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import nerctl
from nerctl.cli import app
from conftest import SMOKE, train_args

runner = CliRunner()
TEXTS = ["have you seen the dark knight", "who directed jaws", "", "show me films with tom hanks from the 1980s"]


def test_import_nerctl_is_instant_and_every_public_name_resolves():
    code = "import sys, nerctl; print('tensorflow' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr
    for name in nerctl.__all__:
        value = getattr(nerctl, name)
        assert name == "__version__" or value.__doc__, f"nerctl.{name} has no docstring"
    with pytest.raises(AttributeError):
        nerctl.no_such_name  # noqa: B018


def test_load_and_pipe_give_the_records_predict_writes(trained_run):
    printed = runner.invoke(app, ["predict", "--run", str(trained_run), "--format", "jsonl", *TEXTS])
    assert printed.exit_code == 0, printed.output
    records = [json.loads(line) for line in printed.stdout.splitlines()]
    tagger = nerctl.load(trained_run)
    assert [doc.to_dict() for doc in tagger.pipe(TEXTS, batch_size=2)] == records
    doc = tagger(TEXTS[0])
    assert doc.to_dict() == records[0] and doc.text == TEXTS[0]
    assert [(w.text, w.tag) for w in doc.words] == [(r["word"], r["tag"]) for r in records[0]["words"]]
    assert [(e.type, e.text, e.start, e.end) for e in doc.entities] == [
        (e["type"], e["text"], e["start"], e["end"]) for e in records[0]["entities"]]


def test_pipe_streams_an_endless_input(trained_run):
    endless = itertools.cycle(TEXTS)
    docs = list(itertools.islice(nerctl.load(trained_run).pipe(endless, chunk_size=8), 10))
    assert [d.text for d in docs] == list(itertools.islice(itertools.cycle(TEXTS), 10))


def comparable(run_dir) -> dict:
    """What a run learned and scored, without times and names."""
    metrics = [{k: v for k, v in r.items() if "second" not in k} for r in
               map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())]
    summary = json.loads((run_dir / "summary.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    return {"metrics": metrics, "labels": (run_dir / "labels.json").read_text(),
            "summary": {k: v for k, v in summary.items() if k not in ("run", "seconds", "finished")},
            "config": {k: v for k, v in config.items() if k not in ("run_name", "versions")}}


def test_train_with_overrides_writes_the_run_the_cli_writes(tiny_model, bio_files, tmp_path):
    by_cli = runner.invoke(app, train_args(tiny_model, bio_files, tmp_path / "runs" / "cli"))
    assert by_cli.exit_code == 0, by_cli.output
    run = nerctl.train(SMOKE, model=str(tiny_model), train_file=str(bio_files["train"]),
                       eval_file=str(bio_files["dev"]), test_file=str(bio_files["test"]),
                       run_dir=tmp_path / "runs" / "api", environ={})
    assert run.path == (tmp_path / "runs" / "api").resolve()
    assert run.test_f1 == run.summary["test"]["f1"] and run.best_dev_f1 == run.summary["best_dev_f1"]
    assert comparable(run.path) == comparable(tmp_path / "runs" / "cli")


def test_evaluate_gives_what_evaluate_json_prints(trained_run, bio_files):
    printed = runner.invoke(app, ["evaluate", str(trained_run), "--file", str(bio_files["test"]), "--json",
                                  "--errors", "2"])
    assert printed.exit_code == 0, printed.output
    scores = nerctl.evaluate(trained_run, bio_files["test"], worst=2)
    assert scores.to_dict() == json.loads(printed.stdout)
    assert scores.f1 == json.loads((trained_run / "summary.json").read_text())["test"]["f1"]
    assert "worst" not in nerctl.evaluate(nerctl.load(trained_run), bio_files["test"]).to_dict()


def test_read_corpus_reads_what_the_commands_read(bio_files):
    from nerctl.data.formats.bio import read_bio

    assert nerctl.read_corpus(bio_files["dev"]) == read_bio(bio_files["dev"])


@pytest.mark.parametrize("call, cli_args", [
    (lambda files, run: nerctl.train(epochs=0, environ={}), ["train", "--epochs", "0"]),
    (lambda files, run: nerctl.evaluate(run, files["missing"]), ["evaluate", "{run}", "--file", "{missing}"]),
    (lambda files, run: nerctl.load("/nonexistent/run"), ["predict", "--run", "/nonexistent/run", "hi"]),
])
def test_bad_input_raises_input_error_with_the_cli_message(call, cli_args, trained_run, tmp_path):
    files = {"missing": tmp_path / "missing.bio"}
    with pytest.raises(nerctl.InputError) as raised:
        call(files, trained_run)
    args = [a.format(run=trained_run, missing=files["missing"]) for a in cli_args]
    printed = runner.invoke(app, args)
    assert printed.exit_code == 2
    assert printed.stderr == f"nerctl: error: {raised.value}\n"


def test_unknown_train_options_are_input_errors():
    with pytest.raises(nerctl.InputError, match="unknown option\\(s\\) epoch;"):
        nerctl.train(epoch=3, environ={})
