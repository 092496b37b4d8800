"""A corpus of bad and odd inputs, each through the real CLI: exit 2 and one line for
what is wrong (with file and line where there is one), correct output for what is merely odd."""
import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nerctl.cli import app
from nerctl.tagger import Tagger
from nerctl.rundir import RunDir

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


@pytest.mark.parametrize("path_kind, message", [("directory", "is a directory"), ("missing", "no such file")])
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
    ("\u5343\u3068\u5343\u5c0b\u306e\u795e\u96a0\u3057 trailer", ["\u5343\u3068\u5343\u5c0b\u306e\u795e\u96a0\u3057",
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


def test_corrupt_exported_model_is_an_input_error(trained_run, tmp_path):
    run = copy_run(trained_run, tmp_path)
    data = (run / "model.tflite").read_bytes()
    (run / "model.tflite").write_bytes(data[: len(data) // 3])
    assert "model.tflite: not a usable nerctl model" in one_line_error(
        runner.invoke(app, ["predict", "--run", str(run), "jaws"]))


def test_labels_that_do_not_match_the_model_are_an_input_error(trained_run, tmp_path):
    run = copy_run(trained_run, tmp_path)
    (run / "labels.json").write_text(json.dumps({"labels": ["O", "B-X", "I-X"]}))
    assert "labels.json (3 labels) does not match the model" in one_line_error(
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
    result = runner.invoke(app, ["train", "-c", "configs/smoke.toml", "--model", str(tiny_model),
                                 "--train-file", str(bio_files["train"]), "--eval-file", str(bio_files["dev"]), *args],
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
