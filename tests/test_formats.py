"""The data formats: schemes, CoNLL-2003, JSONL, Label Studio, detection, alignment and lossless conversion."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerctl.data.align import CharSpan, Tally, spans_to_tags
from nerctl.core.errors import InputError
from nerctl.data.formats import read_corpus, read_with_format, render_corpus
from nerctl.data.sentence import split_words
from nerctl.data.schemes import SchemeError, from_iob2, to_iob2
from nerctl.data.tags import entity_spans
from conftest import write_file


@pytest.mark.parametrize("scheme, tags", [
    ("iob1", ["I-A", "I-A", "B-A", "O", "I-B"]),
    ("iob2", ["B-A", "I-A", "B-A", "O", "B-B"]),
    ("iobes", ["B-A", "E-A", "S-A", "O", "S-B"]),
    ("bilou", ["B-A", "L-A", "U-A", "O", "U-B"]),
])
def test_every_scheme_reads_as_the_same_iob2_and_writes_back(scheme, tags):
    iob2 = ["B-A", "I-A", "B-A", "O", "B-B"]
    assert to_iob2(tags, scheme) == iob2
    assert from_iob2(iob2, scheme) == tags


@pytest.mark.parametrize("scheme, tags, index, message", [
    ("iob2", ["O", "I-A"], 1, "does not continue a A span"),
    ("iobes", ["B-A", "O"], 1, "inside an unfinished A span"),
    ("iobes", ["B-A", "I-A"], 1, "not closed at the end of the sentence"),
    ("iobes", ["O", "E-A"], 1, "does not continue"),
    ("iobes", ["B-A", "E-B"], 1, "does not continue a B span"),
    ("bilou", ["S-A"], 0, "is not a tag of the BILOU scheme"),
    ("iob2", ["O", "E-A"], 1, "is not a tag of the IOB2 scheme"),
])
def test_impossible_sequences_name_the_word(scheme, tags, index, message):
    with pytest.raises(SchemeError, match=message) as err:
        to_iob2(tags, scheme)
    assert err.value.index == index


def test_conll2003_columns_docstart_and_iobes_are_detected(tmp_path):
    path = write_file(tmp_path, "-DOCSTART- -X- -X- O\n\nEU NNP B-NP S-ORG\nrejects VBZ B-VP O\n"
                                "German JJ B-NP B-MISC\ncall NN I-NP E-MISC\n\n-DOCSTART- -X- -X- O\n\n"
                                "Peter NNP B-NP S-PER\n",
                      "c.conll")
    fmt, sentences = read_with_format(path)
    assert fmt == "conll"
    assert [s.tags for s in sentences] == [("B-ORG", "O", "B-MISC", "I-MISC"), ("B-PER",)]
    assert [s.line for s in sentences] == [3, 10]


def test_a_broken_scheme_names_file_and_line(tmp_path):
    path = write_file(tmp_path, "O\ta\n\nB-X\tb\nO\tc\nE-X\td\n", "s.bio")
    with pytest.raises(InputError, match=r"s.bio:4: 'O' comes inside an unfinished X span"):
        read_corpus(path)
    with pytest.raises(InputError, match=r"m.bio: mixes IOBES \(E-, S-\) and BILOU"):
        read_corpus(write_file(tmp_path, "U-X\ta\nS-X\tb\n", "m.bio"))


def test_strict_iob2_refuses_what_auto_repairs(tmp_path):
    path = write_file(tmp_path, "O\ta\nI-X\tb\n", "i.bio")
    warnings = []
    assert read_corpus(path, warn=warnings.append)[0].tags == ("O", "B-X")
    assert len(warnings) == 1
    assert read_corpus(path, scheme="iob1", warn=warnings.append)[0].tags == ("O", "B-X")
    with pytest.raises(InputError, match=r"i.bio:2: 'I-X' does not continue a X span"):
        read_corpus(path, scheme="iob2")


def test_doccano_and_prodigy_records(tmp_path):
    tokens = [{"text": t, "start": s, "end": e} for t, s, e in (("U.S.", 0, 4), ("films", 5, 10))]
    path = write_file(tmp_path, "\n".join([
        json.dumps({"text": "have you seen jaws?", "label": [[14, 18, "TITLE"]]}),
        "",
        json.dumps({"text": "U.S. films", "spans": [{"start": 0, "end": 4, "label": "LOC"}], "tokens": tokens}),
    ]) + "\n", "d.jsonl")
    path.write_text(path.read_text() + json.dumps({"text": "no", "label": [[0, 2, "X"]], "answer": "reject"}) + "\n")
    warnings = []
    fmt, (first, second) = read_with_format(path, warn=warnings.append)
    assert warnings == [f"{path}: skipped 1 record(s) answered reject or ignore"]
    assert fmt == "jsonl"
    assert first.words == ("have", "you", "seen", "jaws", "?") and first.tags == ("O", "O", "O", "B-TITLE", "O")
    assert second.words == ("U.S.", "films") and second.tags == ("B-LOC", "O")  # tokens are the words
    assert (first.line, second.line) == (1, 3)
    assert second.text == "U.S. films" and second.offsets == ((0, 4), (5, 10))


def labelstudio_task(task_id, text, annotations):
    return {"id": task_id, "data": {"text": text}, "annotations": annotations}


def annotation(spans, updated, cancelled=False):
    return {"updated_at": updated, "was_cancelled": cancelled, "result": [
        {"type": "labels", "from_name": "label", "to_name": "text",
         "value": {"start": s, "end": e, "labels": [label]}} for s, e, label in spans] + [
        {"type": "choices", "value": {"choices": ["ok"]}}]}


def test_labelstudio_reads_the_latest_non_cancelled_annotation_and_json_min(tmp_path):
    tasks = [
        labelstudio_task(7, "who directed jaws", [
            annotation([(13, 17, "TITLE")], "2024-01-02T00:00:00Z"),
            annotation([(0, 3, "WRONG")], "2024-01-01T00:00:00Z"),
            annotation([(4, 12, "WRONG")], "2024-03-01T00:00:00Z", cancelled=True),
        ]),
        labelstudio_task(8, "no annotation yet", []),
    ]
    warnings = []
    fmt, sentences = read_with_format(write_file(tmp_path, json.dumps(tasks, indent=2), "ls.json"),
                                      warn=warnings.append)
    assert fmt == "labelstudio"
    assert [(s.words, s.tags, s.line) for s in sentences] == [(("who", "directed", "jaws"), ("O", "O", "B-TITLE"), 7)]
    assert "skipped 1 task(s) without a non-cancelled annotation" in warnings[0]
    minimal = [{"id": 3, "text": "who directed jaws", "annotator": 1,
                "label": [{"start": 13, "end": 17, "text": "jaws", "labels": ["TITLE"]}]}]
    (sentence,) = read_corpus(write_file(tmp_path, json.dumps(minimal), "min.json"))
    assert sentence.tags == ("O", "O", "B-TITLE") and sentence.line == 3


def test_policies_widen_or_drop_and_count(tmp_path):
    text = "bruce willis in jaws"
    spans = [CharSpan(1, 12, "ACTOR"), CharSpan(16, 20, "TITLE"), CharSpan(16, 18, "TITLE"), CharSpan(5, 5, "X")]
    words = split_words(text)
    tally = Tally()
    assert spans_to_tags(text, words, spans, "f:1", "expand", tally) == ["B-ACTOR", "I-ACTOR", "O", "B-TITLE"]
    assert tally.widened == 1 and dict(tally.dropped) == {"overlapping": 1, "empty or inverted": 1}
    tally = Tally()
    assert spans_to_tags(text, words, spans, "f:1", "drop", tally) == ["O", "O", "O", "B-TITLE"]
    assert dict(tally.dropped) == {"cut a word": 2, "empty or inverted": 1}
    assert "f: --misaligned drop: dropped 3 span(s) (2 cut a word, 1 empty or inverted)" == tally.message("f", "drop")


# Words without whitespace, some that split_words would cut ("pg-13", "U.S."), some emoji and accents.
WORD = st.one_of(st.sampled_from(["pg-13", "U.S.", "l'été", "🎬", "jaws", "ünïcode", "a", "?"]),
                 st.text(st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs")), min_size=1, max_size=6))


@st.composite
def corpora(draw):
    """Sentences of words with valid IOB2 tags (spans drawn as runs)."""
    sentences = []
    for _ in range(draw(st.integers(1, 4))):
        words = draw(st.lists(WORD, min_size=1, max_size=8))
        tags, inside = [], None
        for _ in words:
            choice = draw(st.sampled_from(["O", "B-A", "B-B_C", "I"]))
            tag = f"I-{inside}" if choice == "I" and inside else ("O" if choice == "I" else choice)
            inside = None if tag == "O" else tag[2:]
            tags.append(tag)
        sentences.append(list(zip(words, tags)))
    return sentences


@settings(max_examples=60, deadline=None)
@given(corpus=corpora(), to=st.sampled_from(["jsonl", "labelstudio"]))
def test_property_bio_to_span_formats_and_back_keeps_words_and_tags(tmp_path_factory, corpus, to):
    folder = tmp_path_factory.mktemp("rt")
    bio = folder / "in.bio"
    bio.write_text("".join("".join(f"{t}\t{w}\n" for w, t in s) + "\n" for s in corpus), encoding="utf-8")
    original = read_corpus(bio)
    middle = folder / "mid"
    middle.write_text(render_corpus(original, to), encoding="utf-8")
    fmt, spans = read_with_format(middle)
    assert fmt == to
    back = folder / "back.bio"
    back.write_text(render_corpus(spans, "bio"), encoding="utf-8")
    assert [(s.words, s.tags) for s in read_corpus(back)] == [(s.words, s.tags) for s in original]


@settings(max_examples=80, deadline=None)
@given(words=st.lists(WORD, min_size=1, max_size=8), seps=st.lists(st.sampled_from([" ", "  ", "\t", ", "]), min_size=8,
       max_size=8), raw=st.lists(st.tuples(st.integers(0, 60), st.integers(1, 12)), max_size=4))
def test_property_expanded_jsonl_spans_are_whole_words_covering_the_span(tmp_path_factory, words, seps, raw):
    text = "".join(w + s for w, s in zip(words, seps)).rstrip()
    spans = [[start, min(start + length, len(text)), "X"] for start, length in raw if start < len(text)]
    path = tmp_path_factory.mktemp("ex") / "p.jsonl"
    path.write_text(json.dumps({"text": text, "label": spans}) + "\n", encoding="utf-8")
    try:
        (sentence,) = read_corpus(path, misaligned="expand", warn=lambda m: None)
    except InputError as err:
        assert "no sentences found" in str(err) and not split_words(text)
        return
    offsets = sentence.offsets
    assert all(sentence.text[a:b] == w for w, (a, b) in zip(sentence.words, offsets))
    for _, first, last in entity_spans(sentence.tags):
        start, end = offsets[first][0], offsets[last - 1][1]
        # the span this entity widens: exactly these words touch it
        sources = [s for s in spans if [i for i, (a, b) in enumerate(offsets) if b > s[0] and a < s[1]]
                   == list(range(first, last))]
        assert sources, (text, spans, sentence.tags)
        # and covers the span's words wherever they lie in it (its edges may hold spaces, or format
        # characters such as a soft hyphen, which separate words as spaces do)
        assert any(all(start <= p < end for p in range(s[0], s[1]) if any(a <= p < b for a, b in offsets))
                   for s in sources)
