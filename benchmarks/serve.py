#!/usr/bin/env python3
"""The HTTP service under load: throughput, latency, errors, memory, and the same tags as predict.

    .venv/bin/python benchmarks/serve.py --run RUN [--levels 1 8 64 256] [--soak 10000 100000]

Starts `nerctl serve RUN` on a free 127.0.0.1 port and sends the MIT Movie
engtest sentences (words joined with spaces) as single-text POST /v1/ner
requests from a bounded load generator in this process (asyncio, one keep-alive
connection per concurrent client; a fixed number of requests and a time limit,
so it always stops):

- each concurrency level in --levels: texts/s, p50/p95/p99 latency, errors by status;
- the same engtest requests at the top level against a server with a small
  queue (--max-queue 32): only 503s may fail, and /health answers afterwards;
- the tags: every record the server returned equals `nerctl predict --format
  jsonl` on the same lines, byte for byte;
- soak: the server's peak RSS (VmHWM) after each of --soak request counts
  (cumulative), which should stay flat (within 10%);
- for comparison, in the same run: `Tagger.tag_texts` on all the lines in a
  fresh process (in-process) and the whole `nerctl predict --file` command.

Target (issue 13): at concurrency 64, throughput >= 80% of in-process `nerctl
predict --file`: the script gives the ratio to the whole command and to the
tagging loop alone (no start-up, no output).
Client and server share the machine's cores, which costs the server some of
its throughput: the figures are a floor. Writes
benchmarks/results/<date>-<host>-serve.json and prints a table.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import REPO, cpu_model, engtest, measured, new_result, save_result  # benchmarks/, first on sys.path

NERCTL = [sys.executable, "-m", "nerctl"]
TIME_LIMIT_S = 900  # per load run: the generator stops by then whatever is left

_IN_PROCESS = """
import json, sys, time
from pathlib import Path
from nerctl.inference.tagger import Tagger
from nerctl.data.texts import read_texts
from nerctl.artifacts.rundir import RunDir
texts = read_texts(sys.argv[2])
tagger = Tagger.from_run(RunDir(Path(sys.argv[1])))
tagger.tag_texts(texts[:tagger.batch_size])  # warm-up
start = time.perf_counter()
tagger.tag_texts(texts)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def log(message: str) -> None:
    print(f"[serve {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: str, *options: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen([*NERCTL, "serve", run, "--port", str(port), *options],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
                if response.status == 200:
                    return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not become ready")


def stop_server(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(60)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def _client(port: int, queue: asyncio.Queue, out: list, deadline: float) -> None:
    """One keep-alive connection sending requests from `queue` until it is empty or time is up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < deadline:
            try:
                index, text = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = json.dumps({"texts": [text]}).encode()
            started = time.perf_counter()
            writer.write(b"POST /v1/ner HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            status, payload = await _response(reader)
            out.append((index, status, time.perf_counter() - started, payload))
    finally:
        writer.close()


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    return status, await reader.readexactly(length)


def load(port: int, texts: list[str], concurrency: int, total: int) -> dict:
    """Send `total` single-text requests (cycling through `texts`) from `concurrency` clients."""
    async def run() -> list:
        queue: asyncio.Queue = asyncio.Queue()
        for i in range(total):
            queue.put_nowait((i, texts[i % len(texts)]))
        out: list = []
        deadline = time.monotonic() + TIME_LIMIT_S
        await asyncio.gather(*(_client(port, queue, out, deadline) for _ in range(concurrency)))
        return out

    started = time.perf_counter()
    answers = asyncio.run(run())
    seconds = time.perf_counter() - started
    latencies = sorted(latency for _, status, latency, _ in answers if status == 200)
    statuses: dict[str, int] = {}
    for _, status, _, _ in answers:
        statuses[str(status)] = statuses.get(str(status), 0) + 1

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1) if latencies else None

    return {"concurrency": concurrency, "requests": total, "answered": len(answers), "statuses": statuses,
            "ok_texts_per_s": round(statuses.get("200", 0) / seconds, 1), "seconds": round(seconds, 2),
            "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
            "_answers": answers}


def same_tags_as_predict(run: str, lines_file: Path, answers: list, texts: list[str]) -> dict:
    """Compare the server's records with `nerctl predict --format jsonl` on the same lines."""
    printed = subprocess.run([*NERCTL, "predict", "--run", run, "--file", str(lines_file), "--format", "jsonl"],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    served = {}
    for index, status, _, payload in answers:
        if status == 200 and index < len(texts):
            served[index] = json.dumps(json.loads(payload)["results"][0], ensure_ascii=False)
    equal = sum(served[i] == printed[i] for i in served)
    return {"compared": len(served), "equal": equal, "all_equal": equal == len(served) == len(texts)}


def baselines(run: str, lines_file: Path, n: int) -> dict:
    timed = subprocess.run([sys.executable, "-c", _IN_PROCESS, run, str(lines_file)], capture_output=True,
                           text=True, check=True)
    in_process = n / json.loads(timed.stdout)["seconds"]
    command = measured([*NERCTL, "predict", "--run", run, "--file", str(lines_file), "--format", "jsonl"])
    return {"in_process_texts_per_s": round(in_process, 1),
            "command_texts_per_s": round(n / command["wall_s"], 1), "command_wall_s": command["wall_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default=str(REPO / "runs" / "latest"))
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--soak", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    from nerctl.data.formats.bio import read_bio

    test_file = engtest()
    texts = [" ".join(s.words) for s in read_bio(test_file)]
    lines_file = Path(tempfile.mkdtemp(prefix="nerctl-serve-bench-")) / "engtest.txt"
    lines_file.write_text("".join(t + "\n" for t in texts))
    result = new_result(cpu=cpu_model(), cores=len(os.sched_getaffinity(0)), run=args.run, texts=len(texts))
    log(f"baselines on {len(texts)} texts")
    result["baselines"] = baselines(args.run, lines_file, len(texts))
    log(str(result["baselines"]))

    process, port = start_server(args.run)
    result["levels"] = []
    for level in args.levels:
        measured_level = load(port, texts, level, len(texts))
        answers = measured_level.pop("_answers")
        if level == 64:
            result["tags"] = same_tags_as_predict(args.run, lines_file, answers, texts)
        result["levels"].append(measured_level)
        log(json.dumps(measured_level))
    done, result["soak"] = 0, []
    for count in args.soak:
        load(port, texts, 64, count - done).pop("_answers")
        done = count
        result["soak"].append({"requests": count, "peak_rss_mib": peak_rss_mib(process.pid)})
        log(json.dumps(result["soak"][-1]))
    result["exit_code_after_sigterm"] = stop_server(process)

    process, port = start_server(args.run, "--max-queue", "32")
    top = max(args.levels)
    overload = load(port, texts, top, len(texts))
    overload.pop("_answers")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
        overload["healthy_after"] = response.status == 200
    overload["only_503_failures"] = set(overload["statuses"]) <= {"200", "503"}
    result["overload_small_queue"] = overload
    result["small_queue_exit_code"] = stop_server(process)
    log(json.dumps(overload))
    finish(result)


def finish(result: dict) -> None:
    at64 = next((r for r in result["levels"] if r["concurrency"] == 64), None)
    if at64:
        result["ratio_64_vs_in_process"] = round(at64["ok_texts_per_s"] / result["baselines"]["in_process_texts_per_s"], 3)
        result["ratio_64_vs_command"] = round(at64["ok_texts_per_s"] / result["baselines"]["command_texts_per_s"], 3)
    if len(result["soak"]) > 1:
        result["soak_rss_ratio"] = round(result["soak"][-1]["peak_rss_mib"] / result["soak"][0]["peak_rss_mib"], 3)
    rows = ["| concurrency | texts/s | p50 ms | p95 ms | p99 ms | statuses |", "| --- | --- | --- | --- | --- | --- |"]
    for r in result["levels"] + [{**result["overload_small_queue"], "concurrency": "%s, queue 32" %
                                  result["overload_small_queue"]["concurrency"]}]:
        rows.append(f"| {r['concurrency']} | {r['ok_texts_per_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | "
                     f"{', '.join(f'{k}: {v}' for k, v in sorted(r['statuses'].items()))} |")
    result["table"] = "\n".join(rows)
    path = save_result(result, REPO / "benchmarks" / "results", "-serve")
    print(result["table"])
    print(json.dumps({k: result.get(k) for k in ("baselines", "ratio_64_vs_in_process", "ratio_64_vs_command", "tags", "soak",
                                                  "soak_rss_ratio", "exit_code_after_sigterm")}, indent=2))
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
