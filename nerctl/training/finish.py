"""The stages after the last epoch, in the order they run.

Every worker summarises the run; the chief then runs `CHIEF_STAGES` in turn:

    refit       --refit: a new model on train + dev for the best epoch count (refit.py)
    export      best/ to the SavedModel and the LiteRT model predict runs (a conversion that fails is
                said and recorded, never fatal: summary.json "export", retried by --resume)
    int8        the int8 model, kept only if its dev F1 holds (`gate_int8`)
    calibrate   the scores' temperature, fitted on dev (`calibrate_run`); with --refit, on the
                model chosen on dev (selection/): the refit one has seen dev
    score_test  the test split, once, on the engine `nerctl evaluate` picks by default
    record      summary.json, then runs/latest: a run is finished once both are written

Each stage reads what the ones before it left (the exported model, the int8
file) and adds its part to the summary.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from ..artifacts.export import export_litert, export_saved_model
from ..artifacts.quantize import write_int8_model
from ..artifacts.rundir import RunDir, update_latest
from ..core.errors import debug_enabled
from ..data.sentence import Sentence
from ..evaluation.calibration import calibrate as fit_calibration
from ..evaluation.scoring import evaluate_sentences
from ..inference.tagger import Tagger
from .refit import refit_best
from .state import Checkpointed, Prepared, Session

DEV_F1_TOLERANCE = 0.002  # 0.2 points of strict entity F1: below that the int8 model is not used


@dataclass
class Finishing:
    """What the stages share: the trained run and the summary they fill in."""

    session: Session
    prep: Prepared
    ckpt: Checkpointed
    averaged: dict[str, Any] | None  # average_epochs' record (the best model is the average where "kept")
    summary: dict[str, Any]
    failed: dict[str, str] = field(default_factory=dict)  # engine -> why its conversion failed

    @property
    def chosen(self) -> str:
        """Which weights best/ holds, for the log."""
        averaged = self.averaged
        if averaged and averaged["kept"]:
            return f"the average of epochs {averaged['epochs'][0]}-{averaged['epochs'][-1]}"
        return f"epoch {self.ckpt.best_epoch}"


def finish(session: Session, prep: Prepared, ckpt: Checkpointed, started: float,
           averaged: dict[str, Any] | None = None) -> dict:
    """Summarise the run; on the chief, run the stages that export, score and record it. Returns the summary."""
    state = Finishing(session, prep, ckpt, averaged, summarise(session, prep, ckpt, started, averaged))
    if not session.chief:
        session.log(f"done; the chief writes {session.run.path}")
        return state.summary
    for stage in CHIEF_STAGES:
        stage(state)
    return state.summary


def summarise(session: Session, prep: Prepared, ckpt: Checkpointed, started: float,
              averaged: dict[str, Any] | None) -> dict[str, Any]:
    """The summary's figures of the training itself (every worker has them)."""
    config, dist = session.config, session.dist
    stopped_early = ckpt.epoch < config.epochs
    summary: dict[str, Any] = {
        "run": str(session.run.path), "model": config.model, "epochs": config.epochs, "epochs_run": ckpt.epoch,
        "stopped_early": stopped_early, "best_epoch": ckpt.best_epoch, "best_dev_f1": ckpt.best_f1,
        "train_sentences": len(prep.data.train), "dev_sentences": len(prep.data.dev),
        "seconds": round(time.time() - started, 1), "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if stopped_early:
        session.log(f"stopped early after epoch {ckpt.epoch}: dev F1 has not improved for "
                    f"{ckpt.epoch - ckpt.best_epoch} epochs (--early-stopping {config.early_stopping})")
    if averaged is not None:
        summary["average"] = averaged
    if dist.workers > 1:
        summary["strategy"] = {"name": dist.name, "workers": dist.workers, "replicas": dist.replicas}
    return summary


def refit(state: Finishing) -> None:
    if state.session.config.refit:
        state.summary["refit"] = refit_best(state.session, state.prep, state.ckpt)


def export(state: Finishing) -> None:
    """The SavedModel, then the LiteRT model from it. A conversion that fails costs only itself: the
    run finishes, on the engines that did convert (Keras runs best/ whatever fails here)."""
    run = state.session.run
    state.session.log(f"exporting the best model ({state.chosen}) to {run.saved_model.name}/ and {run.tflite.name}")
    for engine, step in (("saved_model", export_saved_model), ("litert", export_litert)):
        if engine == "litert" and "saved_model" in state.failed:
            state.failed["litert"] = "needs the SavedModel, whose export failed"
            continue
        try:
            step(run)
        except Exception as err:  # noqa: BLE001 - a converter's failure (TF raises many kinds): said, kept
            _failed(state, engine, err)


def int8(state: Finishing) -> None:
    if not state.session.config.int8:
        return
    if not state.session.run.tflite.exists():  # the int8 model is converted from the LiteRT one
        state.failed["onnx"] = "needs the LiteRT model, whose conversion failed"
        return
    state.session.log("making the int8 model (ONNX Runtime) and checking its dev F1")
    try:
        prep = state.prep
        state.summary["int8"] = gate_int8(state.session.run, prep.data.dev, state.session.log,
                                          lambda run: write_int8_model(run, prep.encoder,
                                                                       [s.words for s in prep.data.train]))
    except Exception as err:  # noqa: BLE001 - as in export
        state.session.run.int8_onnx.unlink(missing_ok=True)
        _failed(state, "onnx", err)


def _failed(state: Finishing, engine: str, err: Exception) -> None:
    """Record a failed conversion in the summary and say it in one line (--debug: all of it)."""
    first = (str(err).strip().splitlines() or [""])[0].split("<unknown>")[0].strip()  # MLIR's locations follow
    state.failed[engine] = f"{type(err).__name__}: {first[:200]}"
    more = "" if debug_enabled() else "; --debug shows the rest"
    state.session.log(f"{engine} conversion failed ({state.failed[engine]}): evaluate and predict run on the "
                      f"engines that converted{more}")
    if debug_enabled():
        state.session.log(str(err))


def calibrate(state: Finishing) -> None:
    state.session.log("fitting the scores' temperature on dev")
    run = state.session.run
    record = calibrate_run(run, state.prep.data.dev, run.selection if state.session.config.refit else None)
    state.summary["calibration"] = record
    state.session.log(f"temperature {record['temperature']:.3f}: dev span ECE {record['ece_before']:.4f} -> "
                      f"{record['ece_after']:.4f}")


def score_test(state: Finishing) -> None:
    data = state.prep.data
    if data.test is None:
        return
    # The engine and batch size `nerctl evaluate` uses by default: it reproduces these figures.
    best = Tagger.from_run(state.session.run)
    test, _ = evaluate_sentences(best, data.test)
    state.summary["test"] = {"file": data.sources["test"], "engine": best.engine.to_dict(), **test}
    state.session.log(f"test ({state.chosen}, {best.engine.backend} {best.engine.precision}): "
                      f"P {test['precision']:.4f} R {test['recall']:.4f} F1 {test['f1']:.4f}")


def record(state: Finishing) -> None:
    if state.failed:  # `nerctl train --resume` retries these
        state.summary["export"] = {"failed": dict(state.failed)}
    state.session.run.write_summary(state.summary)
    update_latest(state.session.run)


CHIEF_STAGES: tuple[Callable[[Finishing], None], ...] = (refit, export, int8, calibrate, score_test, record)


def calibrate_run(run: RunDir, dev: Sequence[Sentence], folder: Path | None = None) -> dict[str, Any]:
    """Fit the temperature of the run's scores on `dev` and write calibration.json; return its record.

    The model is the run's on the engine `nerctl evaluate` picks by default, or the one in `folder`."""
    tagger = Tagger.from_run(run, folder=folder).with_scoring(temperature=1.0)
    record = {**fit_calibration(tagger, dev), "model": (folder or run.best).name + "/", "engine": tagger.engine.to_dict()}
    run.write_calibration(record)
    return record


def gate_int8(run: RunDir, dev: Sequence[Sentence], log: Callable[[str], None],
              make: Callable[[RunDir], None]) -> dict[str, Any]:
    """Make the int8 model (`make`: quantize.write_int8_model with the run's training windows) and keep it
    only if its dev F1 is within DEV_F1_TOLERANCE of fp32's.

    Returns what was measured and decided, for summary.json.
    """
    make(run)
    fp32, _ = evaluate_sentences(Tagger.from_run(run, backend="litert"), dev)
    int8, _ = evaluate_sentences(Tagger.from_run(run, backend="onnx"), dev)
    kept = int8["f1"] >= fp32["f1"] - DEV_F1_TOLERANCE
    record = {"dev_f1_fp32": fp32["f1"], "dev_f1_int8": int8["f1"], "tolerance": DEV_F1_TOLERANCE, "kept": kept}
    if kept:
        log(f"int8 model kept: dev F1 {int8['f1']:.4f} against fp32's {fp32['f1']:.4f}")
    else:
        run.int8_onnx.unlink()
        record["reason"] = (f"dev F1 {int8['f1']:.4f} is more than {DEV_F1_TOLERANCE * 100:.1f} points below "
                            f"fp32's {fp32['f1']:.4f}: predict runs fp32")
        log(f"int8 model not kept: {record['reason']}")
    return record
