"""Streaming prediction: lazy reading, order across chunks, --output and --resume, a real kill."""
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from conftest import make_sentences
from nerctl.cli import app
from nerctl.core.errors import InputError
from nerctl.inference.output import open_output, render, resume_output, write_stream
from nerctl.inference.tagger import Tagger
from nerctl.data.texts import count_lines, iter_texts, read_texts
from nerctl.artifacts.rundir import RunDir

runner = CliRunner()


def queries(n: int, seed: int = 5) -> list[str]:
    """Templated queries of varied length, with blank and whitespace-only lines among them."""
    texts = [" ".join(w for w, _ in s) for s in make_sentences(n, seed)]
    return [("" if i % 11 == 3 else "  " if i % 17 == 5 else t) for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def tagger(trained_run):
    return Tagger.from_run(RunDir(trained_run))


def test_iter_texts_reads_lazily_with_the_rules_of_read_texts(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\n\r\ntwo \n\xff bad\nfour\n")
    lines = iter_texts(path)
    assert [next(lines), next(lines), next(lines)] == ["one", "", "two "]  # read before the bad line
    with pytest.raises(InputError, match=r"in.txt:4: not valid UTF-8"):
        next(lines)
    with pytest.raises(InputError, match=r"in.txt:4: not valid UTF-8"):
        read_texts(path)
    stdin = io.TextIOWrapper(io.BytesIO(b"\xef\xbb\xbfa\r\nb"), encoding="latin-1")  # decoded as UTF-8 anyway
    assert list(iter_texts("-", stdin)) == ["a", "b"]
    with pytest.raises(InputError, match="no such file"):
        iter_texts(tmp_path / "missing.txt")  # checked at once, not at the first line
    for data in (b"", b"a", b"a\n", b"a\n\n", b"\n\nb", b"a\r\nb\r\n"):
        path.write_bytes(data)
        assert count_lines(path) == len(read_texts(path)), data


def test_stream_keeps_input_order_across_chunks_and_equals_the_in_memory_output(tagger):
    texts = queries(300)
    chunks = list(tagger.tag_chunks(texts, chunk_size=64))
    assert [len(c) for c in chunks] == [64, 64, 64, 64, 44]
    results = list(itertools.chain.from_iterable(chunks))
    assert [r.text for r in results] == texts  # blank lines included
    in_memory = tagger.tag_texts(texts)
    for fmt in ("jsonl", "conll"):
        sink = io.StringIO()
        assert write_stream(tagger, texts, sink, fmt, chunk_size=64) == len(texts)
        assert sink.getvalue() == render(in_memory, fmt)
    lines = render(results, "jsonl").splitlines()
    assert [json.loads(line)["text"] for line in lines] == texts


def test_tag_chunks_reads_its_input_one_chunk_ahead_at_most(tagger):
    read = 0

    def endless():
        nonlocal read
        for text in itertools.cycle(queries(50)):
            read += 1
            yield text

    stream = tagger.tag_chunks(endless(), chunk_size=32)
    assert len(next(stream)) == 32 and read == 32  # the first results come out before more input is read
    assert len(next(stream)) == 32 and read == 64


def test_write_stream_flushes_every_chunk(tagger):
    class Sink(io.StringIO):
        flushed: list[int] = []

        def flush(self):
            self.flushed.append(self.getvalue().count("\n"))

    sink = Sink()
    progress = []
    write_stream(tagger, queries(100), sink, chunk_size=40, progress=lambda docs: progress.append(len(docs)))
    assert sink.flushed == [40, 80, 100] and progress == [40, 40, 20]


@pytest.mark.parametrize("k", [0, 37, 64, 99])
def test_resume_after_an_interruption_gives_the_uninterrupted_output(tagger, tmp_path, k):
    texts = queries(150)
    full = tmp_path / "full.jsonl"
    with open_output(full) as sink:
        write_stream(tagger, texts, sink, chunk_size=32)
    lines = full.read_bytes().splitlines(keepends=True)
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"".join(lines[:k]) + lines[k][: len(lines[k]) // 2])  # k records and a torn one
    done, rest = resume_output(out, iter(texts), chunk_size=32)
    assert done == k and out.read_bytes() == b"".join(lines[:k])  # the torn record is gone
    with open_output(out, append=True) as sink:
        assert write_stream(tagger, rest, sink, chunk_size=32, done=done) == len(texts) - k
    assert out.read_bytes() == full.read_bytes()


def test_resume_refuses_the_output_of_another_input(tagger, tmp_path):
    texts = queries(40)
    out = tmp_path / "out.jsonl"
    with open_output(out) as sink:
        write_stream(tagger, texts[:20], sink)
    out.write_bytes(out.read_bytes() + b'{"text": "torn')
    before = out.read_bytes()
    other = texts[1:] + ["x"]
    with pytest.raises(InputError, match=r"out.jsonl:20 answers .*input line 20 is .*another input"):
        resume_output(out, iter(other))
    with pytest.raises(InputError, match=r"holds 20 records but the input has only 10 lines"):
        resume_output(out, iter(texts[:10]))
    assert out.read_bytes() == before  # refused: not even the torn line is cut
    out.write_text("word\tO\n\n", encoding="utf-8")  # conll, not jsonl
    with pytest.raises(InputError, match=r"out.jsonl:2: not a nerctl jsonl record"):
        resume_output(out, iter(texts))
    assert resume_output(tmp_path / "missing.jsonl", iter(texts))[0] == 0  # nothing written yet


def test_cli_output_resume_and_usage_errors(trained_run, tmp_path):
    texts = queries(120)
    big = tmp_path / "big.txt"
    big.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    base = ["predict", "--run", str(trained_run), "--file", str(big)]
    stdout = runner.invoke(app, base)
    assert stdout.exit_code == 0, stdout.output
    out = tmp_path / "out.jsonl"
    out.write_text("stale\n")  # replaced without --resume, never appended to
    written = runner.invoke(app, [*base, "--output", str(out)])
    assert written.exit_code == 0 and written.stdout == ""
    assert out.read_text(encoding="utf-8") == stdout.stdout
    assert [json.loads(line)["text"] for line in stdout.stdout.splitlines()] == texts
    lines = stdout.stdout.splitlines(keepends=True)
    out.write_text("".join(lines[:50]) + lines[50][:10], encoding="utf-8")
    resumed = runner.invoke(app, [*base, "--output", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming: 50 lines already in" in resumed.stderr
    assert out.read_text(encoding="utf-8") == stdout.stdout
    piped = runner.invoke(app, ["predict", "--run", str(trained_run), "--format", "conll", "-"],
                          input="who directed jaws\r\n\nhave you seen titanic\n")
    conll = runner.invoke(app, ["predict", "--run", str(trained_run), "--format", "conll", "--input-format", "text",
                                "who directed jaws", "", "have you seen titanic"])
    assert piped.exit_code == 0 and piped.stdout == conll.stdout and piped.stdout.count("\n") == 4 + 1 + 5  # words + a blank line each

    for args, message in [
        (["--resume"], "--resume needs --output FILE, --format jsonl and text input"),
        (["--output", str(out), "--format", "conll", "--resume"], "--resume needs --output FILE"),
        (["--output", str(out), "--format", "table"], "--output writes jsonl, conll, spans, labelstudio or html, not table"),
        (["--output", str(big)], "is the input file"),
    ]:
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
        assert message in result.stderr
    assert out.read_text(encoding="utf-8") == stdout.stdout  # usage errors leave the output alone


def nerctl_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "nerctl", *map(str, args)]


@pytest.mark.subprocess
def test_kill_9_then_resume_equals_an_uninterrupted_run(trained_run, tmp_path):
    """A real job killed with SIGKILL part-way, then resumed: byte for byte the uninterrupted output."""
    texts = queries(6000, seed=9)
    big = tmp_path / "big.txt"
    big.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    env = {**os.environ, "NO_COLOR": "1"}
    out = tmp_path / "out.jsonl"
    job = subprocess.Popen(nerctl_cmd("predict", "--run", trained_run, "--file", big, "--output", out), env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (out.exists() and out.stat().st_size) and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    job.send_signal(signal.SIGKILL)
    assert job.wait(timeout=30) == -signal.SIGKILL, "the job ended before it could be killed"
    done = count_lines(out)
    assert 0 < done < len(texts)
    resumed = subprocess.run(nerctl_cmd("predict", "--run", trained_run, "--file", big, "--output", out, "--resume"),
                             env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    full = subprocess.run(nerctl_cmd("predict", "--run", trained_run, "--file", big), env=env, capture_output=True,
                          timeout=120)
    assert full.returncode == 0 and full.stdout.count(b"\n") == len(texts)
    assert out.read_bytes() == full.stdout


def test_stdin_to_stdout_streams_chunk_by_chunk(trained_run):
    """The first chunk's results arrive while stdin is still open: nothing waits for the end of the input."""
    import threading

    texts = queries(2048 + 10, seed=3)
    job = subprocess.Popen(nerctl_cmd("predict", "--run", trained_run, "-"), stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})
    watchdog = threading.Timer(60, job.kill)  # a job that waits for EOF is killed: readline then returns b""
    watchdog.start()
    try:
        job.stdin.write("".join(t + "\n" for t in texts).encode())
        job.stdin.flush()
        first = [job.stdout.readline() for _ in range(2048)]  # the default chunk, stdin still open
        assert job.poll() is None and all(first), "no output before the end of the input"
        job.stdin.close()
        rest = job.stdout.read().splitlines()
        assert job.wait(timeout=30) == 0
    finally:
        watchdog.cancel()
    assert [json.loads(line)["text"] for line in first + rest] == texts


def test_a_line_typed_at_a_terminal_is_answered_at_once(trained_run):
    """On a terminal stdin, each line is tagged when it is typed, not when 2,048 have come."""
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "nerctl", "predict", "--run", str(trained_run), "-",
                             "--format", "jsonl"], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        os.write(master, b"who directed jaws\n")
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no answer while stdin stayed open"
        assert json.loads(proc.stdout.readline())["text"] == "who directed jaws"
        os.write(master, b"\x04")  # Ctrl-D: end of input
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        os.close(master)
        os.close(slave)
