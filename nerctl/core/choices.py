"""Every closed set of values an option takes, declared once.

The modules that implement a choice import its tuple from here; the CLI turns
each tuple into its option's choices (see `cli.choice_enum`), and `TrainConfig`
validation checks against the same tuples. Importing this costs nothing.
"""

# formats.py: what a tagged file holds (mit: TAG<TAB>word, conll: word ... TAG, jsonl: doccano or
# Prodigy/spaCy spans, labelstudio: a Label Studio JSON or JSON-MIN export); auto detects it from the content.
DATA_FORMATS = ("auto", "mit", "conll", "jsonl", "labelstudio")
CONVERT_FORMATS = ("bio", "conll", "jsonl", "labelstudio")  # convert.py: what `convert --to` writes
SCHEMES = ("auto", "iob1", "iob2", "iobes", "bilou")  # schemes.py: a BIO file's tag scheme
OUTPUT_SCHEMES = SCHEMES[1:]  # convert --to-scheme: the scheme BIO and CoNLL output is written in
MISALIGNED = ("error", "expand", "drop")  # align.py: what to do with a span that does not fit the words
PRECISIONS = ("auto", "fp32", "bf16", "int8")  # engines.py: auto: the fastest the backend and CPU offer
BACKENDS = ("auto", "onnx", "litert", "keras")  # engines.py: what runs a finished run's forward pass
STRATEGIES = ("auto", "default", "mirrored", "multi-worker")  # distribute.py
DECODERS = ("viterbi", "argmax")  # tagger.py
HEADS = ("softmax", "crf")  # step.py (softmax: per-word cross-entropy), crf.py
OUTPUT_FORMATS = ("table", "json", "jsonl", "conll", "spans", "labelstudio")  # output.py ("table" is drawn by the CLI)
STREAM_FORMATS = ("jsonl", "conll", "spans", "labelstudio")  # output.py: one record after another, written chunk by chunk
RESUME_FORMATS = ("jsonl",)  # output.py: each record names its text, so a resume can check it
INPUT_FORMATS = ("auto", "text", "bio", "jsonl", "labelstudio")  # predict.py: what --file holds
EXPORT_FORMATS = ("saved_model", "hf")  # export.py
