"""Data: sentences and tags, tag schemes, span alignment, input sources, datasets, corpus checks; formats/ reads and writes tagged files."""
