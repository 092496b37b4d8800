"""Training internals on the tiny fixture model: what freezing embeddings leaves untouched."""
import numpy as np

from nerctl.config import resolve_config
from nerctl.progress import Reporter
from nerctl.train import train
from conftest import REPO


def embedding_and_layer_weights(folder):
    from transformers import TFAutoModel

    model = TFAutoModel.from_pretrained(str(folder))
    return (model.get_input_embeddings().weights[0].numpy(),
            model.bert.encoder.layer[0].attention.self_attention.query.kernel.numpy())


def test_frozen_word_embeddings_stay_fixed_while_the_rest_trains(tiny_model, bio_files, tmp_path):
    config = resolve_config(
        REPO / "configs" / "smoke.toml",
        {"model": str(tiny_model), "train_file": str(bio_files["train"]), "eval_file": str(bio_files["dev"]),
         "runs_root": str(tmp_path), "run_name": "frozen", "epochs": 1, "freeze_embeddings": True},
        environ={},
    )
    summary = train(config, reporter=Reporter(quiet=True))
    assert summary["best_epoch"] == 1
    before_words, before_query = embedding_and_layer_weights(tiny_model)
    after_words, after_query = embedding_and_layer_weights(tmp_path / "frozen" / "best")
    assert np.array_equal(before_words, after_words)
    assert not np.allclose(before_query, after_query)
