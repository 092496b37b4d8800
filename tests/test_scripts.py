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


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_words_are_in_order_never_overlap_and_are_their_text(text):
    words, end = split_words(text), 0
    for word in words:
        assert end <= word.start < word.end and text[word.start:word.end] == word.text
        end = word.end


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
