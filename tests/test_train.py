"""Training internals on the tiny fixture model: what freezing embeddings and layers leaves untouched."""
import numpy as np
import pytest

from nerctl.config import resolve_config
from nerctl.progress import Reporter
from nerctl.train import train
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
    summary = train(config, reporter=Reporter(quiet=True))
    assert summary["best_epoch"] == 1
    before, after = weights(tiny_model), weights(tmp_path / "frozen" / "best")
    unchanged = {name for name in before if np.array_equal(before[name], after[name])}
    assert unchanged == fixed


def test_freezing_more_layers_than_the_model_has_is_an_input_error(tiny_model):
    from nerctl.errors import InputError
    from nerctl.model import build_model, variables_to_train
    from nerctl.preprocess import LabelMap

    model = build_model(str(tiny_model), LabelMap(("O", "B-A", "I-A")))
    model(model.dummy_inputs)
    all_variables = variables_to_train(model, freeze_embeddings=False)
    assert len(variables_to_train(model, True, freeze_layers=2)) == 2  # only the classifier head is left
    assert len(variables_to_train(model, True)) == len(all_variables) - 1
    with pytest.raises(InputError, match="freeze_layers 3 exceeds the model's 2 layers"):
        variables_to_train(model, True, freeze_layers=3)
