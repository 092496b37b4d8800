"""Progress on stderr: bars on a terminal, heartbeat lines off it, nothing when quiet."""
from nerctl.progress import Reporter


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

    from rich.console import Console

    reporter = Reporter()
    reporter.bars, reporter.console = True, Console(file=io.StringIO(), force_terminal=True, width=160)
    with reporter.task("tagging", 100, unit="sentences") as bar:
        for _ in range(3):
            time.sleep(0.05)
            bar.advance(10)
        reporter.console.file.flush()
    rates = [float(part.split()[-1]) for part in reporter.console.file.getvalue().split(" sentences/s")[:-1]]
    assert rates and all(50 < rate < 1000 for rate in rates), rates  # ~10 per 0.05 s
