"""Distillation (--teacher, --layers): the student starts as the teacher cut to its lowest layers, learns from
the teacher's tag distributions, and is a run like any other."""
import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import SMOKE


def student_args(teacher, bio_files, run_dir, *extra) -> list[str]:
    return ["train", "-c", SMOKE, "--teacher", str(teacher), "--train-file", str(bio_files["train"]),
            "--eval-file", str(bio_files["dev"]), "--test-file", str(bio_files["test"]), "--run-dir", str(run_dir),
            *map(str, extra)]


def invoke(args):
    from nerctl.cli import app

    return CliRunner().invoke(app, args, env={name: None for name in os.environ if name.startswith("NERCTL_")})


def test_a_student_starts_as_the_teachers_lowest_layers_and_its_crf(trained_run):
    """build_network with --teacher --layers 1: layer 0, the embeddings and the classifier are the teacher's
    trained weights, layer 1 is gone, and the CRF holds the teacher's scores."""
    from nerctl.config import resolve_config
    from nerctl.modeling.crf import Transitions, learned
    from nerctl.modeling.model import load_trained_model
    from nerctl.training.distill import TeacherRun
    from nerctl.training.setup import build_network

    teacher = TeacherRun.open(str(trained_run))
    config = resolve_config(None, {"teacher": str(trained_run), "layers": 1}, environ={})
    model, crf, _, _ = build_network(config, str(teacher.weights), teacher.label_map, None, "fp32")
    assert model.config.num_hidden_layers == 1
    full = {v.name.split("/", 1)[1]: v.numpy() for v in load_trained_model(teacher.weights).weights}
    cut = {v.name.split("/", 1)[1]: v.numpy() for v in model.weights}
    assert not any("layer_._1/" in name for name in cut) and any("layer_._1/" in name for name in full)
    assert set(cut) < set(full)
    for name, value in cut.items():
        np.testing.assert_array_equal(value, full[name], err_msg=name)
    scores = Transitions.load(teacher.weights, teacher.label_map.labels)
    np.testing.assert_allclose(learned(crf, teacher.label_map.labels).transitions, scores.transitions, rtol=1e-6)


def test_the_distillation_loss_is_least_where_the_student_agrees_with_the_teacher():
    """Its gradient is zero at the teacher's own scores and it grows as the student moves away; positions
    without a label (IGNORE_INDEX) do not count."""
    import tensorflow as tf

    from nerctl.modeling.encoding import IGNORE_INDEX
    from nerctl.training.distill import distill_loss_fn

    teacher_logits = tf.constant(np.random.default_rng(0).normal(size=(2, 5, 4)), tf.float32)

    class Teacher:
        def __call__(self, input_ids, attention_mask, training):
            return type("Out", (), {"logits": teacher_logits})

    loss = distill_loss_fn(Teacher(), weight=1.0)
    labels = tf.constant([[0, 1, IGNORE_INDEX, 2, 3], [IGNORE_INDEX, 0, 0, 1, IGNORE_INDEX]])
    ids = mask = tf.ones((2, 5), tf.int32)
    student = tf.Variable(teacher_logits)
    with tf.GradientTape() as tape:
        at_teacher = loss(ids, mask, labels, student)
    np.testing.assert_allclose(tape.gradient(at_teacher, student).numpy(), 0.0, atol=1e-6)
    moved = [float(loss(ids, mask, labels, teacher_logits + tf.random.normal((2, 5, 4), seed=1) * s))
             for s in (0.5, 2.0)]
    assert float(at_teacher) < moved[0] < moved[1]
    unlabelled = teacher_logits + tf.constant(np.where(labels.numpy()[..., None] == IGNORE_INDEX, 9.0, 0.0),
                                              tf.float32)
    assert float(loss(ids, mask, labels, unlabelled)) == pytest.approx(float(at_teacher))
    assert float(distill_loss_fn(Teacher(), weight=0.5)(ids, mask, labels, student)) == pytest.approx(
        0.5 * float(at_teacher))


def test_a_distilled_student_is_a_run_with_fewer_layers_that_predict_serves(trained_run, bio_files, tmp_path):
    result = invoke(student_args(trained_run, bio_files, tmp_path / "student", "--layers", 1, "--json"))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert f"model 1 layer(s) of {trained_run}, taught by it" in result.stderr
    student = tmp_path / "student"
    assert json.loads((student / "best" / "config.json").read_text())["num_hidden_layers"] == 1
    assert (student / "labels.json").read_text() == (trained_run / "labels.json").read_text()
    assert (student / "tokenizer" / "vocab.txt").read_bytes() == (trained_run / "tokenizer" / "vocab.txt").read_bytes()
    config = json.loads((student / "config.json").read_text())
    assert config["teacher"] == str(trained_run) and config["resolved"]["model"] == str(trained_run / "best")
    assert 0 <= summary["test"]["f1"] <= 1
    predicted = invoke(["predict", "--run", str(student), "who directed jaws", "--format", "jsonl"])
    assert predicted.exit_code == 0 and json.loads(predicted.stdout)["text"] == "who directed jaws"


@pytest.mark.parametrize("extra, message", [
    (["--model", "minilm-other"], "use --model or --teacher, not both"),
    (["--layers", 5], "layers 5 exceeds the model's 2 layers"),
])
def test_a_student_that_cannot_be_is_one_clear_error(trained_run, bio_files, tmp_path, extra, message):
    result = invoke(student_args(trained_run, bio_files, tmp_path / "student", *extra))
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert not (tmp_path / "student").exists()


def test_a_teacher_that_is_no_finished_run_is_refused(bio_files, tmp_path):
    result = invoke(student_args(tmp_path, bio_files, tmp_path / "student"))
    assert result.exit_code == 2 and "not a finished run" in result.stderr, result.output
