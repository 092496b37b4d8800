"""Training: fine-tune a token classifier, pick the best epoch on dev, score test once.

The test set never influences training or model choice: the best epoch is the
one with the highest dev entity F1, and test is scored once, at the end, with
the saved best model, on the engine `nerctl evaluate` picks by default, so
`evaluate` on the same file reproduces summary.json's figures exactly.

A run goes through four phases, each a function of its own:

    prepare            data, label map, tokenizer, model, encoded windows (writes nothing)
    restore_or_set_up  every resume and chief rule: restore the last checkpoint, or write
                       the run's config, labels and tokenizer
    train_epochs       yields each epoch's result (as spaCy's train_while_improving);
                       the caller logs it and saves it (`save_epoch`)
    average_epochs     with --average-last: the last epochs' mean weights, best/ if better on dev
    finish             export, test score, summary.json, runs/latest
"""
from __future__ import annotations

import contextlib
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from . import __version__
from .averaging import WeightAverage
from .atomic import Terminated, interrupts_deferred, replace_dir, sigterm_as_interrupt
from .config import TrainConfig
from .corpus import TrainData, load_data
from .crf import build_crf, crf_loss_fn, learned
from .distribute import Distribution, check_workers_agree, fingerprint, make_distribution
from .engines import KerasForward
from .errors import InputError, Interrupted
from .scoring import evaluate_sentences
from .model import (build_model, import_tensorflow, key_dropout_to_step, load_tokenizer, resolve_model,
                    resolve_precision, variables_to_train)
from .preprocess import Encoder, PieceTokenizer, Window, batch_plan, collate
from .progress import Reporter
from .rundir import RunDir, SavedConfig, update_latest
from .step import layer_lr_scales, make_optimizer, make_train_step, masked_loss_sum
from .tagger import Tagger
from .tags import LabelMap


@dataclass
class Session:
    """One process' part in a run: what it trains, where, and as which worker."""

    config: TrainConfig
    run: RunDir
    resuming: bool
    dist: Distribution
    reporter: Reporter

    @property
    def chief(self) -> bool:
        """The only writer of the run directory."""
        return self.dist.is_chief

    def log(self, message: str) -> None:
        self.reporter.log(message if self.dist.workers == 1 else f"[{self.dist.task}] {message}")


@dataclass
class Prepared:
    """What `prepare` builds: the data, its encoding and the model, nothing written yet."""

    data: TrainData
    label_map: LabelMap
    tokenizer: Any  # transformers tokenizer, saved into the run at set-up
    encoder: Encoder
    windows: list[Window]
    model: Any
    model_path: str
    precision: str
    variables: list
    set_up: bool  # an earlier attempt set the run up (its labels and tokenizer are used)
    batch_size: int
    crf: Any = None  # --head crf: the CRF's tf.Module (crf.py), its variables among `variables`

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.windows) // self.batch_size)  # batch_plan cuts the windows into full batches


@dataclass
class Checkpointed:
    """The optimizer and the state a checkpoint saves and restores with the weights."""

    optimizer: Any
    checkpoint: Any
    manager: Any
    state: dict[str, Any] = field(default_factory=dict)  # epoch, best_f1, best_epoch as tf.Variables
    average: WeightAverage | None = None  # --average-last: the running sum of the last epochs' weights

    @property
    def epoch(self) -> int:
        return int(self.state["epoch"].numpy())

    @property
    def best_epoch(self) -> int:
        return int(self.state["best_epoch"].numpy())

    @property
    def best_f1(self) -> float:
        return float(self.state["best_f1"].numpy())


@dataclass
class EpochResult:
    epoch: int
    record: dict[str, Any]  # one line of metrics.jsonl
    is_best: bool


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"nerctl": __version__, "python": platform.python_version()}
    for name in ("tensorflow", "tf-keras", "transformers", "tokenizers", "numpy", "seqeval"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def new_run_dir(config: TrainConfig) -> RunDir:
    """The run's folder (made when the run is locked): its name, or the time and the model's name."""
    name = config.run_name or f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{Path(config.model).name}"
    return RunDir((Path(config.runs_root) / name).resolve())


# ---------------------------------------------------------------- entry points


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
    if summary:
        raise InputError(f"{run.path}: this run has finished already")
    return _train(run.read_config().config, run, True, mirror, reporter or Reporter())


def _train(config: TrainConfig, run: RunDir, resuming: bool, mirror: str | None, reporter: Reporter) -> dict:
    """Train into `run`, locked meanwhile; Ctrl-C or SIGTERM keeps the last complete epoch (Interrupted).

    In a multi-worker cluster every worker calls this; only the chief writes the run.
    """
    dist = make_distribution(config.strategy)  # before TensorFlow runs any op
    if dist.workers > 1 and not (resuming or config.run_name):
        raise InputError("multi-worker training needs --run-dir: the same path on every worker, on storage they share")
    if dist.workers > 1 and config.refit:
        raise InputError("--refit trains on one machine: it cannot be combined with multi-worker training")
    if dist.replicas > 1 and config.layer_lr_decay != 1:
        raise InputError("--layer-lr-decay trains on one device: it cannot be combined with "
                         f"the {dist.name} strategy's {dist.replicas} replicas")
    if config.refit and config.average_last:
        raise InputError("--refit trains its model without dev, so no dev figure can choose an average: "
                         "use --refit or --average-last, not both")
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
            _log_epoch(session, result)
            save_epoch(session, prep, ckpt, board, result)
        averaged = average_epochs(session, prep, ckpt) if ckpt.average is not None else None
        return finish(session, prep, ckpt, started, averaged)


# ---------------------------------------------------------------- phases


def prepare(session: Session, mirror: str | None = None) -> Prepared:
    """Read and check the data, build the label map, tokenizer and model, encode the training windows."""
    tf = import_tensorflow()
    config, run = session.config, session.run
    data = load_data(config, mirror, warn=session.log)
    # Setting a run up writes config.json, labels.json, then tokenizer/ (atomically, last):
    # a run killed before its tokenizer was saved is set up again, from the same data.
    set_up = session.resuming and run.tokenizer.is_dir()
    label_map = run.read_labels() if set_up else LabelMap.from_sentences(data.train + data.dev)
    for split, sentences in (("dev", data.dev), ("train", data.train), ("test", data.test)):
        if sentences is not None:
            label_map.check(sentences, data.sources[split])

    tf.keras.utils.set_random_seed(config.seed)
    # Deterministic kernels: a rerun or a resumed run gives the same numbers, not nearly
    # the same (no measurable cost on CPU in a 50-step A/B of the MiniLM train step).
    tf.config.experimental.enable_op_determinism()
    model_path = resolve_model(config.model)
    tokenizer = load_tokenizer(str(run.tokenizer) if set_up else model_path)
    limit = getattr(tokenizer, "model_max_length", None)
    if limit and limit < 10**6 and config.max_len > limit:
        raise InputError(f"invalid config: max_len {config.max_len} exceeds the model's limit of {limit} pieces")
    precision = resolve_precision(config.precision)
    model, crf, variables = build_network(config, model_path, label_map, session.dist.strategy, precision)
    # Inputs are all checked by now: from here on, logs, then the work.
    session.log(f"run {run.path}")
    session.log(f"data: {len(data.train)} train, {len(data.dev)} dev, "
                f"{len(data.test) if data.test is not None else 0} test sentences; {len(label_map.labels)} labels")
    encoder = Encoder(PieceTokenizer.from_transformers(tokenizer), config.max_len, label_map)
    windows = encoder.encode([s.words for s in data.train], [s.tags for s in data.train])
    if len(windows) > len(data.train):
        session.log(f"{len(windows) - len(data.train)} long sentence(s) split into overlapping windows "
                    f"of {config.max_len} pieces")
    return Prepared(data, label_map, tokenizer, encoder, windows, model, model_path, precision, variables,
                    set_up, config.batch_size, crf)


def build_network(config: TrainConfig, model_path: str, label_map: LabelMap, strategy, precision: str):
    """(model, CRF module or None, the variables training updates) for the config's head."""
    model = build_model(model_path, label_map, strategy, precision, config.dropout)
    crf = build_crf(label_map.labels, strategy) if config.head == "crf" else None
    variables = variables_to_train(model, config.freeze_embeddings, config.freeze_layers)
    return model, crf, variables + (list(crf.trainable_variables) if crf is not None else [])


def make_step(session: Session, prep: Prepared, optimizer) -> Callable:
    """The prepared network's train step: its head's summed loss, the configured layer-wise lr decay."""
    loss_sum = crf_loss_fn(prep.crf, prep.label_map.labels) if prep.crf is not None else masked_loss_sum
    scales = layer_lr_scales(prep.model, prep.variables, session.config.layer_lr_decay)
    return make_train_step(prep.model, optimizer, prep.variables, session.dist.strategy, loss_sum, scales)


def restore_or_set_up(session: Session, prep: Prepared, cleanup: contextlib.ExitStack) -> Checkpointed:
    """Every resume and chief rule in one place.

    Workers first agree on data and settings. A resumed run restores its last
    checkpoint (metrics of later, unsaved epochs are dropped); a new one, on the
    chief, gets config.json, labels.json and tokenizer/. Only the chief writes:
    other workers save their checkpoints to a scratch folder, removed at the end.
    """
    tf = import_tensorflow()
    config, run, dist = session.config, session.run, session.dist
    # Workers must build the same batches and take the same number of steps: same data, same settings.
    check_workers_agree(dist, "the training data and config", fingerprint(
        prep.label_map.labels, config.shared_settings(), [(s.words, s.tags) for s in prep.data.train],
        [(s.words, s.tags) for s in prep.data.dev]))
    _log_model(session, prep)
    with dist.strategy.scope():
        optimizer = make_optimizer(config, prep.steps_per_epoch * config.epochs)
        key_dropout_to_step(prep.model, config.seed, optimizer.iterations)
        state = {"epoch": tf.Variable(0, dtype=tf.int64), "best_f1": tf.Variable(-1.0, dtype=tf.float64),
                 "best_epoch": tf.Variable(0, dtype=tf.int64)}
        head = {"crf": prep.crf} if prep.crf is not None else {}
        average = WeightAverage(prep.variables, config.average_last, config.epochs) if config.average_last else None
        checkpoint = tf.train.Checkpoint(model=prep.model, optimizer=optimizer, **head, **state,
                                         **(average.trackables() if average else {}))
    # Every worker takes part in a save (it may run collectives); others write to a scratch folder.
    scratch = None if session.chief else Path(tempfile.mkdtemp(prefix="nerctl-worker-checkpoint-"))
    if scratch:
        cleanup.callback(shutil.rmtree, scratch, ignore_errors=True)
    ckpt = Checkpointed(optimizer, checkpoint,
                        tf.train.CheckpointManager(checkpoint, str(scratch or run.checkpoints), max_to_keep=1), state,
                        average)
    latest = tf.train.latest_checkpoint(str(run.checkpoints)) if prep.set_up else None
    if latest:
        checkpoint.restore(latest)
        session.log(f"resumed after epoch {ckpt.epoch} (best dev F1 {ckpt.best_f1:.4f} at epoch {ckpt.best_epoch})")
    elif session.resuming:
        session.log("no epoch had finished: starting again from epoch 1")
    if session.chief and session.resuming:
        run.truncate_metrics(ckpt.epoch)
    check_workers_agree(dist, "the epoch to resume after", ckpt.epoch)
    if session.chief and not prep.set_up:
        if not session.resuming:
            run.write_config(SavedConfig(config, {"model": prep.model_path, "precision": prep.precision,
                                                  **prep.data.sources}, package_versions()))
        run.write_labels(prep.label_map)
        tmp = run.path / ".tokenizer.tmp"
        prep.tokenizer.save_pretrained(str(tmp))
        replace_dir(tmp, run.tokenizer)
    return ckpt


def _log_model(session: Session, prep: Prepared) -> None:
    config, dist = session.config, session.dist
    frozen = ", word embeddings frozen" if config.freeze_embeddings else ""
    if config.freeze_layers:
        frozen = f", embeddings and {config.freeze_layers} lowest layer(s) frozen"
    session.log(f"model {config.model} ({prep.precision}{frozen}), {prep.steps_per_epoch} steps per epoch"
                + (f"; {dist.name} strategy, {dist.replicas} replicas" if dist.replicas > 1 else ""))


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
        tagger.transitions = learned(prep.crf, prep.label_map.labels)
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


def _log_epoch(session: Session, result: EpochResult) -> None:
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


def finish(session: Session, prep: Prepared, ckpt: Checkpointed, started: float,
           averaged: dict[str, Any] | None = None) -> dict:
    """On the chief: export the best model, score test with it once, write summary.json and runs/latest.

    `averaged`: average_epochs' record (the best model is the average where it says "kept").
    """
    config, run, dist = session.config, session.run, session.dist
    stopped_early = ckpt.epoch < config.epochs
    summary: dict[str, Any] = {
        "run": str(run.path), "model": config.model, "epochs": config.epochs, "epochs_run": ckpt.epoch,
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
    if not session.chief:
        session.log(f"done; the chief writes {run.path}")
        return summary
    from .export import export_best

    if config.refit:
        from .refit import refit_best

        summary["refit"] = refit_best(session, prep, ckpt)
    chosen = f"the average of epochs {averaged['epochs'][0]}-{averaged['epochs'][-1]}" if (
        averaged and averaged["kept"]) else f"epoch {ckpt.best_epoch}"
    session.log(f"exporting the best model ({chosen}) to {run.saved_model.name}/ and {run.tflite.name}")
    export_best(run)
    if config.int8:
        from .quantize import gate_int8

        session.log("making the int8 model (ONNX Runtime) and checking its dev F1")
        summary["int8"] = gate_int8(run, prep.data.dev, session.log)
    if prep.data.test is not None:
        # The engine and batch size `nerctl evaluate` uses by default: it reproduces these figures.
        best = Tagger.from_run(run)
        test, _ = evaluate_sentences(best, prep.data.test)
        summary["test"] = {"file": prep.data.sources["test"], "engine": best.engine.to_dict(), **test}
        session.log(f"test ({chosen}, {best.engine.backend} {best.engine.precision}): "
                    f"P {test['precision']:.4f} R {test['recall']:.4f} F1 {test['f1']:.4f}")
    run.write_summary(summary)
    update_latest(run)
    return summary
