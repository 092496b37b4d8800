"""Logs and progress bars, always on stderr (stdout carries data only).

Bars appear only when stderr is a terminal; colour follows rich's rules, which
honour NO_COLOR. Off a terminal (CI logs, `nohup`), long tasks instead print a
plain progress line every `heartbeat` seconds, so a log never looks hung.
Library users get the same behaviour, or pass quiet=True.
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Iterator

HEARTBEAT_SECONDS = 30.0


class Reporter:
    def __init__(self, quiet: bool = False, heartbeat: float = HEARTBEAT_SECONDS):
        from rich.console import Console

        self.quiet = quiet
        self.console = Console(stderr=True, highlight=False)
        self.bars = self.console.is_terminal and not quiet
        self.heartbeat = heartbeat

    def log(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, markup=False, soft_wrap=True)

    def note(self, message: str) -> None:
        """A line for a person at a terminal only: piped stderr stays for logs of work and errors."""
        if self.bars:
            self.log(message)

    @contextlib.contextmanager
    def counter(self, description: str) -> Iterator[Callable[[int, int], None]]:
        """A bar fed by `(done, total)` callbacks, as Tagger.tags_and_scores makes them."""
        with self.task(description, None, unit="sentences") as bar:
            yield lambda done, total: bar.advance(done, total=total)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None, unit: str = "") -> Iterator["_Task | _Heartbeat"]:
        """A progress bar on a terminal, else a heartbeat line; `advance(n, info=...)` moves it on."""
        if not self.bars:
            yield _Heartbeat(description, total, unit, self.log, self.heartbeat)  # log is quiet-aware
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), *([_rate_column(unit)] if unit else []),
                   TextColumn("{task.fields[info]}")]
        with Progress(*columns, console=self.console, transient=True) as bar:
            yield _Task(bar, bar.add_task(description, total=total, info=""))


def _rate_column(unit: str):
    """A bar column with the task's speed, one decimal, as in 'N.N sentences/s' (rich is imported lazily)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.1f} {unit}/s" if speed else "")

    return Rate()


class _Task:
    def __init__(self, bar, task_id):
        self._bar, self._id = bar, task_id

    def advance(self, n: int = 1, info: str | None = None, total: int | None = None) -> None:
        fields = {"info": info} if info is not None else {}
        self._bar.update(self._id, advance=n, total=total, **fields)  # total=None: unchanged


class _Heartbeat:
    """The off-terminal stand-in for a bar: a log line at most every `interval` seconds."""

    def __init__(self, description: str, total: int | None, unit: str, log: Callable[[str], None], interval: float):
        self._description, self._total, self._log, self._interval = description, total, log, interval
        self._unit = f" {unit}" if unit else ""
        self._done = 0
        self._started = self._last = time.monotonic()

    def advance(self, n: int = 1, info: str | None = None, total: int | None = None) -> None:
        self._done += n
        self._total = total if total is not None else self._total
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        self._last = now
        of = f"/{self._total}" if self._total else ""
        rate = self._done / max(now - self._started, 1e-9)
        self._log(f"{self._description}: {self._done}{of}{self._unit} ({rate:.1f}/s){'  ' + info if info else ''}")


Warn = Callable[[str], None]


def warn_on_stderr(message: str) -> None:
    print(f"nerctl: warning: {message}", file=sys.stderr)
