#!/usr/bin/env python3
"""Streaming prediction: peak memory and throughput of `nerctl predict --file X --output Y`.

    .venv/bin/python benchmarks/stream.py --run RUN [--sizes 10000 100000] [--engtest FILE]

Builds text files of each size by repeating the MIT Movie engtest sentences
(words joined with spaces, one per line), runs `nerctl predict --run RUN --file
X --output Y.jsonl` on each in a fresh process and takes its wall time and peak
RSS (wait4's ru_maxrss: that process alone). For comparison, the in-memory path
in a fresh process: `Tagger.from_run(RUN).tag_texts(texts)` on the first
--sizes lines, timed after a warm-up batch (so without start-up or output), and
its peak RSS. Throughput is given per wall second and per CPU second (user +
system): on a shared machine the second moves less with other load. Targets (issue 5): the peak RSS of the sizes within 10% of each
other; streaming throughput (whole command) within 10% of the in-memory path.
Writes benchmarks/results/<date>-<host>-stream.json and prints a table. The
100,000-line run takes ~5 minutes at ~330 sentences/s on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, engtest, measured, new_result, save_result  # benchmarks/, first on sys.path when a script runs


# The in-memory path, timed like bench.py's in-process figure but without rendering.
_IN_MEMORY = """
import json, resource, sys, time
from pathlib import Path
from nerctl.inference.tagger import Tagger
from nerctl.data.texts import read_texts
from nerctl.artifacts.rundir import RunDir
texts = read_texts(sys.argv[2])
tagger = Tagger.from_run(RunDir(Path(sys.argv[1])))
tagger.tag_texts(texts[:tagger.batch_size])  # warm-up
start, cpu = time.perf_counter(), time.process_time()
tagger.tag_texts(texts)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu_s": cpu,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def log(message: str) -> None:
    print(f"[stream {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def engtest_lines(path: Path) -> list[str]:
    from nerctl.data.formats.bio import read_bio

    return [" ".join(s.words) for s in read_bio(path)]


def table(result: dict) -> str:
    rows = ["| run | lines | wall s | sentences/s | sentences/CPU-s | peak RSS MiB |",
            "| --- | --- | --- | --- | --- | --- |"]
    memory = result["in_memory"]
    rows.append(f"| in memory: tag_texts after warm-up | {memory['lines']:,} | {memory['seconds']} | "
                f"{memory['sentences_per_s']} | {memory['sentences_per_cpu_s']} | {memory['peak_rss_mib']} |")
    for run in result["stream"]:
        rows.append(f"| `nerctl predict --file --output` (whole command) | {run['lines']:,} | {run['wall_s']} | "
                    f"{run['sentences_per_s']} | {run['sentences_per_cpu_s']} | {run['peak_rss_mib']} |")
    targets = result["targets"]
    rows.append("")
    rows.append(f"peak RSS largest/smallest: {targets['peak_rss_ratio']} (target <= 1.10); "
                f"stream/in-memory throughput: {targets['throughput_ratio']} (target >= 0.90; "
                f"per CPU second: {targets['cpu_throughput_ratio']})")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a trained run directory (with model.tflite)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--engtest", type=Path, default=engtest())
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    sentences = engtest_lines(args.engtest)
    workdir = Path(tempfile.mkdtemp(prefix="nerctl-stream-"))
    files = {}
    for size in args.sizes:
        files[size] = workdir / f"in-{size}.txt"
        files[size].write_text("".join(sentences[i % len(sentences)] + "\n" for i in range(size)), encoding="utf-8")

    result = new_result(nproc=os.cpu_count(), run=str(Path(args.run).resolve()), engtest_sentences=len(sentences))
    smallest = min(args.sizes)
    log(f"in memory: {smallest} lines")
    out = subprocess.run([sys.executable, "-c", _IN_MEMORY, args.run, str(files[smallest])], capture_output=True,
                         text=True, check=True)
    memory = json.loads(out.stdout.splitlines()[-1])
    result["in_memory"] = {"lines": smallest, "seconds": round(memory["seconds"], 2),
                           "sentences_per_s": round(smallest / memory["seconds"], 1),
                           "sentences_per_cpu_s": round(smallest / memory["cpu_s"], 1),
                           "peak_rss_mib": round(memory["peak_rss_mib"], 1)}
    log(f"in memory: {result['in_memory']}")
    result["stream"] = []
    for size in args.sizes:
        log(f"stream: {size} lines")
        output = workdir / f"out-{size}.jsonl"
        command = measured([str(Path(sys.executable).parent / "nerctl"), "predict", "--run", args.run,
                            "--file", str(files[size]), "--output", str(output)])
        wall, cpu, rss = command["wall_s"], command["cpu_s"], command["peak_rss_mib"]
        with open(output, "rb") as f:
            lines = sum(1 for _ in f)
        assert lines == size, f"{output}: {lines} lines, expected {size}"
        result["stream"].append({"lines": size, "wall_s": round(wall, 2), "sentences_per_s": round(size / wall, 1),
                                 "sentences_per_cpu_s": round(size / cpu, 1), "peak_rss_mib": round(rss, 1)})
        log(f"stream: {result['stream'][-1]}")
        output.unlink()
    rss = [r["peak_rss_mib"] for r in result["stream"]]
    first = next(r for r in result["stream"] if r["lines"] == smallest)
    result["targets"] = {"peak_rss_ratio": round(max(rss) / min(rss), 3),
                         "throughput_ratio": round(first["sentences_per_s"] / result["in_memory"]["sentences_per_s"], 3),
                         "cpu_throughput_ratio": round(first["sentences_per_cpu_s"]
                                                       / result["in_memory"]["sentences_per_cpu_s"], 3)}
    for path in files.values():
        path.unlink()
    workdir.rmdir()
    result["table"] = table(result)
    path = save_result(result, args.out, "-stream")
    print(result["table"])
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
