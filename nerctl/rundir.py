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
      logs/            TensorBoard event files: loss and lr per step, dev P/R/F1 per epoch
      summary.json     written last: the run finished
      .lock            held (flock) by the training that is writing the run
    runs/latest -> <name>   the newest finished run
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .errors import InputError

LATEST = "latest"
LOCK = ".lock"
LOCK_WAIT_S = 1.0  # how long lock() retries: `nerctl runs` may be probing the lock for a moment


def current_umask() -> int:
    """The process umask (reading it means setting it: it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename: readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the file the mode open() would
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
    def logs(self) -> Path:
        return self.path / "logs"

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


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block ends, so that a save is never cut in half."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


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
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            record.update(state="unreadable", error=f"{type(err).__name__}: {err}")
        records.append(record)
    return sorted(records, key=lambda r: r["started"])


def _run_facts(run: RunDir) -> dict[str, Any]:
    config = json.loads(run.config.read_text(encoding="utf-8"))
    summary = json.loads(run.summary.read_text(encoding="utf-8")) if run.summary.exists() else {}
    metrics = run.read_metrics()
    best = max((r["dev_f1"] for r in metrics), default=None)
    return {"model": config.get("model"), "epochs_done": len(metrics), "epochs": config.get("epochs"),
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
