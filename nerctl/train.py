"""Training: fine-tune a token classifier, pick the best epoch on dev, score test once.

The test set never influences training or model choice: the best epoch is the
one with the highest dev entity F1, and test is scored once, at the end, with
the saved best model (loaded back from disk, exactly as `evaluate` would).
"""
from __future__ import annotations

import contextlib
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .bio import Sentence, read_bio
from .config import TrainConfig, load_saved_config
from .data import dataset_split
from .distribute import Distribution, check_workers_agree, fingerprint, make_distribution, replica_rows
from .errors import InputError, Interrupted
from .evaluate import evaluate_sentences
from .model import (build_model, import_tensorflow, key_dropout_to_step, load_tokenizer, load_trained_model,
                    resolve_model, resolve_precision, variables_to_train)
from .predict import Tagger
from .preprocess import IGNORE_INDEX, Encoder, LabelMap, PieceTokenizer, batch_plan, collate
from .progress import Reporter
from .rundir import RunDir, atomic_write_json, atomic_write_text, interrupts_deferred, replace_dir, update_latest
from .serving import KerasForward, export_model


@dataclass
class TrainData:
    train: list[Sentence]
    dev: list[Sentence]
    test: list[Sentence] | None
    sources: dict[str, str]  # what each split was read from


def split_dev(sentences: list[Sentence], fraction: float, seed: int) -> tuple[list[Sentence], list[Sentence]]:
    """A seeded random dev split; the rest stays in training order."""
    if len(sentences) < 2:
        raise InputError("the training file needs at least 2 sentences to carve a dev split (or give --eval-file)")
    n_dev = min(len(sentences) - 1, max(1, round(len(sentences) * fraction)))
    dev_ids = set(np.random.default_rng(seed).permutation(len(sentences))[:n_dev].tolist())
    train = [s for i, s in enumerate(sentences) if i not in dev_ids]
    dev = [s for i, s in enumerate(sentences) if i in dev_ids]
    return train, dev


def load_data(config: TrainConfig, mirror: str | None = None, warn=None) -> TrainData:
    """Read train/dev/test as the config says (explicit files win over the dataset).

    `warn` hears about repaired tags (see `read_bio`)."""
    # Sources are kept as absolute paths: `report` and the model card read them from anywhere.
    if config.train_file:
        train_path, test_path = _absolute(config.train_file), _absolute(config.test_file)
    else:
        train_path = str(dataset_split(config.dataset, "train", mirror=mirror))
        test_path = _absolute(config.test_file) or str(dataset_split(config.dataset, "test", mirror=mirror))
    train = read_bio(train_path, config.format, warn)
    sources = {"train": train_path}
    if config.eval_file:
        sources["dev"] = _absolute(config.eval_file)
        dev = read_bio(sources["dev"], config.format, warn)
    else:
        train, dev = split_dev(train, config.dev_fraction, config.seed)
        sources["dev"] = f"{config.dev_fraction:g} of {train_path} (seed {config.seed})"
    test = read_bio(test_path, config.format, warn) if test_path else None
    if test_path:
        sources["test"] = test_path
    return TrainData(train, dev, test, sources)


def _absolute(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


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


def masked_loss_sum(labels, logits):
    """Summed cross-entropy over positions with a label (first pieces of owned words)."""
    tf = import_tensorflow()
    mask = tf.not_equal(labels, IGNORE_INDEX)
    safe = tf.where(mask, labels, tf.zeros_like(labels))
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=tf.cast(logits, tf.float32))
    return tf.reduce_sum(losses * tf.cast(mask, tf.float32))


def make_optimizer(config: TrainConfig, total_steps: int):
    """AdamW with linear warm-up then linear decay to 0, global-norm clipping at 1.0."""
    from transformers import create_optimizer

    optimizer, _ = create_optimizer(
        init_lr=config.lr, num_train_steps=total_steps, num_warmup_steps=int(total_steps * config.warmup_ratio),
        weight_decay_rate=config.weight_decay, adam_global_clipnorm=1.0,
    )
    return optimizer


def make_train_step(model, optimizer, variables: list, strategy=None):
    """`step(ids, mask, labels) -> mean loss`: one optimisation step on a global batch.

    Traced once for [batch, length] int32 inputs of any shape. Every worker passes
    the same global batch; each replica computes its own contiguous slice of it
    and divides its summed loss by the whole batch's label count, so that the
    all-reduced (summed) gradients are the gradient of the batch's mean loss, as
    on one device.
    """
    tf = import_tensorflow()
    strategy = strategy or tf.distribute.get_strategy()
    spec = tf.TensorSpec([None, None], tf.int32)

    def replica_step(ids, mask, labels):
        context = tf.distribute.get_replica_context()
        start, end = replica_rows(tf.shape(ids)[0], tf.cast(context.replica_id_in_sync_group, tf.int32),
                                  context.num_replicas_in_sync)
        count = tf.maximum(tf.reduce_sum(tf.cast(tf.not_equal(labels, IGNORE_INDEX), tf.float32)), 1.0)
        ids, mask, labels = ids[start:end], mask[start:end], labels[start:end]
        with tf.GradientTape() as tape:
            logits = model(input_ids=ids, attention_mask=mask, training=True).logits
            loss_sum = masked_loss_sum(labels, logits)
            loss = loss_sum / count
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    @tf.function(input_signature=[spec, spec, spec])
    def step(ids, mask, labels):
        losses = strategy.run(replica_step, args=(ids, mask, labels))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    return step


def train(config: TrainConfig, resume: RunDir | None = None, mirror: str | None = None,
          reporter: Reporter | None = None) -> dict:
    """Train as `config` says (or continue `resume`); return the run's summary.

    The run directory is locked meanwhile. Ctrl-C stops at once and keeps the
    last complete epoch's checkpoint (raises Interrupted, exit code 130). In a
    multi-worker cluster every worker calls this; only the chief writes the run.
    """
    reporter = reporter or Reporter()
    dist = make_distribution(config.strategy)  # before TensorFlow runs any op
    if dist.workers > 1 and not (resume or config.run_name):
        raise InputError("multi-worker training needs --run-dir: the same path on every worker, on storage they share")
    run = resume or new_run_dir(config)
    if not dist.is_chief:
        # The same check as the chief's below, before the first collective (the chief writes nothing
        # until all workers have met), so that every worker stops with the same clear error.
        _refuse_a_used_run(run, bool(resume))
        return _train_run(config, run, bool(resume), mirror, reporter, dist)
    with run.lock():
        _refuse_a_used_run(run, bool(resume))
        try:
            return _train_run(config, run, bool(resume), mirror, reporter, dist)
        except BaseException as err:
            if not run.has_content():  # failed before writing anything: leave no empty run behind
                run.remove_empty()
            if isinstance(err, KeyboardInterrupt) and run.config.exists():
                done = len(run.read_metrics())
                saved = f"epochs 1-{done} are saved" if done else "no epoch had finished"
                raise Interrupted(f"interrupted; {saved}. Continue with: nerctl train --resume "
                                  f"--run-dir {run.path}") from None
            if isinstance(err, KeyboardInterrupt):
                raise Interrupted("interrupted before the run was set up; nothing was saved") from None
            raise


def _refuse_a_used_run(run: RunDir, resume: bool) -> None:
    if not resume and run.has_content():
        raise InputError(f"{run.path}: run directory exists already; choose another --run-name or use --resume")


def _train_run(config: TrainConfig, run: RunDir, resume: bool, mirror: str | None, reporter: Reporter,
               dist: Distribution) -> dict:
    """Train into `run` (locked by the caller, on the chief); scratch files and writers are released however it ends."""
    with contextlib.ExitStack() as cleanup:
        return _train_body(config, run, resume, mirror, reporter, dist, cleanup)


def _train_body(config: TrainConfig, run: RunDir, resume: bool, mirror: str | None, reporter: Reporter,
                dist: Distribution, cleanup: contextlib.ExitStack) -> dict:
    tf = import_tensorflow()
    chief = dist.is_chief  # the only writer of the run directory
    log = reporter.log if dist.workers == 1 else (lambda message: reporter.log(f"[{dist.task}] {message}"))
    started = time.time()

    data = load_data(config, mirror, warn=log)
    # Setting a run up writes config.json, labels.json, then tokenizer/ (atomically, last):
    # a run killed before its tokenizer was saved is set up again, from the same data.
    set_up = resume and run.tokenizer.is_dir()
    if set_up:
        label_map = LabelMap.load(run.labels)
    else:
        label_map = LabelMap.from_sentences(data.train + data.dev)
    label_map.check(data.dev, data.sources["dev"])
    label_map.check(data.train, data.sources["train"])
    if data.test is not None:
        label_map.check(data.test, data.sources["test"])

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
    model = build_model(model_path, label_map, dist.strategy, precision)
    variables = variables_to_train(model, config.freeze_embeddings, config.freeze_layers)
    # Inputs are all checked by now: from here on, logs, then the work.
    log(f"run {run.path}")
    log(f"data: {len(data.train)} train, {len(data.dev)} dev, "
        f"{len(data.test) if data.test is not None else 0} test sentences; {len(label_map.labels)} labels")
    pieces = PieceTokenizer.from_transformers(tokenizer)
    encoder = Encoder(pieces, config.max_len, label_map)
    windows = encoder.encode([s.words for s in data.train], [s.tags for s in data.train])
    if len(windows) > len(data.train):
        log(f"{len(windows) - len(data.train)} long sentence(s) split into overlapping windows of {config.max_len} pieces")

    steps_per_epoch = -(-len(windows) // config.batch_size)  # batch_plan cuts the windows into full batches
    total_steps = steps_per_epoch * config.epochs
    # Workers must build the same batches and take the same number of steps: same data, same settings.
    settings = {k: v for k, v in config.to_dict().items()
                if k not in ("dataset", "train_file", "eval_file", "test_file", "format", "runs_root", "run_name")}
    check_workers_agree(dist, "the training data and config", fingerprint(
        label_map.labels, settings, [(s.words, s.tags) for s in data.train], [(s.words, s.tags) for s in data.dev]))
    frozen = ", word embeddings frozen" if config.freeze_embeddings else ""
    if config.freeze_layers:
        frozen = f", embeddings and {config.freeze_layers} lowest layer(s) frozen"
    log(f"model {config.model} ({precision}{frozen}), {steps_per_epoch} steps per epoch"
        + (f"; {dist.name} strategy, {dist.replicas} replicas" if dist.replicas > 1 else ""))
    with dist.strategy.scope():
        optimizer = make_optimizer(config, total_steps)
        key_dropout_to_step(model, config.seed, optimizer.iterations)
        state = {"epoch": tf.Variable(0, dtype=tf.int64), "best_f1": tf.Variable(-1.0, dtype=tf.float64),
                 "best_epoch": tf.Variable(0, dtype=tf.int64)}
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, **state)
    # Every worker takes part in a save (it may run collectives); others write to a scratch folder.
    scratch = None if chief else Path(tempfile.mkdtemp(prefix="nerctl-worker-checkpoint-"))
    if scratch:
        cleanup.callback(shutil.rmtree, scratch, ignore_errors=True)
    manager = tf.train.CheckpointManager(checkpoint, str(scratch or run.checkpoints), max_to_keep=1)

    latest = tf.train.latest_checkpoint(str(run.checkpoints)) if set_up else None
    if latest:
        checkpoint.restore(latest)
        if chief:
            run.truncate_metrics(int(state["epoch"].numpy()))
        log(f"resumed after epoch {int(state['epoch'].numpy())} (best dev F1 {float(state['best_f1'].numpy()):.4f} "
            f"at epoch {int(state['best_epoch'].numpy())})")
    elif resume:
        if chief:
            run.truncate_metrics(0)
        log("no epoch had finished: starting again from epoch 1")
    check_workers_agree(dist, "the epoch to resume after", int(state["epoch"].numpy()))
    if chief and not set_up:
        if not resume:
            atomic_write_json(run.config, {**config.to_dict(), "versions": package_versions(),
                                           "resolved": {"model": model_path, "precision": precision, **data.sources}})
        atomic_write_text(run.labels, label_map.to_json())
        tmp = run.path / ".tokenizer.tmp"
        tokenizer.save_pretrained(str(tmp))
        replace_dir(tmp, run.tokenizer)

    train_step = make_train_step(model, optimizer, variables, dist.strategy)
    # TensorBoard (`tensorboard --logdir RUN/logs`). A resumed run writes the steps of the
    # epoch it redoes again; TensorBoard shows the later values.
    board = tf.summary.create_file_writer(str(run.logs)) if chief else tf.summary.create_noop_writer()
    cleanup.callback(board.close)
    tagger = Tagger(KerasForward(model), pieces, label_map, config.max_len, config.eval_batch_size)
    first_epoch = int(state["epoch"].numpy()) + 1
    if first_epoch == 1:
        log("the first steps trace the TensorFlow graph and take a few seconds longer")
    for epoch in range(first_epoch, config.epochs + 1):
        epoch_start = time.time()
        # The data order depends only on (seed, epoch) and dropout on (seed, step): a resumed
        # run repeats the epochs it redoes exactly (weights and optimizer from the checkpoint).
        plan = batch_plan(windows, config.batch_size, np.random.default_rng([config.seed, epoch]))

        losses = []
        with reporter.task(f"epoch {epoch}/{config.epochs}", len(plan), unit="steps") as bar:
            for number, indices in enumerate(plan, (epoch - 1) * steps_per_epoch + 1):
                batch = collate(windows, indices, encoder.pad_id)
                losses.append(float(train_step(batch.input_ids, batch.attention_mask, batch.labels)))
                bar.advance(1, info=f"loss {np.mean(losses[-50:]):.4f}")
                with board.as_default(step=number):
                    tf.summary.scalar("train/loss", losses[-1])
                    tf.summary.scalar("train/learning_rate", optimizer.learning_rate(number - 1))  # what step `number` used
        train_seconds = time.time() - epoch_start
        dev_metrics, _ = evaluate_sentences(tagger, data.dev)
        is_best = dev_metrics["f1"] > float(state["best_f1"].numpy())
        record = {
            "epoch": epoch, "loss": float(np.mean(losses)), "lr": float(optimizer.learning_rate(optimizer.iterations)),
            "dev_precision": dev_metrics["precision"], "dev_recall": dev_metrics["recall"], "dev_f1": dev_metrics["f1"],
            "dev_token_accuracy": dev_metrics["token_accuracy"], "train_seconds": round(train_seconds, 2),
            "train_sentences_per_second": round(len(data.train) / train_seconds, 2), "best": is_best,
        }
        log(f"epoch {epoch}/{config.epochs}  loss {record['loss']:.4f}  dev P {dev_metrics['precision']:.4f} "
            f"R {dev_metrics['recall']:.4f} F1 {dev_metrics['f1']:.4f}  "
            f"({train_seconds:.0f}s, {record['train_sentences_per_second']:.0f} sent/s){'  * best' if is_best else ''}")
        with board.as_default(step=epoch * steps_per_epoch):
            for name in ("precision", "recall", "f1"):
                tf.summary.scalar(f"dev/{name}", dev_metrics[name])
            tf.summary.scalar("train/epoch_loss", record["loss"])
        with interrupts_deferred():  # Ctrl-C waits until the epoch is saved
            board.flush()
            if is_best:  # every worker scored the same dev set with the same weights
                state["best_f1"].assign(dev_metrics["f1"])
                state["best_epoch"].assign(epoch)
            if is_best and chief:
                tmp = run.path / ".best.tmp"
                model.save_pretrained(str(tmp))
                replace_dir(tmp, run.best)
            if chief:
                run.append_metrics(record)
            state["epoch"].assign(epoch)
            manager.save(checkpoint_number=epoch)

    summary = {
        "run": str(run.path), "model": config.model, "epochs": config.epochs,
        "best_epoch": int(state["best_epoch"].numpy()), "best_dev_f1": float(state["best_f1"].numpy()),
        "train_sentences": len(data.train), "dev_sentences": len(data.dev),
        "seconds": round(time.time() - started, 1), "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if dist.workers > 1:
        summary["strategy"] = {"name": dist.name, "workers": dist.workers, "replicas": dist.replicas}
    if not chief:
        log(f"done; the chief writes {run.path}")
        return summary
    log(f"exporting the best model (epoch {summary['best_epoch']}) to {run.saved_model.name}/ and {run.tflite.name}")
    export_best(run)
    if data.test is not None:
        best = Tagger.from_run(run, config.eval_batch_size, precision)
        test_metrics, _ = evaluate_sentences(best, data.test)
        summary["test"] = {"file": data.sources["test"], **test_metrics}
        log(f"test (best epoch {summary['best_epoch']}): P {test_metrics['precision']:.4f} "
            f"R {test_metrics['recall']:.4f} F1 {test_metrics['f1']:.4f}")
    atomic_write_json(run.summary, summary)
    update_latest(run)
    return summary


def export_best(run: RunDir) -> None:
    """Export the run's best/ model (fp32) as its SavedModel and LiteRT model."""
    model = load_trained_model(run.best, "fp32")
    tmp_dir, tmp_file = run.path / ".saved_model.tmp", run.path / ".model.tflite.tmp"
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    export_model(model, LabelMap.load(run.labels).labels, tmp_dir, tmp_file)
    replace_dir(tmp_dir, run.saved_model)
    os.replace(tmp_file, run.tflite)


def resume_run(run: RunDir, mirror: str | None = None, reporter: Reporter | None = None) -> dict:
    """Continue an interrupted run from its last checkpoint with its saved config."""
    if not run.config.exists():
        raise InputError(f"{run.path}: no config.json; nothing to resume")
    if run.summary.exists():
        raise InputError(f"{run.path}: this run has finished already")
    return train(load_saved_config(run.config), resume=run, mirror=mirror, reporter=reporter)

