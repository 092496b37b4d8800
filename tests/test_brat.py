"""BRAT standoff (.txt + .ann): read by every command that reads tagged data, written by convert, errors by line."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nerctl.cli import app
from nerctl.data.formats import read_corpus, read_with_format, render_corpus
from test_bad_inputs import one_line_error

runner = CliRunner()

TEXT = "who directed jaws\nshow me movies with bruce willis\n"
ANN = "T1\tTITLE 13 17\tjaws\nT2\tACTOR 38 50\tbruce willis\n#1\tAnnotatorNotes T1\ta shark\nR1\tLikes Arg1:T1 Arg2:T2\n"


def pair(folder, stem="doc", text=TEXT, ann=ANN):
    (folder / f"{stem}.txt").write_text(text, encoding="utf-8")
    (folder / f"{stem}.ann").write_text(ann, encoding="utf-8")
    return folder / f"{stem}.ann"


def test_a_pair_reads_a_sentence_a_line_with_offsets_into_the_line(tmp_path):
    fmt, (first, second) = read_with_format(pair(tmp_path))
    assert fmt == "brat"
    assert first.words == ("who", "directed", "jaws") and first.tags == ("O", "O", "B-TITLE")
    assert second.tags == ("O", "O", "O", "O", "B-ACTOR", "I-ACTOR")
    assert (second.source, second.line) == (str(tmp_path / "doc.txt"), 2)
    assert second.text == "show me movies with bruce willis" and second.offsets[4] == (20, 25)


def test_a_folder_reads_every_pair_in_name_order_subfolders_too(tmp_path):
    (tmp_path / "sub").mkdir()
    pair(tmp_path, "b")
    pair(tmp_path / "sub", "a", "have you seen titanic\n", "T1\tTITLE 14 21\ttitanic\n")
    sentences = read_corpus(tmp_path)
    assert [s.words[-1] for s in sentences] == ["jaws", "willis", "titanic"]
    assert read_with_format(tmp_path)[0] == "brat"


@settings(max_examples=40, deadline=None)
@given(corpus=st.lists(st.lists(st.tuples(
    st.sampled_from(["jaws", "who", "bruce", "willis", "1997", "?", "été", "🎬", "ünïcode", "ß"]),
    st.sampled_from(["O", "B-TITLE", "I-TITLE", "B-A_B"])), min_size=1, max_size=7), min_size=1, max_size=5))
def test_property_bio_to_brat_and_back_keeps_words_and_tags(tmp_path_factory, corpus):
    """Words that splitting gives back (a run of letters and digits, or one other character) survive exactly."""
    folder = tmp_path_factory.mktemp("brat")
    bio = folder / "in.bio"
    bio.write_text("".join("".join(f"{t}\t{w}\n" for w, t in s) + "\n" for s in corpus), encoding="utf-8")
    original = read_corpus(bio, warn=lambda m: None)
    result = runner.invoke(app, ["convert", str(bio), str(folder / "out"), "--to", "brat"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["in.ann", "in.txt"]
    back = folder / "back.bio"
    result = runner.invoke(app, ["convert", str(folder / "out"), str(back)])
    assert result.exit_code == 0, result.output
    assert [(s.words, s.tags) for s in read_corpus(back)] == [(s.words, s.tags) for s in original]


def test_convert_to_one_pair_and_what_brat_cannot_keep_is_said(tmp_path):
    bio = tmp_path / "in.bio"
    bio.write_text("O\tsee\nB-TITLE\tU.S.\nI-TITLE\tmarshals\n\nO\twho\n", encoding="utf-8")
    result = runner.invoke(app, ["convert", str(bio), str(tmp_path / "one.ann")])
    assert result.exit_code == 0, result.output
    assert "1 sentence(s) will read back as other words" in result.stderr and f"{bio}:1" in result.stderr
    assert (tmp_path / "one.txt").read_text() == "see U.S. marshals\nwho\n"
    assert (tmp_path / "one.ann").read_text() == "T1\tTITLE 4 17\tU.S. marshals\n"


def test_convert_never_replaces_a_folder_of_other_files(tmp_path):
    bio = tmp_path / "in.bio"
    bio.write_text("O\twho\n", encoding="utf-8")
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.md").write_text("mine")
    result = runner.invoke(app, ["convert", str(bio), str(tmp_path / "keep"), "--to", "brat"])
    assert "is not an earlier output of this format" in one_line_error(result)
    assert (tmp_path / "keep" / "notes.md").read_text() == "mine"
    one_line_error(runner.invoke(app, ["convert", str(bio), "-", "--to", "brat"]))


BAD_BRAT = {
    "discontinuous span": ("T1\tTITLE 0 3;13 17\twho jaws\n", "doc.ann:1: the TITLE span '0 3;13 17' is discontinuous"),
    "overlapping spans": ("T1\tTITLE 13 17\tjaws\nT2\tACTOR 4 17\tdirected jaws\n",
                          "doc.ann:1: span [13, 17) TITLE 'jaws' overlaps span [4, 17) ACTOR"),
    "offset past the text": ("T1\tTITLE 60 64\tjaws\n", "doc.ann:1: span [60, 64) TITLE is past the text"),
    "span across a line end": ("T1\tTITLE 13 22\n", "doc.ann:1: span [13, 22) TITLE crosses a line end"),
    "boundary inside a word": ("T1\tTITLE 14 17\taws\n", "doc.ann:1: span [14, 17) TITLE 'aws' has a boundary inside"),
    "stated text differs": ("T1\tTITLE 13 17\tjams\n", "doc.ann:1: span [13, 17) TITLE 'jaws' states the text 'jams'"),
    "malformed line": ("T1 TITLE 13 17 jaws\n", "doc.ann:1: expected 'T<id><TAB>TYPE START END<TAB>text'"),
    "offsets not numbers": ("T1\tTITLE 13 x\tjaws\n", "doc.ann:1: offsets '13 x' are not 'START END'"),
    "type with a space": ("T1\tTITLE\t13 17\tjaws\n", "doc.ann:1: expected 'T<id><TAB>TYPE START END<TAB>text'"),
}


@pytest.mark.parametrize("case", sorted(BAD_BRAT))
def test_bad_annotations_exit_2_naming_the_ann_file_and_line(tmp_path, case):
    ann, message = BAD_BRAT[case]
    path = pair(tmp_path, ann=ann)
    result = runner.invoke(app, ["convert", str(path), str(tmp_path / "out.bio")])
    assert message in one_line_error(result)
    assert not (tmp_path / "out.bio").exists()


def test_a_missing_txt_and_an_empty_folder_are_errors(tmp_path):
    (tmp_path / "lone.ann").write_text("T1\tTITLE 0 4\tjaws\n")
    message = one_line_error(runner.invoke(app, ["convert", str(tmp_path / "lone.ann"), str(tmp_path / "o.bio")]))
    assert "lone.txt: missing" in message
    (tmp_path / "empty").mkdir()
    message = one_line_error(runner.invoke(app, ["convert", str(tmp_path / "empty"), str(tmp_path / "o.bio")]))
    assert "no .ann files in this folder" in message


def test_policies_drop_what_the_words_cannot_hold_and_count_it(tmp_path):
    ann = "T1\tTITLE 0 3;13 17\twho jaws\nT2\tTITLE 13 17\tjaws\nT3\tACTOR 14 17\taws\nT4\tX 13 30\n"
    path = pair(tmp_path, ann=ann)
    heard = []
    (first, _) = read_corpus(path, misaligned="drop", warn=heard.append)
    assert first.tags == ("O", "O", "B-TITLE")
    assert heard == [f"{path}: --misaligned drop: dropped 3 span(s) (1 crosses a line, 1 cut a word, "
                     "1 discontinuous)"]


@pytest.mark.parametrize("command", ["check", "evaluate", "predict"])
def test_every_reading_command_takes_a_brat_folder(trained_run, bio_files, tmp_path, command):
    folder = tmp_path / "brat"
    assert runner.invoke(app, ["convert", str(bio_files["test"]), str(folder), "--to", "brat"]).exit_code == 0
    args = {"check": ["check", str(folder), "--json"],
            "evaluate": ["evaluate", str(trained_run), "--file", str(folder), "--json"],
            "predict": ["predict", "--run", str(trained_run), "--file", str(folder), "--format", "jsonl"]}[command]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    sentences = read_corpus(bio_files["test"])
    if command == "check":
        assert json.loads(result.stdout)["files"][0]["format"] == "brat"
    elif command == "evaluate":
        bio = runner.invoke(app, ["evaluate", str(trained_run), "--file", str(bio_files["test"]), "--json"])
        assert json.loads(result.stdout)["f1"] == json.loads(bio.stdout)["f1"]
    else:
        records = [json.loads(line) for line in result.stdout.splitlines()]
        assert [[w["gold"] for w in r["words"]] for r in records] == [list(s.tags) for s in sentences]


def test_render_corpus_writes_a_pair_per_source_document(tmp_path):
    pair(tmp_path, "a")
    pair(tmp_path, "b", "have you seen titanic\n", "T1\tTITLE 14 21\ttitanic\n")
    files = render_corpus(read_corpus(tmp_path), "brat")
    assert sorted(files) == ["a.ann", "a.txt", "b.ann", "b.txt"]
    assert files["b.ann"] == "T1\tTITLE 14 21\ttitanic\n" and files["a.txt"] == TEXT
