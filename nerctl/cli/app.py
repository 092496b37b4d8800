"""The `nerctl` command line: thin Typer functions over the library.

Heavy imports (TensorFlow, transformers) happen inside the commands, so that
`nerctl --help` and argument errors answer at once.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from ..config import DataOptions, TrainConfig, field_type, is_option, option_help
from ..spark.job import SparkOptions
from ..core.choices import EVALUATE_FORMATS, EXPORT_FORMATS, OUTPUT_FORMATS, OUTPUT_SCHEMES
from ..data.formats import (
    FORMAT_HELP,
    INPUT_FORMAT_HELP,
    INPUT_FORMATS,
    READ_FORMATS,
    TO_FORMAT_HELP,
    WRITE_FORMATS,
)
from ..inference.engines import EngineOptions
from ..serving.settings import ServeSettings, read_api_key
from .render import PROG, fail, handle_errors, print_json, print_metrics, write_stdout

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


def choice_enum(name: str, values: tuple[str, ...]) -> type[Enum]:
    """An Enum of a tuple from choices.py, for Typer to offer and check."""
    return Enum(name, {value.replace("-", "_"): value for value in values}, type=str)


DataFormat = choice_enum("DataFormat", READ_FORMATS)
ConvertFormat = choice_enum("ConvertFormat", WRITE_FORMATS)
OutputScheme = choice_enum("OutputScheme", OUTPUT_SCHEMES)
OutputFormat = choice_enum("OutputFormat", OUTPUT_FORMATS)
InputFormat = choice_enum("InputFormat", INPUT_FORMATS)
ExportFormat = choice_enum("ExportFormat", EXPORT_FORMATS)
EvaluateFormat = choice_enum("EvaluateFormat", EVALUATE_FORMATS)


def _default(name: str):
    """A TrainConfig field's default, for the commands that share it."""
    return next(f.default for f in dataclasses.fields(TrainConfig) if f.name == name)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

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
    from ..core.progress import Reporter
    from ..data.datasets import download as fetch

    reporter = Reporter()
    with reporter.task(f"downloading {dataset}", None) as bar:
        paths = fetch(dataset, data_dir, mirror, force, progress=lambda name, done, total: bar.advance(0, info=f"{name} {done / 1e6:.1f} MB"))
    for path in paths.values():
        write_stdout(f"{path}\n")
    reporter.log(f"{dataset}: {len(paths)} file(s) verified")


def option_parameters(cls: type, unset: bool = False, exclude: tuple[str, ...] = (),
                      flags: dict[str, str] | None = None) -> list[inspect.Parameter]:
    """One command option per `option` field of the dataclass `cls`, from the field's declaration (see config.option).

    `unset`: every default is None, so that the command can tell a flag given
    from one left out (train: flag > environment > config file > default).
    """
    params = []
    for f in dataclasses.fields(cls):
        if not is_option(f) or f.name in exclude:
            continue
        meta = f.metadata
        kind: Any = choice_enum(f.name.title().replace("_", ""), meta["choices"]) if meta["choices"] else (
            Path if meta["path"] else field_type(f))
        default = None if unset or f.default is dataclasses.MISSING else f.default
        extra = {}
        if kind is list:
            kind, default, extra = List[str], None, {"metavar": "<str>"}
        elif meta["choices"] and default is not None:
            default = kind(default)
        flag = (flags or {}).get(f.name) or meta["flag"] or "--" + f.name.replace("_", "-")
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[kind],
                                        default=typer.Option(default, flag, help=option_help(f), show_default=False,
                                                             **extra)))
    return params


def options_of(cls: type, options: dict[str, Any]) -> dict[str, Any]:
    """The values a command received for `cls`'s option fields (choices as plain strings, lists as lists)."""
    out = {}
    for f in dataclasses.fields(cls):
        if is_option(f) and f.name in options:
            value = options[f.name]
            out[f.name] = value.value if isinstance(value, Enum) else (
                list(value or []) if field_type(f) is list else value)
    return out


def register(function: Callable, *classes: type, unset: bool = False, exclude: tuple[str, ...] = (),
             flags: dict[str, str] | None = None) -> None:
    """Add `function` as a command: its own parameters, then one option per field of `classes` (but `exclude`;
    `flags` renames a field's option, e.g. {"format": "--input-format"})."""
    command = handle_errors(function)
    params = [p for p in inspect.signature(function).parameters.values() if p.kind != p.VAR_KEYWORD]
    params += [p for cls in classes for p in option_parameters(cls, unset, exclude, flags)]
    command.__signature__ = inspect.signature(function).replace(parameters=params)
    app.command(name=function.__name__)(command)


def train(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config (see configs/); its keys are the options' names."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Run directory: sets --runs-root and --run-name at once."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run-dir (default: the newest unfinished run)."),
    mirror: Optional[str] = typer.Option(None, "--mirror", help=MIRROR_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print the run summary as JSON on stdout."),
    **options,
) -> None:
    """Fine-tune a token classifier; the best epoch is chosen on dev F1, test is scored once.

    Every training option can also come from a NERCTL_<OPTION> variable
    (NERCTL_EPOCHS=5) or the --config file; precedence: option > environment >
    config file > default.
    """
    from .. import api

    options = options_of(TrainConfig, options)
    if resume:
        given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v is not None]
        if given or config:
            raise fail(f"--resume continues a run with its saved config; drop {', '.join(given) or '--config'}", 2)
        summary = api.resume(run_dir, mirror=mirror, progress=True).summary
    else:
        summary = api.train(config, run_dir=run_dir, mirror=mirror, progress=True, **options).summary
    if json_output:
        print_json(summary)
    elif "test" in summary:
        print_metrics(summary["test"], f"test: {summary['test']['file']} (best epoch {summary['best_epoch']})")
    else:
        write_stdout(f"best dev F1 {summary['best_dev_f1']:.4f} at epoch {summary['best_epoch']}\n")


register(train, TrainConfig, unset=True)


def _tagger(run: Optional[str], options: dict[str, Any], words: str | None = None):
    """The run's tagger on the engine the options choose (raw text split by `words`, default the run's
    rule), the choice said on a terminal's stderr."""
    from ..api import load
    from ..core.progress import Reporter

    engine = EngineOptions(**options_of(EngineOptions, options)).check()
    tagger = load(run, engine.backend, engine.precision, engine.batch_size, engine.min_score, words)
    Reporter().note(tagger.engine.describe())
    return tagger


def evaluate(
    run: Optional[str] = typer.Argument(None, help="Run directory or name [default: runs/latest]."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Tagged file to score (any --format; a pipe too)."),
    dataset: str = typer.Option("mitmovie", help="Dataset to score when no --file is given."),
    split: str = typer.Option("test", help="Split of the dataset."),
    mirror: Optional[str] = typer.Option(None, "--mirror", help=MIRROR_HELP),
    errors: int = typer.Option(0, "--errors", min=0, help="Also show the N sentences with the most span errors "
                               "(gold and predicted spans; in --format json as 'worst')."),
    output: EvaluateFormat = typer.Option(
        EvaluateFormat.table, "--format", help="Output: table; json (the metrics); html (a page of the --errors N "
        "worst sentences, gold spans beside predicted, to open in a browser). The file's format is --input-format."),
    json_output: bool = typer.Option(False, "--json", help="The same as --format json."),
    **options,
) -> None:
    """Score a run: entity P/R/F1 (seqeval, strict IOB2) overall and per type, token accuracy.

    With the default engine and batch size it reproduces the test figures in
    the run's summary.json exactly."""
    from ..api import evaluate as score
    from ..data.datasets import dataset_split

    data = DataOptions(**options_of(DataOptions, options))
    tagger = _tagger(run, options, data.words)
    path = file or dataset_split(dataset, split, mirror=mirror)
    metrics = score(tagger, path, format=data.format, scheme=data.scheme, misaligned=data.misaligned,
                    worst=errors, progress=True).to_dict()
    if json_output or output.value == "json":
        print_json(metrics)
        return
    if output.value == "html":
        from ..evaluation.errors_page import errors_page

        write_stdout(errors_page(metrics, tagger.facts(), Path(path).name))
        return
    print_metrics(metrics, f"{path} ({metrics['engine']['backend']} {metrics['engine']['precision']})")
    if errors:
        from .render import print_sentence_errors

        print_sentence_errors(metrics["worst"])


register(evaluate, DataOptions, EngineOptions, flags={"format": "--input-format"})  # --format is the output's


def calibrate(
    run: Optional[str] = typer.Argument(None, help="Run directory or name [default: runs/latest]."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Tagged file to fit on, held out from training "
                                        "(any --format) [default: the run's dev split, read again]."),
    mirror: Optional[str] = typer.Option(None, "--mirror", help=MIRROR_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print calibration.json's record as JSON."),
    **options,
) -> None:
    """Fit the temperature that makes a run's scores probabilities (calibration.json).

    Training does it at its end, on dev; this redoes it, for a run trained
    before nerctl calibrated its scores or on another held-out file. The tags
    never change, only the scores."""
    from ..api import calibrate as fit

    data = DataOptions(**options_of(DataOptions, options))
    record = fit(run, file, format=data.format, scheme=data.scheme, misaligned=data.misaligned, mirror=mirror,
                 words=data.words)
    if json_output:
        print_json(record)
    else:
        write_stdout(f"temperature {record['temperature']:g} (fitted on {record['fitted_on']} sentences): "
                     f"NLL {record['nll_before']:.4f} -> {record['nll_after']:.4f}, "
                     f"span ECE {record['ece_before']:.4f} -> {record['ece_after']:.4f}\n")


register(calibrate, DataOptions)


def predict(
    texts: Optional[List[str]] = typer.Argument(None, help="Texts to tag; '-' reads one text per line from stdin."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="File with one text per line ('-' for stdin; "
                                        "a pipe too: <(cut -f2 data.tsv)), or a tagged file (see --input-format)."),
    run: Optional[str] = typer.Option(None, "--run", help="Run directory or name [default: runs/latest]."),
    output: Optional[OutputFormat] = typer.Option(
        None, "--format", help="Output: table on a terminal, jsonl when piped or with --output [default: by terminal]. "
        "spans: doccano/Prodigy JSONL records, labelstudio: a list of Label Studio tasks with predictions "
        "(model_version: the run's name), both for import into the annotation tool. html: one self-contained "
        "page to open in a browser (highlights by type, a score slider, pages of 50 texts). "
        "jsonl, conll, spans, labelstudio and html stream (memory stays bounded); table and json tag everything first."),
    output_file: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Write a streamed format (jsonl, conll, spans, labelstudio, html) here, chunk by chunk, "
        "instead of stdout (an existing file is replaced)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted --output jsonl: keep its complete lines and tag only the rest of the input."),
    input_format: InputFormat = typer.Option(InputFormat.auto, help=INPUT_FORMAT_HELP),
    **options,
) -> None:
    """Tag texts: words with tags, and entity spans with character offsets into the input.

    jsonl, conll, spans, labelstudio and html are streamed: texts are read, tagged and
    written a chunk of 2,048 at a time, so memory stays bounded and output
    record i answers input line i. table, json and tagged input are tagged in memory.
    """
    from ..inference.predict import plan_predict, run_predict

    data = DataOptions(**options_of(DataOptions, options))
    job = plan_predict(texts or [], file, output.value if output else None, output_file, resume,
                       input_format.value, sys.stdout.isatty(), data.scheme, data.misaligned)
    results = run_predict(_tagger(run, options, data.words), job)
    if results is not None:
        from .render import print_predictions_table

        print_predictions_table(results)


register(predict, DataOptions, EngineOptions, exclude=("format",))  # --format is the output's


def spark(
    inputs: List[str] = typer.Argument(..., help="Input files, folders or globs: Parquet, JSONL or text "
                                       "(any path Spark reads: hdfs://, s3a://, ...)."),
    output: str = typer.Option(..., "--output", "-o", help="Folder to write, one file per partition; it must not "
                               "exist."),
    run: Optional[str] = typer.Option(None, "--run", help="Run directory or name [default: runs/latest]."),
    **options,
) -> None:
    """Tag a corpus on Apache Spark: each row gets the entities `predict --format jsonl` gives its text.

    Runs in process on local[*] unless --master (or spark-submit: see
    docs/scaling-out.md) names a cluster. Needs pyspark: pip install 'nerctl[spark]'."""
    from ..core.progress import Reporter
    from ..spark.job import run_job

    engine = EngineOptions(**options_of(EngineOptions, options)).check()
    job = SparkOptions(**options_of(SparkOptions, options))
    master = run_job(inputs, output, run, job, engine.backend, engine.precision, engine.batch_size, engine.min_score)
    Reporter().log(f"tagged {', '.join(inputs)} -> {output} ({job.output_format}) on {master}")


register(spark, SparkOptions, EngineOptions)


@app.command()
@handle_errors
def report(
    run: Optional[str] = typer.Argument(None, help="Run directory or name [default: runs/latest]."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="BIO file to score [default: the run's test file]."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for report.html and its PNGs [default: RUN/report]."),
) -> None:
    """Write report.html (self-contained, opens offline) and PNGs: curves, per-type scores, confusions, worst sentences."""
    from ..artifacts.rundir import resolve_run
    from ..core.progress import Reporter
    from ..evaluation.report import write_report

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
    from ..artifacts.rundir import default_runs_root, list_runs

    records = list_runs(runs_root or default_runs_root())
    if json_output:
        print_json(records)
    else:
        from .render import print_runs_table

        print_runs_table(records)


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
    from ..artifacts.export import export_run
    from ..artifacts.rundir import resolve_run

    folder = export_run(resolve_run(run), format.value, out, force)
    write_stdout(f"{folder}\n")


def serve(
    run: Optional[str] = typer.Argument(None, help="Run directory or name [default: runs/latest]."),
    api_key_file: Optional[Path] = typer.Option(
        None, help="Require 'Authorization: Bearer KEY' on /v1/, KEY the file's first line [env: NERCTL_API_KEY]."),
    label_studio_key_file: Optional[Path] = typer.Option(
        None, help="With --label-studio: Label Studio's API key (legacy token or personal access token), to pull "
        "annotations; the file's first line [env: LABEL_STUDIO_API_KEY]. Its address: LABEL_STUDIO_URL, else "
        "the one Label Studio sends."),
    **options,
) -> None:
    """Serve a run over HTTP: POST /v1/ner, GET /v1/model, /health, /ready, /metrics, /docs.

    Results are the records `predict --format jsonl` writes. SIGTERM or Ctrl-C
    stops accepting, answers the requests in flight, and exits 0."""
    from ..serving.app import serve as run_service

    values = options_of(ServeSettings, options)
    EngineOptions(values["backend"], values["precision"], min_score=values["min_score"]).check()  # usage errors before the run is looked for
    from ..serving.labelstudio_api import read_key

    run_service(ServeSettings(_served_run(run, values["label_studio"]), **values,
                              api_key=read_api_key(api_key_file), label_studio_key=read_key(label_studio_key_file)
                              ).check())


def _served_run(run: Optional[str], label_studio: bool) -> Optional[str]:
    """The run to serve; with --label-studio and no run given or trained yet, none (the first is trained)."""
    from ..artifacts.rundir import default_runs_root, resolve_run

    if run is None and label_studio and not (default_runs_root() / "latest").exists():
        return None
    return str(resolve_run(run).path)


register(serve, ServeSettings)


def convert(
    source: Path = typer.Argument(..., help="Tagged file to read (any format; a pipe or /dev/stdin too)."),
    target: Path = typer.Argument(..., help="File to write ('-': stdout); an existing file is replaced."),
    from_format: DataFormat = typer.Option(DataFormat.auto, "--from", help=FORMAT_HELP),
    to_format: Optional[ConvertFormat] = typer.Option(None, "--to", help=TO_FORMAT_HELP),
    to_scheme: OutputScheme = typer.Option(OutputScheme.iob2, "--to-scheme", help="Tag scheme of bio and conll output."),
    **options,
) -> None:
    """Convert a tagged corpus between formats: words and tags come back unchanged on the round trip."""
    from ..core.progress import Reporter
    from ..data.formats import convert as run_convert

    data = DataOptions(**options_of(DataOptions, options))
    read, wrote, count = run_convert(source, target, from_format.value, to_format.value if to_format else None,
                                     data.scheme, to_scheme.value, data.misaligned, words=data.words_for())
    Reporter().log(f"{source} ({read}) -> {target} ({wrote}): {count} sentences")


register(convert, DataOptions, exclude=("format",))  # the input's format is --from


def check(
    files: List[Path] = typer.Argument(..., help="The training file, then any dev and test files."),
    model: str = typer.Option(_default("model"), "--model", help="Model whose tokenizer counts word pieces."),
    max_len: int = typer.Option(_default("max_len"), "--max-len", min=8, help="Word pieces per window."),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    **options,
) -> None:
    """Check a corpus before training: formats, sizes, entities per type, span lengths, long sentences,
    misaligned spans, duplicates, labels missing from train, train/test overlap.

    Exit 0 when training on it would work, 2 (the first reason on stderr) when it would fail."""
    from ..data.check import check_files, render_check
    from ..modeling.encoding import piece_counter

    data = DataOptions(**options_of(DataOptions, options))
    result = check_files(files, data.format, data.scheme, data.misaligned, piece_counter(model, max_len), max_len - 2,
                         words=data.words_for())
    write_stdout(json.dumps(result, indent=2, ensure_ascii=False) + "\n" if json_output
                 else render_check(result, max_len))
    if result["fatal"]:
        more = f" (and {len(result['fatal']) - 1} more)" if len(result["fatal"]) > 1 else ""
        raise fail(result["fatal"][0] + more, 2)


register(check, DataOptions)


def main() -> None:
    """Console entry point: usage errors become one line and exit code 2."""
    # The exceptions typer raises: its own vendored copy of click (typer >= 0.22), even where a
    # separate click is installed too (uvicorn brings one), else click's.
    try:
        from typer._click import exceptions as click
    except ImportError:
        from click import exceptions as click

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
