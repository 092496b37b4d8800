"""Training: fine-tune a token classifier, pick the best epoch on dev, score test once.

The test set never influences training or model choice: the best epoch is the
one with the highest dev entity F1, and test is scored once, at the end, with
the saved best model, on the engine `nerctl evaluate` picks by default, so
`evaluate` on the same file reproduces summary.json's figures exactly.

A run goes through these phases, each a function of its own:

    prepare            data, label map, tokenizer, model, encoded windows (setup.py; writes nothing)
    restore_or_set_up  its ordered stages: workers agree, the checkpoint is made, restored
                       where there is one, the run's files written where new (setup.py)
    train_epochs       yields each epoch's result (as spaCy's train_while_improving);
                       the caller logs it and saves it (`save_epoch`, epochs.py)
    average_epochs     with --average-last: the last epochs' mean weights, best/ if better on dev
    finish             refit, export, int8, test score, summary.json, runs/latest (finish.py)
"""
from __future__ import annotations

import contextlib
import time
from datetime import datetime
from pathlib import Path

from ..artifacts.rundir import RunDir
from ..config import TrainConfig
from ..core.atomic import Terminated, sigterm_as_interrupt
from ..core.errors import InputError, Interrupted
from ..core.progress import Reporter
from ..modeling.runtime import import_tensorflow
from .distribute import make_distribution
from .epochs import average_epochs, log_epoch, save_epoch, train_epochs
from .finish import finish
from .setup import prepare, restore_or_set_up
from .state import Session


def new_run_dir(config: TrainConfig) -> RunDir:
    """The run's folder (made when the run is locked): its name, or the time and the model's name."""
    name = config.run_name or f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{Path(config.model).name}"
    return RunDir((Path(config.runs_root) / name).resolve())


def run_training(config: TrainConfig, mirror: str | None = None, reporter: Reporter | None = None) -> dict:
    """Train as `config` says into a new run; return the run's summary (see `finish`)."""
    return _train(config, new_run_dir(config), False, mirror, reporter or Reporter())


def resume_training(run: RunDir, mirror: str | None = None, reporter: Reporter | None = None) -> dict:
    """Continue an interrupted run from its last checkpoint with its saved config."""
    if not run.config.exists():
        raise InputError(f"{run.path}: no config.json; nothing to resume")
    summary = run.read_summary()
    if summary.get("stopped_early"):
        raise InputError(f"{run.path}: this run stopped early at epoch {summary['epochs_run']} (dev F1 had not "
                         f"improved since epoch {summary['best_epoch']}); there is nothing to resume")
    if summary and not summary.get("export", {}).get("failed"):
        raise InputError(f"{run.path}: this run has finished already")
    # A run whose conversion failed is finished but resumable: its last checkpoint is the last
    # epoch, so only the stages after training run again (finish.py), the failed export first.
    return _train(run.read_config().config, run, True, mirror, reporter or Reporter())


def _train(config: TrainConfig, run: RunDir, resuming: bool, mirror: str | None, reporter: Reporter) -> dict:
    """Train into `run`, locked meanwhile; Ctrl-C or SIGTERM keeps the last complete epoch (Interrupted).

    In a multi-worker cluster every worker calls this; only the chief writes the run.
    """
    dist = make_distribution(config.strategy)  # before TensorFlow runs any op
    config.check_distribution(dist.workers, dist.replicas, dist.name, named=resuming or bool(config.run_name))
    session = Session(config, run, resuming, dist, reporter)
    if not dist.is_chief:
        # The same check as the chief's below, before the first collective (the chief writes nothing
        # until all workers have met), so that every worker stops with the same clear error.
        _refuse_a_used_run(run, resuming)
        return _fit(session, mirror)
    with run.lock(), sigterm_as_interrupt():
        _refuse_a_used_run(run, resuming)
        try:
            return _fit(session, mirror)
        except BaseException as err:
            if not run.has_content():  # failed before writing anything: leave no empty run behind
                run.remove_empty()
            if isinstance(err, KeyboardInterrupt):
                raise _interrupted(run, isinstance(err, Terminated)) from None
            raise


def _refuse_a_used_run(run: RunDir, resuming: bool) -> None:
    if not resuming and run.has_content():
        raise InputError(f"{run.path}: run directory exists already; choose another --run-name or use --resume")


def _interrupted(run: RunDir, terminated: bool) -> Interrupted:
    what, code = ("terminated (SIGTERM)", 143) if terminated else ("interrupted", 130)
    if not run.config.exists():
        return Interrupted(f"{what} before the run was set up; nothing was saved", code)
    done = len(run.read_metrics())
    saved = f"epochs 1-{done} are saved" if done else "no epoch had finished"
    return Interrupted(f"{what}; {saved}. Continue with: nerctl train --resume --run-dir {run.path}", code)


def _fit(session: Session, mirror: str | None) -> dict:
    """The four phases; scratch files and writers are released however it ends."""
    started = time.time()
    with contextlib.ExitStack() as cleanup:
        prep = prepare(session, mirror)
        ckpt = restore_or_set_up(session, prep, cleanup)
        tf = import_tensorflow()
        # TensorBoard (`tensorboard --logdir RUN/logs`). A resumed run writes the steps of the
        # epoch it redoes again; TensorBoard shows the later values.
        board = tf.summary.create_file_writer(str(session.run.logs)) if session.chief else tf.summary.create_noop_writer()
        cleanup.callback(board.close)
        for result in train_epochs(session, prep, ckpt, board):
            log_epoch(session, result)
            save_epoch(session, prep, ckpt, board, result)
        averaged = average_epochs(session, prep, ckpt) if ckpt.average is not None else None
        return finish(session, prep, ckpt, started, averaged)
