"""Every closed set of values an option takes, declared once.

The modules that implement a choice import its tuple from here; the CLI turns
each tuple into its option's choices (see `cli.app.choice_enum`); the format and
engine choices come from their registries (data/formats/, inference/engines/), and `TrainConfig`
validation checks against the same tuples. Importing this costs nothing.
"""

SCHEMES = ("auto", "iob1", "iob2", "iobes", "bilou")  # schemes.py: a BIO file's tag scheme
OUTPUT_SCHEMES = SCHEMES[1:]  # convert --to-scheme: the scheme BIO and CoNLL output is written in
MISALIGNED = ("error", "expand", "drop")  # align.py: what to do with a span that does not fit the words
PRECISIONS = ("auto", "fp32", "bf16", "int8")  # training's compute precision, and the engines' (inference/engines/): auto: the fastest the CPU offers
STRATEGIES = ("auto", "default", "mirrored", "multi-worker")  # distribute.py
DECODERS = ("viterbi", "argmax")  # tagger.py
HEADS = ("softmax", "crf")  # step.py (softmax: per-word cross-entropy), crf.py
OUTPUT_FORMATS = ("table", "json", "jsonl", "conll", "spans", "labelstudio", "html")  # output.py ("table" is drawn by the CLI)
STREAM_FORMATS = ("jsonl", "conll", "spans", "labelstudio", "html")  # output.py: one record after another, written chunk by chunk
EVALUATE_FORMATS = ("table", "json", "html")  # evaluate's output (html: evaluation/errors_page.py)
RESUME_FORMATS = ("jsonl",)  # output.py: each record names its text, so a resume can check it
EXPORT_FORMATS = ("saved_model", "hf")  # export.py
