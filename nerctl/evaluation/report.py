"""`nerctl report`: one self-contained HTML page (and its PNGs) on how a run went.

Sections: the run's summary, loss and dev F1 per epoch, per-type scores on a
file, how far span scores can be trusted (a reliability diagram, the ECE,
precision and recall at min scores), a word-level confusion matrix of entity
types, and the worst sentences.
The page embeds its images (base64), so it opens offline from anywhere; the
PNGs are also written beside it for slides and READMEs. matplotlib is imported
here only, and used without pyplot: figures render straight to PNG (no display
needed) and the process' backend and open figures (a notebook's) are left alone.
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from ..artifacts.rundir import RunDir
from ..core.atomic import atomic_write_text
from ..core.errors import InputError
from ..inference.tagger import Tagger
from .analysis import (
    SentenceErrors,
    row_normalised,
    segments,
    type_confusion,
    worst_sentences,
)
from .scoring import tag_and_score_file

WORST = 20


def write_report(run: RunDir, file: str | Path | None = None, out: Path | None = None,
                 progress=None) -> Path:
    """Score `file` (default: the run's test file) and write report.html plus PNGs to `out`
    (default RUN/report); return the HTML's path."""
    summary = run.read_summary()
    file = file or summary.get("test", {}).get("file")
    if not file:
        raise InputError(f"{run.path}: the run scored no test file; give one with --file")
    tagger = Tagger.from_run(run)
    sentences, pred, metrics = tag_and_score_file(tagger, file, progress=progress)
    gold = [s.tags for s in sentences]
    types, counts = type_confusion(gold, pred)
    worst = worst_sentences(sentences, pred, WORST)

    out = (out or run.path / "report").resolve()
    out.mkdir(parents=True, exist_ok=True)
    images = {
        "curves.png": curves_png(run.read_metrics()),
        "per_type.png": per_type_png(metrics),
        "reliability.png": reliability_png(metrics["calibration"]),
        "confusion.png": confusion_png(types, counts),
    }
    for name, data in images.items():
        (out / name).write_bytes(data)
    page = render_html(run, summary, run.portable(str(Path(file).resolve())), metrics, types, counts, worst, images)
    atomic_write_text(out / "report.html", page)
    return out / "report.html"


# ---------------------------------------------------------------- figures


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def curves_png(records: list[dict]) -> bytes:
    """Training loss and dev P/R/F1 per epoch, the best epoch marked."""
    figure = _figure(9, 3.2)
    left, right = figure.subplots(1, 2)
    epochs = [r["epoch"] for r in records]
    left.plot(epochs, [r["loss"] for r in records], marker="o", color="tab:blue")
    left.set(title="training loss (mean per epoch)", xlabel="epoch", ylabel="loss")
    for key, style in (("dev_f1", "-o"), ("dev_precision", "--"), ("dev_recall", ":")):
        right.plot(epochs, [r[key] for r in records], style, label=key.replace("dev_", ""))
    best = [r for r in records if r.get("best")]
    title = "dev entity scores"
    if best:
        right.axvline(best[-1]["epoch"], color="grey", linewidth=0.8)
        title += f" (best: epoch {best[-1]['epoch']}, F1 {best[-1]['dev_f1']:.4f})"
    right.set(title=title, xlabel="epoch")
    right.legend(loc="lower right")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        if epochs:
            axis.set_xticks(epochs)
    return _png(figure)


def per_type_png(metrics: dict) -> bytes:
    """Precision, recall and F1 bars per entity type, each labelled with its entity count."""
    names = list(metrics["per_type"])
    figure = _figure(9, 0.45 * len(names) + 1.2)
    axis = figure.subplots()
    height = 0.26
    for k, (key, color) in enumerate((("precision", "tab:blue"), ("recall", "tab:orange"), ("f1", "tab:green"))):
        values = [metrics["per_type"][n][key] for n in names]
        axis.barh([i + (k - 1) * height for i in range(len(names))], values, height, label=key, color=color)
    axis.set_yticks(range(len(names)), [f"{n} ({metrics['per_type'][n]['support']})" for n in names])
    axis.invert_yaxis()
    axis.set(xlim=(0, 1), xlabel="score", title=f"per type (gold entities in brackets); micro F1 {metrics['f1']:.4f}")
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axis.grid(axis="x", alpha=0.3)
    return _png(figure)


def reliability_png(calibration: dict) -> bytes:
    """Reliability diagram: per score bin, the share of spans right against their mean score, with counts."""
    figure = _figure(5.2, 4.2)
    axis = figure.subplots()
    bins = calibration["bins"]
    axis.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--", label="score = precision")
    axis.plot([b["mean_score"] for b in bins], [b["precision"] for b in bins], "-o", color="tab:blue",
              label="spans in a score bin")
    for b in bins:
        axis.annotate(str(b["spans"]), (b["mean_score"], b["precision"]), textcoords="offset points", xytext=(4, -10),
                      fontsize=7)
    axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="span score (bin mean)", ylabel="share of spans right",
             title=f"span scores: ECE {calibration['ece']:.4f} over {calibration['spans']} spans")
    axis.legend(loc="upper left")
    axis.grid(alpha=0.3)
    return _png(figure)


def _calibration_section(calibration: dict, images: dict[str, bytes]) -> str:
    f4 = "{:.4f}".format
    rows = [[f"{r['min_score']:g}", r["spans"], f4(r["precision"]), f4(r["recall"])] for r in calibration["thresholds"]]
    return f"""<h2 id="scores">Span scores</h2>
<p>A span's score is the probability that exactly that span is right. Spans are binned by score (labels:
how many); on the diagonal, a bin's spans are right as often as their scores say. The expected calibration
error (ECE) is the bins' distance from it, weighted by their spans. The table shows what
<code>--min-score</code> would keep. Here: ECE {f4(calibration['ece'])} over {calibration['spans']} predicted spans.</p>
{_img(images, "reliability.png", "reliability diagram of span scores")}
{_table(["--min-score", "spans kept", "precision", "recall"], rows)}"""


def confusion_png(types: list[str], counts) -> bytes:
    """Row-normalised word-level confusion of entity types (gold rows, predicted columns)."""
    share = row_normalised(counts)
    size = 0.55 * len(types) + 2
    figure = _figure(size + 1, size)
    axis = figure.subplots()
    image = axis.imshow(share, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(types)), types, rotation=60, ha="right")
    axis.set_yticks(range(len(types)), types)
    axis.set(xlabel="predicted type", ylabel="gold type", title="words by gold type: share predicted as each type")
    for i in range(len(types)):
        for j in range(len(types)):
            if share[i, j] >= 0.005:
                axis.text(j, i, f"{share[i, j]:.2f}", ha="center", va="center", fontsize=7,
                          color="white" if share[i, j] > 0.6 else "black")
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    return _png(figure)


# ---------------------------------------------------------------- page

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; }
.sentence td, .facts td { text-align: left; }
.span { padding: 0 3px; border-radius: 3px; }
.ok { background: #c8ecc8; } .missed { background: #ffe08a; } .wrong { background: #f7b3b3; }
.type { font-size: 0.7em; font-weight: bold; margin-left: 3px; }
code { background: #f4f4f4; padding: 1px 4px; }
"""


def _table(header: list[str], rows: list[list]) -> str:
    """An HTML table of pre-escaped cells; no header row when every header is empty."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header) if any(header) else ""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def _marked(words, tags, other_tags, right: str, wrong: str) -> str:
    """The sentence as HTML with each span of `tags` highlighted (`right` if `other_tags` has it)."""
    return " ".join(
        f'<span class="span {right if matched else wrong}">{html.escape(chunk)}'
        f'<span class="type">{html.escape(kind)}</span></span>' if kind else html.escape(chunk)
        for chunk, kind, matched in segments(words, tags, other_tags))


def _img(images: dict[str, bytes], name: str, alt: str) -> str:
    data = base64.b64encode(images[name]).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def render_html(run: RunDir, summary: dict, file: str, metrics: dict, types: list[str], counts,
                worst: list[SentenceErrors], images: dict[str, bytes]) -> str:
    saved = run.read_config()
    # Paths as a colleague can follow them: inside the run or the current folder relative, home as ~.
    config = {k: run.portable(v) if isinstance(v, str) else v for k, v in saved.config.to_dict().items()}
    resolved, versions = {k: run.portable(str(v)) for k, v in saved.resolved.items()}, saved.versions
    f4 = "{:.4f}".format
    facts = [
        ["run", html.escape(run.portable(str(run.path)))],
        ["model", f"<code>{html.escape(str(config.get('model')))}</code> ({html.escape(str(resolved.get('model', '')))})"],
        ["train data", f"{html.escape(str(resolved.get('train', config.get('train_file'))))}: "
                       f"{summary.get('train_sentences', '?')} sentences"],
        ["dev data", f"{html.escape(str(resolved.get('dev', config.get('eval_file'))))}: "
                     f"{summary.get('dev_sentences', '?')} sentences"],
        ["scored here", f"{html.escape(file)}: {metrics['sentences']} sentences, {metrics['entities']} entities"],
        ["best epoch", f"{summary.get('best_epoch', '?')} of {config.get('epochs')} (dev F1 "
                       f"{f4(summary['best_dev_f1']) if 'best_dev_f1' in summary else '?'})"],
        ["training time", f"{summary.get('seconds', '?')} s, finished {html.escape(str(summary.get('finished', '?')))}"],
        ["versions", html.escape(", ".join(f"{k} {v}" for k, v in versions.items()))],
    ]
    per_type = [[html.escape(n), f4(m["precision"]), f4(m["recall"]), f4(m["f1"]), m["support"]]
                for n, m in metrics["per_type"].items()]
    per_type.append(["<b>all (micro)</b>", f4(metrics["precision"]), f4(metrics["recall"]),
                     f"<b>{f4(metrics['f1'])}</b>", metrics["entities"]])
    share = row_normalised(counts)
    confusion = [[f"<b>{html.escape(g)}</b>"] + [
        f'<span title="gold {html.escape(g)}, predicted {html.escape(p)}: {counts[i, j]} words ({share[i, j]:.1%})">'
        f"{counts[i, j]}</span>" for j, p in enumerate(types)] + [int(counts[i].sum())]
        for i, g in enumerate(types)]
    sentences = "".join(
        f"<h4>#{rank} &middot; {e.errors} span error(s) &middot; {html.escape(run.portable(e.sentence.source))}:{e.sentence.line}</h4>"
        + _table(["", ""], [
            ["gold", _marked(e.sentence.words, e.sentence.tags, e.pred, "ok", "missed")],
            ["predicted", _marked(e.sentence.words, e.pred, e.sentence.tags, "ok", "wrong")]]).replace(
            "<table>", '<table class="sentence">')
        for rank, e in enumerate(worst, 1))
    confusion_table = _table(["gold \\ predicted", *map(html.escape, types), "words"], confusion)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nerctl report: {html.escape(run.path.name)}</title>
<style>{STYLE}</style></head><body>
<h1>nerctl report: {html.escape(run.path.name)}</h1>
<p>Entity scores are seqeval's, micro-averaged, strict IOB2, on <code>{html.escape(file)}</code>:
P {f4(metrics['precision'])}, R {f4(metrics['recall'])}, <b>F1 {f4(metrics['f1'])}</b>.</p>
<h2 id="summary">Summary</h2>
{_table(["", ""], facts).replace("<table>", '<table class="facts">')}
<details><summary>training configuration</summary><pre>{html.escape(json.dumps(config, indent=2))}</pre></details>
<h2 id="curves">Training curves</h2>
{_img(images, "curves.png", "loss and dev scores per epoch")}
<h2 id="per-type">Scores per entity type</h2>
{_img(images, "per_type.png", "precision, recall and F1 per type")}
{_table(["type", "precision", "recall", "F1", "gold entities"], per_type)}
{_calibration_section(metrics["calibration"], images)}
<h2 id="confusion">Confusion of entity types (words)</h2>
<p>Each word's gold type (row) against its predicted type (column); B- and I- count as the same
type, O is outside any entity. The figure shows each row's shares; the table the word counts
(hover for the share).</p>
{_img(images, "confusion.png", "confusion matrix of entity types")}
{confusion_table}
<h2 id="worst">Worst sentences</h2>
<p>The {len(worst)} sentences with the most span errors (missed gold spans plus wrong predicted
ones). <span class="span ok">right</span> <span class="span missed">missed</span>
<span class="span wrong">wrong</span></p>
{sentences or "<p>No sentence has a span error.</p>"}
</body></html>
"""
