"""Setting a run up: data, label map, tokenizer and network (`prepare`), then the checkpoint restored or the run's files written."""
from __future__ import annotations

import contextlib
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from .. import __version__
from ..artifacts.rundir import SavedConfig
from ..config import TrainConfig
from ..core.atomic import replace_dir
from ..core.errors import InputError
from ..data.tags import LabelMap
from ..modeling.crf import Transitions, assign, build_crf, crf_loss_fn
from ..modeling.encoding import Encoder, PieceTokenizer
from ..modeling.families import check_trainable, depth_overrides, dropout_overrides
from ..modeling.model import (
    build_model,
    key_dropout_to_step,
    load_model_config,
    load_tokenizer,
    resolve_model,
    variables_to_train,
)
from ..modeling.runtime import import_tensorflow, resolve_precision
from .averaging import WeightAverage
from .corpus import load_data
from .distill import TeacherRun, distill_loss_fn, load_teacher_model
from .distribute import check_workers_agree, fingerprint
from .state import Checkpointed, Prepared, Session
from .step import layer_lr_scales, make_optimizer, make_train_step, masked_loss_sum


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"nerctl": __version__, "python": platform.python_version()}
    for name in ("tensorflow", "tf-keras", "transformers", "tokenizers", "numpy", "seqeval"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def prepare(session: Session, mirror: str | None = None) -> Prepared:
    """Read and check the data, build the label map, tokenizer and model, encode the training windows."""
    tf = import_tensorflow()
    config, run = session.config, session.run
    teacher = TeacherRun.open(config.teacher) if config.teacher else None
    model_path = str(teacher.weights) if teacher else resolve_model(config.model)
    tokenizer_path = str(teacher.tokenizer) if teacher else model_path  # a run's best/ holds no tokenizer
    check_family(model_path, config)  # a model nerctl cannot train is refused before anything is read
    data = load_data(config, mirror, warn=session.log)
    # Setting a run up writes config.json, labels.json, then tokenizer/ (atomically, last):
    # a run killed before its tokenizer was saved is set up again, from the same data.
    set_up = session.resuming and run.tokenizer.is_dir()
    label_map = run.read_labels() if set_up else teacher.label_map if teacher else LabelMap.from_sentences(
        data.train + data.dev)
    for split, sentences in (("dev", data.dev), ("train", data.train), ("test", data.test)):
        if sentences is not None:
            label_map.check(sentences, data.sources[split])

    tf.keras.utils.set_random_seed(config.seed)
    # Deterministic kernels: a rerun or a resumed run gives the same numbers, not nearly
    # the same (no measurable cost on CPU in a 50-step A/B of the MiniLM train step).
    tf.config.experimental.enable_op_determinism()
    tokenizer = load_tokenizer(str(run.tokenizer) if set_up else tokenizer_path)
    limit = getattr(tokenizer, "model_max_length", None)
    if limit and limit < 10**6 and config.max_len > limit:
        raise InputError(f"invalid config: max_len {config.max_len} exceeds the model's limit of {limit} pieces")
    precision = resolve_precision(config.precision)
    model, crf, variables, lr_scales = build_network(config, model_path, label_map, session.dist.strategy,
                                                     precision)
    # Inputs are all checked by now: from here on, logs, then the work.
    session.log(f"run {run.path}")
    session.log(f"data: {len(data.train)} train, {len(data.dev)} dev, "
                f"{len(data.test) if data.test is not None else 0} test sentences; {len(label_map.labels)} labels")
    encoder = Encoder(PieceTokenizer.from_transformers(tokenizer), config.max_len, label_map)
    windows = encoder.encode([s.words for s in data.train], [s.tags for s in data.train])
    if len(windows) > len(data.train):
        session.log(f"{len(windows) - len(data.train)} long sentence(s) split into overlapping windows "
                    f"of {config.max_len} pieces")
    distill_sum = distill_loss_fn(load_teacher_model(teacher), config.distill_weight) if teacher else None
    return Prepared(data, label_map, tokenizer, encoder, windows, model, model_path, precision, variables,
                    set_up, config.batch_size, crf, lr_scales, distill_sum)


def check_family(model_path: str, config: TrainConfig) -> None:
    """Refuse a model family nerctl cannot train, or a knob the family lacks, from its config alone."""
    model_config = load_model_config(model_path)
    check_trainable(model_config, config.model)
    dropout_overrides(model_config, config.dropout)
    depth_overrides(model_config, config.layers)


def build_network(config: TrainConfig, model_path: str, label_map: LabelMap, strategy, precision: str):
    """(model, CRF module or None, the variables training updates, their layer_lr_scales) for the config's
    head. A knob the model's family lacks fails here, before the run is written. A CRF starts from the
    model's own scores where it has them (a teacher's best/), else from zero."""
    model = build_model(model_path, label_map, strategy, precision, config.dropout, config.layers)
    crf = build_crf(label_map.labels, strategy) if config.head == "crf" else None
    scores = Transitions.load(Path(model_path), label_map.labels) if crf is not None else None
    if scores is not None:
        assign(crf, scores)
    variables = variables_to_train(model, config.freeze_embeddings, config.freeze_layers)
    scales = layer_lr_scales(model, variables, config.layer_lr_decay)
    if crf is not None:
        variables += list(crf.trainable_variables)
        scales = scales and scales + [1.0] * len(crf.trainable_variables)
    return model, crf, variables, scales


def make_step(session: Session, prep: Prepared, optimizer) -> Callable:
    """The prepared network's train step: its head's summed loss, its layer-wise learning rates."""
    loss_sum = crf_loss_fn(prep.crf, prep.label_map.labels) if prep.crf is not None else masked_loss_sum
    return make_train_step(prep.model, optimizer, prep.variables, session.dist.strategy, loss_sum, prep.lr_scales,
                           prep.distill_sum)


def restore_or_set_up(session: Session, prep: Prepared, cleanup: contextlib.ExitStack) -> Checkpointed:
    """Every resume and chief rule, as ordered stages.

    Workers first agree on data and settings; the optimizer and checkpoint are
    made; a resumed run restores its last checkpoint (metrics of later, unsaved
    epochs are dropped); a new one, on the chief, gets config.json, labels.json
    and tokenizer/. Only the chief writes: other workers save their checkpoints
    to a scratch folder, removed at the end.
    """
    agree_on_data(session, prep)
    ckpt = make_checkpoint(session, prep, cleanup)
    restore(session, prep, ckpt)
    if session.chief and not prep.set_up:
        write_run_files(session, prep)
    return ckpt


def agree_on_data(session: Session, prep: Prepared) -> None:
    """Workers must build the same batches and take the same number of steps: same data, same settings."""
    config = session.config
    check_workers_agree(session.dist, "the training data and config", fingerprint(
        prep.label_map.labels, config.shared_settings(), [(s.words, s.tags) for s in prep.data.train],
        [(s.words, s.tags) for s in prep.data.dev]))
    _log_model(session, prep)


def make_checkpoint(session: Session, prep: Prepared, cleanup: contextlib.ExitStack) -> Checkpointed:
    """The optimizer, the run's state variables and the checkpoint that saves them with the weights."""
    tf = import_tensorflow()
    config = session.config
    with session.dist.strategy.scope():
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
    manager = tf.train.CheckpointManager(checkpoint, str(scratch or session.run.checkpoints), max_to_keep=1)
    return Checkpointed(optimizer, checkpoint, manager, state, average)


def restore(session: Session, prep: Prepared, ckpt: Checkpointed) -> None:
    """Restore the last checkpoint of a run that has one; drop the metrics of epochs after it."""
    tf = import_tensorflow()
    run = session.run
    latest = tf.train.latest_checkpoint(str(run.checkpoints)) if prep.set_up else None
    if latest:
        ckpt.checkpoint.restore(latest)
        session.log(f"resumed after epoch {ckpt.epoch} (best dev F1 {ckpt.best_f1:.4f} at epoch {ckpt.best_epoch})")
    elif session.resuming:
        session.log("no epoch had finished: starting again from epoch 1")
    if session.chief and session.resuming:
        run.truncate_metrics(ckpt.epoch)
    check_workers_agree(session.dist, "the epoch to resume after", ckpt.epoch)


def write_run_files(session: Session, prep: Prepared) -> None:
    """A new run's config.json (not on a resume: it has one), labels.json, then tokenizer/ (atomically, last)."""
    run = session.run
    if not session.resuming:
        run.write_config(SavedConfig(session.config, {"model": prep.model_path, "precision": prep.precision,
                                                      **prep.data.sources}, package_versions()))
    run.write_labels(prep.label_map)
    tmp = run.path / ".tokenizer.tmp"
    prep.tokenizer.save_pretrained(str(tmp))
    replace_dir(tmp, run.tokenizer)


def _log_model(session: Session, prep: Prepared) -> None:
    config, dist = session.config, session.dist
    frozen = ", word embeddings frozen" if config.freeze_embeddings else ""
    if config.freeze_layers:
        frozen = f", embeddings and {config.freeze_layers} lowest layer(s) frozen"
    model = config.model
    if config.teacher:
        model = f"{prep.model.config.num_hidden_layers} layer(s) of {config.teacher}, taught by it"
    elif config.layers:
        model = f"{config.model}, its {config.layers} lowest layer(s)"
    session.log(f"model {model} ({prep.precision}{frozen}), {prep.steps_per_epoch} steps per epoch"
                + (f"; {dist.name} strategy, {dist.replicas} replicas" if dist.replicas > 1 else ""))
