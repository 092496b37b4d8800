"""The Python API: what `import nerctl` offers (see __init__.py for the list).

Each function is the library call the matching command makes, so the CLI and
the API cannot drift: `nerctl train` calls `train`, `nerctl evaluate` calls
`evaluate`, `nerctl predict` tags with `load`'s Tagger. Errors are raised as
`nerctl.InputError` (bad input: the CLI's exit code 2) or `nerctl.NerctlError`
(a failure: exit 1), with the one-line messages the CLI prints.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .artifacts.rundir import RunDir, resolve_run
from .config import TrainConfig, resolve_config
from .core.errors import InputError
from .core.progress import Reporter
from .data.sentence import DEFAULT_WORDS, Sentence
from .inference.tagger import Tagger


@dataclass(frozen=True)
class Run:
    """A finished training run: its directory and its summary.json."""

    path: Path
    summary: dict[str, Any]

    @property
    def best_dev_f1(self) -> float:
        return self.summary["best_dev_f1"]

    @property
    def test_f1(self) -> float | None:
        """Strict entity F1 on the test file, scored once at the end (None without one)."""
        return self.summary.get("test", {}).get("f1")

    def load(self, backend: str = "auto", precision: str = "auto", batch_size: int | None = None,
             min_score: float = 0.0) -> Tagger:
        """The run's tagger (see `nerctl.load`)."""
        return load(self.path, backend, precision, batch_size, min_score)


@dataclass(frozen=True)
class Scores:
    """What `nerctl evaluate --json` prints: entity P/R/F1 (seqeval, strict IOB2), per type, token accuracy."""

    file: str
    precision: float
    recall: float
    f1: float
    token_accuracy: float
    sentences: int
    entities: int
    per_type: dict[str, dict[str, float]]  # type -> precision, recall, f1, support
    engine: dict[str, str] | None = None  # backend and precision that produced the tags
    # span score ECE and reliability bins, precision/recall at min scores (evaluation/calibration.py)
    calibration: dict[str, Any] | None = None
    worst: list[dict] | None = None  # with evaluate(worst=N): the N sentences with the most span errors

    def to_dict(self) -> dict[str, Any]:
        """The JSON object `evaluate --json` prints (no "worst" key unless asked for)."""
        out = dataclasses.asdict(self)
        return {k: v for k, v in out.items() if not (k == "worst" and v is None)}


def _run_dir(run: "str | Path | Run | RunDir | None") -> RunDir:
    if isinstance(run, RunDir):
        return run.require_trained()
    return resolve_run(run.path if isinstance(run, Run) else run)


def load(run: "str | Path | Run | RunDir | None" = None, backend: str = "auto", precision: str = "auto",
         batch_size: int | None = None, min_score: float = 0.0, words: str | None = None) -> Tagger:
    """A finished run's tagger: `tagger(text) -> Doc`, `tagger.pipe(texts) -> Iterator[Doc]`.

    `run` is a run directory, a run name under the runs root, or None for
    <runs root>/latest (the runs root is NERCTL_RUNS_ROOT, else ./runs).
    `backend` auto runs the LiteRT export where it can (no TensorFlow import);
    `tagger.engine` says what it chose. Entities scored under `min_score` are
    left out (their words tagged O); `doc.filtered(p)` does it for one Doc. Raw text is split into
    words by the run's --words rule, or by `words` (a rule of `nerctl train --help`'s --words).
    """
    return Tagger.from_run(_run_dir(run), batch_size, precision, backend, min_score, words=words)


def train(config: TrainConfig | str | Path | None = None, *, run_dir: str | Path | None = None,
          mirror: str | None = None, progress: bool = False, environ: Mapping[str, str] | None = None,
          **overrides: Any) -> Run:
    """Train a run as `nerctl train` does; return it when it has finished.

    `config` is a TrainConfig, a TOML file, or None for the defaults. Precedence
    as on the command line: `overrides` (TrainConfig field names, e.g.
    epochs=3; None means unset) > NERCTL_* variables (`environ`, default
    os.environ) > the config file > defaults. A TrainConfig given as `config`
    takes only `overrides` on top. `run_dir` sets runs_root and run_name at once.
    Logs and progress go to stderr with `progress=True`; otherwise nothing is printed.
    """
    from .training.run import run_training

    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if run_dir is not None:
        if overrides.get("runs_root") is not None or overrides.get("run_name") is not None:
            raise InputError("give --run-dir, or --runs-root and --run-name, not both")
        overrides.update(runs_root=str(Path(run_dir).parent), run_name=Path(run_dir).name)
    if isinstance(config, TrainConfig):
        given = {k: v for k, v in overrides.items() if v is not None}
        resolved = resolve_config(None, {**config.to_dict(), **given}, environ={})
    else:
        resolved = resolve_config(config, overrides, environ)
    summary = run_training(resolved, mirror=mirror, reporter=Reporter(quiet=not progress))
    return Run(Path(summary["run"]), summary)


def resume(run: "str | Path | Run | RunDir | None" = None, *, mirror: str | None = None,
           progress: bool = False) -> Run:
    """Continue an interrupted run (None: the newest unfinished one under the runs root)."""
    from .artifacts.rundir import default_runs_root, find_unfinished_run
    from .training.run import resume_training

    if run is None:
        found = find_unfinished_run(default_runs_root())
    else:
        found = run if isinstance(run, RunDir) else RunDir(Path(run.path if isinstance(run, Run) else run).resolve())
    summary = resume_training(found, mirror=mirror, reporter=Reporter(quiet=not progress))
    return Run(Path(summary["run"]), summary)


def evaluate(run: "str | Path | Run | RunDir | Tagger | None", file: str | Path, *, format: str = "auto",
             scheme: str = "auto", misaligned: str = "error", backend: str = "auto", precision: str = "auto",
             batch_size: int | None = None, worst: int = 0, min_score: float = 0.0, progress: bool = False,
             words: str | None = None) -> Scores:
    """Score a run (or a loaded Tagger) on a tagged file of any format, as `nerctl evaluate --json` does.

    `min_score`: entities scored under it are left out before scoring; `words`: the --words rule for
    texts without tokens [default: the run's] (a Tagger's own of both is kept)."""
    from .evaluation.scoring import evaluate_file

    tagger = run if isinstance(run, Tagger) else load(run, backend, precision, batch_size, min_score, words)
    with Reporter(quiet=not progress).counter("scoring") as counter:
        return Scores(**evaluate_file(tagger, file, format, counter, worst, scheme, misaligned))


def calibrate(run: "str | Path | Run | RunDir | None" = None, file: str | Path | None = None, *,
              format: str = "auto", scheme: str = "auto", misaligned: str = "error", mirror: str | None = None,
              words: str | None = None) -> dict[str, Any]:
    """Fit the temperature of a run's scores again and write its calibration.json, as `nerctl calibrate` does.

    Without `file`, on the run's dev split, read as the training read it (its data must be at hand;
    with --refit, the model chosen on dev, selection/, is the one fitted); else on that tagged file,
    which must be held out from training (texts without tokens split by `words`, default the run's
    --words rule). Returns calibration.json's record."""
    from .training.finish import calibrate_run

    target = _run_dir(run)
    if file is None:
        from .training.corpus import load_data

        config = target.read_config().config
        sentences = load_data(config, mirror).dev
        return calibrate_run(target, sentences, target.selection if config.refit else None)
    sentences = read_corpus(file, format, scheme, misaligned, words or target.read_config().config.words)
    target.read_labels().check(sentences, file)
    return calibrate_run(target, sentences)


def read_corpus(path: str | Path, format: str = "auto", scheme: str = "auto", misaligned: str = "error",
                words: str = DEFAULT_WORDS) -> list[Sentence]:
    """Read a tagged file of any format into sentences (words, IOB2 tags, source and line, and the text
    and word offsets where the format has them), as every command does.

    `format`, `scheme`, `misaligned` and `words` are the options of the same
    names (see `nerctl train --help`); what was repaired, skipped or changed
    is said on stderr."""
    from .data.formats import read_corpus as read

    return read(path, format, scheme, misaligned, words=words)
