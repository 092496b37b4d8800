"""Logs and progress bars, always on stderr (stdout carries data only).

Bars appear only when stderr is a terminal; colour follows rich's rules, which
honour NO_COLOR. Library users get the same behaviour, or pass quiet=True.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator


class Reporter:
    def __init__(self, quiet: bool = False):
        from rich.console import Console

        self.quiet = quiet
        self.console = Console(stderr=True, highlight=False)
        self.bars = self.console.is_terminal and not quiet

    def log(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, markup=False, soft_wrap=True)

    @contextlib.contextmanager
    def counter(self, description: str) -> Iterator[Callable[[int, int], None]]:
        """A bar fed by `(done, total)` callbacks, as Tagger.predict_words makes them."""
        with self.task(description, None) as bar:
            yield lambda done, total: bar.advance(done, total=total)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator["_Task"]:
        """A progress bar (terminal only); `advance(n, **fields)` moves it on."""
        if not self.bars:
            yield _Task(None, None)
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
        with Progress(*columns, console=self.console, transient=True) as bar:
            yield _Task(bar, bar.add_task(description, total=total, info=""))


class _Task:
    def __init__(self, bar, task_id):
        self._bar, self._id = bar, task_id

    def advance(self, n: int = 1, info: str | None = None, total: int | None = None) -> None:
        if self._bar is not None:
            fields = {"info": info} if info is not None else {}
            self._bar.update(self._id, advance=n, total=total, **fields)  # total=None: unchanged


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
