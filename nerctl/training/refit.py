"""Refit (`--refit`): once dev has chosen the epoch count, train the final model on train + dev.

The selection run is an ordinary run: its best epoch, chosen on dev, says how
many epochs to train. Refit then trains a fresh model (same model, seed and
settings) on train + dev for that many epochs, with the learning-rate schedule
spread over them, and no model choice at all: the last epoch is the model. The
selection's model is kept as `selection/`; the refit one becomes `best/`, which
export, test scoring, evaluate and predict use. The dev figures the run
reports stay the selection's: the refit model has seen dev, so no dev figure of
it means anything.

Refit keeps no checkpoint of its own. It is deterministic (data order from
(seed, epoch), dropout from (seed, step)), so a run killed during it and
resumed trains it again from the start and ends with the same model.
"""
from __future__ import annotations

import dataclasses
import shutil
from typing import Any

from ..core.atomic import replace_dir
from ..modeling.model import key_dropout_to_step
from ..modeling.runtime import import_tensorflow
from .epochs import save_model, train_one_epoch
from .setup import build_network, make_step
from .state import Checkpointed, Prepared, Session
from .step import make_optimizer


def refit_best(session: Session, prep: Prepared, selection: Checkpointed) -> dict[str, Any]:
    """Train on train + dev for the selection's best epoch count; the model replaces best/.

    Returns the provenance summary.json records under "refit".
    """
    tf = import_tensorflow()
    config, run = session.config, session.run
    epochs = selection.best_epoch
    if not run.selection.is_dir():  # the first attempt: keep the selection's model (a resumed refit has it)
        tmp = run.path / ".selection.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(run.best, tmp)
        replace_dir(tmp, run.selection)
    sentences = prep.data.train + prep.data.dev
    session.log(f"refit: training a new model on train + dev ({len(sentences)} sentences) for {epochs} epoch(s), "
                f"the best epoch count on dev; the selection's model is kept in {run.selection.name}/")
    strategy = session.dist.strategy
    model, crf, variables, scales = build_network(config, prep.model_path, prep.label_map, strategy, prep.precision)
    windows = prep.encoder.encode([s.words for s in sentences], [s.tags for s in sentences])
    refit = dataclasses.replace(prep, windows=windows, model=model, variables=variables, crf=crf, lr_scales=scales)
    with strategy.scope():
        optimizer = make_optimizer(config, refit.steps_per_epoch * epochs)
        key_dropout_to_step(model, config.seed, optimizer.iterations)
    train_step = make_step(session, refit, optimizer)
    # The progress bar and the schedule count the refit's own epochs; it writes nothing to TensorBoard.
    refit_session = dataclasses.replace(session, config=dataclasses.replace(config, epochs=epochs))
    board = tf.summary.create_noop_writer()
    losses = [train_one_epoch(refit_session, refit, optimizer, board, train_step, epoch)
              for epoch in range(1, epochs + 1)]
    save_model(refit, run.best)
    return {"epochs": epochs, "train_sentences": len(sentences), "train_windows": len(windows),
            "sources": [prep.data.sources["train"], prep.data.sources["dev"]],
            "loss_per_epoch": [float(sum(epoch) / len(epoch)) for epoch in losses],
            "selection": {"model": run.selection.name + "/", "best_epoch": epochs,
                          "best_dev_f1": selection.best_f1}}
