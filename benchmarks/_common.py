"""What the benchmark scripts share: timing a command, naming the machine, saving results."""
from __future__ import annotations

import datetime
import json
import os
import platform
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# MIT Movie's test split: where `nerctl download` keeps it, else the mirror beside the repository.
ENGTEST = (Path.home() / ".cache" / "nerctl" / "mitmovie" / "engtest.bio",
           REPO.parent / "shared" / "data" / "mitmovie" / "engtest.bio")


def engtest() -> Path:
    """The first copy of engtest.bio that exists (else the download's place, which reading then names)."""
    return next((p for p in ENGTEST if p.is_file()), ENGTEST[0])


def measured(cmd: list[str], stdout=subprocess.DEVNULL, env=None) -> dict:
    """Run a command; return its wall time, CPU time and its own peak RSS (wait4's rusage)."""
    start = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, env=env)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"command failed ({code}): {' '.join(cmd)}\n{stderr.decode(errors='replace')[-3000:]}")
    return {"wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni")


def cpu_flags() -> list[str]:
    """The CPU's flags that decide which kernels and precisions are fast (from /proc/cpuinfo)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            return [flag for flag in FLAGS_OF_INTEREST if flag in present]
    return []


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def new_result(**fields) -> dict:
    """A result record that starts with the date and the host, as its file name does."""
    return {"date": datetime.date.today().isoformat(), "host": socket.gethostname(), **fields}


def save_result(result: dict, out_dir: Path, suffix: str = "") -> Path:
    """Write `result` to <out_dir>/<date>-<host><suffix>.json, or to -2.json, -3.json, ... after it when
    that exists (a second run the same day must not replace a committed result); return the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{result['date']}-{result['host']}{suffix}"
    path, copy = out_dir / f"{stem}.json", 2
    while path.exists():
        path, copy = out_dir / f"{stem}-{copy}.json", copy + 1
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
