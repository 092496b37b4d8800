"""Seeing how a run went: report, runs, evaluate --errors, TensorBoard logs."""
import base64
import json
import re
import shutil
import struct

import pytest
from typer.testing import CliRunner

from nerctl.evaluation.analysis import segments, type_confusion, worst_sentences
from nerctl.data.sentence import Sentence
from nerctl.data.formats.bio import read_bio
from nerctl.cli import app
from nerctl.artifacts.rundir import RunDir
from conftest import write_bio
from test_cli import nerctl

runner = CliRunner()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header (and a check that it is one)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def entities(tags) -> set:
    """Spans by seqeval itself (independent of nerctl's entity_spans)."""
    from seqeval.metrics.sequence_labeling import get_entities

    return set(get_entities(list(tags)))


# ---------------------------------------------------------------- analysis


def test_worst_sentences_count_misses_and_false_alarms_worst_first():
    sentences = [Sentence(("a", "b", "c"), ("B-X", "I-X", "O"), "f", 1),
                 Sentence(("d", "e"), ("B-X", "B-Y"), "f", 5),
                 Sentence(("g",), ("O",), "f", 8)]
    pred = [["B-X", "O", "B-Y"], ["B-X", "B-Y"], ["B-Z"]]
    worst = worst_sentences(sentences, pred, 5)
    assert [(e.sentence.line, e.errors) for e in worst] == [(1, 3), (8, 1)]  # the perfect sentence is left out
    assert worst[0].missed == [("X", 0, 2)] and worst[0].spurious == [("X", 0, 1), ("Y", 2, 3)]
    assert [e.sentence.line for e in worst_sentences(sentences, pred, 1)] == [1]


def test_type_confusion_counts_words_by_type_with_o_last():
    types, counts = type_confusion([["B-X", "I-X", "O", "B-Y"]], [["B-X", "B-Y", "O", "O"]])
    assert types == ["X", "Y", "O"]
    assert counts.tolist() == [[1, 1, 0], [0, 0, 1], [0, 0, 1]]


def test_segments_mark_spans_and_whether_the_other_side_has_them():
    assert segments(["have", "you", "seen", "the", "dark", "knight"], ["O", "O", "O", "B-T", "I-T", "I-T"],
                    ["O", "O", "O", "O", "B-T", "I-T"]) == [
        ("have", None, False), ("you", None, False), ("seen", None, False), ("the dark knight", "T", False)]


# ---------------------------------------------------------------- evaluate --errors


@pytest.fixture
def mistagged_test(bio_files, tmp_path):
    """The test file with the spans of its first two tagged sentences given another type: the tiny run
    tags the fixtures almost perfectly, so these are sure errors."""
    sentences = [list(zip(s.words, s.tags)) for s in read_bio(bio_files["test"])]
    types = sorted({tag[2:] for sentence in sentences for _, tag in sentence if tag != "O"})
    other = dict(zip(types, types[1:] + types[:1]))
    for sentence in [s for s in sentences if any(tag != "O" for _, tag in s)][:2]:
        sentence[:] = [(word, tag if tag == "O" else tag[:2] + other[tag[2:]]) for word, tag in sentence]
    return write_bio(tmp_path / "mistagged.bio", sentences)


def test_evaluate_errors_lists_the_worst_sentences(trained_run, mistagged_test):
    result = runner.invoke(app, ["evaluate", str(trained_run), "--file", str(mistagged_test), "--errors", "3",
                                 "--json"])
    assert result.exit_code == 0, result.output
    worst = json.loads(result.stdout)["worst"]
    assert 2 <= len(worst) <= 3
    for item in worst:
        gold, pred = entities(item["gold"]), entities(item["pred"])
        assert item["errors"] == len(gold ^ pred) > 0
    assert [w["errors"] for w in worst] == sorted((w["errors"] for w in worst), reverse=True)

    plain = runner.invoke(app, ["evaluate", str(trained_run), "--file", str(mistagged_test), "--errors", "3"])
    assert plain.exit_code == 0 and "\x1b[" not in plain.stdout  # piped: no escape codes
    lines = plain.stdout.splitlines()
    first = worst[0]
    header = next(i for i, line in enumerate(lines) if line.startswith("#1 "))
    assert f"{first['errors']} span error(s)" in lines[header] and f":{first['line']}" in lines[header]
    for kind, start, end in entities(first["gold"]):
        assert f"[{kind} {' '.join(first['words'][start:end + 1])}]" in lines[header + 1]


@pytest.mark.parametrize("env, coloured", [({"FORCE_COLOR": "1"}, True), ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False)])
def test_evaluate_errors_colours_follow_the_terminal_and_no_color(trained_run, mistagged_test, env, coloured):
    result = runner.invoke(app, ["evaluate", str(trained_run), "--file", str(mistagged_test), "--errors", "2"],
                           env=env)
    assert result.exit_code == 0, result.output
    green_or_red = re.search(r"\x1b\[[0-9;]*3[12]m", result.stdout)
    assert bool(green_or_red) == coloured


# ---------------------------------------------------------------- report


def test_report_has_every_section_and_valid_pngs(trained_run, bio_files, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", str(trained_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page_path = out / "report.html"
    assert result.stdout.strip() == str(page_path)
    page = page_path.read_text()
    for section in ("summary", "curves", "per-type", "scores", "confusion", "worst"):
        assert f'id="{section}"' in page, section
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == 4 and "http" not in page.split("<body>")[1]  # self-contained: nothing to fetch
    for name, data in zip(("curves.png", "per_type.png", "reliability.png", "confusion.png"), embedded):
        file_bytes = (out / name).read_bytes()
        width, height = png_size(file_bytes)
        assert width > 200 and height > 100
        assert base64.b64decode(data) == file_bytes

    # The numbers in the page are the test file's, as `evaluate` computes them.
    metrics = json.loads(runner.invoke(app, ["evaluate", str(trained_run), "--file", str(bio_files["test"]),
                                             "--errors", "20", "--json"]).stdout)
    assert f"F1 {metrics['f1']:.4f}" in page
    for name, m in metrics["per_type"].items():
        assert f"<td>{name}</td><td>{m['precision']:.4f}</td><td>{m['recall']:.4f}</td><td>{m['f1']:.4f}</td>" \
               f"<td>{m['support']}</td>" in page
    scores = metrics["calibration"]
    assert f"ECE {scores['ece']:.4f} over {scores['spans']} predicted spans" in page
    for row in scores["thresholds"]:
        assert f"<td>{row['min_score']:g}</td><td>{row['spans']}</td><td>{row['precision']:.4f}</td>" in page
    words = sum(len(s) for s in read_bio(bio_files["test"]))
    row_totals = [int(x) for x in re.findall(r"<td>(\d+)</td></tr>", page.split('id="confusion"')[1].split("<h2")[0])]
    assert sum(row_totals) == words
    assert page.count("span error(s)") == len(metrics["worst"])
    summary = json.loads((trained_run / "summary.json").read_text())
    assert f"{summary['train_sentences']} sentences" in page and f"{summary['best_epoch']} of" in page


def test_report_needs_a_file_when_the_run_scored_none(trained_run, bio_files, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    summary = json.loads((run / "summary.json").read_text())
    del summary["test"]
    (run / "summary.json").write_text(json.dumps(summary))
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 2 and "--file" in result.stderr
    result = nerctl("report", run, "--file", bio_files["dev"])  # a real subprocess, another file
    assert result.returncode == 0, result.stderr
    assert str(bio_files["dev"]) in (run / "report" / "report.html").read_text()


# ---------------------------------------------------------------- runs


def test_runs_lists_finished_interrupted_and_running_runs(trained_run, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(trained_run, root / "a-finished")
    shutil.copytree(trained_run, root / "b-interrupted")
    (root / "b-interrupted" / "summary.json").unlink()
    shutil.copytree(trained_run, root / "c-running")
    (root / "c-running" / "summary.json").unlink()
    (root / "not-a-run").mkdir()
    (root / "latest").symlink_to("a-finished")
    metrics = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((trained_run / "summary.json").read_text())

    with RunDir(root / "c-running").lock():  # as a training holds it
        result = runner.invoke(app, ["runs", "--runs-root", str(root), "--json"])
    assert result.exit_code == 0, result.output
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert {name: r["state"] for name, r in records.items()} == {
        "a-finished": "finished", "b-interrupted": "interrupted", "c-running": "running"}
    finished, interrupted = records["a-finished"], records["b-interrupted"]
    assert finished["test_f1"] == summary["test"]["f1"] and finished["best_dev_f1"] == summary["best_dev_f1"]
    assert interrupted["test_f1"] is None
    assert interrupted["best_dev_f1"] == max(r["dev_f1"] for r in metrics)
    assert finished["epochs_done"] == len(metrics) and finished["model"] == summary["model"]

    table = nerctl("runs", "--runs-root", root)  # a real subprocess: the lock is gone now
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split()[-1] for line in table.stdout.splitlines()[1:]}
    assert rows == {"a-finished": "finished", "b-interrupted": "interrupted", "c-running": "interrupted"}


# ---------------------------------------------------------------- TensorBoard


def test_training_writes_tensorboard_logs(trained_run):
    import tensorflow as tf

    values: dict[str, list[tuple[int, float]]] = {}
    for event_file in sorted((trained_run / "logs").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                values.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    metrics = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    steps = len(values["train/loss"])
    assert steps % len(metrics) == 0 and steps >= 2 * len(metrics)  # one point per step
    assert [s for s, _ in values["train/loss"]] == list(range(1, steps + 1))
    assert len(values["train/learning_rate"]) == steps
    assert [v for _, v in values["dev/f1"]] == pytest.approx([r["dev_f1"] for r in metrics], abs=1e-6)
    assert [v for _, v in values["train/epoch_loss"]] == pytest.approx([r["loss"] for r in metrics], rel=1e-6)


def test_only_report_imports_matplotlib_and_it_leaves_pyplot_alone():
    import subprocess
    import sys

    code = ("import sys, nerctl.cli, nerctl.evaluation.analysis, nerctl.evaluation.scoring, nerctl.inference.predict, nerctl.cli.render; "
            "before = 'matplotlib' in sys.modules; import nerctl.evaluation.report; "
            "png = nerctl.evaluation.report.curves_png([{'epoch': 1, 'loss': 1.0, 'dev_f1': 0.5, 'dev_precision': 0.5, "
            "'dev_recall': 0.5, 'best': True}]); "
            "print(before, 'matplotlib' in sys.modules, 'matplotlib.pyplot' in sys.modules, png[:4] == b'\\x89PNG')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "True", "False", "True"], out.stderr


def test_runs_lists_odd_runs_without_failing(trained_run, tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    (root / "notes.txt").write_text("not a run")
    bare = root / "a-set-up-only"
    bare.mkdir()
    shutil.copy(trained_run / "config.json", bare / "config.json")
    torn = root / "b-torn"
    shutil.copytree(trained_run, torn)
    (torn / "summary.json").unlink()
    with (torn / "metrics.jsonl").open("a") as f:
        f.write('{"epoch": 3, "loss": 0.1, "dev_')  # a line cut short by someone else's crash
    result = runner.invoke(app, ["runs", "--runs-root", str(root), "--json"])
    assert result.exit_code == 0, result.output
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(records) == {"a-set-up-only", "b-torn"}
    assert records["a-set-up-only"]["state"] == "interrupted" and records["a-set-up-only"]["epochs_done"] == 0
    assert records["a-set-up-only"]["best_dev_f1"] is None
    assert records["b-torn"]["state"] == "unreadable" and "JSONDecodeError" in records["b-torn"]["error"]
    table = runner.invoke(app, ["runs", "--runs-root", str(root)])
    assert table.exit_code == 0 and "unreadable" in table.stdout


def test_a_training_waits_out_a_runs_listing_probing_its_lock(tmp_path):
    import fcntl
    import os
    import threading

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    fd = os.open(run.path / ".lock", os.O_RDONLY | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_SH)  # what `nerctl runs` holds for a moment
    threading.Timer(0.3, os.close, [fd]).start()
    with run.lock():
        assert (run.path / ".lock").read_text().strip() == str(os.getpid())


# ---------------------------------------------------------------- reports that travel


def test_portable_paths_are_relative_to_the_run_the_current_folder_or_home(tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "home" / "work"
    run = RunDir(work / "runs" / "r1")
    monkeypatch.setenv("HOME", str(home))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert run.portable(f"{run.path}/best") == "best"  # inside the run: relative to it
    assert run.portable(str(run.path)) == "~/work/runs/r1"  # under home, outside the current folder
    assert run.portable(f"0.1 of {home}/data/train.bio (seed 42)") == "0.1 of ~/data/train.bio (seed 42)"
    assert run.portable("/opt/data/test.bio") == "/opt/data/test.bio"  # elsewhere: as it is
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert run.portable(str(run.path)) == "runs/r1"  # inside the current folder: relative to it
    assert run.portable(f"{work}/data/dev.bio") == "data/dev.bio"


def test_report_and_model_card_show_no_absolute_layout(trained_run, tmp_path, tmp_path_factory, monkeypatch):
    """With every fixture under a stand-in home folder, neither document names the machine's layout."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("HOME", str(base))
    monkeypatch.chdir(trained_run.parent)
    result = runner.invoke(app, ["report", "tiny", "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report" / "report.html").read_text()
    exported = runner.invoke(app, ["export", "tiny", "--format", "hf", "--out", str(tmp_path / "hf")])
    assert exported.exit_code == 0, exported.output
    card = (tmp_path / "hf" / "README.md").read_text()
    for document in (page, card):
        assert str(base) not in document
        assert "~/" in document  # the data files, under the stand-in home
    assert "<td>run</td><td>tiny</td>" in page  # the run, relative to the current folder
