"""The run directory: what a training run leaves behind, and finding it again.

    runs/<name>/
      config.json      the TrainConfig's fields, "resolved" (model folder, precision, data
                       sources) and "versions" (packages)
      labels.json      the label map, in model order
      tokenizer/       the tokenizer, saved with save_pretrained
      best/            the best-dev-F1 model (Hugging Face format, loads with from_pretrained);
                       with --refit, the model refit on train + dev (refit.py)
      selection/       with --refit: the best-dev-F1 model the refit's epoch count came from
      saved_model/     the same model as a TensorFlow SavedModel (TF Serving)
      model.tflite     the same model for LiteRT (fp32)
      model.int8.onnx  the same model with int8 weights for ONNX Runtime, kept only if its
                       dev F1 is within 0.2 points of fp32's (summary.json "int8" says)
      calibration.json the temperature the scores use, fitted on dev (evaluation/calibration.py),
                       with the dev NLL and ECE before and after; absent: temperature 1
      checkpoints/     last epoch: weights + optimizer state, for --resume
      metrics.jsonl    one JSON line per epoch
      logs/            TensorBoard event files: loss and lr per step, dev P/R/F1 per epoch
      summary.json     written last: the run finished (best epoch, dev and test scores, why it stopped)
      .lock            held (flock) by the training that is writing the run
    runs/latest -> <name>   the newest finished run
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..config import TrainConfig
from ..core.atomic import atomic_write_json, atomic_write_text
from ..core.errors import InputError
from ..data.tags import LabelMap

LATEST = "latest"
LOCK = ".lock"
LOCK_WAIT_S = 1.0  # how long lock() retries: `nerctl runs` may be probing the lock for a moment


@dataclass(frozen=True)
class SavedConfig:
    """A run's config.json: the config it was trained with, what it resolved to, and package versions."""

    config: TrainConfig
    resolved: dict[str, Any] = field(default_factory=dict)  # model folder, precision, data sources
    versions: dict[str, str] = field(default_factory=dict)


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
    def selection(self) -> Path:
        return self.path / "selection"

    @property
    def saved_model(self) -> Path:
        return self.path / "saved_model"

    @property
    def tflite(self) -> Path:
        return self.path / "model.tflite"

    @property
    def int8_onnx(self) -> Path:
        return self.path / "model.int8.onnx"

    @property
    def calibration(self) -> Path:
        return self.path / "calibration.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    # Run files are read and written here only: their format lives in one place.

    def write_config(self, saved: SavedConfig) -> None:
        atomic_write_json(self.config, {**saved.config.to_dict(), "versions": saved.versions,
                                        "resolved": saved.resolved})

    def read_config(self) -> SavedConfig:
        """config.json back; a key this nerctl does not know (another version's) is an InputError."""
        try:
            data = json.loads(self.config.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{self.path}: no config.json; not a nerctl run") from None
        versions, resolved = data.pop("versions", {}), data.pop("resolved", {})
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"{self.config}: unknown key(s) {', '.join(unknown)}")
        return SavedConfig(TrainConfig(**data), resolved, versions)

    def write_labels(self, label_map: LabelMap) -> None:
        atomic_write_text(self.labels, label_map.to_json())

    def read_labels(self) -> LabelMap:
        return LabelMap.load(self.labels)

    def write_calibration(self, record: dict[str, Any]) -> None:
        """calibration.json: {"temperature": T, ...what the fit measured}."""
        atomic_write_json(self.calibration, record)

    def read_calibration(self) -> dict[str, Any]:
        """calibration.json, or {} for a run without one (trained before scores were calibrated)."""
        if not self.calibration.exists():
            return {}
        record = json.loads(self.calibration.read_text(encoding="utf-8"))
        temperature = record.get("temperature")
        if not isinstance(temperature, (int, float)) or not temperature > 0:
            raise InputError(f"{self.calibration}: 'temperature' must be a positive number, not {temperature!r}")
        return record

    def read_temperature(self) -> float:
        """The temperature the run's scores use (1 without calibration.json)."""
        return float(self.read_calibration().get("temperature", 1.0))

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.summary, summary)

    def read_summary(self) -> dict[str, Any]:
        """summary.json, or {} while the run has not finished."""
        if not self.summary.exists():
            return {}
        return json.loads(self.summary.read_text(encoding="utf-8"))

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

    def has_content(self) -> bool:
        """True if anything but the lock file is in the run directory."""
        return self.path.is_dir() and any(p.name != LOCK for p in self.path.iterdir())

    def remove_empty(self) -> None:
        """Delete the run directory if nothing but the lock file is in it."""
        if self.path.is_dir() and not self.has_content():
            (self.path / LOCK).unlink(missing_ok=True)
            self.path.rmdir()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's lock: a second training into the same run fails at once.

        An flock on <run>/.lock, which the kernel releases when the process ends
        however it ends (kill -9 included): no stale lock to clean up by hand.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise InputError(f"{self.path}: another training (pid {holder}) is using this run directory") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            os.close(fd)  # releases the lock; the file stays (removing it would race)

    def portable(self, text: str) -> str:
        """`text` without this machine's layout, for reports that travel: paths inside the run
        relative to it, inside the current directory relative to that, under the home folder as ~."""
        run, cwd, home = str(self.path), str(Path.cwd()), str(Path.home())
        for prefix, replacement in ((run + os.sep, ""), (cwd + os.sep, ""), (home + os.sep, "~" + os.sep)):
            if len(prefix) > 1:  # never strip a bare "/"
                text = text.replace(prefix, replacement)
        if text == cwd:
            return "."
        return "~" if text == home else text

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


def run_state(run: RunDir) -> str:
    """finished (summary.json written), running (a training holds its lock) or interrupted."""
    if run.summary.exists():
        return "finished"
    lock = run.path / LOCK
    if lock.exists():
        fd = os.open(lock, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # refused while a training holds LOCK_EX
        except BlockingIOError:
            return "running"
        finally:
            os.close(fd)  # also drops the shared lock if we got it
    return "interrupted"


def list_runs(runs_root: str | Path) -> list[dict[str, Any]]:
    """One record per run under runs_root (folders with a config.json), oldest first.

    A run whose files cannot be read (hand-edited, torn by a crash of another tool)
    is listed with state "unreadable" and an "error", not left out or fatal."""
    from datetime import datetime, timezone

    root = Path(runs_root)
    records = []
    for path in sorted(root.iterdir() if root.is_dir() else []):
        run = RunDir(path)
        if path.is_symlink() or not run.config.is_file():
            continue
        started = datetime.fromtimestamp(run.config.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
        record = {"name": path.name, "path": str(path.resolve()), "started": started, "model": None,
                  "epochs_done": None, "epochs": None, "best_dev_f1": None, "test_f1": None}
        try:
            record.update(_run_facts(run), state=run_state(run))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, InputError) as err:
            record.update(state="unreadable", error=f"{type(err).__name__}: {err}")
        records.append(record)
    return sorted(records, key=lambda r: r["started"])


def _run_facts(run: RunDir) -> dict[str, Any]:
    config = run.read_config().config
    summary = run.read_summary()
    metrics = run.read_metrics()
    best = max((r["dev_f1"] for r in metrics), default=None)
    return {"model": config.model, "epochs_done": len(metrics), "epochs": config.epochs,
            "best_dev_f1": summary.get("best_dev_f1", best), "test_f1": summary.get("test", {}).get("f1")}


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
