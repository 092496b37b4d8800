"""The CRF head (`--head crf`): its likelihood and decoding against brute-force enumeration of every tag
sequence, its gradient, and a real training run with it on the tiny fixture."""
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import train_args
from nerctl.modeling.crf import SCALE, Transitions
from nerctl.inference.decode import viterbi_iob2
from nerctl.modeling.encoding import IGNORE_INDEX
from nerctl.data.tags import iob2_transitions

LABELS = ("O", "B-ACTOR", "B-TITLE", "I-ACTOR", "I-TITLE")


def valid_paths(length: int):
    """Every IOB2-valid label-id sequence of `length` words."""
    transition, start = iob2_transitions(LABELS)
    for path in itertools.product(range(len(LABELS)), repeat=length):
        if np.isfinite(start[path[0]]) and all(np.isfinite(transition[a, b]) for a, b in zip(path, path[1:])):
            yield path


def path_score(path, emissions, learned: Transitions) -> float:
    score = learned.start[path[0]] + learned.end[path[-1]] + sum(emissions[t, y] for t, y in enumerate(path))
    return score + sum(learned.transitions[a, b] for a, b in zip(path, path[1:]))


def random_transitions(rng) -> Transitions:
    k = len(LABELS)
    return Transitions(LABELS, rng.normal(size=k), rng.normal(size=(k, k)), rng.normal(size=k))


def set_scores(module, learned: Transitions) -> None:
    module.start.assign(learned.start / SCALE)
    module.transitions.assign(learned.transitions / SCALE)
    module.end.assign(learned.end / SCALE)


def test_the_likelihood_equals_brute_force_over_every_valid_path_pieces_skipped():
    import tensorflow as tf

    from nerctl.modeling.crf import build_crf, crf_loss_fn

    rng = np.random.default_rng(0)
    learned = random_transitions(rng)
    module = build_crf(LABELS)
    set_scores(module, learned)
    loss_sum = crf_loss_fn(module, LABELS)
    # Window 1: 4 words over 7 pieces ([CLS], continuation pieces, [SEP] ignored); window 2: 1 word;
    # window 3: no labelled position at all (a window of another window's words) -> 0.
    gold = [[0, 1, 3, 0], [2], []]
    positions = [[1, 2, 4, 5], [3], []]
    length = 7
    logits = rng.normal(size=(3, length, len(LABELS))).astype(np.float32)
    tags = np.full((3, length), IGNORE_INDEX, np.int32)
    for row, (labels, where) in enumerate(zip(gold, positions)):
        tags[row, where] = labels
    expected = 0.0
    for row, (labels, where) in enumerate(zip(gold, positions)):
        if not labels:
            continue
        emissions = logits[row, where].astype(np.float64)
        log_z = np.logaddexp.reduce([path_score(p, emissions, learned) for p in valid_paths(len(labels))])
        expected += log_z - path_score(labels, emissions, learned)
    got = float(loss_sum(tf.constant(tags), tf.constant(logits)))
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-3)
    alone = float(loss_sum(tf.constant(tags[2:]), tf.constant(logits[2:])))
    assert alone == 0.0


def test_viterbi_with_learned_transitions_equals_brute_force():
    rng = np.random.default_rng(1)
    for trial in range(20):
        learned = random_transitions(rng)
        sentences = [rng.normal(size=(n, len(LABELS))) for n in rng.integers(1, 6, size=5)]
        decoded = viterbi_iob2(sentences, LABELS, learned=learned)
        for emissions, path in zip(sentences, decoded):
            best = max(valid_paths(len(emissions)), key=lambda p: path_score(p, emissions, learned))
            assert tuple(path) == best, f"trial {trial}"


def test_the_gradient_reaches_the_transitions_and_training_lowers_the_loss():
    import tensorflow as tf

    from nerctl.modeling.crf import build_crf, crf_loss_fn

    rng = np.random.default_rng(2)
    module = build_crf(LABELS)
    loss_sum = crf_loss_fn(module, LABELS)
    # Every sentence is B-TITLE I-TITLE I-TITLE with uninformative emissions: only the
    # transitions can learn it.
    tags = tf.constant(np.tile([[2, 4, 4]], (8, 1)), tf.int32)
    logits = tf.constant(rng.normal(scale=0.1, size=(8, 3, len(LABELS))), tf.float32)
    optimizer = tf.keras.optimizers.Adam(0.01)
    losses = []
    for _ in range(30):
        with tf.GradientTape() as tape:
            loss = loss_sum(tags, logits)
        grads = tape.gradient(loss, module.trainable_variables)
        assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
        optimizer.apply_gradients(zip(grads, module.trainable_variables))
        losses.append(float(loss))
    assert losses[-1] < 0.2 * losses[0]


def test_transitions_file_round_trips_and_is_checked_against_the_labels(tmp_path):
    from nerctl.core.errors import InputError

    learned = random_transitions(np.random.default_rng(3))
    learned.save(tmp_path)
    back = Transitions.load(tmp_path, LABELS)
    assert back is not None and np.allclose(back.transitions, learned.transitions)
    assert Transitions.load(tmp_path / "elsewhere", LABELS) is None  # a softmax model has none
    with pytest.raises(InputError, match="do not match"):
        Transitions.load(tmp_path, LABELS[:3])


@pytest.mark.subprocess
def test_training_with_the_crf_head_learns_and_evaluate_reproduces_it(tiny_model, bio_files, tmp_path):
    """The real command on the tiny fixture: the loss falls, crf.json is saved with the best model,
    predict and evaluate use it, and evaluate reproduces the test figure of summary.json."""
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "nerctl",
                           *train_args(tiny_model, bio_files, run, "--epochs", "3", "--head", "crf")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["loss"] < metrics[0]["loss"]
    learned = Transitions.load(run / "best", json.loads((run / "labels.json").read_text())["labels"])
    assert learned is not None and np.abs(learned.transitions).max() > 0.1
    summary = json.loads((run / "summary.json").read_text())
    evaluated = subprocess.run([sys.executable, "-m", "nerctl", "evaluate", str(run), "--file", str(bio_files["test"]),
                                "--json"], capture_output=True, text=True, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["f1"] == pytest.approx(summary["test"]["f1"])
    assert summary["test"]["f1"] > 0.5
