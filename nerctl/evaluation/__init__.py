"""Scoring a tagger, error analysis and the HTML report."""
