#!/usr/bin/env python3
"""Inference padding: what a server's batches of random texts cost, and whether tags depend on the batch.

    .venv/bin/python benchmarks/padding.py --run RUN [--group 64]

In one process, tags MIT Movie engtest with a finished run's tagger three ways
and times each (best of --repeats):

- sorted: the whole file in one call (what `predict --file` does);
- random, padded to longest: shuffled groups of --group texts (what a server's
  dynamic batches look like), each batch padded to its longest window (the plan
  before `preprocess.tagging_plan`);
- random, tagging_plan: the same groups with each window padded to its length
  rounded up to PAD_MULTIPLE, batched only with windows of that padded length.

Also counts the texts whose tags or scores differ from the sorted run's.
Writes benchmarks/results/<date>-<host>-padding.json.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from _common import REPO, cpu_model, engtest, new_result, save_result



def timed(tag, groups: list[list[str]], repeats: int) -> tuple[float, list]:
    """Best wall time over `repeats` of tagging every group; the results of the last repeat."""
    best, results = float("inf"), []
    for _ in range(repeats):
        start = time.perf_counter()
        results = [doc for group in groups for doc in tag(group)]
        best = min(best, time.perf_counter() - start)
    return best, results


def differing(results: list, reference: dict) -> dict:
    """Texts whose tags, or whose scores, differ from the reference run's."""
    tags = sum([w.tag for w in doc.words] != reference[doc.text][0] for doc in results)
    scores = sum([w.score for w in doc.words] != reference[doc.text][1] for doc in results)
    return {"tags_differ": tags, "scores_differ": scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default=str(REPO / "runs" / "latest"))
    parser.add_argument("--group", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import nerctl.inference.tagger as tagger_module
    from nerctl.data.formats.bio import read_bio
    from nerctl.modeling.encoding import batch_plan
    from nerctl.artifacts.rundir import RunDir

    test_file = engtest()
    texts = list(dict.fromkeys(" ".join(s.words) for s in read_bio(test_file)))  # a text once: results keyed by text
    tagger = tagger_module.Tagger.from_run(RunDir(Path(args.run)))
    order = np.random.default_rng(0).permutation(len(texts))
    groups = [[texts[i] for i in order[k : k + args.group]] for k in range(0, len(texts), args.group)]
    tagger.tag_texts(texts[:64])  # warm-up

    sorted_s, sorted_docs = timed(tagger.tag_texts, [texts], args.repeats)
    reference = {doc.text: ([w.tag for w in doc.words], [w.score for w in doc.words]) for doc in sorted_docs}
    planned_s, planned_docs = timed(tagger.tag_texts, groups, args.repeats)
    tagging_plan = tagger_module.tagging_plan
    tagger_module.tagging_plan = lambda windows, size: [(None, b) for b in batch_plan(windows, size)]
    try:
        longest_s, longest_docs = timed(tagger.tag_texts, groups, args.repeats)
    finally:
        tagger_module.tagging_plan = tagging_plan

    rate = lambda seconds: round(len(texts) / seconds, 1)
    result = new_result(cpu=cpu_model(), run=args.run, texts=len(texts), group=args.group, backend=tagger.engine.backend,
                        sorted_texts_per_s=rate(sorted_s),
                        random_padded_to_longest={"texts_per_s": rate(longest_s), **differing(longest_docs, reference)},
                        random_tagging_plan={"texts_per_s": rate(planned_s), **differing(planned_docs, reference)})
    print(save_result(result, REPO / "benchmarks" / "results", "-padding"), file=sys.stderr)
    for key in ("sorted_texts_per_s", "random_padded_to_longest", "random_tagging_plan"):
        print(f"{key}: {result[key]}")


if __name__ == "__main__":
    main()
