"""What differs between encoder families, in one place: whether nerctl can train one, and where its
dropout rates, depth and layers are.

transformers gives each family its own names (BERT's `hidden_dropout_prob` is DistilBERT's `dropout`,
ELECTRA projects its embeddings, ALBERT shares one layer's weights across its depth), so every knob that
reaches into a model asks here, and a family without the knob gets one clear error before training.
"""
from __future__ import annotations

import re

from ..core.errors import InputError

# The config keys of the encoder's (hidden, attention) dropout rates, tried in order: BERT and most
# families; DistilBERT, XLM and FlauBERT; Funnel; XLNet (one rate for both).
DROPOUT_KEYS = (("hidden_dropout_prob", "attention_probs_dropout_prob"), ("dropout", "attention_dropout"),
                ("hidden_dropout", "attention_dropout"), ("dropout",))
# transformers' TF encoders name their layers `layer_._N`; whatever holds "embed" in its name feeds
# the first layer (word, position and type embeddings, ELECTRA's projection, DeBERTa's relative ones).
_LAYER_INDEX = re.compile(r"/layer_\._(\d+)/")


def trainable_families() -> list[str]:
    """The model types transformers has a TensorFlow token-classification class for."""
    from transformers.models.auto.modeling_tf_auto import TF_MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES

    return sorted(TF_MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES)


def check_trainable(model_config, name: str) -> None:
    """An InputError saying why, for a model nerctl cannot fine-tune for token classification."""
    family = model_config.model_type
    if family not in trainable_families():
        import transformers

        raise InputError(f"{name}: nerctl cannot train {family} models: transformers {transformers.__version__} "
                         f"has no TensorFlow token-classification class for them (it has one for "
                         f"{', '.join(trainable_families())})")


def dropout_overrides(model_config, dropout: float | None) -> dict[str, float]:
    """The config values that set the encoder's hidden and attention dropout to `dropout` (none for None)."""
    if dropout is None:
        return {}
    for keys in DROPOUT_KEYS:
        if all(hasattr(model_config, key) for key in keys):
            return dict.fromkeys(keys, dropout)
    raise InputError(f"--dropout: {model_config.model_type} models have no dropout rate nerctl knows "
                     f"(it sets {' or '.join('/'.join(keys) for keys in DROPOUT_KEYS)})")


# The config key of the encoder's depth: BERT and most families; DistilBERT, XLM and FlauBERT.
DEPTH_KEYS = ("num_hidden_layers", "n_layers")


def depth_overrides(model_config, layers: int) -> dict[str, int]:
    """The config value that keeps only the `layers` lowest encoder layers (none for 0); transformers then
    loads those layers' weights and leaves the others out."""
    if not layers:
        return {}
    key = next((k for k in DEPTH_KEYS if isinstance(getattr(model_config, k, None), int)), None)
    if key is None:
        raise InputError(f"--layers: {model_config.model_type} models have no depth nerctl knows "
                         f"(it sets {' or '.join(DEPTH_KEYS)})")
    if layers > getattr(model_config, key):
        raise InputError(f"invalid config: layers {layers} exceeds the model's {getattr(model_config, key)} layers")
    return {key: layers}


def layer_depths(model, variables: list, knob: str = "--layer-lr-decay") -> list[int]:
    """Each variable's depth below the output layer: 0 for the classifier (and anything above the encoder),
    1 for the top encoder layer, ..., n_layers for the lowest, n_layers + 1 for the embeddings.

    An InputError naming `knob` when the model's layers are not one `layer_._N` scope each (ALBERT)."""
    n_layers = model.config.num_hidden_layers
    found = {int(m.group(1)) for v in model.trainable_variables if (m := _LAYER_INDEX.search(v.name))}
    if found != set(range(n_layers)):
        raise InputError(f"{knob}: cannot find the {n_layers} layers of this {model.config.model_type} model "
                         f"(its weights are not one layer_._N scope per layer"
                         f"{': ALBERT shares one set across its depth' if model.config.model_type == 'albert' else ''})")
    depths = []
    for v in variables:
        match = _LAYER_INDEX.search(v.name)
        depths.append(n_layers - int(match.group(1)) if match else n_layers + 1 if "embed" in v.name.lower() else 0)
    return depths
