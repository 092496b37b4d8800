"""Training configuration: one dataclass, resolved as flag > NERCTL_* env > TOML file > default."""
from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from .errors import InputError


STRATEGIES = ("auto", "default", "mirrored", "multi-worker")  # see distribute.py


@dataclass
class TrainConfig:
    """Everything a training run depends on. Saved, resolved, as the run's config.json."""

    # Model: "minilm" (embedded), a local Hugging Face folder, or a hub id.
    model: str = "minilm"
    # Data: a named dataset, or explicit files (which win over the dataset's).
    dataset: str | None = "mitmovie"
    train_file: str | None = None  # when set, the dataset is not used at all
    eval_file: str | None = None  # dev set; when absent, carved from the training file
    test_file: str | None = None  # scored once, at the end, with the best model
    format: str = "auto"  # BIO format: auto, mit or conll
    dev_fraction: float = 0.1
    # Optimisation.
    epochs: int = 6
    batch_size: int = 64
    lr: float = 2e-4
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_len: int = 128  # word pieces per window, [CLS] and [SEP] included
    # Keep the word-embedding matrix fixed: it is half of MiniLM's parameters and
    # skipping its gradient and update made CPU steps 1.6x faster (benchmarks/levers.py).
    freeze_embeddings: bool = True
    # Also fix the embedding block and this many lowest encoder layers (0: none).
    freeze_layers: int = 0
    seed: int = 42
    eval_batch_size: int = 128
    # auto: bf16 (mixed) where the CPU has native bfloat16 (AVX-512 BF16/AMX), else fp32.
    precision: str = "auto"
    # Where: auto, default, mirrored or multi-worker (TF_CONFIG); see nerctl/distribute.py.
    strategy: str = "auto"
    # Output.
    runs_root: str = "runs"
    run_name: str | None = None  # default: a timestamp and the model name

    def validate(self) -> "TrainConfig":
        """Raise InputError on impossible values; return self for chaining."""
        checks = [
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.eval_batch_size >= 1, "eval_batch_size must be at least 1"),
            (self.lr > 0, "lr must be positive"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay must not be negative"),
            (self.freeze_layers >= 0, "freeze_layers must not be negative"),
            (self.max_len >= 8, "max_len must be at least 8"),
            (0 < self.dev_fraction < 1, "dev_fraction must be between 0 and 1"),
            (self.format in ("auto", "mit", "conll"), "format must be auto, mit or conll"),
            (self.precision in ("auto", "fp32", "bf16"), "precision must be auto, fp32 or bf16"),
            (self.strategy in STRATEGIES, f"strategy must be one of {', '.join(STRATEGIES)}"),
            (bool(self.train_file or self.dataset), "give a dataset or a train_file"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"invalid config: {message}")
        if self.run_name is not None and (
            not self.run_name or Path(self.run_name).name != self.run_name or self.run_name in (".", "..", "latest")
        ):
            raise InputError(f"invalid run name {self.run_name!r}: a plain folder name, not a path")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _field_types() -> dict[str, type]:
    """The runtime type of each field (Optional[X] -> X)."""
    names = {"int": int, "float": float, "str": str, "bool": bool}
    out = {}
    for f in fields(TrainConfig):
        out[f.name] = names[str(f.type).split(" | ")[0]]
    return out


_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _coerce(name: str, value: Any, origin: str) -> Any:
    kind = _field_types()[name]
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
    out = {}
    for f in fields(TrainConfig):
        var = f"NERCTL_{f.name.upper()}"
        if environ.get(var, "") != "":
            out[f.name] = _coerce(f.name, environ[var], var)
    return out


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


def load_saved_config(path: str | Path) -> TrainConfig:
    """Read a run's config.json back (unknown keys, from other versions, are an error)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    data = {k: v for k, v in data.items() if k not in ("versions", "resolved")}
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{path}: unknown key(s) {', '.join(unknown)}")
    return TrainConfig(**data)

