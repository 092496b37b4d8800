"""Training a run: its data, the optimisation step, the epoch loop, averaging, refit, distribution, the final stages."""
