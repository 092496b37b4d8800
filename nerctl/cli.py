"""The `nerctl` command line: thin Typer functions over the library.

Heavy imports (TensorFlow, transformers) happen inside the commands, so that
`nerctl --help` and argument errors answer at once.
"""
from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from ._util import PROG, fail, handle_errors, print_json, print_metrics, write_stdout
from .config import STRATEGIES, TrainConfig

DEFAULTS = TrainConfig()  # shown in --help; configs/mitmovie.toml holds the same values

app = typer.Typer(
    name=PROG,
    help="Train, evaluate and run BERT-family named-entity recognizers (MIT Movie by default).\n\n"
    "Data goes to stdout, logs and progress to stderr. Exit codes: 0 ok, 1 failure, 2 bad usage or input.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is shown as written: "[env: ...]" is not markup
    context_settings={"help_option_names": ["-h", "--help"]},
)

MIRROR_HELP = "Fetch from this URL base or local folder instead of the corpus' home [env: NERCTL_MIRROR]."


class BioFormat(str, Enum):
    auto = "auto"
    mit = "mit"
    conll = "conll"


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    conll = "conll"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


Strategy = Enum("Strategy", {name.replace("-", "_"): name for name in STRATEGIES}, type=str)


PRECISION_HELP = "auto: bf16 where the CPU has AVX-512 BF16 or AMX, else fp32"


class InputFormat(str, Enum):
    auto = "auto"
    text = "text"
    bio = "bio"


def _version(value: bool) -> None:
    if value:
        from . import __version__

        write_stdout(f"{PROG} {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors [env: NERCTL_DEBUG=1]."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    if debug:
        import os

        os.environ["NERCTL_DEBUG"] = "1"


@app.command()
@handle_errors
def download(
    dataset: str = typer.Argument("mitmovie", help="Dataset to fetch."),
    data_dir: Optional[Path] = typer.Option(
        None, "--data-dir", help="Where to keep data [env: NERCTL_DATA_DIR; default: ~/.cache/nerctl]."),
    mirror: Optional[str] = typer.Option(None, "--mirror", help=MIRROR_HELP),
    force: bool = typer.Option(False, "--force", help="Fetch again even if verified files are present."),
) -> None:
    """Download a dataset and verify its sha256 checksums; print the file paths."""
    from .data import download as fetch
    from .progress import Reporter

    reporter = Reporter()
    with reporter.task(f"downloading {dataset}", None) as bar:
        paths = fetch(dataset, data_dir, mirror, force, progress=lambda name, done, total: bar.advance(0, info=f"{name} {done / 1e6:.1f} MB"))
    for path in paths.values():
        write_stdout(f"{path}\n")
    reporter.log(f"{dataset}: {len(paths)} file(s) verified")


@app.command()
@handle_errors
def train(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config (see configs/)."),
    dataset: Optional[str] = typer.Option(None, help=f"Named dataset [default: {DEFAULTS.dataset}]."),
    train_file: Optional[Path] = typer.Option(None, help="Training BIO file (instead of a dataset)."),
    eval_file: Optional[Path] = typer.Option(None, help="Dev BIO file for choosing the best epoch [default: carved from train]."),
    test_file: Optional[Path] = typer.Option(None, help="Test BIO file, scored once at the end with the best model."),
    format: Optional[BioFormat] = typer.Option(None, "--format", help="BIO format of the files [default: auto]."),
    model: Optional[str] = typer.Option(None, help="'minilm' (embedded), a local model folder, or a hub id."),
    epochs: Optional[int] = typer.Option(None, min=1, help=f"Training epochs [default: {DEFAULTS.epochs}]."),
    batch_size: Optional[int] = typer.Option(None, min=1, help=f"Sentences per batch [default: {DEFAULTS.batch_size}]."),
    lr: Optional[float] = typer.Option(None, help=f"Peak learning rate of AdamW [default: {DEFAULTS.lr:g}]."),
    max_len: Optional[int] = typer.Option(None, min=8, help=f"Word pieces per window; longer sentences are windowed [default: {DEFAULTS.max_len}]."),
    freeze_embeddings: Optional[bool] = typer.Option(
        None, "--freeze-embeddings/--train-embeddings",
        help="Keep the word-embedding matrix fixed (faster on a CPU) "
        f"[default: {'frozen' if DEFAULTS.freeze_embeddings else 'trained'}]."),
    freeze_layers: Optional[int] = typer.Option(
        None, min=0, help="Also keep the embedding block and this many lowest encoder layers fixed: "
        f"their backward pass is skipped [default: {DEFAULTS.freeze_layers}]."),
    seed: Optional[int] = typer.Option(None, help=f"Seed for data split, order and initialisation [default: {DEFAULTS.seed}]."),
    dev_fraction: Optional[float] = typer.Option(None, help=f"Share of train held out as dev [default: {DEFAULTS.dev_fraction:g}]."),
    precision: Optional[Precision] = typer.Option(None, help=f"Compute precision ({PRECISION_HELP}) [default: {DEFAULTS.precision}]."),
    strategy: Optional[Strategy] = typer.Option(
        None, help="tf.distribute strategy: default (one device), mirrored (all local GPUs), multi-worker "
        "(one process per machine, cluster from TF_CONFIG; needs --run-dir on shared storage), auto (multi-worker "
        f"if TF_CONFIG names 2+ tasks, mirrored with 2+ GPUs, else default) [default: {DEFAULTS.strategy}]."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Run directory [default: runs/<time>-<model>]."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run-dir (default: the newest unfinished run)."),
    mirror: Optional[str] = typer.Option(None, "--mirror", help=MIRROR_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print the run summary as JSON on stdout."),
) -> None:
    """Fine-tune a token classifier; the best epoch is chosen on dev F1, test is scored once.

    Every option can also come from a NERCTL_<OPTION> variable (NERCTL_EPOCHS=5)
    or the --config file; precedence: option > environment > config file > default.
    """
    from .config import resolve_config
    from .rundir import RunDir, default_runs_root, find_unfinished_run
    from .train import resume_run, train as run_training

    options = dict(dataset=dataset, train_file=train_file, eval_file=eval_file, test_file=test_file,
                   format=format.value if format else None, model=model, epochs=epochs, batch_size=batch_size,
                   lr=lr, max_len=max_len, freeze_embeddings=freeze_embeddings,
                   freeze_layers=freeze_layers, seed=seed, dev_fraction=dev_fraction,
                   precision=precision.value if precision else None, strategy=strategy.value if strategy else None)
    if resume:
        given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v is not None]
        if given or config:
            raise fail(f"--resume continues a run with its saved config; drop {', '.join(given) or '--config'}", 2)
        run = RunDir(run_dir.resolve()) if run_dir else find_unfinished_run(default_runs_root())
        summary = resume_run(run, mirror=mirror)
    else:
        if run_dir is not None:
            options.update(runs_root=str(run_dir.parent), run_name=run_dir.name)
        cfg = resolve_config(config, {k: str(v) if isinstance(v, Path) else v for k, v in options.items()})
        summary = run_training(cfg, mirror=mirror)
    if json_output:
        print_json(summary)
    elif "test" in summary:
        print_metrics(summary["test"], f"test: {summary['test']['file']} (best epoch {summary['best_epoch']})")
    else:
        write_stdout(f"best dev F1 {summary['best_dev_f1']:.4f} at epoch {summary['best_epoch']}\n")


@app.command()
@handle_errors
def evaluate(
    run: Optional[str] = typer.Argument(None, help="Run directory or name [default: runs/latest]."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="BIO file to score."),
    dataset: str = typer.Option("mitmovie", help="Dataset to score when no --file is given."),
    split: str = typer.Option("test", help="Split of the dataset."),
    format: BioFormat = typer.Option(BioFormat.auto, "--format", help="BIO format of the file."),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Sentences per batch [default: the run's]."),
    precision: Precision = typer.Option(Precision.auto, help=PRECISION_HELP + "."),
    mirror: Optional[str] = typer.Option(None, "--mirror", help=MIRROR_HELP),
    errors: int = typer.Option(0, "--errors", min=0, help="Also show the N sentences with the most span errors "
                               "(gold and predicted spans; in --json as 'worst')."),
    json_output: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
) -> None:
    """Score a run: entity P/R/F1 (seqeval, strict IOB2) overall and per type, token accuracy."""
    from .data import dataset_split
    from .evaluate import evaluate_file
    from .predict import Tagger
    from .progress import Reporter
    from .rundir import resolve_run

    tagger = Tagger.from_run(resolve_run(run), batch_size, precision.value)
    path = file or dataset_split(dataset, split, mirror=mirror)
    with Reporter().counter("scoring") as progress:
        metrics = evaluate_file(tagger, path, format.value, progress, worst=errors)
    if json_output:
        print_json(metrics)
        return
    print_metrics(metrics, f"{path}")
    if errors:
        from ._util import print_sentence_errors

        print_sentence_errors(metrics["worst"])


@app.command()
@handle_errors
def predict(
    texts: Optional[List[str]] = typer.Argument(None, help="Texts to tag; '-' reads one text per line from stdin."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="File with one text per line ('-' for stdin), or a BIO file."),
    run: Optional[str] = typer.Option(None, "--run", help="Run directory or name [default: runs/latest]."),
    output: Optional[OutputFormat] = typer.Option(
        None, "--format", help="Output: table on a terminal, jsonl when piped or with --output [default: by terminal]. "
        "jsonl and conll stream (memory stays bounded); table and json tag everything first."),
    output_file: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Write jsonl or conll here, chunk by chunk, instead of stdout (an existing file is replaced)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted --output jsonl: keep its complete lines and tag only the rest of the input."),
    input_format: InputFormat = typer.Option(
        InputFormat.auto, help="'bio' tags the words of a BIO file in memory (conll output then shows gold and predicted); "
        "auto: bio for .bio/.conll/.iob files."),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Texts per batch [default: the run's]."),
    precision: Precision = typer.Option(Precision.auto, help=PRECISION_HELP + "."),
) -> None:
    """Tag texts: words with tags, and entity spans with character offsets into the input.

    jsonl and conll are streamed: texts are read, tagged and written a chunk of
    2,048 at a time, so memory stays bounded and output line i answers input
    line i. table, json and BIO input are tagged in memory.
    """
    from ._util import print_predictions_table
    from .bio import read_bio
    from .errors import InputError
    from .predict import (CHUNK_TEXTS, RESUME_FORMATS, STREAM_FORMATS, Tagger, count_lines, iter_texts, open_output,
                          render, stream_to, words_from_tokens)
    from .progress import Reporter
    from .rundir import resolve_run

    texts = list(texts or [])
    if file is not None and texts:
        raise InputError("give texts or --file, not both")
    source = str(file) if file is not None else ("-" if texts == ["-"] else None)
    if source is None and not texts:
        raise InputError("nothing to tag: give texts, --file FILE, or '-' for stdin")
    is_bio = source not in (None, "-") and (
        input_format == InputFormat.bio
        or (input_format == InputFormat.auto and Path(source).suffix.lower() in (".bio", ".conll", ".iob")))
    fmt = output.value if output else ("table" if output_file is None and sys.stdout.isatty() else "jsonl")
    if output_file is not None and fmt not in STREAM_FORMATS:
        raise InputError(f"--output writes {' or '.join(STREAM_FORMATS)}, not {fmt}")
    if output_file is not None and source not in (None, "-") and output_file.resolve() == Path(source).resolve():
        raise InputError(f"--output {output_file} is the input file")
    if resume and (output_file is None or fmt not in RESUME_FORMATS or is_bio):
        raise InputError(f"--resume needs --output FILE, --format {' or '.join(RESUME_FORMATS)} and text input")

    tagger = Tagger.from_run(resolve_run(run), batch_size, precision.value)
    reporter = Reporter()
    lines = iter_texts(source, sys.stdin) if source is not None else iter(texts)
    if is_bio or fmt not in STREAM_FORMATS:  # tagged in memory
        with reporter.counter("tagging") as progress:
            if is_bio:
                sentences = read_bio(source)
                joined = [words_from_tokens(s.words) for s in sentences]
                results = tagger.tag_words([t for t, _ in joined], [w for _, w in joined],
                                           gold=[s.tags for s in sentences], progress=progress)
            else:
                results = tagger.tag_texts(list(lines), progress)
        if fmt == "table":
            print_predictions_table(results)
            return
        with open_output(output_file) as out:
            out.write(render(results, fmt))
            out.flush()  # here, where handle_errors sees a closed pipe
        return
    total = None if source == "-" else count_lines(source) if source is not None else len(texts)
    # Someone typing lines wants each answered at once, not after 2,048 of them.
    chunk = 1 if source == "-" and sys.stdin.isatty() else CHUNK_TEXTS
    stream_to(tagger, lines, output_file, fmt, resume=resume, chunk_size=chunk, total=total, reporter=reporter)


@app.command()
@handle_errors
def report(
    run: Optional[str] = typer.Argument(None, help="Run directory or name [default: runs/latest]."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="BIO file to score [default: the run's test file]."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for report.html and its PNGs [default: RUN/report]."),
) -> None:
    """Write report.html (self-contained, opens offline) and PNGs: curves, per-type scores, confusions, worst sentences."""
    from .progress import Reporter
    from .report import write_report
    from .rundir import resolve_run

    with Reporter().counter("scoring") as progress:
        page = write_report(resolve_run(run), file, out, progress)
    write_stdout(f"{page}\n")


@app.command()
@handle_errors
def runs(
    runs_root: Optional[Path] = typer.Option(None, "--runs-root", help="Folder of runs [env: NERCTL_RUNS_ROOT; default: runs]."),
    json_output: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """List runs, oldest first: name, start, model, epochs, best dev F1, test F1, state.

    State: finished (summary written), running (a training holds the run's lock),
    or interrupted (continue it with `nerctl train --resume --run-dir RUN`)."""
    from .rundir import default_runs_root, list_runs

    records = list_runs(runs_root or default_runs_root())
    if json_output:
        print_json(records)
    else:
        from ._util import print_runs_table

        print_runs_table(records)


class ExportFormat(str, Enum):
    saved_model = "saved_model"
    hf = "hf"


@app.command()
@handle_errors
def export(
    run: Optional[str] = typer.Argument(None, help="Run directory or name [default: runs/latest]."),
    format: ExportFormat = typer.Option(
        ..., "--format", help="saved_model: a TensorFlow SavedModel for TF Serving, with labels.json and "
        "tokenizer/ beside it; hf: a Hugging Face folder (weights, config, tokenizer) with a model card."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder to write [default: RUN/export/FORMAT]."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it holds an earlier nerctl export."),
) -> None:
    """Export a finished run's best model; print the folder written."""
    from .export import export_run
    from .rundir import resolve_run

    folder = export_run(resolve_run(run), format.value, out, force)
    write_stdout(f"{folder}\n")


def main() -> None:
    """Console entry point: usage errors become one line and exit code 2."""
    try:
        from click import exceptions as click
    except ImportError:  # typer >= 0.22 vendors its own copy of click
        from typer._click import exceptions as click

    command = typer.main.get_command(app)
    try:
        code = command.main(args=sys.argv[1:], prog_name=PROG, standalone_mode=False)
    except click.NoArgsIsHelpError as err:
        # Typer >= 0.15 raises this for bare `nerctl`: show the help, exit 2 like click.
        write_stdout(err.ctx.get_help() + "\n") if err.ctx else None
        code = 2
    except click.UsageError as err:
        hint = f" (see '{err.ctx.command_path} --help')" if err.ctx else ""
        raise SystemExit(fail(err.format_message() + hint, 2).exit_code) from None
    except click.ClickException as err:
        raise SystemExit(fail(err.format_message(), err.exit_code).exit_code) from None
    except click.Abort:
        raise SystemExit(fail("aborted", 130).exit_code) from None
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
