"""A corpus of bad and odd inputs, each through the real CLI: exit 2 and one line for
what is wrong (with file and line where there is one), correct output for what is merely odd."""
import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nerctl.cli import app
from nerctl.inference.tagger import Tagger
from nerctl.artifacts.rundir import RunDir
from conftest import train_args

runner = CliRunner()

# name -> (file content, what the one-line error must say)
BAD_BIO = {
    "tag column missing": (b"O\twhat\nB-TITLE\n", "bad.bio:2: expected a word and a tag"),
    "tag of the wrong shape": (b"O\twhat\nO\tmovies\nX-FOO\tjaws\n", "bad.bio:3: 'X-FOO' is not a tag"),
    "tag without a type": (b"O\twhat\nB-\tjaws\n", "bad.bio:2: 'B-' is not a tag"),
    "lower-case tag": (b"O\twhat\nb-title\tjaws\n", "bad.bio:2: 'b-title' is not a tag (expected O, B-TYPE or "
                       "I-TYPE; tags are upper-case: B-TITLE)"),
    "no tag column anywhere": (b"what\tjaws\nwho\tdirected\n", "bad.bio: cannot tell the format"),
    "empty file": (b"", "bad.bio: no sentences found"),
    "only blank lines": (b"\n \n\t\r\n", "bad.bio: no sentences found"),
    "NUL bytes": (b"O\twhat\n\x00\x01\x02\x03\n", "bad.bio:2: NUL byte"),
    "binary data": (bytes(range(256)) * 8, "bad.bio:1: NUL byte"),
    "invalid UTF-8": (b"O\twhat\n\nO\t\xff\xfeab\n", "bad.bio:3: not valid UTF-8"),
    "Latin-1 text": ("O\twhat\nB-TITLE\tcaf\u00e9\n".encode("latin-1"), "bad.bio:2: not valid UTF-8"),
    "tag the model never saw": (b"O\twhat\nB-PLACE\tparis\n", "1 tag(s) the model was not trained on: B-PLACE"),
}


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stdout == ""
    assert result.stderr.startswith("nerctl: error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize("command, name", [("evaluate", name) for name in BAD_BIO] + [
    ("predict", name) for name in BAD_BIO if name != "tag the model never saw"  # predict shows gold tags as they are
])
def test_bad_bio_files_are_one_line_errors_with_file_and_line(trained_run, tmp_path, name, command):
    content, message = BAD_BIO[name]
    path = tmp_path / "bad.bio"
    path.write_bytes(content)
    args = ["evaluate", str(trained_run), "--file", str(path)] if command == "evaluate" else \
        ["predict", "--run", str(trained_run), "--file", str(path), "--input-format", "bio"]
    assert message in one_line_error(runner.invoke(app, args))


def test_bad_training_file_is_an_error_before_any_model_is_built(tiny_model, tmp_path):
    path = tmp_path / "bad.bio"
    path.write_bytes(BAD_BIO["lower-case tag"][0])
    result = runner.invoke(app, ["train", "--model", str(tiny_model), "--train-file", str(path)],
                           env={"NERCTL_RUNS_ROOT": str(tmp_path / "runs")})
    assert "bad.bio:2: 'b-title' is not a tag" in one_line_error(result)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("config.json"))


@pytest.mark.parametrize("path_kind, message", [("directory", "no .ann files in this folder"),
                                                    ("missing", "no such file")])
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_directory_or_missing_path_as_a_file(trained_run, tmp_path, path_kind, message, command):
    path = tmp_path if path_kind == "directory" else tmp_path / "missing.bio"
    args = ["evaluate", str(trained_run), "--file", str(path)] if command == "evaluate" else \
        ["predict", "--run", str(trained_run), "--file", str(path)]
    assert message in one_line_error(runner.invoke(app, args))


def conll_rows(result) -> list[list[str]]:
    assert result.exit_code == 0, result.output
    return [line.split("\t") for line in result.stdout.splitlines() if line]


@pytest.mark.parametrize("content", [
    b"\xef\xbb\xbfO\twhat\r\nB-TITLE\tjaws\r\n\r\nO\twho\r\n",  # BOM and CRLF
    b"O\twhat   \nB-TITLE\tjaws \t\n\n\nO\twho\n\n",  # trailing spaces, extra blank lines
])
def test_bom_crlf_and_trailing_spaces_are_read_as_plain_lines(trained_run, tmp_path, content):
    path = tmp_path / "odd.bio"
    path.write_bytes(content)
    rows = conll_rows(runner.invoke(app, ["predict", "--run", str(trained_run), "--file", str(path),
                                          "--format", "conll"]))
    assert [(word, gold) for word, gold, _ in rows] == [("what", "O"), ("jaws", "B-TITLE"), ("who", "O")]


def test_inside_tag_after_o_is_read_as_a_beginning_and_counted(trained_run, tmp_path):
    path = tmp_path / "iob1.bio"
    path.write_bytes(b"O\twhat\nI-TITLE\tjaws\nI-TITLE\ttwo\n\nI-ACTOR\ttom\nI-TITLE\tjaws\n")
    result = runner.invoke(app, ["predict", "--run", str(trained_run), "--file", str(path), "--format", "conll"])
    assert [gold for _, gold, _ in conll_rows(result)] == ["O", "B-TITLE", "I-TITLE", "B-ACTOR", "B-TITLE"]
    assert "iob1.bio: read 3 I- tag(s) that start a span as B- (IOB2; the first in the sentence at line 1)" \
        in result.stderr


def test_a_10000_word_sentence_is_windowed_and_every_word_tagged(trained_run, tmp_path):
    words = ["what", "movies", "did", "tom", "hanks", "star", "in"] * 1429  # 10,003 words, far over max_len 64
    path = tmp_path / "long.bio"
    path.write_text("".join(f"O\t{w}\n" for w in words))
    rows = conll_rows(runner.invoke(app, ["predict", "--run", str(trained_run), "--file", str(path),
                                          "--format", "conll"]))
    assert [word for word, _, _ in rows] == words
    assert all(pred in json.loads((trained_run / "labels.json").read_text())["labels"] for _, _, pred in rows)


# ---------------------------------------------------------------- predict on raw text


def predict_json(trained_run, *args, input=None) -> list[dict]:
    result = runner.invoke(app, ["predict", "--run", str(trained_run), "--format", "jsonl", *args], input=input)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("text, words", [
    ("", []),
    ("   \t ", []),
    ("\U0001f3ac\U0001f37f jaws", ["\U0001f3ac", "\U0001f37f", "jaws"]),  # emoji are words of their own
    # Japanese has no spaces: each kanji and kana is a word (tests/test_scripts.py has the rule).
    ("\u5343\u3068\u5343\u5c0b\u306e\u795e\u96a0\u3057 trailer", [*"\u5343\u3068\u5343\u5c0b\u306e\u795e\u96a0\u3057",
                                                                "trailer"]),
    ("ame\u0301lie and cafe\u0301", ["ame\u0301lie", "and", "cafe\u0301"]),  # combining accents stay in the word
    ("who\x07directed\x1bjaws\u200b", ["who", "directed", "jaws"]),  # control/format characters separate words
])
def test_odd_texts_get_one_tag_per_word_and_offsets_into_the_input(trained_run, text, words):
    (row,) = predict_json(trained_run, text)
    assert row["text"] == text and [w["word"] for w in row["words"]] == words
    assert all(text[w["start"]:w["end"]] == w["word"] for w in row["words"])


def test_mixed_newlines_on_stdin_give_one_result_per_line(trained_run):
    rows = predict_json(trained_run, "-", input="one\r\ntwo words\n\nthree\rfour\n")
    # Lines end at \n (as for wc -l); a lone \r inside a line separates words like a space.
    assert [r["text"] for r in rows] == ["one", "two words", "", "three\rfour"]
    assert [len(r["words"]) for r in rows] == [1, 2, 0, 2]


def test_a_5000_word_text_is_windowed_not_truncated(trained_run):
    text = " ".join(["who", "directed", "the", "movie", "jaws"] * 1000)
    (row,) = predict_json(trained_run, text)
    assert len(row["words"]) == 5000 and all(w["tag"] for w in row["words"])


@pytest.fixture(scope="module")
def tagger(trained_run):
    return Tagger.from_run(RunDir(trained_run))


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60) | st.lists(
    st.sampled_from(["jaws", "tom", "hanks", "movie", "\u00e9", "\u0301", "\U0001f3ac", "\u5343", "\r", "\t", " ",
                     "?", "-", "\u200b", "\x00", "''"]), max_size=40).map("".join)


@settings(max_examples=150, deadline=None)
@given(TEXT)
def test_property_spans_point_into_the_text_never_overlap_and_every_word_has_one_tag(tagger, text):
    (result,) = tagger.tag_texts([text])
    assert len(result.tags) == len(result.words) and all(0 <= w.score <= 1 for w in result.words)
    assert all(text[w.start:w.end] == w.text for w in result.words)
    for entity in result.entities:
        assert text[entity.start:entity.end] == entity.text
    ends = [(e.start, e.end) for e in result.entities]
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(ends, ends[1:]))
    assert len(result.entities) == sum(t.startswith("B-") for t in result.tags)


# ---------------------------------------------------------------- runs


def copy_run(trained_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    return copy


def test_half_written_run_is_an_input_error(trained_run, tmp_path):
    run = copy_run(trained_run, tmp_path)
    shutil.rmtree(run / "best")
    (run / "model.tflite").unlink()
    assert "not a finished run (missing config.json)" in one_line_error(
        runner.invoke(app, ["predict", "--run", str(run), "jaws"]))


# The engine predict picks by default on each run: LiteRT on the plain tiny run, ONNX Runtime on the int8 one.
EXPORTED_MODELS = [("trained_run", "model.tflite"),
                   pytest.param("int8_run", "model.int8.onnx", marks=pytest.mark.int8)]


@pytest.mark.parametrize("fixture, model", EXPORTED_MODELS)
def test_corrupt_exported_model_is_an_input_error(fixture, model, request, tmp_path):
    run = copy_run(request.getfixturevalue(fixture), tmp_path)
    data = (run / model).read_bytes()
    (run / model).write_bytes(data[: len(data) // 3])
    assert f"{model}: not a usable nerctl model" in one_line_error(
        runner.invoke(app, ["predict", "--run", str(run), "jaws"]))


@pytest.mark.parametrize("fixture, model", EXPORTED_MODELS)
def test_labels_that_do_not_match_the_model_are_an_input_error(fixture, model, request, tmp_path):
    run = copy_run(request.getfixturevalue(fixture), tmp_path)
    (run / "labels.json").write_text(json.dumps({"labels": ["O", "B-X", "I-X"]}))
    assert f"labels.json (3 labels) does not match the model in {model}" in one_line_error(
        runner.invoke(app, ["predict", "--run", str(run), "jaws"]))


def test_latest_pointing_nowhere_is_an_input_error(tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "latest").symlink_to("gone")
    monkeypatch.setenv("NERCTL_RUNS_ROOT", str(tmp_path / "runs"))
    assert "(it points nowhere)" in one_line_error(runner.invoke(app, ["predict", "jaws"]))


# ---------------------------------------------------------------- options and models


@pytest.mark.parametrize("args, env, message", [
    (["--lr", "-1"], {}, "lr must be positive"),
    ([], {"NERCTL_EPOCHS": "0"}, "epochs must be at least 1"),
    (["--max-len", "100000"], {}, "max_len 100000 exceeds the model's limit of 64 pieces"),
    (["--freeze-layers", "3"], {}, "freeze_layers 3 exceeds the model's 2 layers"),
    ([], {"NERCTL_RUN_NAME": "../escape"}, "invalid run name '../escape'"),
    ([], {"NERCTL_RUN_NAME": "/tmp/abs"}, "invalid run name '/tmp/abs'"),
])
def test_impossible_training_options_are_one_line_errors(tiny_model, bio_files, tmp_path, args, env, message):
    # no --run-dir: the run's place comes from NERCTL_RUNS_ROOT (and NERCTL_RUN_NAME)
    files = {"train": bio_files["train"], "dev": bio_files["dev"]}  # and no --test-file
    result = runner.invoke(app, train_args(tiny_model, files, None, *args),
                           env={"NERCTL_RUNS_ROOT": str(tmp_path), **env})
    assert message in one_line_error(result)
    assert not any(tmp_path.rglob("config.json"))  # nothing half-made left behind


def test_a_model_folder_with_only_pickled_weights_is_refused(tiny_model, bio_files, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model, folder)
    for weights in folder.glob("*.h5"):
        weights.rename(folder / "pytorch_model.bin")
    result = runner.invoke(app, ["train", "--model", str(folder), "--train-file", str(bio_files["train"])],
                           env={"NERCTL_RUNS_ROOT": str(tmp_path / "runs")})
    assert "no safetensors or h5 weights (nerctl never loads pickled .bin/.pt files)" in one_line_error(result)


def test_the_package_never_trusts_remote_code_nor_unpickles():
    from pathlib import Path

    import nerctl

    source = "\n".join(p.read_text() for p in Path(nerctl.__file__).parent.glob("*.py"))
    assert "trust_remote_code=True" not in source and "import pickle" not in source
    assert "from_pt" not in source and "np.load(" not in source


def _jsonl(*records) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


def _task(task_id, text, *values) -> dict:
    return {"id": task_id, "data": {"text": text}, "annotations": [{"was_cancelled": False, "result": [
        {"type": "labels", "from_name": "label", "to_name": "text", "value": v} for v in values]}]}


OK = {"text": "who directed jaws", "label": [[13, 17, "TITLE"]]}
# name -> (file name, content, what the one-line error must say): every malformed span file names file and
# line (JSONL) or task id (Label Studio), and the span.
BAD_SPANS = {
    "boundary inside a word": ("bad.jsonl", _jsonl(OK, {"text": "bruce willis", "label": [[1, 12, "ACTOR"]]}),
                               "bad.jsonl:2: span [1, 12) ACTOR 'ruce willis' has a boundary inside the word 'bruce'"),
    "overlapping spans": ("bad.jsonl", _jsonl({"text": "bruce willis", "label": [[0, 5, "A"], [0, 12, "B"]]}),
                          "bad.jsonl:1: span [0, 5) A 'bruce' overlaps span [0, 12) B"),
    "nested spans": ("bad.jsonl", _jsonl({"text": "bruce willis", "label": [[0, 12, "A"], [6, 12, "B"]]}),
                     "bad.jsonl:1: span [6, 12) B 'willis' overlaps span [0, 12) A"),
    "empty span": ("bad.jsonl", _jsonl({"text": "bruce willis", "label": [[3, 3, "A"]]}),
                   "bad.jsonl:1: span [3, 3) A '' is empty or inverted"),
    "inverted span": ("bad.jsonl", _jsonl({"text": "bruce willis", "label": [[5, 0, "A"]]}),
                      "bad.jsonl:1: span [5, 0) A '' is empty or inverted"),
    "offset past the text": ("bad.jsonl", _jsonl(OK, OK, {"text": "jaws", "label": [[0, 9, "TITLE"]]}),
                             "bad.jsonl:3: span [0, 9) TITLE 'jaws' is past the text (0 to 4 characters)"),
    "span text differs": ("bad.jsonl", _jsonl({"text": "bruce willis", "spans": [
        {"start": 0, "end": 5, "label": "ACTOR", "text": "bruno"}]}),
        "bad.jsonl:1: span [0, 5) ACTOR 'bruce' states the text 'bruno', which is not the text's"),
    "span over blanks only": ("bad.jsonl", _jsonl({"text": "a   b", "label": [[1, 3, "A"]]}),
                              "bad.jsonl:1: span [1, 3) A '  ' covers no word"),
    "not JSON": ("bad.jsonl", _jsonl(OK, "{\"text\": oops}"), "bad.jsonl:2: not valid JSON"),
    "no text": ("bad.jsonl", _jsonl({"label": []}), 'bad.jsonl:1: expected a JSON object with a "text" string'),
    "label not a triple": ("bad.jsonl", _jsonl({"text": "jaws", "label": [[0, 4]]}),
                           'bad.jsonl:1: label [0, 4] is not [start, end, "TYPE"]'),
    "label with a space": ("bad.jsonl", _jsonl({"text": "jaws", "label": [[0, 4, "MOVIE TITLE"]]}),
                           'bad.jsonl:1: label [0, 4, "MOVIE TITLE"] is not [start, end, "TYPE"]'),
    "label and spans disagree": ("bad.jsonl", _jsonl({"text": "jaws", "label": [[0, 4, "TITLE"]], "spans": []}),
                                 'bad.jsonl:1: "label" and "spans" state different spans'),
    "token past the text": ("bad.jsonl", _jsonl({"text": "jaws", "tokens": [{"text": "jaws", "start": 0, "end": 9}]}),
                            "bad.jsonl:1: token [0, 9) is not a word of the text"),
    "Label Studio boundary inside a word": (
        "bad.json", json.dumps([_task(41, "who directed jaws", {"start": 13, "end": 17, "labels": ["TITLE"]}),
                                _task(42, "bruce willis", {"start": 1, "end": 12, "labels": ["ACTOR"]})]).encode(),
        "bad.json: task 42: span [1, 12) ACTOR 'ruce willis' has a boundary inside the word 'bruce'"),
    "Label Studio span text differs": (
        "bad.json", json.dumps([_task(7, "bruce willis", {"start": 0, "end": 5, "text": "bruno", "labels": ["A"]})]).encode(),
        "bad.json: task 7: span [0, 5) A 'bruce' states the text 'bruno'"),
    "Label Studio overlapping results": (
        "bad.json", json.dumps([_task(8, "bruce willis", {"start": 0, "end": 12, "labels": ["A", "B"]})]).encode(),
        "bad.json: task 8: span [0, 12) B 'bruce willis' overlaps span [0, 12) A"),
    "Label Studio result without labels": (
        "bad.json", json.dumps([_task(9, "jaws", {"start": 0, "end": 4})]).encode(),
        "bad.json: task 9: result {\"start\": 0, \"end\": 4} needs integer start and end and labels"),
    "Label Studio task without text": (
        "bad.json", json.dumps([{"id": 3, "data": {"body": "jaws"}, "annotations": [{"result": []}]}]).encode(),
        'bad.json: task 3: no "text" field'),
    "Label Studio not a list": ("bad.json", b'[{"id": 1, "data": 5}]', 'bad.json: task 1: "data" must be an object'),
    "Label Studio broken JSON": ("bad.json", b'[\n{"id": 1,\n "data": }\n]', "bad.json:3: not valid JSON"),
    "IOBES span never closed": ("bad.bio", b"S-A\twho\n\nB-ACTOR\tbruce\nO\twillis\n",
                                "bad.bio:4: 'O' comes inside an unfinished ACTOR span (expected I-ACTOR or E-ACTOR)"),
    "IOBES end without a beginning": ("bad.bio", b"S-A\twho\nE-B\tbruce\n",
                                      "bad.bio:2: 'E-B' does not continue a B span"),
    "IOBES mixed with BILOU": ("bad.bio", b"S-A\twho\nU-B\tbruce\n", "bad.bio: mixes IOBES (E-, S-) and BILOU"),
}


@pytest.mark.parametrize("name", BAD_SPANS)
def test_malformed_span_and_scheme_files_are_one_line_errors_naming_the_place(tmp_path, name):
    file_name, content, message = BAD_SPANS[name]
    path = tmp_path / file_name
    path.write_bytes(content)
    result = runner.invoke(app, ["convert", str(path), str(tmp_path / "out.bio")])
    assert message in one_line_error(result)
    assert not (tmp_path / "out.bio").exists()  # nothing written


@pytest.mark.parametrize("args, message", [
    (["--scheme", "iob2"], "bad.bio:2: 'I-A' does not continue a A span"),
    (["--scheme", "bilou"], "bad.bio:1: 'O' is not a tag of the BILOU scheme|bad.bio:2: 'I-A' does not continue"),
])
def test_a_chosen_scheme_is_held_to_its_rules(tmp_path, args, message):
    path = tmp_path / "bad.bio"
    path.write_bytes(b"O\twho\nI-A\tbruce\n")
    import re

    assert re.search(message, one_line_error(runner.invoke(app, ["convert", str(path), "-", *args])))


@pytest.mark.parametrize("policy, tags, counted", [
    ("expand", ["B-ACTOR", "I-ACTOR", "O", "B-TITLE"],
     "spans.jsonl: --misaligned expand: widened 1 span(s) to word boundaries, dropped 1 span(s) (1 overlapping)"),
    ("drop", ["O", "O", "O", "B-TITLE"], "spans.jsonl: --misaligned drop: dropped 2 span(s) (2 cut a word)"),
])
def test_misaligned_policies_mend_or_drop_and_say_how_many(tmp_path, policy, tags, counted):
    path = tmp_path / "spans.jsonl"
    path.write_bytes(_jsonl({"text": "bruce willis in jaws", "label": [[1, 12, "ACTOR"], [16, 20, "TITLE"],
                                                                       [16, 18, "TITLE"]]}))
    result = runner.invoke(app, ["convert", str(path), "-", "--to", "bio", "--misaligned", policy])
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[0] for line in result.stdout.splitlines() if line] == tags
    assert counted in result.stderr


def test_a_bad_span_file_stops_training_before_any_model_is_built(tiny_model, tmp_path):
    name, content, message = BAD_SPANS["Label Studio boundary inside a word"]
    path = tmp_path / name
    path.write_bytes(content)
    result = runner.invoke(app, ["train", "--model", str(tiny_model), "--train-file", str(path)],
                           env={"NERCTL_RUNS_ROOT": str(tmp_path / "runs")})
    assert message in one_line_error(result)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("config.json"))
