"""`nerctl export`: a SavedModel for TF Serving and a Hugging Face folder, both tagging like `nerctl predict`."""
import json
import shutil

from typer.testing import CliRunner

from nerctl.cli import app
from nerctl.modeling.crf import Transitions
from nerctl.inference.tagger import Tagger
from nerctl.modeling.encoding import PieceTokenizer
from nerctl.data.tags import LabelMap
from test_cli import nerctl

runner = CliRunner()
TEXTS = ["have you seen the dark knight", "who directed jaws in 1990", "list horror films directed by james cameron",
         "show me films with tom hanks from the 1980s", "", "is titanic a drama movie"]


def predicted_tags(run) -> list[list[str]]:
    """What `nerctl predict` prints, read back from its JSON lines."""
    result = runner.invoke(app, ["predict", "--run", str(run), "--format", "jsonl", *TEXTS])
    assert result.exit_code == 0, result.output
    return [[w["tag"] for w in json.loads(line)["words"]] for line in result.stdout.splitlines()]


def test_saved_model_export_is_a_servable_folder_that_tags_like_predict(trained_run, tmp_path):
    import tensorflow as tf

    out = tmp_path / "serving" / "1"
    result = runner.invoke(app, ["export", str(trained_run), "--format", "saved_model", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out.resolve())
    assert (out / "saved_model.pb").is_file() and (out / "variables").is_dir()  # TF Serving's version folder

    # Only what the export folder holds: the SavedModel, its labels.json and tokenizer/.
    loaded = tf.saved_model.load(str(out))
    label_map = LabelMap.load(out / "labels.json")
    assert tuple(x.decode() for x in loaded.labels().numpy()) == label_map.labels
    serve = loaded.signatures["serving_default"]

    class SavedModelForward:
        num_labels = len(label_map.labels)

        def __call__(self, ids, mask, n_batches=1):
            outputs = serve(input_ids=tf.constant(ids), attention_mask=tf.constant(mask))
            assert (outputs["label_ids"].numpy() == outputs["probabilities"].numpy().argmax(-1)).all()
            return outputs["probabilities"].numpy()

    config = json.loads((trained_run / "config.json").read_text())
    # The default CRF head's scores are in the folder.
    tagger = Tagger(SavedModelForward(), PieceTokenizer.from_folder(out / "tokenizer"), label_map, config["max_len"],
                    transitions=Transitions.load(out, label_map.labels))
    assert tagger.transitions is not None
    assert [r.tags for r in tagger.tag_texts(TEXTS)] == predicted_tags(trained_run)


def test_hf_export_loads_with_transformers_and_has_a_model_card(trained_run, tmp_path):
    from transformers import AutoTokenizer, TFAutoModelForTokenClassification

    from nerctl.inference.engines.keras import KerasForward

    out = tmp_path / "hf"
    result = nerctl("export", trained_run, "--format", "hf", "--out", out)  # a real subprocess
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out.resolve())

    labels = LabelMap.load(trained_run / "labels.json").labels
    model = TFAutoModelForTokenClassification.from_pretrained(str(out))
    assert tuple(model.config.id2label[i] for i in range(len(labels))) == labels
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    config = json.loads((trained_run / "config.json").read_text())
    # The default CRF head's scores travel with the model.
    tagger = Tagger(KerasForward(model), PieceTokenizer.from_transformers(tokenizer), LabelMap(labels),
                    config["max_len"], transitions=Transitions.load(out, labels))
    assert tagger.transitions is not None
    assert [r.tags for r in tagger.tag_texts(TEXTS)] == predicted_tags(trained_run)

    card = (out / "README.md").read_text()
    summary = json.loads((trained_run / "summary.json").read_text())
    for section in ("## Data", "## Results", "## Labels", "## Training configuration", "## Versions"):
        assert section in card, section
    assert f"**{summary['test']['f1']:.4f}**" in card and f"{summary['best_dev_f1']:.4f}" in card
    assert all(f"`{label}`" in card for label in labels)
    assert f"| {summary['train_sentences']} |" in card and f'"seed": {config["seed"]}' in card
    assert "CRF output layer" in card and (out / "crf.json").is_file()


def test_export_replaces_only_an_earlier_export_and_refuses_unfinished_runs(trained_run, tmp_path):
    def export(*args):
        return runner.invoke(app, ["export", str(trained_run), "--format", "hf", *map(str, args)])

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    for args in ([], ["--force"]):  # a folder that is not an export is never replaced
        result = export("--out", mine, *args)
        assert result.exit_code == 2 and "not an earlier nerctl export" in result.stderr
    assert (mine / "keep.txt").read_text() == "mine"  # nothing lost

    out = tmp_path / "hf"
    assert export("--out", out).exit_code == 0
    (out / "extra.txt").write_text("old")
    result = export("--out", out)
    assert result.exit_code == 2 and "exists already" in result.stderr and (out / "extra.txt").exists()
    result = export("--out", out, "--force")
    assert result.exit_code == 0, result.output
    assert not (out / "extra.txt").exists() and (out / "config.json").is_file()

    for target in (trained_run, trained_run.parent, trained_run / "best"):  # would destroy the run
        result = export("--out", target, "--force")
        assert result.exit_code == 2 and "must not be the run" in result.stderr, target
    assert (trained_run / "best" / "config.json").is_file() and (trained_run / "summary.json").is_file()

    unfinished = tmp_path / "unfinished"
    shutil.copytree(trained_run, unfinished)
    (unfinished / "summary.json").unlink()
    result = runner.invoke(app, ["export", str(unfinished), "--format", "hf"])
    assert result.exit_code == 2 and "has not finished" in result.stderr
    result = runner.invoke(app, ["export", str(trained_run), "--format", "onnx"])
    assert result.exit_code == 2


def test_saved_model_export_of_a_run_without_one_makes_it(trained_run, tmp_path):
    """Runs trained before nerctl wrote saved_model/ get it made from best/ on export."""
    old = tmp_path / "old"
    shutil.copytree(trained_run, old)
    shutil.rmtree(old / "saved_model")
    result = runner.invoke(app, ["export", str(old), "--format", "saved_model"])
    assert result.exit_code == 0, result.output
    assert (old / "export" / "saved_model" / "saved_model.pb").is_file()
    assert (old / "export" / "saved_model" / "labels.json").read_bytes() == (trained_run / "labels.json").read_bytes()
