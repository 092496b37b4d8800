"""What a run leaves: the run directory and its files, exported models, the int8 model."""
