"""Training configuration: one dataclass, resolved as flag > NERCTL_* env > TOML file > default.

Each field is the single declaration of its option: its default, help text,
limits and choices live in the field's metadata (see `option`), and from it
come the `train` command's flag (cli.py), the NERCTL_<FIELD> variable, the
TOML key, validation and its messages. A new training option is one field.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import tomllib

from .core.choices import HEADS, MISALIGNED, PRECISIONS, SCHEMES, STRATEGIES
from .core.errors import InputError
from .data.formats import FORMAT_HELP, READ_FORMATS
from .data.sentence import DEFAULT_WORDS, WORD_RULES, WORDS_HELP

ENV_PREFIX = "NERCTL_"
DEFAULT_MODEL = "minilm"  # the embedded MiniLM (modeling/model.py's EMBEDDED_MODEL)

# The data options' help, shared by train (a field each) and evaluate/predict/convert/check (cli/app.py).
SCHEME_HELP = ("Tag scheme of BIO files, read as IOB2: auto (from the prefixes: E-/S- IOBES, L-/U- BILOU, "
               "else IOB2 reading an I- that starts a span as B-), iob1, iob2, iobes (BIOES), bilou.")
MISALIGNED_HELP = ("Spans that do not fit the words (a boundary inside a word, overlapping, empty, past the "
                   "text, text differing): error, expand (widen to whole words; drop what cannot be), drop. "
                   "What was changed is counted on stderr.")


def option(default: Any, help: str, *, ge: float | None = None, gt: float | None = None, lt: float | None = None,
           le: float | None = None, choices: tuple[str, ...] | None = None, flag: str | None = None, path: bool = False,
           per_worker: bool = False, env: bool = True) -> Any:
    """A config field and everything its option needs.

    `ge`/`gt`/`lt`/`le`: bounds; `choices`: the allowed values (a tuple from
    choices.py); `flag`: the CLI declaration when not `--field-name` (a
    `--on/--off` pair for booleans); `path`: the value is a file or folder;
    `per_worker`: may differ between the workers of a cluster (paths: the data
    itself is compared, see training/setup.py's agree_on_data); `env`: a
    NERCTL_<FIELD> variable sets it (TrainConfig's fields; a command's own
    options, like serve's, come from the command line only).

    Any dataclass of such fields gets its command options from them
    (cli/app.py's `option_parameters`) and its checks from `check_options`.
    """
    default_kind = "default_factory" if isinstance(default, list) else "default"
    return field(**{default_kind: (lambda: list(default)) if isinstance(default, list) else default},
                 metadata={"help": help, "ge": ge, "gt": gt, "lt": lt, "le": le, "choices": choices, "flag": flag,
                           "path": path, "per_worker": per_worker, "env": env})


def is_option(f: dataclasses.Field) -> bool:
    """A field declared with `option` (the others are set by the code, not by a user)."""
    return "help" in f.metadata


def check_options(values: Any, name: Callable[[dataclasses.Field], str]) -> None:
    """InputError naming (by `name`) the first option field of `values` outside its limits or choices."""
    for f in fields(values):
        value = getattr(values, f.name)
        problem = None if value is None or not is_option(f) or isinstance(value, list) else _problem(value, f.metadata)
        if problem:
            raise InputError(f"{name(f)} {problem}")


def format_option(**where: bool) -> Any:
    """The data format option (train's --format, evaluate's, check's; convert's --from)."""
    return option("auto", FORMAT_HELP, choices=READ_FORMATS, **where)


def scheme_option(**where: bool) -> Any:
    return option("auto", SCHEME_HELP, choices=SCHEMES, **where)


def misaligned_option(**where: bool) -> Any:
    return option("error", MISALIGNED_HELP, choices=MISALIGNED, **where)


def words_option(default: str | None = DEFAULT_WORDS, **where: bool) -> Any:
    """--words: train's is saved in the run; the other commands' default (None) is the run's, else script."""
    help = WORDS_HELP if default else WORDS_HELP + f" [default: the run's, else {DEFAULT_WORDS}]"
    return option(default, help, choices=tuple(WORD_RULES), **where)


@dataclass
class DataOptions:
    """How the commands that read a tagged file read it (train has the same options in TrainConfig)."""

    format: str = format_option(env=False)
    scheme: str = scheme_option(env=False)
    misaligned: str = misaligned_option(env=False)
    words: str | None = words_option(None, env=False)

    def words_for(self) -> str:
        """The --words rule a command without a run reads with: the option's, else the default."""
        return self.words or DEFAULT_WORDS


@dataclass
class TrainConfig:
    """Everything a training run depends on. Saved, resolved, as the run's config.json."""

    # Model: "minilm" (embedded), a local Hugging Face folder, or a hub id.
    model: str = option(DEFAULT_MODEL, "'minilm' (the embedded MiniLM), a local Hugging Face model folder, or a hub id.")
    # Data: a named dataset, or explicit files (which win over the dataset's).
    dataset: str | None = option("mitmovie", "Named dataset to train on (see `nerctl download`).", per_worker=True)
    train_file: str | None = option(None, "Training file (any --format); when given, the dataset is not used at all.",
                                    path=True, per_worker=True)
    eval_file: str | None = option(None, "Dev file for choosing the best epoch [default: carved from train].",
                                   path=True, per_worker=True)
    test_file: str | None = option(None, "Test file, scored once at the end with the best model "
                                   "[default: the dataset's test split].", path=True, per_worker=True)
    format: str = format_option(per_worker=True)
    scheme: str = scheme_option(per_worker=True)
    misaligned: str = misaligned_option(per_worker=True)
    words: str = words_option()
    dev_fraction: float = option(0.1, "Share of train held out as dev when no --eval-file is given.", gt=0, lt=1)
    # A smaller, faster model: fewer layers, taught by a finished run (training/distill.py).
    layers: int = option(0, "Keep only this many of the encoder's lowest layers, initialised from the model "
                         "(or the teacher): a shallower, faster model (0: all of them).", ge=0)
    teacher: str | None = option(None, "A finished run to distil from: the new model starts from its trained "
                                 "weights (its lowest --layers layers, its tokenizer, labels and CRF) and learns its "
                                 "tag distributions on the training texts as well as the gold tags (not with --model).",
                                 path=True)
    distill_weight: float = option(1.0, "With --teacher: the weight of the teacher's tag distributions in the "
                                   "loss, against the gold tags' 1.", ge=0)
    # Optimisation.
    epochs: int = option(6, "Training epochs.", ge=1)
    batch_size: int = option(64, "Sentences per training batch.", ge=1)
    lr: float = option(2e-4, "Peak learning rate of AdamW.", gt=0)
    warmup_ratio: float = option(0.1, "Share of the steps over which the learning rate rises to its peak.", ge=0, lt=1)
    weight_decay: float = option(0.01, "AdamW weight decay.", ge=0)
    max_len: int = option(128, "Word pieces per window, [CLS] and [SEP] included; longer sentences are "
                          "split into overlapping windows.", ge=8)
    # Keep the word-embedding matrix fixed: it is half of MiniLM's parameters and
    # skipping its gradient and update made CPU steps 1.8x faster (293.7 against 537.3 ms at batch 32;
    # benchmarks/levers.py, benchmarks/results/2026-11-27-vm-levers.json).
    freeze_embeddings: bool = option(True, "Keep the word-embedding matrix fixed (faster steps; see "
                                     "benchmarks/README.md).",
                                     flag="--freeze-embeddings/--train-embeddings")
    freeze_layers: int = option(0, "Also keep the embedding block and this many lowest encoder layers fixed: "
                                "their backward pass is skipped.", ge=0)
    # The CRF head: dev F1 0.8949 vs 0.8887 for softmax, mean of seeds 42/1/2 paired +0.63 points, at the
    # same training time (benchmarks/results/accuracy-2026-12-01.json, AMD EPYC 2 cores).
    head: str = option("crf", "Output layer: softmax (each word's tag on its own, cross-entropy) or crf "
                       "(also learned tag-transition scores, trained with the CRF likelihood, used by Viterbi).",
                       choices=HEADS)
    dropout: float | None = option(None, "Dropout of the encoder's hidden states and attention weights "
                                   "[default: the model's own, 0.1 for MiniLM].", ge=0, lt=1)
    layer_lr_decay: float = option(1.0, "Layer-wise learning-rate decay: the top encoder layer learns at "
                                   "lr x this, each layer below at this x the one above, the embeddings last; "
                                   "the output layer at lr (1: off).", gt=0, le=1)
    average_last: int = option(0, "At the end, also score the average of the last N epochs' weights on dev; "
                               "it becomes the best model where its dev F1 is higher (0: off).", ge=0)
    seed: int = option(42, "Seed for the dev split, the data order, initialisation and dropout.")
    eval_batch_size: int = option(128, "Sentences per batch when scoring dev and test.", ge=1)
    precision: str = option("auto", "Training precision; auto: bf16 (mixed) where the CPU has AVX-512 BF16 "
                            "or AMX, else fp32.", choices=PRECISIONS)
    strategy: str = option("auto", "tf.distribute strategy: default (one device), mirrored (all local GPUs), "
                           "multi-worker (one process per machine, cluster from TF_CONFIG; needs --run-dir on "
                           "shared storage), auto (multi-worker if TF_CONFIG names 2+ tasks, mirrored with 2+ "
                           "GPUs, else default).", choices=STRATEGIES)
    # Adds seconds to the end of training (the conversion from the LiteRT file, in a child process whose
    # memory stays below training's own peak; then the dev split scored twice): see quantize.py.
    int8: bool = option(True, "At the end, also make an int8 model for ONNX Runtime; predict uses it if "
                        "its dev F1 is within 0.2 points of fp32's.",
                        flag="--int8/--no-int8")
    refit: bool = option(False, "After dev has chosen the best epoch, train a new model on train + dev for that "
                         "many epochs; it becomes best/ (the selection's model is kept in selection/, and the dev "
                         "figures reported stay the selection's).", flag="--refit/--no-refit")
    early_stopping: int = option(0, "Stop when dev F1 has not improved for this many epochs (0: never).", ge=0)
    # Output.
    runs_root: str = option("runs", "Folder the run directory is made in.", path=True, per_worker=True)
    run_name: str | None = option(None, "Run directory name [default: the time and the model's name].",
                                  per_worker=True)

    def validate(self) -> "TrainConfig":
        """Raise InputError on impossible values; return self for chaining."""
        check_options(self, lambda f: f"invalid config: {f.name}")
        if not (self.train_file or self.dataset):
            raise InputError("invalid config: give a dataset or a train_file")
        if self.run_name is not None and (
            not self.run_name or Path(self.run_name).name != self.run_name or self.run_name in (".", "..", "latest")
        ):
            raise InputError(f"invalid run name {self.run_name!r}: a plain folder name, not a path")
        if self.teacher is not None and self.model != DEFAULT_MODEL:
            raise InputError("--teacher gives the model (the teacher's own, --layers of it): "
                             "use --model or --teacher, not both")
        if self.refit and self.average_last:
            raise InputError("--refit trains its model without dev, so no dev figure can choose an average: "
                             "use --refit or --average-last, not both")
        return self

    def check_distribution(self, workers: int, replicas: int, strategy: str, named: bool) -> None:
        """Raise InputError on options a cluster of `workers` or `replicas` devices rules out.

        `named`: the run directory is given (every worker must write the same one).
        """
        if workers > 1 and not named:
            raise InputError("multi-worker training needs --run-dir: the same path on every worker, on storage they share")
        if workers > 1 and self.refit:
            raise InputError("--refit trains on one machine: it cannot be combined with multi-worker training")
        if replicas > 1 and self.teacher is not None:
            raise InputError(f"--teacher trains on one device: it cannot be combined with the {strategy} "
                             f"strategy's {replicas} replicas")
        if replicas > 1 and self.layer_lr_decay != 1:
            raise InputError("--layer-lr-decay trains on one device: it cannot be combined with "
                             f"the {strategy} strategy's {replicas} replicas")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def shared_settings(self) -> dict[str, Any]:
        """The settings every worker of a cluster must share (all but paths and names)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata["per_worker"]}


def _problem(value: Any, meta: Mapping[str, Any]) -> str | None:
    """What is wrong with `value` by its field's limits and choices, or None."""
    if meta["choices"] is not None and value not in meta["choices"]:
        return f"must be one of {', '.join(meta['choices'])}"
    ge, gt, lt, le = meta["ge"], meta["gt"], meta["lt"], meta["le"]
    if (ge is None or value >= ge) and (gt is None or value > gt) and (lt is None or value < lt) and (
            le is None or value <= le):
        return None
    if le is not None:
        return f"must be in ({gt:g}, {le:g}]" if gt is not None else f"must be at most {le:g}"
    if lt is not None:
        return f"must be between {gt:g} and {lt:g}" if gt is not None else f"must be in [{ge:g}, {lt:g})"
    if gt is not None:
        return "must be positive" if gt == 0 else f"must be greater than {gt:g}"
    return "must not be negative" if ge == 0 else f"must be at least {ge:g}"


def field_type(f: dataclasses.Field) -> type:
    """The runtime type of a field (Optional[X] -> X)."""
    return {"int": int, "float": float, "str": str, "bool": bool, "list[str]": list}[str(f.type).split(" | ")[0]]


def env_name(f: dataclasses.Field) -> str:
    return ENV_PREFIX + f.name.upper()


def option_help(f: dataclasses.Field) -> str:
    """The field's help with its variable and default, as `--help` shows it."""
    default = f.default
    if f.metadata["flag"] and isinstance(default, bool):  # name the side of a --on/--off pair
        sides = f.metadata["flag"].split("/")
        default = sides[0 if default else 1] if len(sides) == 2 else None  # a lone flag is off unless given
    parts = [f"env: {env_name(f)}"] if f.metadata["env"] else []
    if default is not None and default is not dataclasses.MISSING:
        parts.append(f"default: {default}")
    return f"{f.metadata['help']} [{'; '.join(parts)}]" if parts else f.metadata["help"]


_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _coerce(name: str, value: Any, origin: str) -> Any:
    kind = field_type(next(f for f in fields(TrainConfig) if f.name == name))
    if value is None:
        return None
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOL_WORDS:
            return _BOOL_WORDS[value.lower()]
        raise InputError(f"{origin}: {name} must be true or false, got {value!r}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    raise InputError(f"{origin}: {name} must be {kind.__name__}, got {value!r}")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML config. Keys may sit at the top level or under [train]."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such config file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: invalid TOML: {err}") from None
    data = data.get("train", data)
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{path}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
    return {k: _coerce(k, v, str(path)) for k, v in data.items()}


def env_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Values from NERCTL_<FIELD> variables (e.g. NERCTL_EPOCHS=5)."""
    environ = os.environ if environ is None else environ
    return {f.name: _coerce(f.name, environ[env_name(f)], env_name(f))
            for f in fields(TrainConfig) if environ.get(env_name(f), "") != ""}


def resolve_config(
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> TrainConfig:
    """Defaults < config file < NERCTL_* environment < explicit overrides (None = unset)."""
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(read_config_file(config_file))
    values.update(env_overrides(environ))
    values.update({k: _coerce(k, v, "option --" + k.replace("_", "-")) for k, v in (overrides or {}).items() if v is not None})
    return TrainConfig(**values).validate()
