"""Exporting models: every step that writes a trained model in another format.

At the end of training, `export_best` writes the best model as the run's
SavedModel (saved_model/) and LiteRT model (model.tflite), which predict and
evaluate run. `nerctl export` (`export_run`) then copies a finished run out for
other tools: TF Serving (a SavedModel) or Hugging Face.

    saved_model:  OUT/ is a SavedModel (saved_model.pb, variables/) with
                  labels.json, tokenizer/ (and a CRF head's crf.json) beside saved_model.pb; serve it with
                  TF Serving as /models/<name>/<version>/, or tf.saved_model.load(OUT).
    hf:           OUT/ is a Hugging Face folder: the best model's weights and
                  config (id2label filled in), the tokenizer files, and a README.md
                  model card (data, labels, metrics, config, versions).

Both are written to a temporary folder first and swapped into place at the end,
so an interrupted export never leaves a half folder under OUT's name. Each
export holds a MARKER file: `--force` replaces only an earlier export (or an
empty folder), never another folder, the run itself, or a folder holding it.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Sequence

from ..core.atomic import replace_dir
from ..core.choices import EXPORT_FORMATS
from ..core.errors import InputError
from ..modeling.crf import FILE_NAME as CRF_FILE
from ..modeling.model import load_trained_model, probabilities_fn
from ..modeling.runtime import import_tensorflow, native_stderr_silenced
from .rundir import RunDir

MARKER = ".nerctl-export"

SIGNATURE = "serving_default"  # the exported models' one signature (the litert engine runs it)


def export_run(run: RunDir, fmt: str, out: Path | None = None, force: bool = False) -> Path:
    """Write the run's best model in format `fmt` to `out` (default RUN/export/<fmt>); return it."""
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    if not run.summary.exists():
        raise InputError(f"{run.path}: the run has not finished (no summary.json); finish it with `nerctl train --resume`")
    out = (out or run.path / "export" / fmt).resolve()
    _check_target(run.path.resolve(), out, force)
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "saved_model":
        if not (run.saved_model / "saved_model.pb").is_file():  # runs trained before nerctl exported one
            export_best(run)
        shutil.copytree(run.saved_model, tmp)
        shutil.copy2(run.labels, tmp / "labels.json")
        shutil.copytree(run.tokenizer, tmp / "tokenizer")
        if (run.best / CRF_FILE).is_file():  # --head crf: the tag-transition scores Viterbi adds
            shutil.copy2(run.best / CRF_FILE, tmp / CRF_FILE)
    else:
        shutil.copytree(run.best, tmp)
        for item in run.tokenizer.iterdir():  # tokenizer files beside the weights, as from_pretrained expects
            shutil.copy2(item, tmp / item.name)
        (tmp / "README.md").write_text(model_card(run), encoding="utf-8")
    (tmp / MARKER).write_text(f"{fmt} export of {run.path}\n", encoding="utf-8")
    replace_dir(tmp, out)
    return out


def export_best(run: RunDir) -> None:
    """Export the run's best/ model (fp32) as its SavedModel and LiteRT model (see `export_saved_model`)."""
    export_saved_model(run)
    export_litert(run)


def export_saved_model(run: RunDir) -> None:
    """Write the run's best/ model (fp32) as its saved_model/ (atomically)."""
    model = load_trained_model(run.best, "fp32")
    tmp_dir = run.path / ".saved_model.tmp"
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    save_serving_model(model, run.read_labels().labels, tmp_dir)
    replace_dir(tmp_dir, run.saved_model)


def export_litert(run: RunDir) -> None:
    """Convert the run's saved_model/ to model.tflite (atomically); the converter's errors propagate."""
    tf, tmp_file = import_tensorflow(), run.path / ".model.tflite.tmp"
    try:
        with native_stderr_silenced():  # the converter logs MLIR pass details on fd 2
            converter = tf.lite.TFLiteConverter.from_saved_model(str(run.saved_model), signature_keys=[SIGNATURE])
            tmp_file.write_bytes(converter.convert())
        os.replace(tmp_file, run.tflite)
    finally:
        tmp_file.unlink(missing_ok=True)


def save_serving_model(model, labels: Sequence[str], saved_model: Path) -> None:
    """Write `model` as a SavedModel (folder).

    SavedModel signature serving_default: input_ids, attention_mask (int32
    [batch, length]) -> label_ids (int32 [batch, length]), scores (their
    probabilities) and probabilities (float32 [batch, length, labels]);
    `labels()` returns the label names in id order. Only the variables and these
    functions are saved, not the Keras layers, which keeps loading fast. The
    LiteRT file is converted from it (`export_litert`): same signature, float32.
    """
    tf = import_tensorflow()
    forward = probabilities_fn(model)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="input_ids"),
                                  tf.TensorSpec([None, None], tf.int32, name="attention_mask")])
    def serve(input_ids, attention_mask):
        probabilities = forward(input_ids, attention_mask)
        return {"label_ids": tf.argmax(probabilities, axis=-1, output_type=tf.int32),
                "scores": tf.reduce_max(probabilities, axis=-1), "probabilities": probabilities}

    label_tensor = tf.constant(list(labels))
    module = tf.Module()
    module.weights = list(model.variables)
    module.serve = serve
    module.labels = tf.function(lambda: label_tensor, input_signature=[])
    tf.saved_model.save(module, str(saved_model), signatures={SIGNATURE: serve})


def _check_target(run: Path, out: Path, force: bool) -> None:
    """Refuse an --out that would overwrite the run, a folder holding it, or anything but an earlier export."""
    if out == run or out in run.parents or (run in out.parents and (run / "export") not in out.parents):
        raise InputError(f"{out}: --out must not be the run, a folder holding it, or inside it "
                         f"(except {run / 'export'})")
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not out.is_dir() or not (out / MARKER).is_file():
        raise InputError(f"{out}: exists and is not an earlier nerctl export; choose another --out")
    if not force:
        raise InputError(f"{out}: exists already; choose another --out or pass --force to replace it")


def model_card(run: RunDir) -> str:
    """A Hugging Face README.md: what the model was trained on, how well it does, and with what."""
    saved, summary, label_map = run.read_config(), run.read_summary(), run.read_labels()
    # Paths as a reader elsewhere can follow: inside the run or the current folder relative, home as ~.
    config = {k: run.portable(v) if isinstance(v, str) else v for k, v in saved.config.to_dict().items()}
    resolved = {k: run.portable(str(v)) for k, v in saved.resolved.items()}
    versions = saved.versions
    labels, types = label_map.labels, label_map.types

    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: token-classification",
        "tags: [token-classification, ner, nerctl, tensorflow]",
        "---",
        f"# {run.path.name}",
        "",
        f"A named-entity tagger fine-tuned by nerctl {versions.get('nerctl', '')} from `{config['model']}` "
        f"(resolved to `{resolved.get('model', config['model'])}`). Tags follow IOB2 over "
        f"{len(types)} entity types: {', '.join(types)}.",
        "",
        "## Data",
        "",
        "| split | source | sentences |",
        "|---|---|---:|",
        f"| train | {resolved.get('train', config.get('train_file') or config.get('dataset'))} | {summary.get('train_sentences', '')} |",
        f"| dev (best epoch chosen on it) | {resolved.get('dev', '')} | {summary.get('dev_sentences', '')} |",
    ]
    test = summary.get("test")
    if test:
        lines.append(f"| test (scored once, at the end) | {run.portable(test['file'])} | {test['sentences']} |")
    lines += ["", "## Results", "",
              f"Best dev entity F1 {summary['best_dev_f1']:.4f} at epoch {summary['best_epoch']} of {summary['epochs']}."]
    if test:
        lines += ["", "Test, entity level (seqeval, strict IOB2):", "",
                  "| type | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
        for name, m in test["per_type"].items():
            lines.append(f"| {name} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['support']} |")
        lines.append(f"| **all (micro)** | **{test['precision']:.4f}** | **{test['recall']:.4f}** | "
                     f"**{test['f1']:.4f}** | {test['entities']} |")
    lines += ["", "## Labels", "", "In model order (`config.json` id2label): " + ", ".join(f"`{x}`" for x in labels),
              "", "## Training configuration", "", "```json",
              json.dumps(config, indent=2),
              "```", "", f"Training took {summary.get('seconds', '?')} s; finished {summary.get('finished', '?')}.",
              "", "## Versions", "", ", ".join(f"{k} {v}" for k, v in versions.items()),
              "", "## Use", "", "```python",
              "from transformers import AutoTokenizer, TFAutoModelForTokenClassification",
              "tokenizer = AutoTokenizer.from_pretrained(FOLDER)",
              "model = TFAutoModelForTokenClassification.from_pretrained(FOLDER)",
              "```", "",
              "nerctl tags the first word piece of each word and decodes with IOB2-constrained Viterbi; "
              "a plain argmax per piece can give I-X after O.", ""]
    if (run.best / CRF_FILE).is_file():
        lines += [f"The model was trained with a CRF output layer: `{CRF_FILE}` holds its learned scores for "
                  "starting with each label, each label following another (`transitions[i][j]`, from i to j) and "
                  "ending with each, in model order. Viterbi adds them to the log-probabilities of the word "
                  "tags; the results above need them (`nerctl predict` on this folder's run uses them).", ""]
    return "\n".join(lines)
