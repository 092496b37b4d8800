#!/usr/bin/env python3
"""What each CPU speed lever buys: MiniLM train-step throughput, one process per setting.

    .venv/bin/python benchmarks/levers.py [--steps 60] [--sentences 5000] [--mirror DIR_OR_URL]

Each setting runs nerctl's own training step (`nerctl.training.step.make_train_step`) on
the first --sentences sentences of engtrain, in a fresh process (thread pools and
Keras policies are process-wide), nothing else running: 8 warm-up steps, then
--steps timed ones. Padding settings re-pad nerctl's length-sorted batches to
show what fixed or coarse padding would cost. Writes
benchmarks/results/<date>-<host>-levers.json and prints a table. Compare rows
only within one run: machines differ from day to day.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import cpu_model, new_result, save_result  # benchmarks/, first on sys.path when a script runs

REPO = Path(__file__).resolve().parent.parent

# (name, setting): each setting changes one thing from the row it names.
SETTINGS = [
    ("fixed padding to 64, batch 32 (the tutorial's shape)", {"pad_to": 64, "batch_size": 32}),
    ("padding to a multiple of 8, batch 32", {"pad_multiple": 8, "batch_size": 32}),
    ("length-sorted batches padded to their longest, batch 32", {"batch_size": 32}),
    ("+ frozen word embeddings, batch 32", {"batch_size": 32, "freeze_embeddings": True}),
    ("+ batch 64 (the default config)", {"batch_size": 64, "freeze_embeddings": True}),
    ("default + bf16 (mixed_bfloat16)", {"batch_size": 64, "freeze_embeddings": True, "precision": "bf16"}),
    ("default + 1 inter-op / 2 intra-op threads", {"batch_size": 64, "freeze_embeddings": True, "threads": [1, 2]}),
    ("default + embeddings and lowest layer frozen (freeze_layers = 1)",
     {"batch_size": 64, "freeze_embeddings": True, "freeze_layers": 1}),
]


def repad(batch, width: int, pad_id: int):
    """Pad a collated batch on the right to `width` positions."""
    import numpy as np

    from nerctl.modeling.encoding import IGNORE_INDEX

    extra = width - batch.input_ids.shape[1]

    def widen(array, value):
        return np.pad(array, ((0, 0), (0, extra)), constant_values=value)

    return widen(batch.input_ids, pad_id), widen(batch.attention_mask, 0), widen(batch.labels, IGNORE_INDEX)


def measure_one(setting: dict, train_file: str, sentences: int, steps: int) -> dict:
    """Time nerctl's train step under `setting` in this process."""
    import numpy as np

    from nerctl.data.formats.bio import read_bio
    from nerctl.config import TrainConfig
    from nerctl.modeling.model import build_model, load_tokenizer, resolve_model, variables_to_train
    from nerctl.modeling.runtime import import_tensorflow
    from nerctl.modeling.encoding import Encoder, PieceTokenizer, batch_plan, collate
    from nerctl.data.tags import LabelMap
    from nerctl.training.step import make_optimizer, make_train_step

    tf = import_tensorflow()
    if "threads" in setting:
        tf.config.threading.set_inter_op_parallelism_threads(setting["threads"][0])
        tf.config.threading.set_intra_op_parallelism_threads(setting["threads"][1])
    config = TrainConfig(batch_size=setting["batch_size"], freeze_embeddings=setting.get("freeze_embeddings", False),
                         freeze_layers=setting.get("freeze_layers", 0))
    data = read_bio(train_file)[:sentences]
    label_map = LabelMap.from_sentences(data)
    path = resolve_model("minilm")
    encoder = Encoder(PieceTokenizer.from_transformers(load_tokenizer(path)), config.max_len, label_map)
    windows = encoder.encode([s.words for s in data], [s.tags for s in data])
    tf.keras.utils.set_random_seed(0)
    model = build_model(path, label_map, precision=setting.get("precision", "fp32"))
    optimizer = make_optimizer(config, total_steps=1000)
    step = make_train_step(model, optimizer, variables_to_train(model, config.freeze_embeddings, config.freeze_layers))

    plan = batch_plan(windows, config.batch_size, np.random.default_rng(0))
    if len(plan) < 8 + steps:
        raise SystemExit(f"--sentences {sentences} gives {len(plan)} batches; 8 warm-up + {steps} steps need more")
    batches = []
    for indices in plan[: 8 + steps]:
        batch = collate(windows, indices, encoder.pad_id)
        multiple = setting.get("pad_multiple", 1)
        width = max(setting.get("pad_to", 0), -(-batch.input_ids.shape[1] // multiple) * multiple)
        batches.append((repad(batch, width, encoder.pad_id), len(indices)))
    for arrays, _ in batches[:8]:
        float(step(*arrays))
    start = time.perf_counter()
    for arrays, _ in batches[8:]:
        float(step(*arrays))
    wall = time.perf_counter() - start
    timed = batches[8:]
    return {"sentences_per_s": round(sum(n for _, n in timed) / wall, 1),
            "ms_per_step": round(1000 * wall / len(timed), 1),
            "mean_padded_length": round(float(np.mean([a[0].shape[1] for a, _ in timed])), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--sentences", type=int, default=5000)  # 5000 / batch 64: 8 warm-up + 60 steps fit
    parser.add_argument("--mirror", default=os.environ.get("NERCTL_MIRROR"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one setting (JSON) here
    parser.add_argument("--train-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(json.loads(args.one), args.train_file, args.sentences, args.steps)))
        return

    from nerctl.data.datasets import dataset_split

    train_file = str(dataset_split("mitmovie", "train", mirror=args.mirror))
    rows = []
    for name, setting in SETTINGS:
        print(f"[levers] {name}", file=sys.stderr, flush=True)
        out = subprocess.run([sys.executable, __file__, "--one", json.dumps(setting), "--train-file", train_file,
                              "--sentences", str(args.sentences), "--steps", str(args.steps)],
                             capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"[levers] {name} failed:\n{out.stderr[-2000:]}")
        rows.append({"name": name, "setting": setting, **json.loads(out.stdout.splitlines()[-1])})
        print(f"[levers]   {rows[-1]}", file=sys.stderr, flush=True)
    result = new_result(cpu=cpu_model(), steps=args.steps, sentences=args.sentences, rows=rows)
    base = rows[0]["sentences_per_s"]
    lines = ["| setting | train sentences/s | vs. fixed 64 | ms/step | mean padded length |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['name']} | {r['sentences_per_s']} | {r['sentences_per_s'] / base:.2f}x | {r['ms_per_step']} | "
              f"{r['mean_padded_length']} |" for r in rows]
    result["table"] = "\n".join(lines)
    path = save_result(result, args.out, "-levers")
    print(result["table"])
    print(f"[levers] wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
