"""Training internals on the tiny fixture model: what freezing leaves untouched, dropout keys, early stopping."""
import json

import numpy as np
import pytest

from nerctl.config import resolve_config
from nerctl.core.progress import Reporter
from nerctl.artifacts.rundir import RunDir
from nerctl.training.run import run_training
from conftest import REPO


def weights(folder) -> dict[str, np.ndarray]:
    from transformers import TFAutoModel

    model = TFAutoModel.from_pretrained(str(folder))
    return {"words": model.get_input_embeddings().weights[0].numpy(),
            "positions": model.bert.embeddings.position_embeddings.numpy(),
            "layer 0": model.bert.encoder.layer[0].attention.self_attention.query.kernel.numpy(),
            "layer 1": model.bert.encoder.layer[1].attention.self_attention.query.kernel.numpy()}


@pytest.mark.parametrize("freeze_layers, fixed", [(0, {"words"}), (1, {"words", "positions", "layer 0"})])
def test_frozen_weights_stay_fixed_while_the_rest_trains(tiny_model, bio_files, tmp_path, freeze_layers, fixed):
    config = resolve_config(
        REPO / "configs" / "smoke.toml",
        {"model": str(tiny_model), "train_file": str(bio_files["train"]), "eval_file": str(bio_files["dev"]),
         "runs_root": str(tmp_path), "run_name": "frozen", "epochs": 1, "freeze_embeddings": True,
         "freeze_layers": freeze_layers},
        environ={},
    )
    summary = run_training(config, reporter=Reporter(quiet=True))
    assert summary["best_epoch"] == 1
    before, after = weights(tiny_model), weights(tmp_path / "frozen" / "best")
    unchanged = {name for name in before if np.array_equal(before[name], after[name])}
    assert unchanged == fixed


def test_freezing_more_layers_than_the_model_has_is_an_input_error(tiny_model):
    from nerctl.core.errors import InputError
    from nerctl.modeling.model import build_model, variables_to_train
    from nerctl.data.tags import LabelMap

    model = build_model(str(tiny_model), LabelMap(("O", "B-A", "I-A")))
    model(model.dummy_inputs)
    all_variables = variables_to_train(model, freeze_embeddings=False)
    assert len(variables_to_train(model, True, freeze_layers=2)) == 2  # only the classifier head is left
    assert len(variables_to_train(model, True)) == len(all_variables) - 1
    with pytest.raises(InputError, match="freeze_layers 3 exceeds the model's 2 layers"):
        variables_to_train(model, True, freeze_layers=3)


def test_dropout_masks_depend_on_the_step_counter_alone(tiny_model):
    """What makes a resumed run exact: masks are a function of (seed, layer, step), yet new at each step."""
    import tensorflow as tf

    from nerctl.modeling.model import build_model, key_dropout_to_step
    from nerctl.data.tags import LabelMap

    model = build_model(str(tiny_model), LabelMap(("O", "B-A", "I-A")))
    step = tf.Variable(0, dtype=tf.int64)
    assert key_dropout_to_step(model, 42, step) == 2 * 3 + 2  # 3 per layer, embeddings, classifier
    inputs = model.dummy_inputs

    def logits(training):
        return model(inputs, training=training).logits.numpy()

    first = logits(True)
    assert np.array_equal(first, logits(True))  # same step: the same masks
    step.assign(1)
    assert not np.allclose(first, logits(True))  # next step: new masks
    step.assign(0)
    assert np.array_equal(first, logits(True))
    assert not np.allclose(first, logits(False))  # and dropout is really on in training


def test_early_stopping_ends_the_run_and_a_resume_says_so(tiny_model, bio_files, tmp_path):
    """With a learning rate too small to change any prediction, dev F1 never improves after epoch 1."""
    from typer.testing import CliRunner

    from nerctl.cli import app
    from conftest import train_args

    runner = CliRunner()
    run_dir = tmp_path / "early"
    args = train_args(tiny_model, bio_files, run_dir, "--epochs", "6", "--lr", "1e-12", "--early-stopping", "2",
                      "--json")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["stopped_early"] is True and summary["epochs_run"] == 3 and summary["best_epoch"] == 1
    assert [r["epoch"] for r in RunDir(run_dir).read_metrics()] == [1, 2, 3]
    assert "stopped early after epoch 3" in result.stderr

    resumed = runner.invoke(app, ["train", "--resume", "--run-dir", str(run_dir)])
    assert resumed.exit_code == 2
    assert "stopped early at epoch 3" in resumed.stderr and "nothing to resume" in resumed.stderr

    # Killed after the stopping epoch was saved but before the summary: a resume trains no further epoch.
    (run_dir / "summary.json").unlink()
    resumed = runner.invoke(app, ["train", "--resume", "--run-dir", str(run_dir), "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["epochs_run"] == 3
    assert [r["epoch"] for r in RunDir(run_dir).read_metrics()] == [1, 2, 3]


def test_the_early_stopping_rule():
    from nerctl.training.epochs import stopping_early

    config = resolve_config(REPO / "configs" / "smoke.toml", {"early_stopping": 0}, environ={})
    assert not stopping_early(config, epochs_done=10, best_epoch=1)
    config = resolve_config(REPO / "configs" / "smoke.toml", {"early_stopping": 2}, environ={})
    assert [stopping_early(config, done, 1) for done in (1, 2, 3)] == [False, False, True]


def test_refit_trains_on_train_and_dev_for_the_best_epoch_count_and_a_resume_redoes_it_exactly(
        tiny_model, bio_files, tmp_path):
    from typer.testing import CliRunner

    from nerctl.cli import app
    from conftest import train_args

    runner = CliRunner()
    plain, refit = tmp_path / "plain", tmp_path / "refit"
    assert runner.invoke(app, train_args(tiny_model, bio_files, plain, "--epochs", "3")).exit_code == 0
    result = runner.invoke(app, train_args(tiny_model, bio_files, refit, "--epochs", "3", "--refit", "--json"))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    record = summary["refit"]
    assert record["epochs"] == summary["best_epoch"] == record["selection"]["best_epoch"]
    assert record["train_sentences"] == summary["train_sentences"] + summary["dev_sentences"] == 240 + 40
    assert record["selection"]["best_dev_f1"] == summary["best_dev_f1"]
    assert "refit: training a new model on train + dev (280 sentences)" in result.stderr
    assert summary["calibration"]["model"] == "selection/"  # the scores' temperature: fitted on a model that never saw dev
    # selection/ is the model a run without --refit keeps; best/ is a new one, and test was scored with it.
    kept, selection, final = weights(plain / "best"), weights(refit / "selection"), weights(refit / "best")
    assert all(np.array_equal(kept[name], selection[name]) for name in kept)
    assert not np.array_equal(selection["layer 1"], final["layer 1"])
    evaluated = runner.invoke(app, ["evaluate", str(refit), "--file", str(bio_files["test"]), "--json"])
    assert json.loads(evaluated.stdout)["f1"] == summary["test"]["f1"]

    # Killed after the refit but before summary.json: the resume refits again, to the same model.
    (refit / "summary.json").unlink()
    resumed = runner.invoke(app, ["train", "--resume", "--run-dir", str(refit), "--json"])
    assert resumed.exit_code == 0, resumed.output
    again = weights(refit / "best")
    assert all(np.array_equal(final[name], again[name]) for name in final)
    assert json.loads(resumed.stdout)["refit"]["loss_per_epoch"] == record["loss_per_epoch"]


def test_dropout_option_sets_the_encoders_rates(tiny_model):
    from transformers import DistilBertConfig, GPT2Config

    from nerctl.core.errors import InputError
    from nerctl.data.tags import LabelMap
    from nerctl.modeling.families import dropout_overrides
    from nerctl.modeling.model import build_model

    model = build_model(str(tiny_model), LabelMap(("O", "B-A", "I-A")), dropout=0.3)
    assert (model.config.hidden_dropout_prob, model.config.attention_probs_dropout_prob) == (0.3, 0.3)
    assert model.bert.embeddings.dropout.rate == 0.3
    assert build_model(str(tiny_model), LabelMap(("O", "B-A", "I-A"))).bert.embeddings.dropout.rate == 0.1
    assert dropout_overrides(DistilBertConfig(), 0.2) == {"dropout": 0.2, "attention_dropout": 0.2}
    with pytest.raises(InputError, match="--dropout: gpt2 models have no dropout rate nerctl knows"):
        dropout_overrides(GPT2Config(), 0.2)


def test_layer_lr_decay_scales_each_layers_step_by_its_depth(tiny_model):
    """One step with decay 0.5 moves layer 1 (the top) half as far as without decay, layer 0 a quarter,
    the classifier as far: per-variable learning rates."""
    import tensorflow as tf

    from nerctl.config import TrainConfig
    from nerctl.modeling.model import build_model, key_dropout_to_step, variables_to_train
    from nerctl.training.step import layer_lr_scales, make_optimizer, make_train_step
    from nerctl.data.tags import LabelMap

    ids = tf.constant([[2, 5, 6, 7, 3], [2, 8, 9, 3, 0]], tf.int32)
    mask = tf.cast(ids != 0, tf.int32)
    labels = tf.constant([[-100, 0, 1, 2, -100], [-100, 1, 0, -100, -100]], tf.int32)

    def moves(decay: float) -> dict[str, np.ndarray]:
        tf.keras.utils.set_random_seed(0)
        model = build_model(str(tiny_model), LabelMap(("O", "B-A", "I-A")))
        model(model.dummy_inputs)
        variables = variables_to_train(model, freeze_embeddings=True)
        optimizer = make_optimizer(TrainConfig(lr=1e-2, warmup_ratio=0.0), total_steps=10)
        key_dropout_to_step(model, 7, optimizer.iterations)
        named = {"layer 0": model.bert.encoder.layer[0].attention.self_attention.query.kernel,
                 "layer 1": model.bert.encoder.layer[1].attention.self_attention.query.kernel,
                 "positions": model.bert.embeddings.position_embeddings, "classifier": model.classifier.kernel}
        before = {name: v.numpy() for name, v in named.items()}
        make_train_step(model, optimizer, variables, lr_scales=layer_lr_scales(model, variables, decay))(
            ids, mask, labels)
        return {name: v.numpy() - before[name] for name, v in named.items()}

    assert layer_lr_scales(None, [], 1.0) is None
    full, decayed = moves(1.0), moves(0.5)
    for name, scale in (("classifier", 1.0), ("layer 1", 0.5), ("layer 0", 0.25), ("positions", 0.125)):
        assert np.abs(full[name]).max() > 0
        np.testing.assert_allclose(decayed[name], scale * full[name], rtol=1e-4, atol=1e-7, err_msg=name)


def test_weight_average_sums_the_last_epochs_and_swaps_back():
    import tensorflow as tf

    from nerctl.training.averaging import WeightAverage

    variable = tf.Variable([1.0, 2.0])
    average = WeightAverage([variable], last=2, epochs=3)
    for epoch, value in ((1, [100.0, 100.0]), (2, [2.0, 4.0]), (3, [4.0, 8.0])):
        variable.assign(value)
        average.add(epoch)
    assert average.epochs == [2, 3]
    with average.swapped_in():
        np.testing.assert_allclose(variable.numpy(), [3.0, 6.0])
    np.testing.assert_allclose(variable.numpy(), [4.0, 8.0])


def test_average_last_scores_the_average_on_dev_and_keeps_it_only_if_better(tiny_model, bio_files, tmp_path):
    from typer.testing import CliRunner

    from nerctl.cli import app
    from conftest import train_args

    runner = CliRunner()
    result = runner.invoke(app, train_args(tiny_model, bio_files, tmp_path / "run", "--epochs", "3",
                                           "--average-last", "2", "--json"))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    record = summary["average"]
    best_epoch_f1 = max(json.loads(line)["dev_f1"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
    assert record["epochs"] == [2, 3] and record["best_epoch_dev_f1"] == best_epoch_f1
    assert record["kept"] == (record["dev_f1"] > best_epoch_f1)
    assert summary["best_dev_f1"] == max(record["dev_f1"], best_epoch_f1)
    # best/ holds the chosen model: evaluate scores dev with it to the recorded figure.
    evaluated = runner.invoke(app, ["evaluate", str(tmp_path / "run"), "--file", str(bio_files["dev"]), "--json",
                                    "--backend", "keras"])
    assert json.loads(evaluated.stdout)["f1"] == pytest.approx(summary["best_dev_f1"], abs=1e-9)


def test_options_that_do_not_combine_are_refused(tiny_model, bio_files, tmp_path):
    from typer.testing import CliRunner

    from nerctl.cli import app
    from conftest import train_args

    result = CliRunner().invoke(app, train_args(tiny_model, bio_files, tmp_path / "run", "--refit",
                                                "--average-last", "2"))
    assert result.exit_code == 2 and "use --refit or --average-last, not both" in result.stderr
    assert not (tmp_path / "run").exists()
