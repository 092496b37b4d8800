"""Every closed set of values an option takes, declared once.

The modules that implement a choice import its tuple from here; the CLI turns
each tuple into its option's choices (see `cli.choice_enum`), and `TrainConfig`
validation checks against the same tuples. Importing this costs nothing.
"""

BIO_FORMATS = ("auto", "mit", "conll")  # bio.py: which column holds the tag
PRECISIONS = ("auto", "fp32", "bf16")  # model.py: auto resolves by the CPU's bfloat16 support
BACKENDS = ("auto", "litert", "keras")  # engines.py: what runs a finished run's forward pass
STRATEGIES = ("auto", "default", "mirrored", "multi-worker")  # distribute.py
DECODERS = ("viterbi", "argmax")  # tagger.py
OUTPUT_FORMATS = ("table", "json", "jsonl", "conll")  # output.py ("table" is drawn by the CLI)
STREAM_FORMATS = ("jsonl", "conll")  # output.py: one record after another, written chunk by chunk
RESUME_FORMATS = ("jsonl",)  # output.py: each record names its text, so a resume can check it
INPUT_FORMATS = ("auto", "text", "bio")  # predict.py: what --file holds
EXPORT_FORMATS = ("saved_model", "hf")  # export.py
