#!/usr/bin/env python3
"""Peer baseline: spaCy v3's own CPU NER pipeline (blank 'en' + tok2vec CNN + ner)
trained and evaluated on the MIT Movie "eng" corpus (engtrain.bio / engtest.bio).

It answers "what would a CPU user pick instead of a transformer tagger", using
spaCy's stock `init config` settings (no pretrained vectors, no transformer, no
spaCy model downloads). Prints one JSON object on stdout (spaCy's training log
goes to stderr). See spacy_peer_README.md next to this file.

Data format: one token per line `TAG<TAB>word` (tag first), blank line between
sentences, IOB2 tags.

nerctl's copy of the peer script (../shared/peers/spacy_peer.py) with one change:
`--dev-file`, so that benchmarks/bench.py trains spaCy on nerctl's own
train/dev split of engtrain (the seeded 10% of configs/mitmovie.toml) rather
than a split of its own.

Set-up and run (its own venv, PEER_VENV, outside the project's):
    python3 -m venv PEER_VENV
    PEER_VENV/bin/pip install spacy==3.8.18 seqeval threadpoolctl
    PEER_VENV/bin/python spacy_peer.py --smoke                       # ~15 s check
    PEER_VENV/bin/python spacy_peer.py --out spacy_peer_results.json # ~10-16 min, CPU otherwise idle
"""
import argparse
import contextlib
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import spacy
from spacy.tokens import Doc, DocBin
from spacy.util import registry

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent.parent / "shared" / "data" / "mitmovie"  # benchmarks/peers/ -> ../shared/data/mitmovie

# ---------------------------------------------------------------------------
# Instrumentation registered in spaCy's registry. Neither changes training:
# the callback only records a timestamp per update, and the batcher delegates
# to spacy.batch_by_words.v1 with identical arguments, counting examples.
# (Because the saved config.cfg names them, a process that loads the trained
# pipeline must import this file first; the predict-only child is this file.)
# ---------------------------------------------------------------------------
_REC = {"t": [], "step": [], "epoch": [], "examples": 0, "batches": 0}


@registry.callbacks("spacy_peer.step_recorder.v1")
def make_step_recorder():
    def before_update(nlp, args):
        _REC["t"].append(time.perf_counter())
        _REC["step"].append(args["step"])
        _REC["epoch"].append(args["epoch"])
    return before_update


@registry.batchers("spacy_peer.counting_batch_by_words.v1")
def make_counting_batcher(size, tolerance, discard_oversize, get_length=None):
    inner = registry.batchers.get("spacy.batch_by_words.v1")(
        size=size, tolerance=tolerance, discard_oversize=discard_oversize, get_length=get_length)

    def batcher(items):
        for batch in inner(items):
            _REC["examples"] += len(batch)
            _REC["batches"] += 1
            yield batch
    return batcher


# ---------------------------------------------------------------------------
def read_bio(path, limit=None):
    """Return a list of (words, tags); the file has `TAG<TAB>word` per line."""
    sents, words, tags = [], [], []
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                if words:
                    sents.append((words, tags))
                    words, tags = [], []
                continue
            parts = line.split("\t")
            if len(parts) != 2 or not parts[1]:
                raise ValueError(f"{path}:{ln}: expected TAG<TAB>word, got {line!r}")
            tag, word = parts
            if not (tag == "O" or tag[:2] in ("B-", "I-")):
                raise ValueError(f"{path}:{ln}: not an IOB2 tag: {tag!r}")
            tags.append(tag)
            words.append(word)
    if words:
        sents.append((words, tags))
    return sents[:limit] if limit else sents


def spaces_for(words):
    return [True] * (len(words) - 1) + [False]


def ents_to_tags(doc):
    tags = ["O"] * len(doc)
    for ent in doc.ents:
        tags[ent.start] = "B-" + ent.label_
        for i in range(ent.start + 1, ent.end):
            tags[i] = "I-" + ent.label_
    return tags


def char_ents_to_word_tags(doc, words):
    """Map entities predicted on raw text (spaCy's own tokens) back to gold words."""
    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += len(w) + 1
    tags = ["O"] * len(words)
    for ent in doc.ents:
        idx = [i for i, (s, w) in enumerate(zip(starts, words))
               if s < ent.end_char and s + len(w) > ent.start_char]
        if idx and all(tags[i] == "O" for i in idx):
            tags[idx[0]] = "B-" + ent.label_
            for i in idx[1:]:
                tags[i] = "I-" + ent.label_
    return tags


def rusage_mib(who):
    """ru_maxrss in MiB. Caution: Linux keeps the parent's high-water mark across
    fork+exec, so for an exec'd child this is at least the parent's RSS at spawn."""
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux: KiB


def vm_hwm_mib():
    """Peak RSS of this process's own address space (/proc/self/status VmHWM)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def cpu_seconds(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def machine_info():
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model is None:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:
        mem = [l for l in open("/proc/meminfo") if l.startswith("MemTotal")][0].split()[1]
        mem_gib = round(int(mem) / 1024 / 1024, 1)
    except Exception:
        mem_gib = None
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "os_cpu_count": os.cpu_count(),
        "cpu_model": model,
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "amx": sorted(f for f in flags if f.startswith("amx")),
        "mem_total_gib": mem_gib,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "niceness": os.nice(0),
    }


def thread_info():
    import thinc
    from thinc.api import get_current_ops
    out = {"thinc_version": thinc.__version__, "thinc_ops": type(get_current_ops()).__name__,
           "env": {k: os.environ.get(k) for k in
                   ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")}}
    try:
        from threadpoolctl import threadpool_info
        out["threadpoolctl"] = [{k: d.get(k) for k in ("internal_api", "prefix", "num_threads", "version",
                                                        "threading_layer")}
                                for d in threadpool_info()]
    except ImportError:
        out["threadpoolctl"] = "not installed"
    from importlib.metadata import PackageNotFoundError, version
    for pkg in ("blis", "numpy", "seqeval", "threadpoolctl"):
        try:
            out[f"{pkg}_version"] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def dir_mib(path):
    return round(sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20, 2)


# ---------------------------------------------------------------------------
def build_config(args, work):
    from spacy.cli.init_config import init_config
    config = init_config(lang="en", pipeline=["ner"], optimize=args.optimize, gpu=False)
    generated = {
        "paths.vectors": config["paths"]["vectors"],
        "tok2vec.embed.include_static_vectors": config["components"]["tok2vec"]["model"]["embed"]["include_static_vectors"],
        "tok2vec.encode.width": config["components"]["tok2vec"]["model"]["encode"]["width"],
        "tok2vec.encode.depth": config["components"]["tok2vec"]["model"]["encode"]["depth"],
        "training.max_epochs": config["training"]["max_epochs"],
        "training.max_steps": config["training"]["max_steps"],
        "training.patience": config["training"]["patience"],
        "training.eval_frequency": config["training"]["eval_frequency"],
    }
    changes = []
    vec = config["paths"]["vectors"]
    if vec is not None and not spacy.util.is_package(vec) and not Path(str(vec)).exists():
        # optimize=accuracy names en_core_web_lg's static vectors; that package is not
        # installed (and `spacy download` cannot work here), so init would fail (E050).
        config["paths"]["vectors"] = None
        config["components"]["tok2vec"]["model"]["embed"]["include_static_vectors"] = False
        changes.append(f"paths.vectors {vec!r} -> null and include_static_vectors -> false "
                       f"({vec} not installed)")
    # Instrumentation only (see the top of this file).
    config["training"]["before_update"] = {"@callbacks": "spacy_peer.step_recorder.v1"}
    b = dict(config["training"]["batcher"])
    assert b.pop("@batchers") == "spacy.batch_by_words.v1", b
    config["training"]["batcher"] = {"@batchers": "spacy_peer.counting_batch_by_words.v1", **b}
    cfg_path = work / "config.cfg"
    config.to_disk(cfg_path)
    overrides = {
        "paths.train": str(work / "train.spacy"),
        "paths.dev": str(work / "dev.spacy"),
        "system.seed": args.seed,
        "training.max_epochs": args.max_epochs,
    }
    if args.max_epochs > 0:  # bounded by epochs only; --max-epochs 0 keeps spaCy's max_steps (20000)
        overrides["training.max_steps"] = 0
    if args.eval_frequency:
        overrides["training.eval_frequency"] = args.eval_frequency
    if args.patience is not None:
        overrides["training.patience"] = args.patience
    return cfg_path, overrides, generated, changes


def write_docbins(nlp, train, dev, work):
    n_words = 0
    for name, sents in (("train", train), ("dev", dev)):
        db = DocBin(store_user_data=False)
        for words, tags in sents:
            doc = Doc(nlp.vocab, words=words, spaces=spaces_for(words), ents=tags)
            assert ents_to_tags(doc) == tags, (words, tags)
            db.add(doc)
            if name == "train":
                n_words += len(words)
        db.to_disk(work / f"{name}.spacy")
    return n_words


def train_main(args):
    t_start = time.perf_counter()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="spacy_peer_"))
    work.mkdir(parents=True, exist_ok=True)
    all_train = read_bio(args.train_file)
    if args.dev_file:  # the split is given: train on all of --train-file, check on --dev-file
        train, dev = all_train, read_bio(args.dev_file)
        all_train = train + dev
    else:
        rng = random.Random(args.seed)
        idx = list(range(len(all_train)))
        rng.shuffle(idx)
        if args.smoke:
            idx = idx[:args.smoke_train]
        n_dev = int(round(len(idx) * args.dev_fraction))
        dev_idx, train_idx = sorted(idx[:n_dev]), sorted(idx[n_dev:])
        train = [all_train[i] for i in train_idx]
        dev = [all_train[i] for i in dev_idx]
    labels = sorted({t[2:] for _, tags in all_train for t in tags if t != "O"})

    nlp0 = spacy.blank("en")
    n_train_words = write_docbins(nlp0, train, dev, work)
    tok_mismatch = sum(1 for w, _ in train if [t.text for t in nlp0.make_doc(" ".join(w))] != w)
    del nlp0

    cfg_path, overrides, generated, changes = build_config(args, work)
    from spacy.cli.train import train as spacy_train
    out_dir = work / "output"
    rss_before = vm_hwm_mib()
    cpu0 = cpu_seconds(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the JSON
        spacy_train(cfg_path, out_dir, overrides=overrides)
    t1 = time.perf_counter()
    cpu1 = cpu_seconds(resource.RUSAGE_SELF)
    train_rss = rusage_mib(resource.RUSAGE_SELF)
    train_hwm = vm_hwm_mib()
    train_children_rss = rusage_mib(resource.RUSAGE_CHILDREN)

    ts, steps, epochs = _REC["t"], _REC["step"], _REC["epoch"]
    wall = t1 - t0
    final_cfg = spacy.util.load_config(out_dir / "model-best" / "config.cfg")
    T = final_cfg["training"]
    eval_freq, patience = T["eval_frequency"], T["patience"]
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    eval_gaps = [g for s, g in zip(steps, gaps) if s % eval_freq == 0]
    plain_gaps = [g for s, g in zip(steps, gaps) if s % eval_freq != 0]
    eval_overhead = (sum(eval_gaps) - len(eval_gaps) * statistics.median(plain_gaps)) if plain_gaps else None
    n_steps = len(steps)
    last_eval_step = max(s for s in steps if s % eval_freq == 0) if steps else None
    epochs_run = (max(epochs) + 1) if epochs else 0
    if args.max_epochs > 0 and _REC["examples"] == args.max_epochs * len(train):
        stopped_by = "max_epochs"
    elif T["max_steps"] and steps and steps[-1] >= T["max_steps"]:
        stopped_by = "max_steps"
    else:
        stopped_by = "patience"
    meta = json.loads((out_dir / "model-best" / "meta.json").read_text())
    perf = meta.get("performance", {})

    train_block = {
        "train_sentences": len(train), "train_words": n_train_words, "dev_sentences": len(dev),
        "wall_s": round(wall, 3),
        "init_s": round(ts[0] - t0, 3) if ts else None,
        "loop_s": round(t1 - ts[0], 3) if ts else None,
        "eval_and_checkpoint_s_est": round(eval_overhead, 3) if eval_overhead is not None else None,
        "n_dev_evals": sum(1 for s in steps if s % eval_freq == 0),
        "epochs_run": epochs_run,
        "epochs_fraction": round(_REC["examples"] / len(train), 3),
        "steps": n_steps,
        "last_eval_step": last_eval_step,
        "steps_after_last_eval": (steps[-1] - last_eval_step) if steps else None,
        "stopped_by": stopped_by,
        "sentences_seen": _REC["examples"],
        "sentences_per_s": round(_REC["examples"] / wall, 2),
        "words_per_s": round(_REC["examples"] / len(train) * n_train_words / wall, 1),
        "cpu_s": round(cpu1 - cpu0, 2),
        "cpu_util": round((cpu1 - cpu0) / wall, 3),
        "peak_rss_mib": round(train_hwm, 1) if train_hwm else None,
        "peak_rss_mib_ru_maxrss": round(train_rss, 1),
        "peak_rss_mib_before_train": round(rss_before, 1),
        "peak_rss_mib_children": round(train_children_rss, 1),
        "train_tokenizer_mismatch_sentences": tok_mismatch,
    }
    dev_block = {k: perf.get(k) for k in ("ents_f", "ents_p", "ents_r")}
    dev_block["note"] = "spaCy's own dev score of model-best (the best of the evaluations every eval_frequency steps)"

    # Evaluation and prediction timing in a fresh process (clean predict-only RSS).
    cmd = [sys.executable, str(Path(__file__).resolve()), "--predict-only", str(out_dir / "model-best"),
           "--test-file", args.test_file, "--batch-size", str(args.batch_size), "--runs", str(args.runs)]
    if args.smoke:
        cmd += ["--test-limit", str(args.smoke_test)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"predict-only child failed with rc={proc.returncode}")
    child = json.loads(proc.stdout.strip().splitlines()[-1])

    result = {
        "peer": "spacy_v3_cpu_ner",
        "spacy_version": spacy.__version__,
        "smoke": bool(args.smoke),
        "config": {
            "optimize": args.optimize,
            "init_config_generated": generated,
            "changes_to_generated": changes,
            "pipeline": final_cfg["nlp"]["pipeline"],
            "tok2vec_embed": {k: final_cfg["components"]["tok2vec"]["model"]["embed"][k]
                              for k in ("attrs", "rows", "include_static_vectors")},
            "tok2vec_encode": {k: final_cfg["components"]["tok2vec"]["model"]["encode"][k]
                               for k in ("width", "depth", "window_size", "maxout_pieces")},
            "ner_model": {k: final_cfg["components"]["ner"]["model"][k]
                          for k in ("@architectures", "hidden_width", "maxout_pieces", "use_upper")},
            "max_epochs": T["max_epochs"], "max_steps": T["max_steps"], "patience": patience,
            "eval_frequency": eval_freq, "dropout": T["dropout"],
            "learn_rate": final_cfg["training"]["optimizer"]["learn_rate"],
            "batcher_size": dict(final_cfg["training"]["batcher"]["size"]),
            "seed": final_cfg["system"]["seed"],
            "gold_preproc": final_cfg["corpora"]["train"]["gold_preproc"],
            "dev_split": args.dev_file or f"seeded ({args.seed}) {args.dev_fraction:.0%} of engtrain",
            "labels": labels,
        },
        "train": train_block,
        "dev": dev_block,
        "test": child["test"],
        "predict": child["predict"],
        "model_best_mib": dir_mib(out_dir / "model-best"),
        "threads": thread_info(),
        "machine": machine_info(),
        "workdir": str(work),
        "total_script_s": round(time.perf_counter() - t_start, 1),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if not args.keep:
        import shutil
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------
def _time_runs(fn, runs):
    fn()  # warm-up, not timed
    walls, cpus = [], []
    for _ in range(runs):
        c0 = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN) - c0)
    return walls, cpus


def predict_main(args):
    t0 = time.perf_counter()
    nlp = spacy.load(args.predict_only)
    load_s = time.perf_counter() - t0
    hwm_load = vm_hwm_mib()
    test = read_bio(args.test_file, args.test_limit)
    n = len(test)
    words_list = [w for w, _ in test]
    texts = [" ".join(w) for w in words_list]
    bs = args.batch_size
    pred = {"batch_size": bs, "runs": args.runs, "test_sentences": n, "model_load_s": round(load_s, 3),
            "_hwm_load": hwm_load}

    def fresh_docs():  # new Docs each run: preset ents would constrain the NER
        return [Doc(nlp.vocab, words=w, spaces=spaces_for(w)) for w in words_list]

    batched_tags = {}

    def run_docs():
        docs = fresh_docs()
        c = cpu_seconds(resource.RUSAGE_SELF)
        t = time.perf_counter()
        out = list(nlp.pipe(docs, batch_size=bs))
        run_docs.inner.append(time.perf_counter() - t)
        run_docs.cpu.append(cpu_seconds(resource.RUSAGE_SELF) - c)
        if not batched_tags:
            batched_tags["t"] = [ents_to_tags(d) for d in out]
    run_docs.inner, run_docs.cpu = [], []

    raw_docs = {}

    def run_texts():
        out = list(nlp.pipe(texts, batch_size=bs))
        if not raw_docs:
            raw_docs["d"] = out

    def run_texts_np2():
        list(nlp.pipe(texts, batch_size=bs, n_process=2))

    # (a) pre-tokenized Docs; Doc creation is excluded from the time (inner timer).
    _time_runs(run_docs, args.runs)
    w, cpus = run_docs.inner[1:], run_docs.cpu[1:]
    pred["docs"] = {"wall_s": [round(x, 4) for x in w], "sentences_per_s": round(n / statistics.median(w), 1),
                    "cpu_util": round(statistics.median(c / x for c, x in zip(cpus, w)), 3)}
    # (b) raw text strings through spaCy's tokenizer + pipeline, one process
    w, cpus = _time_runs(run_texts, args.runs)
    pred["texts"] = {"wall_s": [round(x, 4) for x in w], "sentences_per_s": round(n / statistics.median(w), 1),
                     "cpu_util": round(statistics.median(c / x for c, x in zip(cpus, w)), 3)}
    pred["peak_rss_mib"] = round(vm_hwm_mib(), 1)  # before n_process=2 and before seqeval import
    pred["peak_rss_mib_after_load"] = round(pred.pop("_hwm_load"), 1)
    # (c) raw texts, n_process=2 (worker start-up is inside each timed call)
    w, cpus = _time_runs(run_texts_np2, args.runs)
    pred["texts_n_process2"] = {"wall_s": [round(x, 4) for x in w],
                                "sentences_per_s": round(n / statistics.median(w), 1),
                                "cpu_util": round(statistics.median(c / x for c, x in zip(cpus, w)), 3)}
    # ru_maxrss of the largest worker; forked workers count the parent's pages they share.
    pred["n_process2_worker_peak_rss_mib"] = round(rusage_mib(resource.RUSAGE_CHILDREN), 1)

    # Accuracy: gold words -> Doc -> each pipeline component, one sentence at a time.
    t = time.perf_counter()
    pred_tags = []
    for words in words_list:
        doc = Doc(nlp.vocab, words=words, spaces=spaces_for(words))
        for _name, proc in nlp.pipeline:
            doc = proc(doc)
        pred_tags.append(ents_to_tags(doc))
    unb = time.perf_counter() - t
    pred["unbatched_sentences_per_s"] = round(n / unb, 1)
    pred["batched_equals_unbatched"] = batched_tags["t"] == pred_tags

    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2
    gold = [t for _, t in test]
    raw_tags = [char_ents_to_word_tags(d, w) for d, w in zip(raw_docs["d"], words_list)]
    rep = classification_report(gold, pred_tags, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    rep_default = classification_report(gold, pred_tags, output_dict=True, zero_division=0)
    types = sorted(k for k in rep if not k.endswith(" avg"))
    tok_total = sum(len(g) for g in gold)
    tok_ok = sum(a == b for g, p in zip(gold, pred_tags) for a, b in zip(g, p))
    test_block = {
        "sentences": n, "words": tok_total,
        "strict": {"precision": round(precision_score(gold, pred_tags, mode="strict", scheme=IOB2), 4),
                   "recall": round(recall_score(gold, pred_tags, mode="strict", scheme=IOB2), 4),
                   "f1": round(f1_score(gold, pred_tags, mode="strict", scheme=IOB2), 4)},
        "default": {"precision": round(precision_score(gold, pred_tags), 4),
                    "recall": round(recall_score(gold, pred_tags), 4),
                    "f1": round(f1_score(gold, pred_tags), 4)},
        "per_type_f1_strict": {k: round(rep[k]["f1-score"], 4) for k in types},
        "per_type_f1_default": {k: round(rep_default[k]["f1-score"], 4) for k in types if k in rep_default},
        "per_type_support": {k: int(rep[k]["support"]) for k in types},
        "token_accuracy": round(tok_ok / tok_total, 4),
        "raw_text_path_strict_f1": round(f1_score(gold, raw_tags, mode="strict", scheme=IOB2), 4),
        "test_tokenizer_mismatch_sentences": sum(1 for d, w in zip(raw_docs["d"], words_list)
                                                 if [x.text for x in d] != w),
    }
    print(json.dumps({"test": test_block, "predict": pred}))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-file", default=str(DATA / "engtrain.bio"))
    p.add_argument("--test-file", default=str(DATA / "engtest.bio"))
    p.add_argument("--dev-file", default=None, help="the dev sentences (then --train-file is all training data)")
    p.add_argument("--max-epochs", type=int, default=None,
                   help="default 10 (--smoke: 1); 0 = spaCy's stock stopping (patience 1600, max_steps 20000)")
    p.add_argument("--optimize", choices=["efficiency", "accuracy"], default="efficiency")
    p.add_argument("--smoke", action="store_true", help="300 train sentences (10%% of them dev), 100 test, 1 epoch")
    p.add_argument("--smoke-train", type=int, default=300, help=argparse.SUPPRESS)
    p.add_argument("--smoke-test", type=int, default=100, help=argparse.SUPPRESS)
    p.add_argument("--eval-frequency", type=int, default=None,
                   help="dev evaluation every N steps (default: spaCy's generated value, 200; --smoke: 10)")
    p.add_argument("--patience", type=int, default=None, help="default: spaCy's generated value (1600)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--dev-fraction", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=256, help="nlp.pipe batch size for prediction timing")
    p.add_argument("--runs", type=int, default=3, help="timed runs per prediction mode (median reported)")
    p.add_argument("--workdir", default=None, help="where DocBins, config and models go (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the workdir (models) instead of deleting it")
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.add_argument("--predict-only", default=None, metavar="MODEL_DIR", help=argparse.SUPPRESS)
    p.add_argument("--test-limit", type=int, default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.max_epochs is None:
        a.max_epochs = 1 if a.smoke else 10
    if a.smoke:
        if a.eval_frequency is None:
            a.eval_frequency = 10
    return a


if __name__ == "__main__":
    args = parse_args()
    if args.predict_only:
        predict_main(args)
    else:
        train_main(args)
