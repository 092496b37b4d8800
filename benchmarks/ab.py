#!/usr/bin/env python3
"""This checkout against another revision, in turns: predict in process and the whole command, on one run.

    .venv/bin/python benchmarks/ab.py --base REV --run RUN_DIR [--rounds 5] [--suffix -ab]

A change that saves a few percent drowns in this VM's drift, 20% and more within
minutes, when the two sides are timed apart. Here every round times both
checkouts one after the other, the same run on the same engtest lines: the
in-process rate (bench.py's, from raw strings to rendered JSON lines, median
of 3 passes) and the whole `predict --file` command (start-up included). The
result gives each round's ratio (this checkout over the base) and their
medians, and whether both checkouts tagged engtest alike (in process and as a
command: int8's activation scales are per batch, and the command tags 2,048 lines a chunk). The base is checked out into a
temporary git worktree and run by this venv's Python with its own tree in
front of the editable install.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import REPO, cpu_flags, cpu_model, engtest, measured, new_result, save_result
from bench import _IN_PROCESS, log

# Puts a checkout's nerctl in front of the editable install's (whose finder would answer first).
_PRELUDE = """import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, {tree!r})
"""
_COMMAND = "import runpy; runpy.run_module('nerctl', run_name='__main__', alter_sys=True)"


def in_process(tree: Path, run: Path, texts: Path) -> dict:
    """bench.py's in-process figure for the nerctl of `tree`: its rate and its tags' digest."""
    code = _PRELUDE.format(tree=str(tree)) + _IN_PROCESS
    done = subprocess.run([sys.executable, "-c", code, str(run), str(texts), "3", "auto"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def command(tree: Path, run: Path, texts: Path, out: Path) -> float:
    """Wall seconds of `nerctl predict --file` as the nerctl of `tree`; its JSON lines written to `out`."""
    code = _PRELUDE.format(tree=str(tree)) + _COMMAND
    with open(out, "wb") as sink:
        return measured([sys.executable, "-c", code, "predict", "--run", str(run), "--file", str(texts),
                         "--format", "jsonl"], stdout=sink)["wall_s"]


def tags_digest(jsonl: Path) -> str:
    """The digest bench.py's in-process figure gives, of the tags in `predict --format jsonl` output."""
    tags = [[w["tag"] for w in json.loads(line)["words"]] for line in jsonl.read_text(encoding="utf-8").splitlines()]
    return hashlib.sha256(json.dumps(tags).encode()).hexdigest()


def rounds(trees: dict[str, Path], run: Path, texts: Path, work: Path, count: int) -> dict:
    """`count` rounds, each timing every tree in process, then every tree's command."""
    lines = len(texts.read_text(encoding="utf-8").splitlines())
    rates: dict[str, dict[str, list[float]]] = {name: {"in_process": [], "command": []} for name in trees}
    digests: dict[str, set[str]] = {name: set() for name in trees}  # of the tags: one each, if all agree
    engines: dict[str, dict] = {}
    for turn in range(count):
        log(f"round {turn + 1} of {count}")
        for name, tree in trees.items():
            figure = in_process(tree, run, texts)
            rates[name]["in_process"].append(figure["rate"])
            digests[name].add(figure["tags"])
            engines[name] = figure["engine"]
        for name, tree in trees.items():
            out = work / f"{name}.jsonl"
            rates[name]["command"].append(round(lines / command(tree, run, texts, out), 1))
            digests[name].add(tags_digest(out))
    return {"rates": rates, "tag_digests": {name: sorted(d) for name, d in digests.items()}, "engines": engines}


def summary(measured_rounds: dict) -> dict:
    """Medians of each side's rates, and this checkout over the base: each round's ratio and their median."""
    rates = measured_rounds["rates"]
    out: dict = {"median_rate": {name: {kind: statistics.median(values) for kind, values in kinds.items()}
                                 for name, kinds in rates.items()}}
    for kind in ("in_process", "command"):
        ratios = [round(h / b, 3) for h, b in zip(rates["head"][kind], rates["base"][kind])]
        out[f"{kind}_ratios"] = ratios
        out[f"{kind}_ratio_median"] = statistics.median(ratios)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the git revision to compare this checkout with")
    parser.add_argument("--run", type=Path, required=True, help="a finished run both sides tag with")
    parser.add_argument("--rounds", type=int, default=5, choices=range(1, 100), metavar="N")
    parser.add_argument("--suffix", default="-ab", help="the results file's name after <date>-<host> (as --suffix=-x)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    from nerctl.data.formats.bio import read_bio

    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="nerctl-ab-") as tmp:
        work, base = Path(tmp), Path(tmp) / "base"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(base), args.base],
                       check=True, capture_output=True)
        try:
            texts = work / "engtest.txt"
            texts.write_text("".join(" ".join(s.words) + "\n" for s in read_bio(engtest())), encoding="utf-8")
            measured_rounds = rounds({"base": base, "head": REPO}, args.run.resolve(), texts, work, args.rounds)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], check=True)
    result = new_result(machine={"cpu": cpu_model(), "flags": cpu_flags()},
                        command=f"benchmarks/ab.py --base {args.base} --run RUN --rounds {args.rounds}",
                        base=args.base, head=head, dirty=bool(subprocess.run(
                            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True).stdout.strip()),
                        same_tags=measured_rounds["tag_digests"]["base"] == measured_rounds["tag_digests"]["head"],
                        **measured_rounds, **summary(measured_rounds))
    path = save_result(result, args.out, args.suffix)
    print(json.dumps({k: result[k] for k in ("median_rate", "in_process_ratio_median", "command_ratio_median",
                                             "same_tags")}, indent=2))
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
