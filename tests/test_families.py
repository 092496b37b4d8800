"""Encoder families beyond BERT: what trains, what each engine can run, and what a failed conversion costs."""
import json

import pytest

from typer.testing import CliRunner

from conftest import train_args
from nerctl.artifacts.rundir import RunDir, run_state
from nerctl.cli import app
from nerctl.inference.tagger import Tagger
from nerctl.modeling.families import DROPOUT_KEYS

runner = CliRunner()


def test_a_conversion_that_fails_costs_only_itself_and_resume_retries_only_the_export(tiny_deberta, bio_files,
                                                                                      tmp_path):
    """DeBERTa-v3's relative attention does not convert to LiteRT: the run still finishes, its summary says
    which conversion failed and why in one line, predict runs on Keras, and --resume tries the export again
    without training again."""
    run = tmp_path / "deberta"
    trained = runner.invoke(app, train_args(tiny_deberta, bio_files, run))
    assert trained.exit_code == 0, trained.output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["export"]["failed"]["litert"] == "ConverterError: Could not translate MLIR to FlatBuffer."
    failure = [line for line in trained.stderr.splitlines() if "conversion failed" in line]
    assert len(failure) == 1 and "litert conversion failed (ConverterError" in failure[0]
    assert "--debug shows the rest" in failure[0] and "error: loc(" not in trained.stderr  # no MLIR dump
    assert run_state(RunDir(run)) == "finished" and (run / "saved_model" / "saved_model.pb").is_file()
    assert not (run / "model.tflite").exists()
    tagger = Tagger.from_run(RunDir(run))
    assert tagger.engine.backend == "keras" and summary["test"]["engine"]["backend"] == "keras"
    predicted = runner.invoke(app, ["predict", "--run", str(run), "--format", "jsonl", "who directed jaws"])
    assert predicted.exit_code == 0 and json.loads(predicted.stdout)["words"][2]["word"] == "jaws"

    epochs = (run / "metrics.jsonl").read_text()
    resumed = runner.invoke(app, ["train", "--resume", "--run-dir", str(run)])
    assert resumed.exit_code == 0, resumed.output
    assert "resumed after epoch 2" in resumed.stderr and "litert conversion failed" in resumed.stderr
    assert (run / "metrics.jsonl").read_text() == epochs  # no epoch trained again
    assert json.loads((run / "summary.json").read_text())["test"]["f1"] == summary["test"]["f1"]


# config class, model class, the kind of tokenizer the family's models ship (conftest.TOKENIZERS), extra config.
FAMILIES = {
    "distilbert": ("DistilBertConfig", "TFDistilBertModel", "wordpiece",
                   {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64}),  # DistilBERT's own size names
    "roberta": ("RobertaConfig", "TFRobertaModel", "byte-bpe", {"max_position_embeddings": 66}),
    "xlm-roberta": ("XLMRobertaConfig", "TFXLMRobertaModel", "xlmr-spm", {"max_position_embeddings": 66}),
    "electra": ("ElectraConfig", "TFElectraModel", "wordpiece", {"embedding_size": 16}),
}


@pytest.mark.int8
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_trains_exports_and_tags_alike_on_every_engine(family, bio_files, tmp_path):
    from conftest import tiny_family_model

    config_class, model_class, tokenizer, extra = FAMILIES[family]
    (tmp_path / family).mkdir()
    model = tiny_family_model(tmp_path / family, config_class, model_class, tokenizer, **extra)
    run = tmp_path / "run"
    trained = runner.invoke(app, train_args(model, bio_files, run, "--int8", "--dropout", "0.2",
                                            "--layer-lr-decay", "0.8"))
    assert trained.exit_code == 0, trained.output
    summary = json.loads((run / "summary.json").read_text())
    assert "export" not in summary and (run / "model.tflite").exists() and "dev_f1_int8" in summary["int8"]
    best = json.loads((run / "best" / "config.json").read_text())
    assert {best[key] for keys in DROPOUT_KEYS if all(k in best for k in keys) for key in keys} == {0.2}
    texts = ["who directed jaws", "show me films with tom hanks from the 1980s"]
    tags = {}
    for backend in ("keras", "litert", "onnx"):
        if backend == "onnx" and not (run / "model.int8.onnx").exists():
            assert summary["int8"]["kept"] is False  # its dev F1 did not hold: ONNX Runtime tagged dev to know
            continue
        tagger = Tagger.from_run(RunDir(run), backend=backend, precision="fp32" if backend == "keras" else "auto")
        tags[backend] = [doc.tags for doc in tagger.tag_texts(texts)]
    assert tags["keras"] == tags["litert"], tags  # the same fp32 network on two engines


@pytest.mark.parametrize("kind", ["wordpiece", "byte-bpe", "xlmr-spm", "deberta-spm"])
def test_each_kind_of_tokenizer_encodes_words_as_it_encodes_running_text(kind, tmp_path):
    """Training and predict hand the tokenizer pre-split words: each must get the pieces it has in text (a
    RoBERTa word after a space starts with "Ġ"), through the run's tokenizer/ as predict loads it."""
    from conftest import TOKENIZERS
    from transformers import AutoTokenizer

    from nerctl.modeling.encoding import PieceTokenizer
    from nerctl.modeling.model import load_tokenizer

    TOKENIZERS[kind](tmp_path).save_pretrained(str(tmp_path / "hub"))
    if kind == "deberta-spm":
        (tmp_path / "hub" / "tokenizer.json").unlink(missing_ok=True)
    load_tokenizer(str(tmp_path / "hub")).save_pretrained(str(tmp_path / "run"))  # as a run's tokenizer/
    pieces = PieceTokenizer.from_folder(tmp_path / "run")
    text = "did christopher nolan make the dark knight in 2005 ?"
    words = text.split()
    (ids, word_ids), = pieces.encode_words([words])
    in_text = pieces.backend.encode(" " + text, add_special_tokens=False)
    assert ids == in_text.ids and len(set(word_ids)) == len(words)
    plain = AutoTokenizer.from_pretrained(str(tmp_path / "hub")).backend_tokenizer
    as_given = plain.encode(words, is_pretokenized=True, add_special_tokens=False).ids
    assert (as_given != in_text.ids) == (kind == "byte-bpe")  # the quirk nerctl handles is real


def test_a_family_nerctl_cannot_train_is_refused_before_anything_is_read(tmp_path):
    from conftest import tiny_family_model

    (tmp_path / "gpt2").mkdir()
    model = tiny_family_model(tmp_path / "gpt2", "GPT2Config", "TFGPT2Model", n_embd=32, n_layer=2, n_head=2)
    result = runner.invoke(app, ["train", "--model", str(model), "--train-file", str(tmp_path / "absent.bio"),
                                 "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2
    message = result.stderr.strip().splitlines()
    assert len(message) == 1 and "nerctl cannot train gpt2 models" in message[0]
    assert "TensorFlow token-classification class" in message[0] and "roberta" in message[0]
    assert not (tmp_path / "run").exists()


def test_a_knob_a_family_lacks_is_one_clear_error_before_training(bio_files, tmp_path):
    """ALBERT shares one layer's weights across its depth: per-layer rates or frozen layers cannot apply,
    and each is refused before the run is written; the rest of ALBERT works."""
    from conftest import tiny_family_model

    (tmp_path / "albert").mkdir()
    model = tiny_family_model(tmp_path / "albert", "AlbertConfig", "TFAlbertModel", embedding_size=16)
    for knob in (["--layer-lr-decay", "0.8"], ["--freeze-layers", "1"]):
        result = runner.invoke(app, train_args(model, bio_files, tmp_path / "run", *knob))
        assert result.exit_code == 2, result.output
        assert f"{knob[0]}: cannot find the 2 layers of this albert model" in result.stderr
        assert "ALBERT shares one set across its depth" in result.stderr and "epoch 1" not in result.stderr
    trained = runner.invoke(app, train_args(model, bio_files, tmp_path / "run", "--dropout", "0.2"))
    assert trained.exit_code == 0, trained.output  # without them it trains, exports and tags
    assert (tmp_path / "run" / "model.tflite").exists() and "export" not in json.loads(
        (tmp_path / "run" / "summary.json").read_text())
