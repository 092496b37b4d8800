#!/usr/bin/env python3
"""Do span scores mean what they say? Reliability of a run's span scores on a tagged file.

    .venv/bin/python benchmarks/calibration.py --run RUN [--file engtest.bio]

Tags the file's words with the run's tagger (its default engine), takes every
predicted span with its score, and counts it right when the gold tags hold
exactly that span. Per score bin (10 equal-width bins): the spans, their mean
score and the share right; the expected calibration error (ECE: the bins'
|mean score - share right| weighted by their span counts); and the precision
of spans scored 0.9 or more against their mean score.
Writes benchmarks/results/<date>-<host>-calibration.json.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _common import REPO, cpu_model, engtest, new_result, save_result

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a finished run directory")
    parser.add_argument("--file", help="a tagged file [default: MIT Movie engtest]")
    args = parser.parse_args()
    from nerctl.artifacts.rundir import RunDir
    from nerctl.data.align import sentence_words
    from nerctl.data.formats import read_corpus
    from nerctl.data.tags import entity_spans
    from nerctl.evaluation.calibration import reliability
    from nerctl.inference.tagger import Tagger

    path = Path(args.file) if args.file else engtest()
    sentences = read_corpus(path, warn=lambda message: None)
    tagger = Tagger.from_run(RunDir(Path(args.run).resolve()))
    joined = [sentence_words(s) for s in sentences]
    docs = tagger.tag_words([t for t, _ in joined], [w for _, w in joined])
    scores, right = [], []
    for sentence, doc, (_, words) in zip(sentences, docs, joined):
        gold = {(kind, words[a].start, words[b - 1].end) for kind, a, b in entity_spans(sentence.tags)}
        for e in doc.entities:
            scores.append(e.score)
            right.append((e.type, e.start, e.end) in gold)
    scores_a, right_a = np.array(scores), np.array(right, dtype=float)
    rows, ece = reliability(scores, right)
    high = scores_a >= 0.9
    result = new_result(cpu=cpu_model(), run=args.run, file=str(path), engine=tagger.engine.to_dict(),
                        spans=len(scores), ece=round(ece, 4), bins=rows,
                        high={"spans": int(high.sum()), "mean_score": round(float(scores_a[high].mean()), 4),
                              "precision": round(float(right_a[high].mean()), 4)})
    print(save_result(result, REPO / "benchmarks" / "results", "-calibration"))
    print(f"{len(scores)} spans, ECE {ece:.4f}; score >= 0.9: {result['high']}")
    for row in rows:
        print(f"  {row['bin'][0]:.1f}-{row['bin'][1]:.1f}  {row['spans']:5d} spans  mean score {row['mean_score']:.3f}"
              f"  precision {row['precision']:.3f}")


if __name__ == "__main__":
    main()
