"""The Label Studio backend's training loop: annotations in, a better served model out.

A training (when `schedule.Schedule` says) pulls the project's annotated tasks
through Label Studio's API, reads them with nerctl's Label Studio reader (the
labeling config names the text field; misaligned spans are expanded to the
words and counted, never dropped silently), keeps a stable share of them (by
task id) as the held-out dev set, and runs `nerctl train` on the rest in a
subprocess with the served run's recipe, into a new run whose name is the new
model_version. The new version replaces the served one only if its F1 on the
held-out share is at least the served model's on the same share; the swap is
one reference in the batcher, between two batches: no request in flight fails.

What was accepted and what is training is kept in <runs root>/labelstudio.json
(atomic writes): after a kill -9, a restart serves the last accepted version
and resumes the interrupted training (`nerctl train --resume`, exact).
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..artifacts.rundir import RunDir, run_state
from ..config import TrainConfig
from ..core.atomic import atomic_write_json, atomic_write_text
from ..core.errors import InputError, NerctlError
from ..data.formats.labelstudio import LabelingConfig, parse_labelstudio, write as write_tasks
from ..data.sentence import Sentence
from .labelstudio_api import LabelStudioClient
from .schedule import Schedule

log = logging.getLogger("uvicorn.error")
STATE_FILE = "labelstudio.json"
DEV_SHARE = 0.2  # of the annotated tasks, held out (by task id) to score each version on
RECIPE_SKIP = ("train_file", "eval_file", "test_file", "runs_root", "run_name", "dataset")  # set per version


@dataclass
class Version:
    """One trained version and how it fared against the model served when it finished."""

    name: str
    annotations: int  # annotated tasks it was trained and scored on (train + dev)
    dev_sentences: int
    dev_f1: float | None = None
    served_dev_f1: float | None = None  # the model served then, on the same held-out share
    accepted: bool = False
    reason: str = ""


@dataclass
class LearnerState:
    """labelstudio.json: the version served, every version trained, the one training now."""

    project: str | None = None
    served: str | None = None  # the served run's path
    training: str | None = None  # the name of the version in training
    versions: list[Version] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> "LearnerState":
        if not path.exists():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(data.get("project"), data.get("served"), data.get("training"),
                   [Version(**v) for v in data.get("versions", [])])

    def save(self, path: Path) -> None:
        atomic_write_json(path, {"project": self.project, "served": self.served, "training": self.training,
                                 "versions": [v.__dict__ for v in self.versions]})


def held_out(task_id: int | str, share: float = DEV_SHARE) -> bool:
    """True for the tasks kept out of training to score versions on; stable as the project grows."""
    return zlib.crc32(str(task_id).encode()) % 1000 < share * 1000


def split_annotations(sentences: list[Sentence], share: float = DEV_SHARE) -> tuple[list[Sentence], list[Sentence]]:
    """(train, dev) by task id (a Label Studio sentence's `line` is its task id)."""
    dev = [s for s in sentences if held_out(s.line, share)]
    train = [s for s in sentences if not held_out(s.line, share)]
    return train, dev


def recipe_toml(config: TrainConfig) -> str:
    """The served run's training options as a config file for `nerctl train --config` (JSON values are TOML's)."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in config.to_dict().items() if v is not None and k not in RECIPE_SKIP]
    return "# the recipe of the run the Label Studio backend served when it started this version\n" + "\n".join(
        lines) + "\n"


class Learner:
    """Trains new versions for one Label Studio project and hands accepted ones to `swap(run)`."""

    def __init__(self, runs_root: Path, recipe: TrainConfig, client: LabelStudioClient, swap: Callable[[RunDir], None],
                 served: str | None, every: int = 1, min_annotations: int = 10):
        self.root, self.recipe, self.client, self.swap = runs_root, recipe, client, swap
        self.min_annotations = min_annotations
        self.schedule = Schedule(every)
        self.state = LearnerState.load(runs_root / STATE_FILE)
        self.state.served = self.state.served or served  # labelstudio.json's wins: the last accepted version
        self.config: LabelingConfig | None = None
        self._lock = threading.Lock()

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    def on_event(self, action: str, project: str | None, config: LabelingConfig | None) -> str:
        """An event from Label Studio; what it did ("training started", "queued", "counted")."""
        with self._lock:
            if project is not None:
                self.state.project = str(project)
            self.config = config or self.config
            start = self.schedule.on_event(action)
            if start:
                self._start_thread()
                return "training started"
            return "queued" if self.schedule.pending else "counted"

    def resume_interrupted(self) -> None:
        """After a restart: finish the training a killed backend left (labelstudio.json says which)."""
        if self.state.training is not None:
            with self._lock:
                self.schedule.running = True
                self._start_thread(resume=self.state.training)

    def _start_thread(self, resume: str | None = None) -> None:
        threading.Thread(target=self._loop, args=(resume,), name="nerctl-learner", daemon=True).start()

    def _loop(self, resume: str | None) -> None:
        while True:
            try:
                self._train_version(resume)
            except Exception as err:  # noqa: BLE001 - logged; the service and the next training live on
                log.warning("Label Studio training: %s", err if isinstance(err, NerctlError)
                            else f"{type(err).__name__}: {err}")
            resume = None
            with self._lock:
                self.state.training = None
                self.state.save(self.state_path)
                if not self.schedule.on_finished():
                    return

    def _train_version(self, resume: str | None) -> None:
        name = resume or self._next_name()
        data = self.root / ".labelstudio" / name
        if resume is None:
            self._prepare_data(name, data)
        run = RunDir(self.root / name)
        self.state.training = name
        self.state.save(self.state_path)
        self._run_training(run, data, resumed=resume is not None and run.path.exists())
        self._gate(name, run, data)

    def _next_name(self) -> str:
        project = self.state.project or "0"
        taken = {v.name for v in self.state.versions} | {p.name for p in self.root.glob(f"ls{project}-v*")}
        number = 1
        while f"ls{project}-v{number}" in taken:
            number += 1
        return f"ls{project}-v{number}"

    def _prepare_data(self, name: str, data: Path) -> None:
        if self.config is None or self.state.project is None:
            raise InputError("no labeling config yet: Label Studio has not called /setup or sent its project")
        export = self.client.export(self.state.project)
        sentences = parse_labelstudio(export, f"Label Studio project {self.state.project}", misaligned="expand",
                                      warn=lambda message: log.warning("Label Studio export: %s", message),
                                      text_key=self.config.text_key)
        if len(sentences) < self.min_annotations:
            raise InputError(f"{len(sentences)} annotated tasks; training starts at --min-annotations "
                             f"{self.min_annotations}")
        train, dev = split_annotations(sentences)
        if not train or not dev:
            raise InputError(f"{len(sentences)} annotated tasks leave no train or no held-out share yet")
        data.mkdir(parents=True, exist_ok=True)
        atomic_write_text(data / "train.json", write_tasks(train, "iob2", lambda message: None))
        atomic_write_text(data / "dev.json", write_tasks(dev, "iob2", lambda message: None))
        atomic_write_text(data / "recipe.toml", recipe_toml(self.recipe))
        self.state.versions.append(Version(name, len(sentences), len(dev)))
        log.info("Label Studio: training %s on %d annotated tasks (%d held out)", name, len(sentences), len(dev))

    def _run_training(self, run: RunDir, data: Path, resumed: bool) -> None:
        """`nerctl train` (or `--resume`) in a subprocess that dies with this process (DIE_WITH_PARENT)."""
        if run.summary.exists():
            return  # finished before a restart: only the gate is left
        if run_state(run) == "running":
            raise InputError(f"{run.path}: another process is training it")
        command = [sys.executable, "-c", DIE_WITH_PARENT, str(os.getpid()), "train", "--run-dir", str(run.path)]
        command += ["--resume"] if resumed else ["--config", str(data / "recipe.toml"), "--train-file",
                                                 str(data / "train.json"), "--eval-file", str(data / "dev.json")]
        with open(data / "train.log", "ab") as out:
            code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env=training_environment(self.root))
        if code != 0:
            raise InputError(f"training {run.path.name} failed (exit {code}); see {data / 'train.log'}")

    def _gate(self, name: str, run: RunDir, data: Path) -> None:
        from ..data.formats import read_corpus
        from ..evaluation.scoring import evaluate_sentences
        from ..inference.tagger import Tagger

        version = next(v for v in self.state.versions if v.name == name)
        dev = read_corpus(data / "dev.json", warn=lambda message: None)
        candidate = Tagger.from_run(run)
        version.dev_f1 = evaluate_sentences(candidate, dev)[0]["f1"]
        if self.state.served is not None and Path(self.state.served).is_dir():
            served = Tagger.from_run(RunDir(Path(self.state.served)))
            version.served_dev_f1 = evaluate_sentences(served, dev)[0]["f1"]
        version.accepted = version.served_dev_f1 is None or version.dev_f1 >= version.served_dev_f1
        version.reason = ("first model" if version.served_dev_f1 is None else
                          f"held-out F1 {version.dev_f1:.4f} vs {version.served_dev_f1:.4f} of "
                          f"{Path(self.state.served).name}")
        if version.accepted:
            self.swap(run)
            self.state.served = str(run.path)
        log.info("Label Studio: %s %s (%s)", name, "now served" if version.accepted else "not served", version.reason)


def training_environment(root: Path) -> dict[str, str]:
    """The training's environment: this one without the keys (the service's settings carry them too) and
    without NERCTL_* training options, which would override the recipe; where the data sets live is kept."""
    kept = {"NERCTL_DATA_DIR", "NERCTL_MIRROR", "NERCTL_DEBUG"}
    env = {k: v for k, v in os.environ.items()
           if k != "LABEL_STUDIO_API_KEY" and (not k.startswith("NERCTL_") or k in kept)}
    return {**env, "NERCTL_RUNS_ROOT": str(root)}


# The training's first lines, before nerctl: ask the kernel to kill it when the thread that started it
# dies (PR_SET_PDEATHSIG; kill -9 of the backend included), unless its parent is gone already. Done in
# the child itself: a preexec_fn may deadlock in a process with threads.
DIE_WITH_PARENT = ("import ctypes, os, sys\n"
                   "if sys.platform.startswith('linux'):\n"
                   "    ctypes.CDLL(None).prctl(1, 9)\n"
                   "    if os.getppid() != int(sys.argv[1]): sys.exit(1)\n"
                   "os.execv(sys.executable, [sys.executable, '-m', 'nerctl', *sys.argv[2:]])\n")
