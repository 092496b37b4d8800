"""The model: TensorFlow at run time, the one model builder, model inputs (word pieces and windows), the CRF head."""
