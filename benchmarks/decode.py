#!/usr/bin/env python3
"""Decoding's cost: Viterbi alone against Viterbi plus the posteriors that score words and spans.

    .venv/bin/python benchmarks/decode.py --run RUN [--repeats 5]

In one process, takes a finished run's word probabilities for all of MIT Movie
engtest once (the model's forward pass, timed too), then times (best of
--repeats) the decoding step two ways on them: Viterbi alone with each word's
softmax probability and a span's mean (how scores were made before posterior
scores), and `Tagger.decode` (Viterbi, forward-backward, span probabilities).
Then the whole in-process tagging rate (tag_texts on engtest's texts, sentences/s)
both ways: with `Tagger.decode` as it is, and with the decoding of before posterior
scores put in its place; the two alternate, best of --repeats each.
Writes benchmarks/results/<date>-<host>-decode.json.
"""
from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np

from _common import REPO, cpu_flags, cpu_model, engtest, new_result, save_result



def best_of(repeats: int, work) -> float:
    """The best wall time of `repeats` calls of `work`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def viterbi_with_mean_scores(tagger, probs) -> list:
    """Decoding as before posterior scores: Viterbi, each word's softmax, a span's mean of them."""
    from nerctl.data.tags import entity_spans, repair_bio
    from nerctl.inference.decode import viterbi_iob2
    from nerctl.inference.tagger import Decoded

    labels = tagger.label_map.labels
    ids = viterbi_iob2([np.log(np.maximum(p, 1e-12)) for p in probs], labels, learned=tagger.transitions)
    out = []
    for p, row in zip(probs, ids):
        tags = repair_bio([labels[i] for i in row])
        scores = [float(p[w, i]) for w, i in enumerate(row)]
        out.append(Decoded(tags, scores, [float(np.mean(scores[a:b])) for _, a, b in entity_spans(tags)]))
    return out


def alternating(repeats: int, first, second) -> tuple[float, float]:
    """Best wall times of `first` and `second`, run in turn `repeats` times each (drift hits both)."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for work, bucket in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            work()
            bucket.append(time.perf_counter() - start)
    return min(times[0]), min(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a finished run directory")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from nerctl.artifacts.rundir import RunDir
    from nerctl.data.formats.bio import read_bio
    from nerctl.inference.tagger import Tagger

    test_file = engtest()
    sentences = [s.words for s in read_bio(test_file, warn=lambda message: None)]
    tagger = Tagger.from_run(RunDir(Path(args.run).resolve()))
    start = time.perf_counter()
    probs = tagger.word_probabilities(sentences)
    forward_s = time.perf_counter() - start
    before = best_of(args.repeats, lambda: viterbi_with_mean_scores(tagger, probs))
    after = best_of(args.repeats, lambda: tagger.decode(probs))
    texts = [" ".join(words) for words in sentences]
    old = copy.copy(tagger)
    old.decode = lambda probs: viterbi_with_mean_scores(tagger, probs)  # the tagger of before, in this process
    whole_before, whole = alternating(args.repeats, lambda: old.tag_texts(texts), lambda: tagger.tag_texts(texts))
    result = new_result(cpu=cpu_model(), cpu_flags=cpu_flags(), run=args.run, engine=tagger.engine.to_dict(),
                        temperature=tagger.temperature, sentences=len(sentences), forward_s=round(forward_s, 3),
                        decode_viterbi_mean_s=round(before, 4), decode_posterior_s=round(after, 4),
                        decode_ratio=round(after / before, 3),
                        tag_texts_sentences_per_s_before=round(len(texts) / whole_before, 1),
                        tag_texts_sentences_per_s=round(len(texts) / whole, 1),
                        tag_texts_ratio=round(whole_before / whole, 3),
                        posterior_share_of_tag_texts=round((after - before) / whole, 4))
    print(save_result(result, REPO / "benchmarks" / "results", "-decode"))
    for key in ("forward_s", "decode_viterbi_mean_s", "decode_posterior_s", "decode_ratio",
                "tag_texts_sentences_per_s_before", "tag_texts_sentences_per_s", "tag_texts_ratio",
                "posterior_share_of_tag_texts"):
        print(f"{key:32} {result[key]}")


if __name__ == "__main__":
    main()
