"""Export a finished run for other tools: TF Serving (SavedModel) or Hugging Face.

    saved_model:  OUT/ is a SavedModel (saved_model.pb, variables/) with
                  labels.json and tokenizer/ beside saved_model.pb; serve it with
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
import shutil
from pathlib import Path

from .errors import InputError
from .preprocess import LabelMap
from .rundir import RunDir, replace_dir

FORMATS = ("saved_model", "hf")
MARKER = ".nerctl-export"


def export_run(run: RunDir, fmt: str, out: Path | None = None, force: bool = False) -> Path:
    """Write the run's best model in format `fmt` to `out` (default RUN/export/<fmt>); return it."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
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
            from .train import export_best

            export_best(run)
        shutil.copytree(run.saved_model, tmp)
        shutil.copy2(run.labels, tmp / "labels.json")
        shutil.copytree(run.tokenizer, tmp / "tokenizer")
    else:
        shutil.copytree(run.best, tmp)
        for item in run.tokenizer.iterdir():  # tokenizer files beside the weights, as from_pretrained expects
            shutil.copy2(item, tmp / item.name)
        (tmp / "README.md").write_text(model_card(run), encoding="utf-8")
    (tmp / MARKER).write_text(f"{fmt} export of {run.path}\n", encoding="utf-8")
    replace_dir(tmp, out)
    return out


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
    config = json.loads(run.config.read_text(encoding="utf-8"))
    summary = json.loads(run.summary.read_text(encoding="utf-8"))
    labels = LabelMap.load(run.labels).labels
    resolved = config.get("resolved", {})
    versions = config.get("versions", {})
    types = sorted({label[2:] for label in labels if label != "O"})

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
        lines.append(f"| test (scored once, at the end) | {test['file']} | {test['sentences']} |")
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
              json.dumps({k: v for k, v in config.items() if k not in ("resolved", "versions")}, indent=2),
              "```", "", f"Training took {summary.get('seconds', '?')} s; finished {summary.get('finished', '?')}.",
              "", "## Versions", "", ", ".join(f"{k} {v}" for k, v in versions.items()),
              "", "## Use", "", "```python",
              "from transformers import AutoTokenizer, TFAutoModelForTokenClassification",
              "tokenizer = AutoTokenizer.from_pretrained(FOLDER)",
              "model = TFAutoModelForTokenClassification.from_pretrained(FOLDER)",
              "```", "",
              "nerctl tags the first word piece of each word and decodes with IOB2-constrained Viterbi; "
              "a plain argmax per piece can give I-X after O.", ""]
    return "\n".join(lines)
