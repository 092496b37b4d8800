"""Helpers shared by the CLI commands: error handling, stdout rendering."""
from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from typing import Callable

import typer

from ..core.errors import Interrupted, NerctlError, debug_enabled

PROG = "nerctl"


def fail(message: str, code: int) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return typer.Exit(code)


def handle_errors(command: Callable) -> Callable:
    """Turn library errors into one line on stderr and the right exit code.

    A traceback is shown only with --debug / NERCTL_DEBUG=1.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except Interrupted as err:
            print(f"{PROG}: {err}", file=sys.stderr)
            raise typer.Exit(err.exit_code) from None
        except NerctlError as err:
            if debug_enabled():
                traceback.print_exc()
            raise fail(str(err), err.exit_code) from None
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): not an error of ours. Point
            # stdout at /dev/null so the interpreter's final flush stays quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except Exception as err:  # noqa: BLE001 - last resort: one line, not a traceback
            if debug_enabled():
                traceback.print_exc()
            raise fail(f"{type(err).__name__}: {err} (run with --debug for the traceback)", 1) from None

    return wrapper


def stdout_console():
    """rich on stdout; off a terminal as wide as the content, so no table cell or line is cut or wrapped."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=100_000)


def write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def print_json(data) -> None:
    write_stdout(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def metrics_table(metrics: dict):
    """A rich table of overall and per-type entity scores."""
    from rich.table import Table

    table = Table()
    for column in ("type", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "type" else "right")
    for name, m in metrics["per_type"].items():
        table.add_row(name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", str(m["support"]))
    table.add_section()
    table.add_row("all (micro)", f"{metrics['precision']:.4f}", f"{metrics['recall']:.4f}",
                  f"{metrics['f1']:.4f}", str(metrics["entities"]), style="bold")
    return table


def print_metrics(metrics: dict, title: str) -> None:
    console = stdout_console()
    # The title on a line of its own: as the table's title it would wrap at the table's width.
    console.print(title, soft_wrap=True, highlight=False, markup=False)
    console.print(metrics_table(metrics))
    console.print(f"token accuracy (words, no padding): {metrics['token_accuracy']:.4f}"
                  f"   sentences: {metrics['sentences']}", highlight=False)
    if metrics.get("calibration"):
        calibration = metrics["calibration"]
        # On a line of its own, as the title above: a table title wraps at the table's width.
        console.print(f"span scores: calibration error (ECE) {calibration['ece']:.4f} over {calibration['spans']} "
                      "spans; what --min-score keeps:", highlight=False)
        console.print(thresholds_table(calibration))


def thresholds_table(calibration: dict):
    """Precision and recall of the spans each --min-score would keep."""
    from rich.table import Table

    table = Table()
    for column in ("--min-score", "spans kept", "precision", "recall"):
        table.add_column(column, justify="right")
    for row in calibration["thresholds"]:
        table.add_row(f"{row['min_score']:g}", str(row["spans"]), f"{row['precision']:.4f}", f"{row['recall']:.4f}")
    return table


def print_predictions_table(results) -> None:
    from rich.table import Table
    from rich.text import Text

    console = stdout_console()
    for result in results:
        console.print(result.text, markup=False, highlight=False)
        if not result.entities:
            console.print("  (no entities)", style="dim")
            continue
        table = Table(show_edge=False, pad_edge=False, box=None, padding=(0, 2))
        for column in ("type", "text", "start", "end", "score"):
            table.add_column(column, justify="right" if column in ("start", "end", "score") else "left")
        for e in result.entities:
            table.add_row(e.type, Text(e.text), str(e.start), str(e.end), f"{e.score:.3f}")
        console.print(table)


def span_markup(words, tags, other_tags, right: str, wrong: str):
    """`words` as rich Text with each span of `tags` bracketed as [TYPE words]: styled `right`
    when `other_tags` has the same span, else `wrong`. Readable without colour too."""
    from rich.text import Text

    from ..evaluation.analysis import segments

    text = Text()
    for k, (chunk, kind, matched) in enumerate(segments(words, tags, other_tags)):
        text.append(" " if k else "")
        text.append(f"[{kind} {chunk}]" if kind else chunk, style=(right if matched else wrong) if kind else None)
    return text


def print_sentence_errors(worst: list[dict]) -> None:
    """The worst sentences of an evaluation: gold and predicted spans, right ones green.

    Missed gold spans are yellow, wrong predicted ones red; brackets carry the same
    information where colour is off (piped output, NO_COLOR)."""
    from rich.text import Text

    console = stdout_console()
    if not worst:
        console.print("no sentence has a span error", highlight=False)
    for rank, item in enumerate(worst, 1):
        where = f"{item['source']}:{item['line']}" if item["source"] else ""
        console.print(Text(f"#{rank}  {item['errors']} span error(s)  {where}", style="bold"))
        console.print(Text("  gold  ") + span_markup(item["words"], item["gold"], item["pred"], "green", "bold yellow"))
        console.print(Text("  pred  ") + span_markup(item["words"], item["pred"], item["gold"], "green", "bold red"))


def print_runs_table(records: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    def f1(value) -> str:
        return "" if value is None else f"{value:.4f}"

    table = Table(box=None, pad_edge=False, padding=(0, 2))
    for column in ("run", "started (UTC)", "model", "epochs", "best dev F1", "test F1", "state"):
        table.add_column(column, justify="right" if column in ("epochs", "best dev F1", "test F1") else "left")
    styles = {"finished": "green", "running": "cyan", "interrupted": "yellow", "unreadable": "red"}
    for r in records:
        epochs = "" if r["epochs_done"] is None else f"{r['epochs_done']}/{r['epochs']}"
        table.add_row(r["name"], r["started"].replace("T", " ")[:16], str(r["model"] or ""), epochs,
                      f1(r["best_dev_f1"]), f1(r["test_f1"]), r["state"], style=styles.get(r["state"]))
    stdout_console().print(table) if records else Console(stderr=True).print("no runs", highlight=False)
