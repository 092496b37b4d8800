"""The epochs: training passes, dev scoring, saving each epoch, and averaging the last ones.

The data order depends only on (seed, epoch) and dropout on (seed, step), so a
resumed run repeats the epochs it redoes exactly.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..config import TrainConfig
from ..core.atomic import interrupts_deferred, replace_dir
from ..evaluation.scoring import evaluate_sentences
from ..inference.engines.keras import KerasForward
from ..inference.tagger import Tagger
from ..modeling.crf import learned
from ..modeling.encoding import batch_plan, collate
from ..modeling.runtime import import_tensorflow
from .setup import make_step
from .state import Checkpointed, EpochResult, Prepared, Session

# ---------------------------------------------------------------- entry points


# ---------------------------------------------------------------- phases


def stopping_early(config: TrainConfig, epochs_done: int, best_epoch: int) -> bool:
    """Early stopping is on and dev F1 has not improved for `config.early_stopping` epochs."""
    return config.early_stopping > 0 and epochs_done - best_epoch >= config.early_stopping


def train_epochs(session: Session, prep: Prepared, ckpt: Checkpointed, board) -> Iterator[EpochResult]:
    """Train the remaining epochs, yielding each one's result; the caller saves it before the next.

    The data order depends only on (seed, epoch) and dropout on (seed, step): a
    resumed run repeats the epochs it redoes exactly. Ends after the last epoch,
    or earlier by early stopping (checked from the saved state, so a resumed
    run that had met it trains no further).
    """
    config = session.config
    train_step = make_step(session, prep, ckpt.optimizer)
    tagger = dev_tagger(session, prep)
    if ckpt.epoch == 0:
        session.log("the first steps trace the TensorFlow graph and take a few seconds longer")
    for epoch in range(ckpt.epoch + 1, config.epochs + 1):
        if stopping_early(config, ckpt.epoch, ckpt.best_epoch):
            return
        started = time.time()
        losses = train_one_epoch(session, prep, ckpt.optimizer, board, train_step, epoch)
        seconds = time.time() - started
        dev = score_dev(prep, tagger)
        is_best = dev["f1"] > ckpt.best_f1
        yield EpochResult(epoch, {
            "epoch": epoch, "loss": float(np.mean(losses)),
            "lr": float(ckpt.optimizer.learning_rate(ckpt.optimizer.iterations)),
            "dev_precision": dev["precision"], "dev_recall": dev["recall"], "dev_f1": dev["f1"],
            "dev_token_accuracy": dev["token_accuracy"], "train_seconds": round(seconds, 2),
            "train_sentences_per_second": round(len(prep.data.train) / seconds, 2), "best": is_best,
        }, is_best)


def dev_tagger(session: Session, prep: Prepared) -> Tagger:
    """A Tagger over the model being trained, for scoring dev."""
    config = session.config
    return Tagger(KerasForward(prep.model), prep.encoder.tokenizer, prep.label_map, config.max_len,
                  config.eval_batch_size)


def score_dev(prep: Prepared, tagger: Tagger) -> dict[str, Any]:
    """Dev figures of the model's current weights (and a CRF head's current scores)."""
    if prep.crf is not None:
        tagger = tagger.with_transitions(learned(prep.crf, prep.label_map.labels))
    dev, _ = evaluate_sentences(tagger, prep.data.dev)
    return dev


def train_one_epoch(session: Session, prep: Prepared, optimizer: Any, board, train_step: Callable,
                    epoch: int) -> list[float]:
    """One pass over the shuffled batches; per-step loss and `optimizer`'s learning rate go to TensorBoard."""
    tf = import_tensorflow()
    config = session.config
    plan = batch_plan(prep.windows, config.batch_size, np.random.default_rng([config.seed, epoch]))
    losses: list[float] = []
    with session.reporter.task(f"epoch {epoch}/{config.epochs}", len(plan), unit="steps") as bar:
        for number, indices in enumerate(plan, (epoch - 1) * prep.steps_per_epoch + 1):
            batch = collate(prep.windows, indices, prep.encoder.pad_id)
            losses.append(float(train_step(batch.input_ids, batch.attention_mask, batch.labels)))
            bar.advance(1, info=f"loss {np.mean(losses[-50:]):.4f}")
            with board.as_default(step=number):
                tf.summary.scalar("train/loss", losses[-1])
                tf.summary.scalar("train/learning_rate", optimizer.learning_rate(number - 1))  # step `number`'s
    return losses


def log_epoch(session: Session, result: EpochResult) -> None:
    r = result.record
    session.log(f"epoch {r['epoch']}/{session.config.epochs}  loss {r['loss']:.4f}  dev P {r['dev_precision']:.4f} "
                f"R {r['dev_recall']:.4f} F1 {r['dev_f1']:.4f}  ({r['train_seconds']:.0f}s, "
                f"{r['train_sentences_per_second']:.0f} sent/s){'  * best' if result.is_best else ''}")


def save_epoch(session: Session, prep: Prepared, ckpt: Checkpointed, board, result: EpochResult) -> None:
    """Log the epoch to TensorBoard, keep the best model, append metrics, checkpoint; Ctrl-C waits for it."""
    tf = import_tensorflow()
    run, record = session.run, result.record
    with board.as_default(step=result.epoch * prep.steps_per_epoch):
        for name in ("precision", "recall", "f1"):
            tf.summary.scalar(f"dev/{name}", record[f"dev_{name}"])
        tf.summary.scalar("train/epoch_loss", record["loss"])
    with interrupts_deferred():
        board.flush()
        if result.is_best:  # every worker scored the same dev set with the same weights
            ckpt.state["best_f1"].assign(record["dev_f1"])
            ckpt.state["best_epoch"].assign(result.epoch)
        if result.is_best and session.chief:
            save_model(prep, run.best)
        if session.chief:
            run.append_metrics(record)
        ckpt.state["epoch"].assign(result.epoch)
        if ckpt.average is not None:
            ckpt.average.add(result.epoch)
        ckpt.manager.save(checkpoint_number=result.epoch)


def average_epochs(session: Session, prep: Prepared, ckpt: Checkpointed) -> dict[str, Any] | None:
    """Score the mean of the averaged epochs' weights on dev; it replaces best/ where its F1 is higher.

    Runs after the last checkpoint and saves none: a run killed here and
    resumed decides again, the same way. Returns what summary.json records.
    """
    average = ckpt.average
    if not average.count.numpy():
        return None
    epochs = average.epochs
    with average.swapped_in():
        dev = score_dev(prep, dev_tagger(session, prep))
        kept = dev["f1"] > ckpt.best_f1
        if kept and session.chief:
            save_model(prep, session.run.best)
    session.log(f"average of epochs {epochs[0]}-{epochs[-1]}: dev F1 {dev['f1']:.4f} against the best epoch's "
                f"{ckpt.best_f1:.4f}: " + ("it becomes the best model" if kept else "not kept"))
    record = {"epochs": epochs, "dev_f1": dev["f1"], "best_epoch_dev_f1": ckpt.best_f1, "kept": kept}
    if kept:
        ckpt.state["best_f1"].assign(dev["f1"])
    return record


def save_model(prep: Prepared, folder: Path) -> None:
    """The model (and a CRF head's scores) in Hugging Face format at `folder`, swapped in whole."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    prep.model.save_pretrained(str(tmp))
    if prep.crf is not None:
        learned(prep.crf, prep.label_map.labels).save(tmp)
    replace_dir(tmp, folder)


