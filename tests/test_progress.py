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
