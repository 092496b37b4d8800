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


def test_bf16_and_fp32_give_the_same_tags_and_the_policy_is_restored(trained_run, bio_files):
    import tensorflow as tf

    from nerctl.bio import read_bio

    words = [s.words for s in read_bio(bio_files["test"])]
    fp32 = Tagger.from_run(RunDir(trained_run), precision="fp32")
    bf16 = Tagger.from_run(RunDir(trained_run), precision="bf16")
    assert fp32.model.compute_dtype == "float32" and bf16.model.compute_dtype == "bfloat16"
    assert tf.keras.mixed_precision.global_policy().name == "float32"
    tags32 = [t for tags, _ in fp32.predict_words(words) for t in tags]
    tags16 = [t for tags, _ in bf16.predict_words(words) for t in tags]
    agreement = sum(a == b for a, b in zip(tags32, tags16)) / len(tags32)
    assert len(tags32) == len(tags16) and agreement >= 0.97, agreement


def test_cpu_bf16_detection_reads_the_flags():
    from nerctl.model import cpu_supports_bf16

    assert cpu_supports_bf16("processor: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert cpu_supports_bf16("flags\t: fpu amx_bf16 amx_tile\n")
    assert not cpu_supports_bf16("flags\t: fpu avx2 avx512f\n")


LABELS = ("O", "B-A", "B-B", "I-A", "I-B")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.floats(0.01, 1.0), min_size=5, max_size=5), min_size=1, max_size=12))
def test_viterbi_gives_valid_iob2_and_agrees_with_argmax_when_that_is_valid(rows):
    import numpy as np

    from nerctl.predict import viterbi_iob2

    probs = np.asarray(rows) / np.asarray(rows).sum(axis=1, keepdims=True)
    best = [LABELS[i] for i in viterbi_iob2(np.log(probs), LABELS)]
    assert repair_bio(best) == best
    greedy = [LABELS[i] for i in probs.argmax(axis=1)]
    if repair_bio(greedy) == greedy:
        assert np.isclose(sum(np.log(probs[t, LABELS.index(x)]) for t, x in enumerate(best)),
                          sum(np.log(probs[t, LABELS.index(x)]) for t, x in enumerate(greedy)))


def test_viterbi_prefers_the_best_valid_sequence_over_a_repair():
    import numpy as np

    from nerctl.predict import viterbi_iob2

    # word 1 leans I-A but O precedes it in argmax; B-A then I-A is the best valid path
    probs = np.array([[0.45, 0.40, 0.05, 0.05, 0.05], [0.05, 0.05, 0.05, 0.80, 0.05]])
    assert [LABELS[i] for i in viterbi_iob2(np.log(probs), LABELS)] == ["B-A", "I-A"]


def test_small_jobs_skip_tracing_and_agree_with_the_traced_model(trained_run, bio_files, monkeypatch):
    import numpy as np

    import nerctl.predict
    from nerctl.bio import read_bio

    words = [s.words for s in read_bio(bio_files["test"])][:6]
    eager = Tagger.from_run(RunDir(trained_run))
    eager_probs = eager.word_probabilities(words)
    assert eager._traced_forward is None  # one batch: no trace, no seconds spent on it
    monkeypatch.setattr(nerctl.predict, "EAGER_MAX_BATCHES", 0)
    traced = Tagger.from_run(RunDir(trained_run))
    traced_probs = traced.word_probabilities(words)
    assert traced._traced_forward is not None
    for a, b in zip(eager_probs, traced_probs):
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-5)


def test_loading_a_run_does_not_import_scipy_or_sklearn(trained_run):
    """transformers' TF code would pull them in (~1.5 s of every start-up); nerctl skips them."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from nerctl.predict import Tagger; from nerctl.rundir import RunDir; "
            "Tagger.from_run(RunDir(Path(sys.argv[1]))).tag_texts(['who directed jaws']); "
            "print('scipy.stats' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(trained_run)], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr
