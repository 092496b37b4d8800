"""nerctl: train, evaluate and serve BERT-family named-entity recognizers.

    import nerctl
    run = nerctl.train(epochs=3)                  # as `nerctl train --epochs 3`
    tagger = nerctl.load(run.path)                # a finished run's tagger
    doc = tagger("have you seen the dark knight")
    [(e.type, e.text) for e in doc.entities]      # [("TITLE", "the dark knight")]

The names below are imported on first use: `import nerctl` itself is instant
and loads neither TensorFlow nor transformers.
"""
import importlib
import os

from .core.errors import InputError, NerctlError  # noqa: F401  (public, listed in __all__)

__version__ = "0.1.0"

# transformers' TensorFlow classes need Keras 2 (tf-keras); this must be set before
# TensorFlow is first imported, so it lives here, where every entry point passes.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up chatter goes to stderr; level 2 keeps only errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The Rust tokenizer forks threads; silence its fork warning in subprocess use.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Public name -> the module that defines it (imported when the name is first used).
_LAZY = {
    "load": "api", "train": "api", "resume": "api", "evaluate": "api", "calibrate": "api", "read_corpus": "api",
    "Run": "api", "Scores": "api",
    "Tagger": "inference.tagger", "Doc": "inference.tagger", "Entity": "inference.tagger",
    "TaggedWord": "inference.tagger", "TrainConfig": "config", "Sentence": "data.sentence",
}

__all__ = sorted([*_LAZY, "InputError", "NerctlError", "__version__"])


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'nerctl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
