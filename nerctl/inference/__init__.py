"""Tagging with a finished model: engines (no TensorFlow outside the Keras one), decoding, the Tagger, predict and its output."""
