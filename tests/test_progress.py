"""Progress on stderr: bars on a terminal, heartbeat lines off it, nothing when quiet."""
from nerctl.core.progress import Reporter


def test_off_a_terminal_long_tasks_log_heartbeat_lines(capsys):
    reporter = Reporter(heartbeat=0.0)  # capsys' stderr is no terminal: no bar
    assert not reporter.bars
    with reporter.task("epoch 1/2", 3, unit="steps") as bar:
        for _ in range(3):
            bar.advance(1, info="loss 0.5")
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 3 and lines[-1].startswith("epoch 1/2: 3/3 steps (") and lines[-1].endswith("loss 0.5")


def test_heartbeat_is_rate_limited_and_quiet_prints_nothing(capsys):
    with Reporter(heartbeat=3600).task("tagging", None) as bar:
        bar.advance(5)
    with Reporter(quiet=True, heartbeat=0.0).counter("scoring") as progress:
        progress(4, 8)
    assert capsys.readouterr().err == ""


def test_a_bar_with_a_unit_shows_its_rate():
    import io
    import time
    from types import SimpleNamespace

    from rich.console import Console

    from nerctl.core.progress import _rate_column

    column = _rate_column("sentences")
    assert str(column.render(SimpleNamespace(finished_speed=None, speed=312.54))) == "312.5 sentences/s"
    assert str(column.render(SimpleNamespace(finished_speed=None, speed=None))) == ""  # no estimate yet
    assert str(column.render(SimpleNamespace(finished_speed=80.0, speed=None))) == "80.0 sentences/s"

    reporter = Reporter()  # and the column is on a unit's bar
    reporter.bars, reporter.console = True, Console(file=io.StringIO(), force_terminal=True, width=160)
    with reporter.task("tagging", 100, unit="sentences") as bar:
        for _ in range(3):  # rich estimates a speed from two samples on
            time.sleep(0.02)
            bar.advance(10)
        reporter.console.file.flush()
    with reporter.task("epoch 1/2", 100) as bar:  # no unit: no rate column
        bar.advance(10)
    output = reporter.console.file.getvalue()
    assert "sentences/s" in output and "steps/s" not in output
