"""nerctl: train, evaluate and serve BERT-family named-entity recognizers."""
import os

__version__ = "0.1.0"

# transformers' TensorFlow classes need Keras 2 (tf-keras); this must be set before
# TensorFlow is first imported, so it lives here, where every entry point passes.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up chatter goes to stderr; level 2 keeps only errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The Rust tokenizer forks threads; silence its fork warning in subprocess use.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
