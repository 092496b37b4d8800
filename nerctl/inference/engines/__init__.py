"""Inference engines: what runs the network's forward pass over a finished run, and choosing one.

Every engine is a "forward": (input_ids, attention_mask) int32 [batch, length]
in, float32 tag probabilities [batch, length, labels] out. A `Tagger` takes any.
Each engine is one module here and one `EngineSpec` in `ENGINES`; the
--backend choices, their help and `choose_engine`'s rules come from the specs.
Only the keras engine imports TensorFlow; litert and onnx start in a fraction
of the time. Measured speeds: benchmarks/README.md (benchmarks/engines.py).
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...artifacts.rundir import RunDir
from ...config import check_options, option
from ...core.choices import PRECISIONS
from ...core.errors import InputError
from ...modeling.runtime import cpu_supports_bf16


@dataclass(frozen=True)
class EngineSpec:
    """One engine: what it runs, at which precisions, and where its forward class lives."""

    name: str  # the --backend value
    artefact: str  # the RunDir attribute of the file or folder it runs
    precisions: tuple[str, ...]  # what it computes in; the first is its default
    module: str  # the module in this package with its `open_forward(path, precision)` (imported when used)
    imports: str  # what it loads at run time (said in --backend's help)
    help: str  # one line for --backend's help
    auto_reason: str  # why `auto` picks it when it is the first engine the run has
    missing: str = "an older nerctl trained it"  # why a finished run may lack its file

    @property
    def file_name(self) -> str:
        """What the run directory calls its file (RunDir names every run file)."""
        path = getattr(RunDir(Path()), self.artefact)
        return path.name + ("/" if self.artefact == "best" else "")


# In the order `auto` prefers them, where the run has their file and the precision allows.
ENGINES: dict[str, EngineSpec] = {spec.name: spec for spec in (
    EngineSpec("onnx", "int8_onnx", ("int8",), "onnx", "onnxruntime",
               "the run's int8 model.int8.onnx on ONNX Runtime, kept at training only if its dev F1 held",
               "the run's int8 model held its dev F1",
               "its int8 model failed the dev-F1 check, see summary.json, or an older nerctl trained it"),
    EngineSpec("litert", "tflite", ("fp32",), "litert", "ai_edge_litert",
               "model.tflite, fp32, without TensorFlow", "the fastest fp32 engine, and needs no TensorFlow"),
    EngineSpec("keras", "best", ("fp32", "bf16"), "keras", "tensorflow, transformers",
               "best/ in TensorFlow, fp32 or bf16", "the run has no exported model"),
)}
BACKENDS = ("auto", *ENGINES)
assert all(set(spec.precisions) <= set(PRECISIONS) for spec in ENGINES.values())


PRECISION_HELP = ("Compute precision: " + ", ".join(
    f"{p} ({', '.join(s.name for s in ENGINES.values() if p in s.precisions)})" for p in PRECISIONS[1:])
    + "; auto: the fastest the run and CPU allow (see --backend).")


def backend_help() -> str:
    """--backend's help, from the specs."""
    engines = ", ".join(f"{spec.name} ({spec.help}; loads {spec.imports})" for spec in ENGINES.values())
    return (f"Inference engine: {engines}; auto: the first of {', '.join(ENGINES)} the run has and the precision "
            "allows (bf16 means keras). The choice is said on a terminal's stderr and in evaluate's scores.")


@dataclass(frozen=True)
class EngineChoice:
    """A resolved choice: which backend, at which precision, and why."""

    backend: str
    precision: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"backend": self.backend, "precision": self.precision}

    def describe(self) -> str:
        return f"backend {self.backend} ({self.precision}): {self.reason}"


def min_score_option() -> Any:
    """--min-score: predict's, evaluate's and serve's."""
    return option(0.0, "Leave out entities scored under P (0-1; a span's score is the probability that "
                  "exactly it is right): their words are tagged O. evaluate scores what remains.",
                  ge=0.0, le=1.0, env=False)


@dataclass
class EngineOptions:
    """How a finished run tags: its engine, the precision, the batch size, the scores it keeps
    (evaluate's and predict's options)."""

    backend: str = option("auto", backend_help(), choices=BACKENDS, env=False)
    precision: str = option("auto", PRECISION_HELP, choices=PRECISIONS, env=False)
    batch_size: int | None = option(None, "Sentences per model batch [default: the run's].", ge=1, env=False)
    min_score: float = min_score_option()

    def check(self) -> "EngineOptions":
        check_options(self, lambda f: "--" + f.name.replace("_", "-"))
        choose_engine(self.backend, self.precision)  # an impossible pair is told before the run is looked for
        return self


THREADS_ENV = "NERCTL_THREADS"


def compute_threads() -> int:
    """Threads the LiteRT and ONNX engines compute with: NERCTL_THREADS, else every CPU this process may
    use. A process given one core of several (a Spark executor, a worker in a pool) says so here, or its
    threads and its neighbours' fight over the same cores."""
    value = os.environ.get(THREADS_ENV, "")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise InputError(f"{THREADS_ENV} must be a positive whole number, not {value!r}")
        return int(value)
    return len(os.sched_getaffinity(0))


def available(run: RunDir) -> set[str]:
    """The engines whose file the run has."""
    return {name for name, spec in ENGINES.items() if Path(getattr(run, spec.artefact)).exists()}


def choose_engine(backend: str = "auto", precision: str = "auto", has: set[str] | frozenset[str] = frozenset(ENGINES)
                  ) -> EngineChoice:
    """Resolve --backend and --precision for a run that has the engines in `has` (see `available`).

    auto takes the first engine in ENGINES' order that the run has and that
    computes `precision` (auto: any); keras is the fallback, as every finished
    run has best/. An engine asked for by name must have its file and compute
    the precision. keras with precision auto runs bf16 where the CPU computes
    bfloat16 natively (AVX-512 BF16, AMX).
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if backend == "auto":
        spec, reason = _auto(precision, has)
    else:
        spec, reason = ENGINES[backend], "asked for"
    if precision not in ("auto", *spec.precisions):
        others = [f"--backend {s.name} for {'/'.join(s.precisions)}" for s in ENGINES.values()
                  if precision in s.precisions]
        raise InputError(f"--backend {spec.name} runs {' or '.join(spec.precisions)} only, not {precision}"
                         + (f"; use {others[0]}" if others else ""))
    if spec.name not in has:
        raise InputError(f"the run has no {spec.file_name} for --backend {spec.name} "
                         f"({spec.missing}); use --backend {_fallback(spec, has)}")
    if precision != "auto":
        return EngineChoice(spec.name, precision, reason)
    if len(spec.precisions) > 1 and "bf16" in spec.precisions:
        native = cpu_supports_bf16()
        why = "; bf16: the CPU has native bfloat16" if native else "; fp32: no native bfloat16"
        return EngineChoice(spec.name, "bf16" if native else "fp32", reason + why)
    return EngineChoice(spec.name, spec.precisions[0], reason)


def _auto(precision: str, has: set[str] | frozenset[str]) -> tuple[EngineSpec, str]:
    """The engine `auto` means for this precision and run, and why."""
    able = [spec for spec in ENGINES.values() if precision == "auto" or precision in spec.precisions]
    for spec in able:
        if spec.name in has:
            return spec, spec.auto_reason if precision == "auto" else f"{precision} asked for"
    return able[0], f"{precision} asked for"


def _fallback(spec: EngineSpec, has: set[str] | frozenset[str]) -> str:
    return next((name for name in ENGINES if name in has and name != spec.name), "keras")


def open_forward(engine: EngineChoice, run: RunDir, path: Path | None = None) -> tuple[Any, str]:
    """(the forward that runs `engine` on `run`, the name of the file it reads), its module imported now.

    `path`: the engine's file or folder, where not the run's own (keras on selection/)."""
    spec = ENGINES[engine.backend]
    path = Path(path or getattr(run, spec.artefact))
    module = importlib.import_module(f".{spec.module}", __name__)
    return module.open_forward(path, engine.precision), spec.file_name
