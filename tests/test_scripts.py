"""Words in any script: how raw text is split, and what that lets the readers and predict do."""
import json

import pytest
from hypothesis import given, settings, strategies as st

from nerctl.data.formats import read_corpus
from nerctl.data.sentence import split_words


@pytest.mark.parametrize("text, words", [
    ("Have you seen The Dark Knight?", ["Have", "you", "seen", "The", "Dark", "Knight", "?"]),  # MIT Movie's rule
    ("café déjà-vu 1990s", ["café", "déjà", "-", "vu", "1990s"]),
    ("我爱北京天安门", ["我", "爱", "北", "京", "天", "安", "门"]),  # each Han character a word
    ("東京タワーに行きたい", ["東", "京", "タ", "ワ", "ー", "に", "行", "き", "た", "い"]),  # kanji, katakana, kana
    ("ผมรักกรุงเทพ", ["ผ", "ม", "รั", "ก", "ก", "รุ", "ง", "เ", "ท", "พ"]),  # Thai by grapheme cluster, marks kept
    ("e\u0301te\u0301 x", ["e\u0301te\u0301", "x"]),  # combining marks stay on their letter
    ("\U0001F469\u200d\U0001F4BB rocks \U0001F1EB\U0001F1F7!", ["\U0001F469\u200d\U0001F4BB", "rocks",
                                                                "\U0001F1EB\U0001F1F7", "!"]),  # emoji sequences
    ("می\u200cخواهم", ["می\u200cخواهم"]),  # a zero-width non-joiner inside a word
    ("see\u200bthis", ["see", "this"]),  # a zero-width space separates
])
def test_words_of_each_script(text, words):
    assert [w.text for w in split_words(text)] == words


def test_a_chinese_doccano_file_without_tokens_reads_with_spans_on_characters(tmp_path):
    path = tmp_path / "zh.jsonl"
    path.write_text(json.dumps({"text": "我爱北京天安门", "label": [[2, 4, "LOC"], [4, 7, "LOC"]]},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    (sentence,) = read_corpus(path, warn=lambda message: None)
    assert list(sentence.words) == list("我爱北京天安门")
    assert list(sentence.tags) == ["O", "O", "B-LOC", "I-LOC", "B-LOC", "I-LOC", "I-LOC"]


def test_predict_tags_each_character_of_unspaced_text_with_offsets_into_it(trained_run):
    from typer.testing import CliRunner

    from nerctl.cli import app

    text = "have you seen 天安门 tom hanks"
    result = CliRunner().invoke(app, ["predict", "--run", str(trained_run), "--format", "jsonl", text])
    assert result.exit_code == 0, result.stderr
    words = json.loads(result.stdout)["words"]
    assert [w["word"] for w in words] == ["have", "you", "seen", "天", "安", "门", "tom", "hanks"]
    assert all(text[w["start"]:w["end"]] == w["word"] for w in words)


@pytest.mark.slow
def test_mit_movies_words_all_survive_the_split(tmp_path):
    """Every MIT Movie sentence, its words joined by spaces, splits back into exactly its words: the rule
    for other scripts changes nothing for it (and BIO words reach the model as they are)."""
    from conftest import SHARED_DATA
    from nerctl.data.formats.bio import read_bio

    files = [SHARED_DATA / name for name in ("engtrain.bio", "engtest.bio")]
    if not all(f.is_file() for f in files):
        pytest.skip(f"the MIT Movie mirror is not at {SHARED_DATA}")
    sentences = [s for f in files for s in read_bio(f, warn=lambda message: None)]
    assert len(sentences) == 12218
    assert all([w.text for w in split_words(" ".join(s.words))] == list(s.words) for s in sentences)


ZH_TEMPLATES = ["我想看{TITLE}", "{DIRECTOR}导演的电影有哪些", "{ACTOR}演过什么电影", "有没有{ACTOR}主演的{GENRE}片",
                "{TITLE}是哪一年上映的", "{DIRECTOR}拍过{GENRE}电影吗"]
ZH_FILLERS = {"TITLE": ["英雄", "霸王别姬", "大话西游", "无间道", "卧虎藏龙"], "ACTOR": ["周星驰", "巩俐", "梁朝伟", "章子怡"],
              "DIRECTOR": ["张艺谋", "李安", "王家卫"], "GENRE": ["喜剧", "动作", "爱情"]}


def chinese_doccano(path, n: int, seed: int):
    """n doccano records of templated Chinese movie queries: text and character spans, no tokens."""
    import random

    rng, lines = random.Random(seed), []
    for _ in range(n):
        text, spans = "", []
        for part in __import__("re").split(r"(\{\w+\})", rng.choice(ZH_TEMPLATES)):
            if part.startswith("{"):
                name = rng.choice(ZH_FILLERS[part[1:-1]])
                spans.append([len(text), len(text) + len(name), part[1:-1]])
                part = name
            text += part
        lines.append(json.dumps({"text": text, "label": spans}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_chinese_doccano_corpus_without_tokens_trains_and_predicts_spans_on_characters(tmp_path):
    """Each Han character is a word, so a tiny model with a character vocabulary learns entities inside
    unspaced text, and predict gives their spans as offsets into it."""
    from functools import partial

    from typer.testing import CliRunner

    from conftest import SMOKE, tiny_family_model, wordpiece_tokenizer
    from nerctl.cli import app

    chars = sorted({c for t in ZH_TEMPLATES for c in t if c not in "{}" and not c.isascii()}
                   | {c for names in ZH_FILLERS.values() for name in names for c in name})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]
    (tmp_path / "zh-bert").mkdir()
    model = tiny_family_model(tmp_path / "zh-bert", "BertConfig", "TFBertModel", partial(wordpiece_tokenizer, vocab=vocab))
    train, dev = chinese_doccano(tmp_path / "train.jsonl", 300, 1), chinese_doccano(tmp_path / "dev.jsonl", 40, 2)
    runner, run = CliRunner(), tmp_path / "run"
    trained = runner.invoke(app, ["train", "-c", SMOKE, "--model", str(model), "--train-file", str(train),
                                  "--eval-file", str(dev), "--test-file", str(dev), "--epochs", "4",
                                  "--run-dir", str(run), "--json"])
    assert trained.exit_code == 0, trained.output
    assert json.loads((run / "config.json").read_text())["words"] == "script"
    assert json.loads(trained.stdout)["test"]["f1"] > 0.9
    text = "我想看无间道"
    predicted = runner.invoke(app, ["predict", "--run", str(run), "--format", "jsonl", text])
    assert predicted.exit_code == 0, predicted.stderr
    record = json.loads(predicted.stdout)
    assert [w["word"] for w in record["words"]] == list(text)
    assert [(e["start"], e["end"], e["type"]) for e in record["entities"]] == [(3, 6, "TITLE")]
    assert record["entities"][0]["text"] == text[3:6] == "无间道"


@pytest.mark.parametrize("rule, words", [
    ("script", ["rated", "pg", "-", "13", ",", "or", "U", ".", "S", ".", "only"]),
    ("whitespace", ["rated", "pg-13,", "or", "U.S.", "only"]),
    ("characters", list("ratedpg-13,orU.S.only")),
])
def test_each_words_rule(rule, words):
    assert [w.text for w in split_words("rated  pg-13, or U.S. only", rule)] == words


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60),
       st.sampled_from(["script", "whitespace", "characters"]))
def test_every_rules_words_are_in_order_never_overlap_and_are_their_text(text, rule):
    words, end = split_words(text, rule), 0
    for word in words:
        assert end <= word.start < word.end and text[word.start:word.end] == word.text
        end = word.end


def test_the_words_rule_is_saved_in_the_run_and_predict_and_evaluate_split_by_it(tiny_model, bio_files, tmp_path):
    """NERCTL_WORDS=whitespace trains a run that splits raw text at whitespace only, in predict and in
    evaluate's reading of a file without tokens; --words on those commands overrides the run's rule."""
    from typer.testing import CliRunner

    from conftest import train_args
    from nerctl.cli import app

    runner, run = CliRunner(), tmp_path / "run"
    trained = runner.invoke(app, train_args(tiny_model, bio_files, run), env={"NERCTL_WORDS": "whitespace"})
    assert trained.exit_code == 0, trained.output
    assert json.loads((run / "config.json").read_text())["words"] == "whitespace"

    def words(*extra):
        result = runner.invoke(app, ["predict", "--run", str(run), "--format", "jsonl", *extra, "who directed pg-13?"])
        assert result.exit_code == 0, result.stderr
        return [w["word"] for w in json.loads(result.stdout)["words"]]

    assert words() == ["who", "directed", "pg-13?"]
    assert words("--words", "script") == ["who", "directed", "pg", "-", "13", "?"]
    gold = tmp_path / "gold.jsonl"  # "jaws" is inside the whitespace word "jaws."
    gold.write_text(json.dumps({"text": "who directed jaws.", "label": [[13, 17, "TITLE"]]}) + "\n")
    by_run = runner.invoke(app, ["evaluate", str(run), "--file", str(gold)])
    assert by_run.exit_code == 2 and "boundary inside the word 'jaws.'" in by_run.stderr
    by_option = runner.invoke(app, ["evaluate", str(run), "--file", str(gold), "--words", "script", "--json"])
    assert by_option.exit_code == 0, by_option.stderr
