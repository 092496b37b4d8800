"""Decoding and tagging: valid IOB2, well-formed spans, offsets into the original text."""
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from nerctl.predict import Tagger, entity_spans, read_texts, render, repair_bio
from nerctl.rundir import RunDir


def test_repair_bio_turns_orphan_inside_tags_into_beginnings():
    assert repair_bio(["I-A", "I-A", "O", "I-B", "B-A", "I-B", "I-B"]) == ["B-A", "I-A", "O", "B-B", "B-A", "B-B", "I-B"]


def test_entity_spans_of_a_valid_sequence():
    assert entity_spans(["B-A", "I-A", "O", "B-B", "B-B", "I-B"]) == [("A", 0, 2), ("B", 3, 4), ("B", 4, 6)]


@settings(max_examples=300)
@given(st.lists(st.sampled_from(["O", "B-A", "I-A", "B-B", "I-B"]), max_size=30))
def test_repaired_tags_give_non_overlapping_spans_covering_every_entity_tag(tags):
    fixed = repair_bio(tags)
    spans = entity_spans(fixed)
    covered = [i for _, a, b in spans for i in range(a, b)]
    assert covered == sorted(set(covered))  # no overlap
    assert covered == [i for i, t in enumerate(fixed) if t != "O"]  # every entity word in a span


def test_tagger_offsets_point_into_the_original_text(trained_run):
    tagger = Tagger.from_run(RunDir(trained_run))
    texts = ["Have you seen The Dark Knight?", "", "   ", "who directed  jaws\tin 1990 \U0001f3ac"]
    results = tagger.tag_texts(texts)
    assert [len(r.words) for r in results] == [7, 0, 0, 6]
    for text, result in zip(texts, results):
        assert len(result.tags) == len(result.words) == len(result.scores)
        for entity in result.entities:
            assert text[entity.start : entity.end] == entity.text
            assert 0.0 <= entity.score <= 1.0
    lines = render(results, "jsonl").splitlines()
    assert [json.loads(line)["text"] for line in lines] == texts


def test_read_texts_keeps_blank_lines_and_strips_crlf(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\n\r\ntwo\n")
    assert read_texts(str(path)) == ["one", "", "two"]
