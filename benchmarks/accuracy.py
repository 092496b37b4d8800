#!/usr/bin/env python3
"""What each accuracy lever buys on dev, over seeds: one `nerctl train` per (lever, seed).

    .venv/bin/python benchmarks/accuracy.py [--levers default softmax ...] [--seeds 42 1 2] [--mirror DIR]
    .venv/bin/python benchmarks/accuracy.py --final [--seeds 42 1 2]

Each lever is the default config (configs/mitmovie.toml) with one change. Only
dev figures are read (the best epoch's dev F1, the dev split being the seeded
share of engtrain): engtest is never used to choose anything, so the script
does not record it; the chosen recipe is scored on engtest separately. The
int8 model is skipped (`--no-int8`): it does not change the fp32 model or its
dev figure. Results accumulate in benchmarks/results/accuracy-<date>.json
(a (lever, seed) already there is not trained again), and a table of the mean
and range of dev F1 per lever is printed. A difference under ~0.3 points
between single runs is seed noise here: compare means over 3+ seeds, paired by
seed (the seed also draws the dev split).

`--final` scores the chosen recipe once: the default config as it ships (int8
gate included) for each seed, and records dev and engtest F1 (the engine
`nerctl predict` would use) with their mean, min and max under "final".
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _common import cpu_flags, cpu_model, measured  # benchmarks/, first on sys.path when a script runs

REPO = Path(__file__).resolve().parent.parent
NERCTL = str(Path(sys.executable).parent / "nerctl")

# name -> the flags that make it differ from the default config (configs/mitmovie.toml, CRF head since
# 2026-12-01; rows recorded before then were renamed to these names: same flags, same runs).
LEVERS = {
    "default": [],
    "softmax": ["--head", "softmax"],
    "train-embeddings": ["--train-embeddings"],
    "epochs-8": ["--epochs", "8"],
    "epochs-10": ["--epochs", "10"],
    "lr-3e-4": ["--lr", "3e-4"],
    "lr-1e-4": ["--lr", "1e-4"],
    "warmup-0.06": ["--warmup-ratio", "0.06"],
    "average-3": ["--average-last", "3"],
    "layer-lr-decay-0.8": ["--layer-lr-decay", "0.8"],
    "dropout-0.2": ["--dropout", "0.2"],
    "dropout-0.05": ["--dropout", "0.05"],
    "batch-32": ["--batch-size", "32"],
    # Two changes: the decay slows the lower layers, the higher peak lr makes up for it (0.8 alone still rose
    # at epoch 6).
    "layer-lr-decay-0.9-lr-3e-4": ["--layer-lr-decay", "0.9", "--lr", "3e-4"],
}


def train(name: str, flags: list[str], seed: int, runs: Path, mirror: str | None) -> tuple[Path, dict, dict]:
    """Train the default config with `flags` and `seed` (resuming an attempt cut short); its folder, summary
    and cost."""
    run_dir = runs / f"{name}-s{seed}"
    cmd = [NERCTL, "train", "--config", str(REPO / "configs" / "mitmovie.toml"), *flags, "--seed", str(seed),
           "--run-dir", str(run_dir)] + (["--mirror", mirror] if mirror else [])
    if run_dir.exists():
        cmd = [NERCTL, "train", "--resume", "--run-dir", str(run_dir)]
    cost = measured(cmd)
    return run_dir, json.loads((run_dir / "summary.json").read_text()), cost


def lever_result(lever: str, seed: int, runs: Path, mirror: str | None) -> dict:
    """One (lever, seed): dev figures only (no int8: it does not change the fp32 model or its dev F1)."""
    run_dir, summary, cost = train(lever, [*LEVERS[lever], "--no-int8"], seed, runs, mirror)
    curve = [json.loads(line)["dev_f1"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {"lever": lever, "flags": LEVERS[lever], "seed": seed, "dev_f1": round(summary["best_dev_f1"], 4),
            "best_epoch": summary["best_epoch"], "dev_f1_per_epoch": [round(f, 4) for f in curve],
            "wall_s": cost["wall_s"], "peak_rss_mib": cost["peak_rss_mib"],
            **({"average": summary["average"]} if "average" in summary else {})}


def final_result(seed: int, runs: Path, mirror: str | None) -> dict:
    """The shipped recipe for one seed: dev F1 and its engtest score on the engine predict uses (and fp32)."""
    run_dir, summary, cost = train("final", [], seed, runs, mirror)
    return {"seed": seed, "dev_f1": round(summary["best_dev_f1"], 4), "best_epoch": summary["best_epoch"],
            "test_f1": round(summary["test"]["f1"], 4), "test_engine": summary["test"]["engine"],
            "test_f1_fp32": fp32_test_f1(run_dir, summary["test"]["file"]),
            "int8": summary.get("int8"), "wall_s": cost["wall_s"], "peak_rss_mib": cost["peak_rss_mib"]}


def fp32_test_f1(run_dir: Path, test_file: str) -> float:
    """The same test file scored by the fp32 model (`--precision fp32`), where training kept an int8 one."""
    done = subprocess.run([NERCTL, "evaluate", str(run_dir), "--file", test_file, "--precision", "fp32", "--json"],
                          capture_output=True, text=True, check=True)
    return round(json.loads(done.stdout)["f1"], 4)


FINAL_FIGURES = ("dev_f1", "test_f1", "test_f1_fp32")  # per-seed figures of --final summarised over seeds


def spread(values: list[float]) -> dict:
    return {"mean": round(statistics.mean(values), 4), "min": min(values), "max": max(values), "n": len(values)}


def table(results: list[dict]) -> str:
    rows = ["| lever | flags | seeds | dev F1 mean | min - max | vs default, same seeds | wall min |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    default = {r["seed"]: r["dev_f1"] for r in results if r["lever"] == "default"}
    for lever in dict.fromkeys(r["lever"] for r in results):
        mine = [r for r in results if r["lever"] == lever]
        f1 = [r["dev_f1"] for r in mine]
        paired = [r["dev_f1"] - default[r["seed"]] for r in mine if r["seed"] in default]
        delta = f"{100 * statistics.mean(paired):+.2f} pts ({len(paired)})" if paired and lever != "default" else "-"
        rows.append(f"| {lever} | `{' '.join(LEVERS[lever]) or '(none)'}` | {len(mine)} | "
                    f"{statistics.mean(f1):.4f} | {min(f1):.4f} - {max(f1):.4f} | {delta} | "
                    f"{statistics.mean(r['wall_s'] for r in mine) / 60:.1f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levers", nargs="+", choices=list(LEVERS), default=["default", "softmax"])
    parser.add_argument("--final", action="store_true", help="score the shipped recipe on engtest, per seed")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 1, 2])
    parser.add_argument("--mirror", default=os.environ.get("NERCTL_MIRROR"))
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "accuracy")
    parser.add_argument("--out", type=Path,
                        default=REPO / "benchmarks" / "results" / f"accuracy-{datetime.date.today().isoformat()}.json")
    args = parser.parse_args()

    record = json.loads(args.out.read_text()) if args.out.exists() else {
        "machine": {"cpu": cpu_model(), "flags": cpu_flags(), "nproc": os.cpu_count()}, "results": []}

    def save(what: dict) -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
        print(f"[accuracy] {what}", file=sys.stderr, flush=True)

    if args.final:
        final = record.setdefault("final", {"config": "configs/mitmovie.toml", "runs": []})
        for seed in sorted(set(args.seeds) - {r["seed"] for r in final["runs"]}, key=args.seeds.index):
            print(f"[accuracy] final seed {seed}", file=sys.stderr, flush=True)
            final["runs"].append(final_result(seed, args.runs, args.mirror))
            final.update({key: spread([r[key] for r in final["runs"]]) for key in FINAL_FIGURES})
            save(final["runs"][-1])
        print(json.dumps({key: final[key] for key in FINAL_FIGURES if key in final}))
        return
    done = {(r["lever"], r["seed"]) for r in record["results"]}
    for seed in args.seeds:  # seed-major: after each seed, every lever has a paired figure
        for lever in args.levers:
            if (lever, seed) in done:
                continue
            print(f"[accuracy] {lever} seed {seed}", file=sys.stderr, flush=True)
            record["results"].append(lever_result(lever, seed, args.runs, args.mirror))
            record["table"] = table(record["results"])
            save(record["results"][-1])
    print(table(record["results"]))


if __name__ == "__main__":
    main()
