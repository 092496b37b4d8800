"""The run directory: what a training run leaves behind, and finding it again.

    runs/<name>/
      config.json      resolved TrainConfig + package versions
      labels.json      the label map, in model order
      tokenizer/       the tokenizer, saved with save_pretrained
      best/            the best-dev-F1 model (Hugging Face format, loads with from_pretrained)
      saved_model/     the same model as a TensorFlow SavedModel (TF Serving)
      model.tflite     the same model for LiteRT: what predict and evaluate run
      checkpoints/     last epoch: weights + optimizer state, for --resume
      metrics.jsonl    one JSON line per epoch
      summary.json     written last: the run finished
    runs/latest -> <name>   the newest finished run
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError

LATEST = "latest"


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename: readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def replace_dir(tmp: Path, final: Path) -> None:
    """Swap a fully written folder into place (the old one is removed after)."""
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def labels(self) -> Path:
        return self.path / "labels.json"

    @property
    def tokenizer(self) -> Path:
        return self.path / "tokenizer"

    @property
    def best(self) -> Path:
        return self.path / "best"

    @property
    def saved_model(self) -> Path:
        return self.path / "saved_model"

    @property
    def tflite(self) -> Path:
        return self.path / "model.tflite"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Rewrite metrics.jsonl with one more line (atomic; the file stays small)."""
        self._write_metrics(self.read_metrics() + [record])

    def truncate_metrics(self, last_epoch: int) -> None:
        """Drop records after `last_epoch` (written by an epoch whose checkpoint was lost)."""
        self._write_metrics([r for r in self.read_metrics() if r["epoch"] <= last_epoch])

    def _write_metrics(self, records: list[dict[str, Any]]) -> None:
        atomic_write_text(self.metrics, "".join(json.dumps(r) + "\n" for r in records))

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics.exists():
            return []
        return [json.loads(line) for line in self.metrics.read_text(encoding="utf-8").splitlines() if line]

    def require_trained(self) -> "RunDir":
        """Fail clearly unless the run has what evaluate/predict need."""
        if not self.path.is_dir():
            raise InputError(f"{self.path}: no such run directory")
        missing = [p.name for p in (self.labels, self.tokenizer, self.best / "config.json") if not p.exists()]
        if missing:
            raise InputError(
                f"{self.path}: not a finished run (missing {', '.join(missing)}); "
                "train it to the end or resume it with `nerctl train --resume`"
            )
        return self


def default_runs_root() -> Path:
    return Path(os.environ.get("NERCTL_RUNS_ROOT") or "runs")


def resolve_run(run: str | Path | None, runs_root: str | Path | None = None) -> RunDir:
    """A run given as a path, a name under runs_root, or None for <runs_root>/latest.

    runs_root defaults to NERCTL_RUNS_ROOT, else ./runs.
    """
    runs_root = Path(runs_root) if runs_root is not None else default_runs_root()
    if run is None:
        latest = Path(runs_root) / LATEST
        if not latest.exists():
            hint = " (it points nowhere)" if latest.is_symlink() else ""
            raise InputError(f"no run given and {latest} does not exist{hint}; train one with `nerctl train` or pass a run")
        return RunDir(latest.resolve()).require_trained()
    path = Path(run).expanduser()
    if not path.exists() and not path.is_absolute() and (Path(runs_root) / path).exists():
        path = Path(runs_root) / path
    return RunDir(path.resolve()).require_trained()


def update_latest(run: RunDir) -> None:
    """Point <runs_root>/latest at `run` (a relative symlink, swapped atomically)."""
    link = run.path.parent / LATEST
    tmp = run.path.parent / f".{LATEST}.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(run.path.name, tmp)
    os.replace(tmp, link)


def find_unfinished_run(runs_root: str | Path) -> RunDir:
    """The newest run under runs_root that has a checkpoint but no summary."""
    root = Path(runs_root)
    candidates = [
        p for p in (root.iterdir() if root.is_dir() else [])
        if p.is_dir() and not p.is_symlink() and (p / "checkpoints").is_dir() and not (p / "summary.json").exists()
    ]
    if not candidates:
        raise InputError(f"no unfinished run under {root} to resume; pass --run-dir")
    return RunDir(max(candidates, key=lambda p: p.stat().st_mtime).resolve())
