"""Tagging batches of texts wherever a batch can go: Spark's mapInPandas, Ray Data's map_batches, Dask's
map_partitions, a process pool.

A `BatchTagger` is a few settings (the run's path and the engine options), so it
pickles in bytes and travels to any worker; the model is loaded on the first
batch a process sees and kept for the life of that process (engines load in
well under a second, but a worker tags many batches). Each text's record is
`nerctl predict --format jsonl`'s for it; a missing text (None, NaN) is tagged
as an empty one: no entities, never an error.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .tagger import Tagger

if TYPE_CHECKING:
    from ..artifacts.rundir import RunDir

# One tagger per settings per process: Spark reuses its Python workers across tasks, Ray its actors.
_LOADED: dict["BatchTagger", Tagger] = {}
# An engine's interpreter runs one batch at a time (LiteRT's refuses a second thread), and uses every
# core for it: threads of one process (Dask's threaded scheduler) take turns.
_LOCK = threading.RLock()


@dataclass(frozen=True)
class BatchTagger:
    """`tag(texts) -> records`, `tag_frame(frame) -> frame with entities`, the run loaded lazily, once per process.

    `run` is a finished run's directory as this process sees it; the other
    fields are the `nerctl predict` options of the same names. `words`: keep
    each record's words (their offsets, tags and scores) too.
    """

    run: str
    backend: str = "auto"
    precision: str = "auto"
    batch_size: int | None = None
    min_score: float = 0.0
    words: bool = False

    def at(self, run: str) -> "BatchTagger":
        """These settings for the same run at another path (where a worker finds its copy)."""
        return replace(self, run=run)

    def tagger(self) -> Tagger:
        """This process's tagger for these settings, loaded on first use."""
        from ..artifacts.rundir import RunDir

        with _LOCK:
            if self not in _LOADED:
                _LOADED[self] = Tagger.from_run(RunDir(Path(self.run)).require_trained(), self.batch_size,
                                                self.precision, self.backend, self.min_score)
            return _LOADED[self]

    def tag(self, texts: Sequence[Any]) -> list[dict]:
        """The predict --format jsonl record of each text (without "words" unless asked), in order."""
        texts = [text if isinstance(text, str) else "" for text in texts]  # None, NaN: an empty text
        with _LOCK:
            records = [doc.to_dict() for doc in self.tagger().tag_texts(texts)]
        if not self.words:
            for record in records:
                del record["words"]
        return records

    def tag_frame(self, frame, column: str = "text"):
        """A copy of the pandas DataFrame `frame` with an `entities` column (and `words` when asked): each
        row's records' lists of dicts (Spark's array<struct> columns when a schema says so)."""
        records = self.tag(frame[column].tolist())
        out = frame.copy()
        out["entities"] = [r["entities"] for r in records]
        if self.words:
            out["words"] = [r["words"] for r in records]
        return out

    __call__ = tag_frame  # Ray Data's map_batches(BatchTagger-instance) and Dask's map_partitions take a callable


def portable_copy(run: "RunDir", backend: str, folder: Path) -> Path:
    """Copy into `folder` the files a tagger on `backend` reads from `run` (config, labels, scores, the
    tokenizer, best/'s config and CRF scores, the engine's model): a run of its own, the size of one model,
    to ship to workers that do not share the run's storage. Returns `folder`."""
    import shutil

    from ..artifacts.rundir import RunDir
    from .engines import ENGINES

    target = RunDir(folder)
    target.best.mkdir(parents=True)
    for name in ("config", "labels", "summary", "calibration"):
        if getattr(run, name).exists():
            shutil.copy2(getattr(run, name), getattr(target, name))
    shutil.copytree(run.tokenizer, target.tokenizer)
    model = ENGINES[backend].artefact
    if model == "best":
        shutil.copytree(run.best, target.best, dirs_exist_ok=True)
    else:
        shutil.copy2(getattr(run, model), getattr(target, model))
        for kept in run.best.glob("*.json"):  # its config (labels) and the CRF's scores, not the weights
            shutil.copy2(kept, target.best / kept.name)
    return folder
