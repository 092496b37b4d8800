"""Decoding and tagging: valid IOB2, well-formed spans, offsets into the original text."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerctl.inference.output import render
from nerctl.modeling.encoding import padded_length
from nerctl.inference.tagger import Tagger
from nerctl.data.tags import entity_spans, repair_bio
from nerctl.data.texts import read_texts
from nerctl.artifacts.rundir import RunDir


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
        assert len(result.tags) == len(result.words) and all(0 <= w.score <= 1 for w in result.words)
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

    from nerctl.data.formats.bio import read_bio
    from nerctl.inference.engines.keras import KerasForward
    from nerctl.inference.engines.litert import LiteForward

    words = [s.words for s in read_bio(bio_files["test"])]
    fp32 = Tagger.from_run(RunDir(trained_run), precision="fp32")
    bf16 = Tagger.from_run(RunDir(trained_run), precision="bf16")
    assert isinstance(fp32.forward, LiteForward)  # fp32 runs the exported LiteRT model
    assert isinstance(bf16.forward, KerasForward) and bf16.forward.model.compute_dtype == "bfloat16"
    assert tf.keras.mixed_precision.global_policy().name == "float32"
    tags32 = [t for tags, _ in fp32.tags_and_scores(words) for t in tags]
    tags16 = [t for tags, _ in bf16.tags_and_scores(words) for t in tags]
    agreement = sum(a == b for a, b in zip(tags32, tags16)) / len(tags32)
    assert len(tags32) == len(tags16) and agreement >= 0.97, agreement


def test_cpu_bf16_detection_reads_the_flags():
    from nerctl.modeling.runtime import cpu_supports_bf16

    assert cpu_supports_bf16("processor: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert cpu_supports_bf16("flags\t: fpu amx_bf16 amx_tile\n")
    assert not cpu_supports_bf16("flags\t: fpu avx2 avx512f\n")


LABELS = ("O", "B-A", "B-B", "I-A", "I-B")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.floats(0.01, 1.0), min_size=5, max_size=5), min_size=1, max_size=12))
def test_viterbi_gives_valid_iob2_and_agrees_with_argmax_when_that_is_valid(rows):
    import numpy as np

    from nerctl.inference.decode import viterbi_iob2

    probs = np.asarray(rows) / np.asarray(rows).sum(axis=1, keepdims=True)
    (path,) = viterbi_iob2([np.log(probs)], LABELS)
    best = [LABELS[i] for i in path]
    assert repair_bio(best) == best
    greedy = [LABELS[i] for i in probs.argmax(axis=1)]
    if repair_bio(greedy) == greedy:
        assert np.isclose(sum(np.log(probs[t, LABELS.index(x)]) for t, x in enumerate(best)),
                          sum(np.log(probs[t, LABELS.index(x)]) for t, x in enumerate(greedy)))


def test_viterbi_prefers_the_best_valid_sequence_over_a_repair():
    import numpy as np

    from nerctl.inference.decode import viterbi_iob2

    # word 1 leans I-A but O precedes it in argmax; B-A then I-A is the best valid path
    probs = np.array([[0.45, 0.40, 0.05, 0.05, 0.05], [0.05, 0.05, 0.05, 0.80, 0.05]])
    assert [[LABELS[i] for i in path] for path in viterbi_iob2([np.log(probs)], LABELS)] == [["B-A", "I-A"]]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 9), max_size=20), st.integers(1, 4))
def test_viterbi_decodes_sentences_alike_alone_or_together(lengths, group):
    """Decoding many sentences of mixed lengths in groups gives each one's own best path."""
    import numpy as np

    from nerctl.inference.decode import viterbi_iob2

    rng = np.random.default_rng(len(lengths) * 10 + group)
    batch = [np.log(rng.dirichlet(np.ones(len(LABELS)), size=n)) for n in lengths]
    together = viterbi_iob2(batch, LABELS, group=group)
    assert together == [viterbi_iob2([p], LABELS)[0] for p in batch]
    assert [len(path) for path in together] == lengths
    for p, path in zip(batch, together):  # short ones: no valid sequence scores higher (brute force)
        if len(p) <= 3:
            import itertools

            valid = [seq for seq in itertools.product(range(len(LABELS)), repeat=len(p))
                     if repair_bio([LABELS[i] for i in seq]) == [LABELS[i] for i in seq]]
            assert np.isclose(sum(p[t, i] for t, i in enumerate(path)),
                              max(sum(p[t, i] for t, i in enumerate(seq)) for seq in valid))


def test_exported_models_and_the_keras_model_agree_traced_or_eager(trained_run, bio_files, monkeypatch):
    """LiteRT (what predict runs), the SavedModel and the best/ Keras model give the same probabilities."""
    import numpy as np
    import tensorflow as tf

    import nerctl.inference.engines.keras
    from nerctl.data.formats.bio import read_bio
    from nerctl.modeling.model import load_trained_model
    from nerctl.inference.engines.keras import KerasForward

    run = RunDir(trained_run)
    words = [s.words for s in read_bio(bio_files["test"])][:6]
    lite = Tagger.from_run(run)
    exported = lite.word_probabilities(words)
    keras = KerasForward(load_trained_model(run.best))
    tagger = Tagger(keras, lite.encoder.tokenizer, lite.label_map, 64)
    eager = tagger.word_probabilities(words)
    assert keras._traced is None  # one batch: no trace, no seconds spent on it
    monkeypatch.setattr(nerctl.inference.engines.keras, "EAGER_MAX_BATCHES", 0)
    traced = tagger.word_probabilities(words)
    assert keras._traced is not None
    serving = tf.saved_model.load(str(run.saved_model)).signatures["serving_default"]
    tagger.forward = lambda ids, mask, n: serving(input_ids=ids, attention_mask=mask)["probabilities"].numpy()
    saved = tagger.word_probabilities(words)
    for a, b, c, d in zip(exported, eager, traced, saved):
        assert a.shape == b.shape == c.shape == d.shape and a.shape[0] > 0
        assert np.allclose(a, b, atol=1e-5) and np.allclose(b, c, atol=1e-5) and np.allclose(c, d, atol=1e-5)


def test_saved_model_serving_signature_gives_label_ids_and_scores(trained_run):
    """What TF Serving sees: token ids and mask in, label ids, scores and probabilities out."""
    import numpy as np
    import tensorflow as tf

    run = RunDir(trained_run)
    loaded = tf.saved_model.load(str(run.saved_model))
    labels = [label.decode() for label in loaded.labels().numpy()]
    assert labels == json.loads(run.labels.read_text())["labels"]
    ids = tf.constant([[2, 10, 11, 3, 0], [2, 12, 3, 0, 0]], tf.int32)
    mask = tf.constant([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], tf.int32)
    out = loaded.signatures["serving_default"](input_ids=ids, attention_mask=mask)
    probs = out["probabilities"].numpy()
    assert probs.shape == (2, 5, len(labels)) and np.allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert (out["label_ids"].numpy() == probs.argmax(-1)).all()
    assert np.allclose(out["scores"].numpy(), probs.max(-1))


def test_a_run_whose_labels_do_not_match_its_model_is_an_input_error(trained_run, tmp_path):
    import shutil

    from nerctl.core.errors import InputError

    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    (copy / "labels.json").write_text(json.dumps({"labels": ["O", "B-X", "I-X"]}))
    with pytest.raises(InputError, match=r"labels.json \(3 labels\) does not match the model in model.tflite"):
        Tagger.from_run(RunDir(copy))
    with pytest.raises(InputError, match=r"labels.json \(3 labels\) does not match the model in best/"):
        Tagger.from_run(RunDir(copy), precision="bf16")


@pytest.mark.int8
@pytest.mark.parametrize("precision, backend, imported", [
    ("fp32", "auto", "False False False False"), ("bf16", "auto", "True True False False"),
    ("fp32", "keras", "True True False False"), ("int8", "onnx", "False False False False")])
def test_what_predicting_imports(int8_run, precision, backend, imported):
    """fp32 runs the LiteRT export with the tokenizers library, int8 the ONNX model: neither
    TensorFlow (~4 s) nor transformers (~1 s). The Keras path (bf16, or asked for) needs both, but not the scipy and
    sklearn that transformers' TF code would pull in (~1.5 s)."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from nerctl.inference.tagger import Tagger; from nerctl.artifacts.rundir import RunDir; "
            "Tagger.from_run(RunDir(Path(sys.argv[1])), precision=sys.argv[2], backend=sys.argv[3])"
            ".tag_texts(['who directed jaws']); "
            "print(*(m in sys.modules for m in ('tensorflow', 'transformers', 'scipy.stats', 'sklearn')))")
    out = subprocess.run([sys.executable, "-c", code, str(int8_run), precision, backend], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == imported, out.stderr


def test_progress_counts_sentences_even_when_one_spans_several_windows(trained_run):
    tagger = Tagger.from_run(RunDir(trained_run), batch_size=2)
    texts = ["who directed jaws " * 40, "have you seen titanic", "", "is jaws a horror movie", "find a drama"]
    calls = []
    results = tagger.tag_texts(texts, progress=lambda done, total: calls.append((done, total)))
    assert len(tagger.encoder.encode([[w.text for w in r.words] for r in results])) > len(texts)  # windowed
    assert len(calls) > 1 and {total for _, total in calls} == {len(texts)}
    assert sum(done for done, _ in calls) == len(texts)


def test_a_text_is_tagged_at_its_own_padded_length_alone_or_batched_with_longer_ones(trained_run):
    """A server batches whatever requests arrive together: a text's work and result must not depend on them."""
    tagger = Tagger.from_run(RunDir(trained_run))
    widths = []
    forward = tagger.forward
    tagger.forward = lambda ids, mask, *rest: (widths.append(ids.shape[1]), forward(ids, mask, *rest))[1]
    text = "have you seen the dark knight"
    others = ["who directed " + " ".join(["jaws"] * n) for n in (1, 7, 20, 45)]
    alone = tagger.tag_texts([text])[0]
    (width,) = widths
    assert width == padded_length(width) and width < 4 + len(tagger.encoder.encode([text.split()])[0].input_ids)
    widths.clear()
    batched = tagger.tag_texts(others[:2] + [text] + others[2:])[2]
    assert width in widths and len(widths) == len(set(widths))  # one call per padded length, the text's among them
    assert [w.tag for w in batched.words] == [w.tag for w in alone.words]
    assert [w.score for w in batched.words] == [w.score for w in alone.words]
